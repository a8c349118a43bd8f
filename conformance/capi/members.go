package capi

import (
	"fmt"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var members = []Test{
	{IDs: []string{"CAPI-070"}, Name: "members/kick-ban-stop-dispatches", Run: kickStopsDispatches},
	{IDs: []string{"CAPI-071"}, Name: "members/banned-cannot-rejoin", Run: bannedCannotRejoin},
	{IDs: []string{"CAPI-072"}, Name: "members/moderation-hierarchy", Run: moderationHierarchy},
}

// CAPI-070: "A kicked or banned member MUST stop receiving the guild's dispatches
// immediately and receive GUILD_DELETE for it."
func kickStopsDispatches(t *T) {
	o, k, b := t.NewUser(), t.NewUser(), t.NewUser()
	g, side := t.NewGuild(o), t.NewGuild(o)
	t.Join(g, k, b)
	t.Join(side, k, b)
	sk, sb := t.Connect(k, harness.AllIntents), t.Connect(b, harness.AllIntents)
	for _, s := range []*harness.Session{sk, sb} {
		t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
		t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", side.ID))
	}
	if r := t.Call(o.Client, "DELETE", "/guilds/"+g.ID+"/members/"+k.ID, nil); r.Status != 204 {
		t.Fatalf("kick: expected 204, got %s", r)
	}
	if r := t.Call(o.Client, "PUT", "/guilds/"+g.ID+"/bans/"+b.ID, Obj{}); r.Status != 204 {
		t.Fatalf("ban: expected 204, got %s", r)
	}
	for _, s := range []*harness.Session{sk, sb} {
		t.Expect(s.Gateway, "GUILD_DELETE", harness.Field("id", g.ID))
	}
	after := t.Send(o, g.Text, "after removal")
	sentinel := t.Send(o, side.Text, "sentinel")
	for _, s := range []*harness.Session{sk, sb} {
		t.Expect(s.Gateway, "MESSAGE_CREATE", harness.Field("id", str(sentinel["id"])))
		if f, ok := s.Seen(func(f harness.Frame) bool { return str(f.Obj()["id"]) == str(after["id"]) }); ok {
			t.Errorf("%s received a message of the guild it was removed from: %s", s.User.Name, f)
		}
	}
	t.ErrorBody(t.Call(k.Client, "GET", "/guilds/"+g.ID, nil), 403, 50001)
}

// CAPI-071: "A banned user MUST NOT be able to join the guild again, by invite or
// otherwise, until unbanned."
func bannedCannotRejoin(t *T) {
	o, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, b)
	if r := t.Call(o.Client, "PUT", "/guilds/"+g.ID+"/bans/"+b.ID, Obj{}); r.Status != 204 {
		t.Fatalf("ban: expected 204, got %s", r)
	}
	var bans []Obj
	t.Must(o.Client, 200, "GET", "/guilds/"+g.ID+"/bans", nil, &bans)
	if len(bans) != 1 || str(get(bans[0], "user.id")) != b.ID {
		t.Errorf("GET bans: expected one ban of %s, got %s", b.ID, harness.JSON(bans))
	}
	code := t.Invite(o, g.Text, Obj{"max_uses": 0})
	r := t.Call(b.Client, "POST", "/invites/"+code, Obj{})
	if r.Status/100 == 2 {
		t.Errorf("a banned user joined by invite: %s", r)
	} else if r.Status == 403 {
		t.ErrorBody(r, 403, 40007)
	}
	if r := t.Call(o.Client, "GET", "/guilds/"+g.ID+"/members/"+b.ID, nil); r.Status != 404 {
		t.Errorf("the banned user is a member: %s", r)
	}
	if r := t.Call(o.Client, "DELETE", "/guilds/"+g.ID+"/bans/"+b.ID, nil); r.Status != 204 {
		t.Fatalf("unban: expected 204, got %s", r)
	}
	// The rule bars joins "until unbanned"; a federating node may take a moment
	// to apply the unban to the guild's federated state (docs/conformance.md).
	t.Eventually("a join after the unban", func() error {
		if r := t.Call(b.Client, "POST", "/invites/"+code, Obj{}); r.Status != 200 {
			return fmt.Errorf("expected 200, got %s", r)
		}
		return nil
	})
}

// CAPI-072: "Nobody can kick or ban the owner, and a moderator cannot act on a
// member whose highest role is at or above their own."
func moderationHierarchy(t *T) {
	o, mod, peer, low := t.NewUser(), t.NewUser(), t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, mod, peer, low)
	role := newRole(t, o, g, "mods", permKick|permBan|permAdmin)
	giveRole(t, o, g, mod.ID, role)
	giveRole(t, o, g, peer.ID, role)
	for _, c := range []struct{ method, path, what string }{
		{"DELETE", "/guilds/" + g.ID + "/members/" + o.ID, "kick the owner"},
		{"PUT", "/guilds/" + g.ID + "/bans/" + o.ID, "ban the owner"},
		{"DELETE", "/guilds/" + g.ID + "/members/" + peer.ID, "kick a member with the same highest role"},
		{"PUT", "/guilds/" + g.ID + "/bans/" + peer.ID, "ban a member with the same highest role"},
	} {
		if r := t.Call(mod.Client, c.method, c.path, Obj{}); r.Status != 403 {
			t.Errorf("%s: expected 403, got %s", c.what, r)
		}
	}
	if r := t.Call(mod.Client, "DELETE", "/guilds/"+g.ID+"/members/"+low.ID, nil); r.Status != 204 {
		t.Errorf("kick a member without roles: expected 204, got %s", r)
	}
}
