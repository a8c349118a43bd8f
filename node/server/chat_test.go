package server_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/hearth-chat/hearth/node/testnode"
)

type guild struct {
	ID       string `json:"id"`
	Channels []struct {
		ID   string `json:"id"`
		Type int    `json:"type"`
		Name string `json:"name"`
	} `json:"channels"`
}

func (g guild) text(t *testing.T) string {
	for _, c := range g.Channels {
		if c.Type == 0 {
			return c.ID
		}
	}
	t.Fatal("guild has no text channel")
	return ""
}

type message struct {
	ID              string  `json:"id"`
	ChannelID       string  `json:"channel_id"`
	Content         string  `json:"content"`
	Nonce           any     `json:"nonce"`
	Type            int     `json:"type"`
	EditedTimestamp *string `json:"edited_timestamp"`
	Mentions        []struct {
		ID string `json:"id"`
	} `json:"mentions"`
	Reactions []struct {
		Count int  `json:"count"`
		Me    bool `json:"me"`
	} `json:"reactions"`
	ReferencedMessage *message `json:"referenced_message"`
	Pinned            bool     `json:"pinned"`
}

// setup starts a node with alice owning a guild and bob joined through an invite, both on
// the gateway.
func setup(t *testing.T) (n *testnode.Node, alice, bob *testnode.Client, g guild, ag, bg *testnode.Gateway) {
	n = testnode.Start(t, testnode.Options{})
	alice, bob = n.Register(t, "alice"), n.Register(t, "bob")
	alice.Must("POST", "/guilds", map[string]string{"name": "Hearth Club"}, &g)
	ag = alice.Connect(-1)
	ag.Wait("GUILD_CREATE")
	bg = bob.Connect(-1)
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
	if len(inv.Code) < 8 {
		t.Fatalf("invite code %q too short", inv.Code)
	}
	var joined struct {
		NewMember bool `json:"new_member"`
	}
	bob.Must("POST", "/invites/"+inv.Code, nil, &joined)
	if !joined.NewMember {
		t.Fatal("join did not report new_member")
	}
	bg.Wait("GUILD_CREATE")
	ag.Wait("GUILD_MEMBER_ADD")
	// Joining again neither fails nor counts a use.
	bob.Must("POST", "/invites/"+inv.Code, nil, nil)
	var info struct{ Uses int }
	alice.Must("GET", "/invites/"+inv.Code, nil, &info)
	if info.Uses != 1 {
		t.Fatalf("invite uses = %d, want 1", info.Uses)
	}
	return
}

func TestMessageLifecycle(t *testing.T) {
	_, alice, bob, g, ag, bg := setup(t)
	ch := g.text(t)

	var m message
	alice.Must("POST", "/channels/"+ch+"/messages", map[string]any{"content": "hi <@" + bob.UserID + "> `<@" + alice.UserID + ">`", "nonce": "n-1"}, &m)
	if len(m.Mentions) != 1 || m.Mentions[0].ID != bob.UserID {
		t.Fatalf("mentions = %+v, want only bob (code spans do not mention)", m.Mentions)
	}
	for _, gw := range []*testnode.Gateway{ag, bg} {
		var got message
		gw.Wait("MESSAGE_CREATE").Decode(t, &got)
		if got.ID != m.ID || got.Nonce != "n-1" || got.Content != m.Content {
			t.Fatalf("MESSAGE_CREATE = %+v, want %+v", got, m)
		}
	}

	var reply message
	bob.Must("POST", "/channels/"+ch+"/messages", map[string]any{"content": "hello back", "message_reference": map[string]string{"message_id": m.ID}}, &reply)
	if reply.Type != 19 || reply.ReferencedMessage == nil || reply.ReferencedMessage.ID != m.ID {
		t.Fatalf("reply = %+v", reply)
	}
	ag.Wait("MESSAGE_CREATE")
	// History pages carry the answered message too.
	var page []message
	alice.Must("GET", "/channels/"+ch+"/messages?limit=1", nil, &page)
	if len(page) != 1 || page[0].ID != reply.ID || page[0].ReferencedMessage == nil || page[0].ReferencedMessage.ID != m.ID {
		t.Fatalf("history page = %+v, want the reply with the message it answers", page)
	}

	var edited message
	alice.Must("PATCH", "/channels/"+ch+"/messages/"+m.ID, map[string]string{"content": "edited"}, &edited)
	if edited.Content != "edited" || edited.EditedTimestamp == nil {
		t.Fatalf("edit = %+v", edited)
	}
	bg.Wait("MESSAGE_UPDATE")
	if st := bob.Do("PATCH", "/channels/"+ch+"/messages/"+m.ID, map[string]string{"content": "mine now"}, nil); st != 403 {
		t.Fatalf("bob editing alice's message: status %d, want 403", st)
	}

	emoji := url.PathEscape("👍")
	bob.Must("PUT", "/channels/"+ch+"/messages/"+m.ID+"/reactions/"+emoji+"/@me", nil, nil)
	bob.Must("PUT", "/channels/"+ch+"/messages/"+m.ID+"/reactions/"+emoji+"/@me", nil, nil) // twice counts once
	ag.Wait("MESSAGE_REACTION_ADD")
	var got message
	bob.Must("GET", "/channels/"+ch+"/messages/"+m.ID, nil, &got)
	if len(got.Reactions) != 1 || got.Reactions[0].Count != 1 || !got.Reactions[0].Me {
		t.Fatalf("reactions = %+v", got.Reactions)
	}
	bob.Must("DELETE", "/channels/"+ch+"/messages/"+m.ID+"/reactions/"+emoji+"/@me", nil, nil)
	ag.Wait("MESSAGE_REACTION_REMOVE")
	if st := bob.Do("PUT", "/channels/"+ch+"/messages/"+m.ID+"/reactions/abc/@me", nil, nil); st != 404 {
		t.Fatalf("reaction with a non-emoji: status %d, want 404", st)
	}

	alice.Must("PUT", "/channels/"+ch+"/pins/"+m.ID, nil, nil)
	bg.Wait("CHANNEL_PINS_UPDATE")
	var pins []message
	bob.Must("GET", "/channels/"+ch+"/pins", nil, &pins)
	if len(pins) != 1 || pins[0].ID != m.ID || !pins[0].Pinned {
		t.Fatalf("pins = %+v", pins)
	}
	if st := bob.Do("PUT", "/channels/"+ch+"/pins/"+reply.ID, nil, nil); st != 403 {
		t.Fatalf("bob pinning without MANAGE_MESSAGES: status %d, want 403", st)
	}

	bob.Must("POST", "/channels/"+ch+"/typing", nil, nil)
	ag.Wait("TYPING_START")

	alice.Must("DELETE", "/channels/"+ch+"/messages/"+reply.ID, nil, nil) // moderator deletes bob's
	bg.Wait("MESSAGE_DELETE")
	if st := bob.Do("GET", "/channels/"+ch+"/messages/"+reply.ID, nil, nil); st != 404 {
		t.Fatalf("deleted message: status %d", st)
	}

	var ids []string
	for i := 0; i < 3; i++ {
		var mm message
		alice.Must("POST", "/channels/"+ch+"/messages", map[string]string{"content": fmt.Sprint("bulk ", i)}, &mm)
		ids = append(ids, mm.ID)
	}
	alice.Must("POST", "/channels/"+ch+"/messages/bulk-delete", map[string]any{"messages": ids}, nil)
	bg.Wait("MESSAGE_DELETE_BULK")
	if st := alice.Do("POST", "/channels/"+ch+"/messages/bulk-delete", map[string]any{"messages": ids[:1]}, nil); st != 400 {
		t.Fatalf("bulk delete of 1: status %d, want 400", st)
	}
}

func TestHistoryPaging(t *testing.T) {
	_, alice, _, g, _, _ := setup(t)
	ch := g.text(t)
	var sent []string
	for i := 0; i < 25; i++ {
		var m message
		alice.Must("POST", "/channels/"+ch+"/messages", map[string]string{"content": fmt.Sprint("m", i)}, &m)
		sent = append(sent, m.ID)
	}
	// Page backwards by 10 with before, and check no gaps or repeats.
	var seen []string
	before := ""
	for {
		var page []message
		q := "?limit=10"
		if before != "" {
			q += "&before=" + before
		}
		alice.Must("GET", "/channels/"+ch+"/messages"+q, nil, &page)
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			seen = append(seen, m.ID)
		}
		before = page[len(page)-1].ID
	}
	if len(seen) != 25 {
		t.Fatalf("paged %d messages, want 25", len(seen))
	}
	for i := range seen {
		if seen[i] != sent[24-i] {
			t.Fatalf("page order wrong at %d", i)
		}
	}
	var after []message
	alice.Must("GET", "/channels/"+ch+"/messages?limit=5&after="+sent[9], nil, &after)
	if len(after) != 5 || after[0].ID != sent[14] || after[4].ID != sent[10] {
		t.Fatalf("after page = %v", ids(after))
	}
	var around []message
	alice.Must("GET", "/channels/"+ch+"/messages?limit=5&around="+sent[12], nil, &around)
	if len(around) != 5 || !contains(ids(around), sent[12]) || around[0].ID != sent[14] {
		t.Fatalf("around page = %v", ids(around))
	}
	for _, bad := range []string{"?limit=0", "?limit=101", "?before=abc"} {
		if st := alice.Do("GET", "/channels/"+ch+"/messages"+bad, nil, nil); st != 400 {
			t.Errorf("GET messages%s: status %d, want 400", bad, st)
		}
	}
}

func ids(ms []message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestPrivateChannelIsInvisible(t *testing.T) {
	_, alice, bob, g, _, bg := setup(t)
	var secret struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{
		"name": "Mods Only", "permission_overwrites": []map[string]any{{"id": g.ID, "type": 0, "allow": "0", "deny": "1024"}},
	}, &secret)
	alice.Must("POST", "/channels/"+secret.ID+"/messages", map[string]string{"content": "secret plans"}, nil)
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "public sentinel"}, nil)
	// The sentinel in the public channel proves delivery finished; the secret must not be there.
	var m message
	bg.Wait("MESSAGE_CREATE").Decode(t, &m)
	if m.Content != "public sentinel" {
		t.Fatalf("bob received %q from a channel he cannot view", m.Content)
	}
	if bg.Has("CHANNEL_CREATE") {
		t.Fatal("bob received CHANNEL_CREATE for a channel he cannot view")
	}
	for _, path := range []string{"/channels/" + secret.ID, "/channels/" + secret.ID + "/messages"} {
		if st := bob.Do("GET", path, nil, nil); st != 404 {
			t.Errorf("GET %s as bob: status %d, want 404", path, st)
		}
	}
	if st := bob.Do("POST", "/channels/"+secret.ID+"/messages", map[string]string{"content": "x"}, nil); st != 404 {
		t.Errorf("bob posting in hidden channel: status %d", st)
	}
	// A member overwrite lets bob in.
	alice.Must("PUT", "/channels/"+secret.ID+"/permissions/"+bob.UserID, map[string]any{"type": 1, "allow": "1024", "deny": "0"}, nil)
	bg.Wait("CHANNEL_UPDATE")
	var hist []message
	bob.Must("GET", "/channels/"+secret.ID+"/messages", nil, &hist)
	if len(hist) != 1 || hist[0].Content != "secret plans" {
		t.Fatalf("history after access granted = %+v", hist)
	}
}

func TestModeration(t *testing.T) {
	n, alice, bob, g, _, bg := setup(t)
	// Bob cannot moderate.
	if st := bob.Do("PUT", "/guilds/"+g.ID+"/bans/"+alice.UserID, nil, nil); st != 403 {
		t.Fatalf("bob banning the owner: status %d", st)
	}
	// A moderator role with KICK|BAN below alice.
	var role struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/roles", map[string]any{"name": "mod", "permissions": "6"}, &role)
	carol := n.Register(t, "carol")
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{"max_uses": 1}, &inv)
	carol.Must("POST", "/invites/"+inv.Code, nil, nil)
	if st := n.Register(t, "dave").Do("POST", "/invites/"+inv.Code, nil, nil); st != 404 {
		t.Fatalf("invite past max_uses: status %d, want 404", st)
	}
	alice.Must("PUT", "/guilds/"+g.ID+"/members/"+carol.UserID+"/roles/"+role.ID, nil, nil)
	// Carol bans bob; bob loses the guild and cannot rejoin.
	carol.Must("PUT", "/guilds/"+g.ID+"/bans/"+bob.UserID, map[string]any{}, nil)
	bg.Wait("GUILD_DELETE")
	if st := bob.Do("GET", "/guilds/"+g.ID, nil, nil); st != 403 {
		t.Fatalf("banned bob reading guild: status %d", st)
	}
	var inv2 struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv2)
	if st := bob.Do("POST", "/invites/"+inv2.Code, nil, nil); st != 403 {
		t.Fatalf("banned bob rejoining: status %d, want 403", st)
	}
	// Carol cannot act on alice (owner) or on herself-level roles.
	if st := carol.Do("DELETE", "/guilds/"+g.ID+"/members/"+alice.UserID, nil, nil); st != 403 {
		t.Fatalf("mod kicking owner: status %d", st)
	}
	alice.Must("DELETE", "/guilds/"+g.ID+"/bans/"+bob.UserID, nil, nil)
	bob.Must("POST", "/invites/"+inv2.Code, nil, nil)
	bg.Wait("GUILD_CREATE")
	alice.Must("DELETE", "/guilds/"+g.ID+"/members/"+bob.UserID, nil, nil)
	bg.Wait("GUILD_DELETE")
}

func TestErrorsHaveDiscordShape(t *testing.T) {
	n, alice, _, g, _, _ := setup(t)
	anon := n.Client(t, "")
	type errBody struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Errors  map[string]any `json:"errors"`
	}
	long := strings.Repeat("x", 2001)
	tests := []struct {
		name   string
		c      *testnode.Client
		method string
		path   string
		body   any
		status int
		code   int
	}{
		{"no token", anon, "GET", "/users/@me", nil, 401, 0},
		{"bad token", n.Client(t, "nope"), "GET", "/users/@me", nil, 401, 0},
		{"too long", alice, "POST", "/channels/" + g.text(t) + "/messages", map[string]string{"content": long}, 400, 50035},
		{"empty", alice, "POST", "/channels/" + g.text(t) + "/messages", map[string]string{"content": " "}, 400, 50006},
		{"unknown channel", alice, "GET", "/channels/1/messages", nil, 404, 10003},
		{"unknown guild", alice, "GET", "/guilds/1", nil, 404, 10004},
		{"bad snowflake", alice, "GET", "/guilds/abc", nil, 404, 10004},
		{"unknown invite", alice, "GET", "/invites/doesnotexist", nil, 404, 10006},
		{"unknown route", alice, "GET", "/frobnicate", nil, 404, 0},
		{"short name", alice, "POST", "/guilds", map[string]string{"name": "x"}, 400, 50035},
		{"voice channel text", alice, "POST", "/channels/" + voiceChannel(g) + "/messages", map[string]string{"content": "x"}, 400, 50008},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e errBody
			if st := tt.c.Do(tt.method, tt.path, tt.body, &e); st != tt.status || e.Code != tt.code || e.Message == "" {
				t.Fatalf("status %d body %+v, want %d code %d", st, e, tt.status, tt.code)
			}
		})
	}
	// Register validation names the field.
	var e errBody
	if st := anon.Do("POST", "/auth/register", map[string]string{"username": "alice", "password": "long enough pw"}, &e); st != 400 || e.Errors["username"] == nil {
		t.Fatalf("duplicate username: %d %+v", st, e)
	}
	if st := anon.Do("POST", "/auth/login", map[string]string{"login": "alice", "password": "wrong password"}, &e); st != 400 || e.Errors["login"] == nil {
		t.Fatalf("wrong password: %d %+v", st, e)
	}
}

func voiceChannel(g guild) string {
	for _, c := range g.Channels {
		if c.Type == 2 {
			return c.ID
		}
	}
	return ""
}
