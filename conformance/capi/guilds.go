package capi

import (
	"strings"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var guilds = []Test{
	{IDs: []string{"CAPI-040"}, Name: "guilds/everyone-role-id", Run: everyoneRoleID},
	{IDs: []string{"CAPI-041"}, Name: "guilds/creator-owner-member", Run: creatorOwner},
	{IDs: []string{"CAPI-042"}, Name: "guilds/default-channels", Run: defaultChannels},
	{IDs: []string{"CAPI-043"}, Name: "guilds/name-length", Run: guildNameLength},
	{IDs: []string{"CAPI-044"}, Name: "guilds/non-member-access", Run: guildNonMember},
	{IDs: []string{"CAPI-045"}, Name: "guilds/delete-dispatch", Run: guildDelete},
	{IDs: []string{"CAPI-050"}, Name: "channels/name-normalised", Run: channelName},
	{IDs: []string{"CAPI-051"}, Name: "channels/parent-is-category", Run: channelParent},
	{IDs: []string{"CAPI-052"}, Name: "channels/hidden-is-unknown", Run: hiddenChannel},
}

// CAPI-040: "A new guild MUST have an @everyone role whose ID equals the guild ID."
func everyoneRoleID(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	t.Conform("guild", harness.Raw(g.Raw))
	var roles []Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+g.ID+"/roles", nil, &roles)
	for _, r := range roles {
		if str(r["id"]) == g.ID {
			if str(r["name"]) != "@everyone" {
				t.Errorf("role %s has name %q, expected @everyone", g.ID, str(r["name"]))
			}
			t.Conform("role", harness.Raw(r))
			return
		}
	}
	t.Errorf("no role with the guild's ID %s: %s", g.ID, harness.JSON(roles))
}

// CAPI-041: "[A new guild MUST have] the creator as owner and member."
func creatorOwner(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	if str(g.Raw["owner_id"]) != u.ID {
		t.Errorf("owner_id = %v, expected the creator %s", g.Raw["owner_id"], u.ID)
	}
	var m Obj
	r := t.Must(u.Client, 200, "GET", "/guilds/"+g.ID+"/members/"+u.ID, nil, &m)
	t.Conform("member", r.Body)
	var mine []Obj
	t.Must(u.Client, 200, "GET", "/users/@me/guilds", nil, &mine)
	for _, pg := range mine {
		if str(pg["id"]) == g.ID {
			if pg["owner"] != true {
				t.Errorf("GET /users/@me/guilds: owner = %v, expected true", pg["owner"])
			}
			t.Conform("partial_guild", harness.Raw(pg))
			return
		}
	}
	t.Errorf("GET /users/@me/guilds lacks the new guild %s", g.ID)
}

// CAPI-042: "[A new guild MUST have] the channels a Discord user expects: a category
// "Text Channels" with a text channel general, and a category "Voice Channels" with
// a voice channel General."
func defaultChannels(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	byName := map[string]Obj{}
	for _, c := range g.Channel {
		t.Conform("channel", harness.Raw(c))
		byName[str(c["name"])] = c
	}
	check := func(cat string, child string, typ float64) {
		parent, ok := byName[cat]
		if !ok || num(parent["type"]) != 4 {
			t.Errorf("no category %q (type 4) in %s", cat, harness.JSON(g.Channel))
			return
		}
		c, ok := byName[child]
		if !ok || num(c["type"]) != typ || str(c["parent_id"]) != str(parent["id"]) {
			t.Errorf("expected a type-%v channel %q under %q, got %s", typ, child, cat, harness.JSON(c))
		}
	}
	check("Text Channels", "general", 0)
	check("Voice Channels", "General", 2)
}

// CAPI-043: "Guild names are 2–100 characters."
func guildNameLength(t *T) {
	u := t.NewUser()
	for _, n := range []string{"x", strings.Repeat("n", 101), ""} {
		t.ErrorBody(t.Call(u.Client, "POST", "/guilds", Obj{"name": n}), 400, 50035)
	}
	for _, n := range []string{"ab", strings.Repeat("é", 100)} {
		if r := t.Call(u.Client, "POST", "/guilds", Obj{"name": n}); r.Status != 201 {
			t.Errorf("guild name of %d characters: expected 201, got %s", len([]rune(n)), r)
		}
	}
}

// CAPI-044: "Routes on a guild the caller is not a member of MUST answer 404 10004
// for an unknown guild and 403 50001 for a guild the caller is not in."
func guildNonMember(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	for _, p := range []string{"/guilds/" + g.ID, "/guilds/" + g.ID + "/channels", "/guilds/" + g.ID + "/roles"} {
		t.ErrorBody(t.Call(b.Client, "GET", p, nil), 403, 50001)
		t.ErrorBody(t.Call(b.Client, "GET", strings.Replace(p, g.ID, "4242424242424242", 1), nil), 404, 10004)
	}
}

// CAPI-045: "Deleting a guild dispatches GUILD_DELETE to every member session."
func guildDelete(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	sa, sb := t.Connect(a, harness.AllIntents), t.Connect(b, harness.AllIntents)
	if r := t.Call(b.Client, "DELETE", "/guilds/"+g.ID, nil); r.Status != 403 {
		t.Errorf("DELETE guild by a non-owner: expected 403, got %s", r)
	}
	if r := t.Call(a.Client, "DELETE", "/guilds/"+g.ID, nil); r.Status != 204 {
		t.Fatalf("DELETE guild by the owner: expected 204, got %s", r)
	}
	t.Expect(sa.Gateway, "GUILD_DELETE", harness.Field("id", g.ID))
	t.Expect(sb.Gateway, "GUILD_DELETE", harness.Field("id", g.ID))
	t.ErrorBody(t.Call(a.Client, "GET", "/guilds/"+g.ID, nil), 404, 10004)
}

func createChannel(t *T, u *harness.User, g *harness.Guild, body Obj) Obj {
	var c Obj
	r := t.OK(u.Client, "POST", "/guilds/"+g.ID+"/channels", body, &c)
	t.Conform("channel", r.Body)
	return c
}

// CAPI-050: "Channel names of text channels are lower-cased and spaces become -."
func channelName(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	c := createChannel(t, u, g, Obj{"name": "My Fancy Channel", "type": 0})
	if str(c["name"]) != "my-fancy-channel" {
		t.Errorf("created text channel \"My Fancy Channel\": name %q, expected \"my-fancy-channel\"", str(c["name"]))
	}
	var p Obj
	t.OK(u.Client, "PATCH", "/channels/"+str(c["id"]), Obj{"name": "Renamed Again"}, &p)
	if str(p["name"]) != "renamed-again" {
		t.Errorf("renamed to \"Renamed Again\": name %q, expected \"renamed-again\"", str(p["name"]))
	}
}

// CAPI-051: "A parent_id MUST name a category of the same guild."
func channelParent(t *T) {
	u := t.NewUser()
	g, other := t.NewGuild(u), t.NewGuild(u)
	var foreignCat, ownCat string
	for _, c := range other.Channel {
		if num(c["type"]) == 4 {
			foreignCat = str(c["id"])
		}
	}
	for _, c := range g.Channel {
		if num(c["type"]) == 4 {
			ownCat = str(c["id"])
		}
	}
	for _, parent := range []string{g.Text, foreignCat, "4242424242424242"} {
		if r := t.Call(u.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "child", "type": 0, "parent_id": parent}); r.Status != 400 {
			t.Errorf("parent_id %s (not a category of this guild): expected 400, got %s", parent, r)
		}
	}
	c := createChannel(t, u, g, Obj{"name": "child", "type": 0, "parent_id": ownCat})
	if str(c["parent_id"]) != ownCat {
		t.Errorf("parent_id = %v, expected %s", c["parent_id"], ownCat)
	}
	if r := t.Call(u.Client, "PATCH", "/channels/"+str(c["id"]), Obj{"parent_id": foreignCat}); r.Status != 400 {
		t.Errorf("PATCH parent_id to another guild's category: expected 400, got %s", r)
	}
}

// CAPI-052: "A channel the caller cannot view (VIEW_CHANNEL) MUST answer as if it
// did not exist to that caller (404 10003) on every channel route."
func hiddenChannel(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	c := createChannel(t, a, g, Obj{"name": "secret", "type": 0,
		"permission_overwrites": []Obj{{"id": g.ID, "type": 0, "allow": "0", "deny": itoa(permView)}}})
	id := str(c["id"])
	m := t.Send(a, id, "hidden")
	mid := str(m["id"])
	cases := []struct{ method, path string }{
		{"GET", "/channels/" + id},
		{"PATCH", "/channels/" + id},
		{"GET", "/channels/" + id + "/messages"},
		{"POST", "/channels/" + id + "/messages"},
		{"GET", "/channels/" + id + "/messages/" + mid},
		{"PUT", "/channels/" + id + "/messages/" + mid + "/reactions/" + thumbsUp + "/@me"},
		{"POST", "/channels/" + id + "/typing"},
		{"GET", "/channels/" + id + "/pins"},
		{"POST", "/channels/" + id + "/invites"},
	}
	for _, c := range cases {
		var body any
		if c.method == "POST" || c.method == "PATCH" {
			body = Obj{"content": "x", "name": "x"}
		}
		t.ErrorBody(t.Call(b.Client, c.method, c.path, body), 404, 10003)
	}
	var list []Obj
	t.Must(b.Client, 200, "GET", "/guilds/"+g.ID+"/channels", nil, &list)
	for _, x := range list {
		if str(x["id"]) == id {
			t.Errorf("GET /guilds/{id}/channels lists the hidden channel to a member who cannot view it")
		}
	}
}
