package server_test

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/testnode"
)

func federated(name string) testnode.Options {
	return testnode.Options{Config: func(c *config.Config) {
		c.P2PListen = []string{"/ip4/127.0.0.1/tcp/0"}
		c.NodeName = name
	}}
}

// TestFederatedChat: Alice's guild lives on node A; Bob on node B joins it with the invite
// code A returned, sees the history, and both chat in real time across the nodes.
func TestFederatedChat(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob := a.Register(t, "alice"), b.Register(t, "bob")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Across Nodes"}, &g)
	ag := alice.Connect(-1)
	ag.Wait("GUILD_CREATE")

	// The guild is federated in the background; the invite is a federation code once it is.
	var code string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var inv struct{ Code string }
		alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
		if strings.HasPrefix(inv.Code, "hearth:") {
			code = inv.Code
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invite %q never became a federation invite", inv.Code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "before bob"}, nil)

	bg := bob.Connect(-1)
	var joined struct {
		NewMember bool   `json:"new_member"`
		GuildID   string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	if !joined.NewMember || joined.GuildID == "" {
		t.Fatalf("join on node B = %+v", joined)
	}
	var remote guild
	bg.Wait("GUILD_CREATE").Decode(t, &remote)
	ch := remote.text(t)
	// The message alice sent just before is in the join snapshot, or arrives right after it.
	var hist []message
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		bob.Must("GET", "/channels/"+ch+"/messages", nil, &hist)
		if len(hist) == 1 || time.Now().After(deadline) {
			break
		}
	}
	if len(hist) != 1 || hist[0].Content != "before bob" {
		t.Fatalf("history on node B = %+v", hist)
	}

	// A → B.
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "hello from A"}, nil)
	var m struct {
		Content string
		Author  struct{ Username string }
	}
	for m.Content != "hello from A" {
		bg.Wait("MESSAGE_CREATE").Decode(t, &m)
	}
	if m.Author.Username != "alice@alpha" {
		t.Fatalf("on node B: %+v", m)
	}
	// B → A.
	bob.Must("POST", "/channels/"+ch+"/messages", map[string]string{"content": "hello from B"}, nil)
	for {
		ag.Wait("MESSAGE_CREATE").Decode(t, &m)
		if m.Content == "hello from B" {
			break
		}
	}
	if m.Author.Username != "bob@beta" {
		t.Fatalf("author on node A = %q, want bob@beta", m.Author.Username)
	}
	// A channel the home node creates appears on node B, and messages flow in it.
	var news struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "news"}, &news)
	var created struct {
		ID   string
		Name string
	}
	for created.Name != "news" {
		bg.Wait("CHANNEL_CREATE").Decode(t, &created)
	}
	// The channel is federated in the background; post until the message crosses.
	ag.Wait("CHANNEL_CREATE")
	for deadline := time.Now().Add(10 * time.Second); ; {
		alice.Must("POST", "/channels/"+news.ID+"/messages", map[string]string{"content": "extra extra"}, nil)
		var got []message
		time.Sleep(200 * time.Millisecond)
		bob.Must("GET", "/channels/"+created.ID+"/messages", nil, &got)
		if len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message crossed in the new channel")
		}
	}

	// Typing crosses too (batched by the sending node, about once a second).
	bob.Must("POST", "/channels/"+ch+"/typing", nil, nil)
	ag.Wait("TYPING_START")
	for i := 0; i < 5; i++ {
		bob.Must("POST", "/channels/"+ch+"/messages", map[string]string{"content": fmt.Sprint("burst ", i)}, nil)
	}
	ag.WaitFor("burst", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		n := 0
		for _, e := range events {
			if e.T == "MESSAGE_CREATE" && strings.Contains(string(e.D), "burst ") {
				n++
			}
		}
		return n == 5
	})
}

// TestFederatedEditsDeletesReactions: changes to a message cross nodes both ways.
func TestFederatedEditsDeletesReactions(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob := a.Register(t, "alice"), b.Register(t, "bob")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Changes"}, &g)
	var code string
	for deadline := time.Now().Add(10 * time.Second); !strings.HasPrefix(code, "hearth:"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no federation invite")
		}
		var inv struct{ Code string }
		alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
		code = inv.Code
	}
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	chB := textChannels(t, bob, joined.GuildID)[0]
	bg := bob.Connect(-1)
	ag := alice.Connect(-1)

	// Alice's message, edited and reacted to.
	var am message
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "first draft"}, &am)
	var onB message
	bg.Wait("MESSAGE_CREATE").Decode(t, &onB)
	alice.Must("PATCH", "/channels/"+g.text(t)+"/messages/"+am.ID, map[string]string{"content": "final text"}, nil)
	var upd message
	bg.Wait("MESSAGE_UPDATE").Decode(t, &upd)
	if upd.ID != onB.ID || upd.Content != "final text" {
		t.Fatalf("edit on node B = %+v, want message %s with the new text", upd, onB.ID)
	}
	bob.Must("PUT", "/channels/"+chB+"/messages/"+onB.ID+"/reactions/"+url.PathEscape("🔥")+"/@me", nil, nil)
	ag.Wait("MESSAGE_REACTION_ADD")
	var got message
	alice.Must("GET", "/channels/"+g.text(t)+"/messages/"+am.ID, nil, &got)
	if len(got.Reactions) != 1 || got.Reactions[0].Count != 1 {
		t.Fatalf("reactions on node A = %+v", got.Reactions)
	}
	// Bob's message, deleted by Bob on node B, disappears on node A.
	var bm message
	bob.Must("POST", "/channels/"+chB+"/messages", map[string]string{"content": "oops"}, &bm)
	var bmOnA message
	for bmOnA.Content != "oops" {
		ag.Wait("MESSAGE_CREATE").Decode(t, &bmOnA)
	}
	bob.Must("DELETE", "/channels/"+chB+"/messages/"+bm.ID, nil, nil)
	ag.WaitFor("the delete", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "MESSAGE_DELETE" && strings.Contains(string(e.D), bmOnA.ID) {
				return true
			}
		}
		return false
	})
	// Alice pins her message on node A (the owner may); node B shows it pinned.
	alice.Must("PUT", "/channels/"+g.text(t)+"/pins/"+am.ID, nil, nil)
	bg.Wait("CHANNEL_PINS_UPDATE")
	var pins []message
	bob.Must("GET", "/channels/"+chB+"/pins", nil, &pins)
	if len(pins) != 1 || pins[0].ID != onB.ID {
		t.Fatalf("pins on node B = %+v, want message %s", pins, onB.ID)
	}
}

// fedInvite creates invites in a federated guild until the code is a federation one (the
// guild is federated in the background after its creation).
func fedInvite(t *testing.T, c *testnode.Client, channel string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var inv struct{ Code string }
		c.Must("POST", "/channels/"+channel+"/invites", map[string]any{}, &inv)
		if strings.HasPrefix(inv.Code, "hearth:") {
			return inv.Code
		}
		if time.Now().After(deadline) {
			t.Fatalf("invite %q never became a federation invite", inv.Code)
		}
	}
}

// TestFederatedMembersAndPresence: a remote join shows as GUILD_MEMBER_ADD on the home node;
// a user of the home node who joins with the same code is admitted by federation too, so
// that her messages reach the other node; remote users' presence crosses both ways.
func TestFederatedMembersAndPresence(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob, carol := a.Register(t, "alice"), b.Register(t, "bob"), a.Register(t, "carol")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Members"}, &g)
	code := fedInvite(t, alice, g.text(t))
	ag := alice.Connect(-1)
	ag.Wait("GUILD_CREATE")

	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	var add struct {
		User struct{ ID, Username string }
	}
	for add.User.Username != "bob@beta" {
		ag.Wait("GUILD_MEMBER_ADD").Decode(t, &add)
	}
	bobOnA := add.User.ID

	// Bob comes online on node B; node A shows it to Alice.
	bg := bob.Connect(-1)
	bg.Wait("GUILD_CREATE")
	ag.WaitFor("bob@beta online", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "PRESENCE_UPDATE" && strings.Contains(string(e.D), `"id":"`+bobOnA+`"`) && strings.Contains(string(e.D), `"online"`) {
				return true
			}
		}
		return false
	})
	// A new session of Alice's gets Bob's presence in GUILD_CREATE, not only on a change.
	var gc struct {
		Presences []struct {
			User   struct{ ID string }
			Status string
		}
	}
	alice.Connect(-1).Wait("GUILD_CREATE").Decode(t, &gc)
	if !slices.ContainsFunc(gc.Presences, func(p struct {
		User   struct{ ID string }
		Status string
	}) bool {
		return p.User.ID == bobOnA && p.Status == "online"
	}) {
		t.Fatalf("presences in a new session's GUILD_CREATE = %+v, want bob@beta online", gc.Presences)
	}

	// Carol, on the home node, joins with the same code and writes; Bob sees her.
	carol.Must("POST", "/invites/"+url.PathEscape(code), nil, nil)
	var carolOnB struct {
		User struct{ ID, Username string }
	}
	for carolOnB.User.Username != "carol@alpha" {
		bg.Wait("GUILD_MEMBER_ADD").Decode(t, &carolOnB)
	}
	carol.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "carol was here"}, nil)
	var m struct {
		Content string
		Author  struct{ Username string }
	}
	for m.Content != "carol was here" {
		bg.Wait("MESSAGE_CREATE").Decode(t, &m)
	}
	if m.Author.Username != "carol@alpha" {
		t.Fatalf("author on node B = %q, want carol@alpha", m.Author.Username)
	}
	// Carol's presence reaches node B too.
	cg := carol.Connect(-1)
	cg.Wait("GUILD_CREATE")
	bg.WaitFor("carol@alpha online", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "PRESENCE_UPDATE" && strings.Contains(string(e.D), `"id":"`+carolOnB.User.ID+`"`) && strings.Contains(string(e.D), `"online"`) {
				return true
			}
		}
		return false
	})
}

// TestFederatedModeration: the home node's bans and unbans reach the member nodes (the
// banned user's guild goes away there), in order and before the home node answers; a member node's moderation goes to the home node,
// which refuses a user without the permission; a remote user's leave reaches the home node.
func TestFederatedModeration(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob, dave := a.Register(t, "alice"), b.Register(t, "bob"), b.Register(t, "dave")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Moderated"}, &g)
	code := fedInvite(t, alice, g.text(t))
	ag := alice.Connect(-1)
	ag.Wait("GUILD_CREATE")
	ids := map[string]string{} // username on node A → ID there
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	dave.Must("POST", "/invites/"+url.PathEscape(code), nil, nil)
	for len(ids) < 2 {
		var add struct {
			User struct{ ID, Username string }
		}
		ag.Wait("GUILD_MEMBER_ADD").Decode(t, &add)
		ids[add.User.Username] = add.User.ID
	}
	bg, dg := bob.Connect(-1), dave.Connect(-1)
	bg.Wait("GUILD_CREATE")
	dg.Wait("GUILD_CREATE")

	// Bob asks for dave's ban on node B; the home node refuses it.
	daveOnB := memberID(t, bob, joined.GuildID, "dave")
	if st := bob.Do("PUT", "/guilds/"+joined.GuildID+"/bans/"+daveOnB, map[string]any{}, nil); st != 403 {
		t.Fatalf("bob's ban of dave: status %d, want 403", st)
	}

	// Alice bans bob@beta on node A: bob loses the guild on node B.
	chB := textChannels(t, bob, joined.GuildID)[0]
	alice.Must("PUT", "/guilds/"+g.ID+"/bans/"+ids["bob@beta"], map[string]any{"reason": "spam"}, nil)
	bg.Wait("GUILD_DELETE")
	if st := bob.Do("POST", "/channels/"+chB+"/messages", map[string]string{"content": "still here?"}, nil); st < 400 {
		t.Fatalf("a banned user posted: status %d", st)
	}
	// The ban is lifted on node A, set and lifted again at once: the changes reach federation
	// in order, the unban last, before each answer, so bob can join again from node B at once.
	for range 2 {
		alice.Must("DELETE", "/guilds/"+g.ID+"/bans/"+ids["bob@beta"], nil, nil)
		alice.Must("PUT", "/guilds/"+g.ID+"/bans/"+ids["bob@beta"], map[string]any{}, nil)
	}
	alice.Must("DELETE", "/guilds/"+g.ID+"/bans/"+ids["bob@beta"], nil, nil)
	if st := bob.Do("POST", "/invites/"+url.PathEscape(code), nil, nil); st != 200 {
		t.Fatalf("bob's join right after the unban: status %d, want 200", st)
	}
	bg.Wait("GUILD_CREATE")

	// Dave leaves on node B: node A sees it.
	dave.Must("DELETE", "/users/@me/guilds/"+joined.GuildID, nil, nil)
	ag.WaitFor("dave@beta leaving", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "GUILD_MEMBER_REMOVE" && strings.Contains(string(e.D), `"dave@beta"`) {
				return true
			}
		}
		return false
	})
}

// TestFederatedCatchUpAfterRestart: messages and changes made while a member node was down
// reach it after it restarts, in history, with their original authors and order.
func TestFederatedCatchUpAfterRestart(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob := a.Register(t, "alice"), b.Register(t, "bob")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Catch-up"}, &g)
	code := fedInvite(t, alice, g.text(t))
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	chans := textChannels(t, bob, joined.GuildID)
	var first message
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "before the outage"}, &first)
	history := func(c *testnode.Client) []message {
		var hist []message
		c.Must("GET", "/channels/"+chans[0]+"/messages", nil, &hist)
		return hist
	}
	for deadline := time.Now().Add(10 * time.Second); len(history(bob)) < 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first message never reached node B")
		}
	}

	b.Stop(t)
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "while you were away"}, nil)
	alice.Must("PATCH", "/channels/"+g.text(t)+"/messages/"+first.ID, map[string]string{"content": "before the outage (edited)"}, nil)

	opts := federated("beta")
	opts.DataDir = b.DataDir
	b2 := testnode.Start(t, opts)
	bob2 := b2.Client(t, bob.Token)
	var hist []message
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		hist = history(bob2)
		if len(hist) == 2 && hist[1].Content == "before the outage (edited)" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history on node B after its restart = %+v", hist)
		}
	}
	var newest struct {
		Content string
		Author  struct{ Username string }
	}
	bob2.Must("GET", "/channels/"+chans[0]+"/messages/"+hist[0].ID, nil, &newest)
	if newest.Content != "while you were away" || newest.Author.Username != "alice@alpha" {
		t.Fatalf("newest message on node B = %+v", newest)
	}
}

// TestFederatedChannelChanges: the home node's guild renames, channel renames, topics and
// deletions, and the guild's deletion reach the member nodes.
func TestFederatedChannelChanges(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob := a.Register(t, "alice"), b.Register(t, "bob")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Channels"}, &g)
	code := fedInvite(t, alice, g.text(t))
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	bg := bob.Connect(-1)
	bg.Wait("GUILD_CREATE")

	// The guild's default voice channel is federated with it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var chans []struct {
			Name string
			Type int
		}
		bob.Must("GET", "/guilds/"+joined.GuildID+"/channels", nil, &chans)
		if slices.ContainsFunc(chans, func(c struct {
			Name string
			Type int
		}) bool {
			return c.Type == 2 && c.Name == "General"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("channels on node B = %+v, want the voice channel General", chans)
		}
	}

	alice.Must("PATCH", "/guilds/"+g.ID, map[string]any{"name": "Renamed"}, nil)
	var gu struct{ Name string }
	for gu.Name != "Renamed" {
		bg.Wait("GUILD_UPDATE").Decode(t, &gu)
	}
	alice.Must("PATCH", "/channels/"+g.text(t), map[string]any{"name": "lobby", "topic": "say hi"}, nil)
	var upd struct{ ID, Name, Topic string }
	for upd.Name != "lobby" {
		bg.Wait("CHANNEL_UPDATE").Decode(t, &upd)
	}
	if upd.Topic != "say hi" {
		t.Fatalf("channel on node B = %+v", upd)
	}

	var news struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "news"}, &news)
	var created struct{ ID, Name string }
	for created.Name != "news" {
		bg.Wait("CHANNEL_CREATE").Decode(t, &created)
	}
	alice.Must("DELETE", "/channels/"+news.ID, nil, nil)
	bg.WaitFor("news deleted", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "CHANNEL_DELETE" && strings.Contains(string(e.D), `"`+created.ID+`"`) {
				return true
			}
		}
		return false
	})

	// The owner deletes the guild on node A: it goes away on node B too.
	alice.Must("DELETE", "/guilds/"+g.ID, nil, nil)
	bg.WaitFor("the guild deleted on node B", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "GUILD_DELETE" && strings.Contains(string(e.D), `"`+joined.GuildID+`"`) {
				return true
			}
		}
		return false
	})
	if st := bob.Do("GET", "/guilds/"+joined.GuildID, nil, nil); st != 404 {
		t.Fatalf("the deleted guild on node B: status %d, want 404", st)
	}
}

// TestFederatedPermissions: roles, member roles and channel overwrites made on the home node
// reach the member node, which enforces them; a remote member given BAN_MEMBERS there bans
// from their own node, and role changes asked for on a member node are refused.
func TestFederatedPermissions(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob, carol := a.Register(t, "alice"), b.Register(t, "bob"), b.Register(t, "carol")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Permissions"}, &g)
	// A role made before anyone joins: in the join snapshot, or right after it.
	var mods struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/roles", map[string]any{"name": "Mods", "permissions": "6", "color": 0x3366ff, "hoist": true}, &mods)
	code := fedInvite(t, alice, g.text(t))
	ag := alice.Connect(-1)
	ag.Wait("GUILD_CREATE")
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	carol.Must("POST", "/invites/"+url.PathEscape(code), nil, nil)
	ids := map[string]string{}
	for len(ids) < 2 {
		var add struct{ User struct{ ID, Username string } }
		ag.Wait("GUILD_MEMBER_ADD").Decode(t, &add)
		ids[add.User.Username] = add.User.ID
	}
	bg := bob.Connect(-1)
	bg.Wait("GUILD_CREATE")
	type role struct {
		ID, Name    string
		Permissions string
		Color       int
		Hoist       bool
	}
	modsOnB := ""
	for deadline := time.Now().Add(10 * time.Second); modsOnB == ""; time.Sleep(50 * time.Millisecond) {
		var roles []role
		bob.Must("GET", "/guilds/"+joined.GuildID+"/roles", nil, &roles)
		for _, r := range roles {
			if r.Name == "Mods" {
				if r.Permissions != "6" || r.Color != 0x3366ff || !r.Hoist {
					t.Fatalf("Mods on node B = %+v", r)
				}
				modsOnB = r.ID
			}
		}
		if modsOnB == "" && time.Now().After(deadline) {
			t.Fatalf("roles on node B = %+v, want Mods", roles)
		}
	}

	// Bob may not ban yet; alice gives him Mods on node A, and then he may, from node B.
	carolOnB := memberID(t, bob, joined.GuildID, "carol")
	if st := bob.Do("PUT", "/guilds/"+joined.GuildID+"/bans/"+carolOnB, map[string]any{}, nil); st != 403 {
		t.Fatalf("bob's ban before the role: status %d, want 403", st)
	}
	alice.Must("PUT", "/guilds/"+g.ID+"/members/"+ids["bob@beta"]+"/roles/"+mods.ID, nil, nil)
	bg.WaitFor("bob's role on node B", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "GUILD_MEMBER_UPDATE" && strings.Contains(string(e.D), `"roles":["`+modsOnB+`"]`) {
				return true
			}
		}
		return false
	})
	bob.Must("PUT", "/guilds/"+joined.GuildID+"/bans/"+carolOnB, map[string]any{"reason": "test"}, nil)
	ag.WaitFor("carol@beta banned on node A", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "GUILD_MEMBER_REMOVE" && strings.Contains(string(e.D), `"carol@beta"`) {
				return true
			}
		}
		return false
	})

	// An overwrite denying SEND_MESSAGES to @everyone in the text channel holds on node B.
	chans := textChannels(t, bob, joined.GuildID)
	if st := bob.Do("POST", "/channels/"+chans[0]+"/messages", map[string]string{"content": "before"}, nil); st != 200 {
		t.Fatalf("bob's message before the overwrite: status %d", st)
	}
	alice.Must("PUT", "/channels/"+g.text(t)+"/permissions/"+g.ID, map[string]any{"type": 0, "allow": "0", "deny": "2048"}, nil)
	bg.WaitFor("the overwrite on node B", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "CHANNEL_UPDATE" && strings.Contains(string(e.D), `"deny":"2048"`) {
				return true
			}
		}
		return false
	})
	if st := bob.Do("POST", "/channels/"+chans[0]+"/messages", map[string]string{"content": "after"}, nil); st != 403 {
		t.Fatalf("bob's message after the overwrite: status %d, want 403", st)
	}

	// Roles are the home node's: node B refuses changes; a deletion on node A reaches node B.
	if st := bob.Do("POST", "/guilds/"+joined.GuildID+"/roles", map[string]any{"name": "Mine"}, nil); st != 403 {
		t.Fatalf("role created on the member node: status %d, want 403", st)
	}
	alice.Must("DELETE", "/guilds/"+g.ID+"/roles/"+mods.ID, nil, nil)
	bg.WaitFor("Mods deleted on node B", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "GUILD_ROLE_DELETE" && strings.Contains(string(e.D), modsOnB) {
				return true
			}
		}
		return false
	})
}

// TestFederatedAttachmentsAndReplies: files and replies cross nodes; the bytes of a file stay
// on its origin node until a reader on another node downloads it, and then arrive verified.
func TestFederatedAttachmentsAndReplies(t *testing.T) {
	p := startPair(t, "Files")
	a, b, alice, bob, g, ag, bg := p.a, p.b, p.alice, p.bob, p.g, p.ag, p.bg
	chB := textChannels(t, bob, p.guildB)[0]

	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "send me the notes"}, nil)
	var question struct{ ID, Content string }
	for question.Content != "send me the notes" {
		bg.Wait("MESSAGE_CREATE").Decode(t, &question)
	}

	// Bob replies on node B with a file; node A shows the reply and serves the file, fetched
	// from node B when alice downloads it.
	notes := bytes.Repeat([]byte("federated notes\n"), 20000)
	payload := fmt.Sprintf(`{"content":"here","message_reference":{"message_id":%q}}`, question.ID)
	if st, m := upload(t, bob, chB, "notes.txt", notes, payload); st != 200 {
		t.Fatalf("bob's upload: %d %v", st, m)
	}
	type attachment struct{ Filename, URL string }
	var reply struct {
		Content           string
		Type              int
		Attachments       []attachment
		ReferencedMessage *struct{ Content string } `json:"referenced_message"`
	}
	for reply.Content != "here" {
		ag.Wait("MESSAGE_CREATE").Decode(t, &reply)
	}
	if reply.Type != 19 || reply.ReferencedMessage == nil || reply.ReferencedMessage.Content != "send me the notes" {
		t.Fatalf("the reply on node A = %+v", reply)
	}
	if len(reply.Attachments) != 1 || reply.Attachments[0].Filename != "notes.txt" {
		t.Fatalf("attachments on node A = %+v", reply.Attachments)
	}
	if got := download(t, a.URL+reply.Attachments[0].URL); !bytes.Equal(got, notes) {
		t.Fatalf("node A served %d bytes, want bob's %d", len(got), len(notes))
	}

	// A file without text, the other way.
	pic := []byte("not really a picture, but bytes all the same")
	if st, m := upload(t, alice, g.text(t), "pic.bin", pic, ""); st != 200 {
		t.Fatalf("alice's upload: %d %v", st, m)
	}
	var plain struct{ Attachments []attachment }
	for len(plain.Attachments) == 0 || plain.Attachments[0].Filename != "pic.bin" {
		bg.Wait("MESSAGE_CREATE").Decode(t, &plain)
	}
	if got := download(t, b.URL+plain.Attachments[0].URL); !bytes.Equal(got, pic) {
		t.Fatalf("node B served %.100q, want %q", got, pic)
	}
}

// download GETs url and returns the body of a 200 response.
func download(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %.200s", url, resp.StatusCode, err, body)
	}
	return body
}

// TestFederatedDirectMessages: a user opens a DM with a member of another node; the other
// node shows it to its user, and messages, edits and reactions cross both ways.
func TestFederatedDirectMessages(t *testing.T) {
	p := startPair(t, "Shared")
	alice, bob, ag, bg := p.alice, p.bob, p.ag, p.bg
	aliceOnB := memberID(t, bob, p.guildB, "alice@alpha")

	var dmB struct {
		ID, Type   any
		Recipients []struct{ Username string }
	}
	bob.Must("POST", "/users/@me/channels", map[string]string{"recipient_id": aliceOnB}, &dmB)
	var dmA struct {
		ID         string
		Type       int
		Recipients []struct{ Username string }
	}
	for dmA.Type != 1 {
		ag.Wait("CHANNEL_CREATE").Decode(t, &dmA)
	}
	if !slices.ContainsFunc(dmA.Recipients, func(r struct{ Username string }) bool { return r.Username == "bob@beta" }) {
		t.Fatalf("the DM on node A = %+v", dmA)
	}
	// Opening it again returns the same channel.
	var again struct{ ID any }
	bob.Must("POST", "/users/@me/channels", map[string]string{"recipient_id": aliceOnB}, &again)
	if again.ID != dmB.ID {
		t.Fatalf("second open = %v, first %v", again.ID, dmB.ID)
	}

	dmOnB := fmt.Sprint(dmB.ID)
	bob.Must("POST", "/channels/"+dmOnB+"/messages", map[string]string{"content": "psst, alice"}, nil)
	var got struct {
		ID, Content string
		ChannelID   string `json:"channel_id"`
	}
	for got.Content != "psst, alice" {
		ag.Wait("MESSAGE_CREATE").Decode(t, &got)
	}
	if got.ChannelID != dmA.ID {
		t.Fatalf("bob's DM arrived in channel %s, want %s", got.ChannelID, dmA.ID)
	}
	alice.Must("POST", "/channels/"+dmA.ID+"/messages", map[string]string{"content": "hi bob"}, nil)
	var back struct {
		Content   string
		ChannelID string `json:"channel_id"`
	}
	for back.Content != "hi bob" {
		bg.Wait("MESSAGE_CREATE").Decode(t, &back)
	}
	if back.ChannelID != dmOnB {
		t.Fatalf("alice's answer arrived in channel %s, want %s", back.ChannelID, dmOnB)
	}
	alice.Must("PUT", "/channels/"+dmA.ID+"/messages/"+got.ID+"/reactions/%F0%9F%91%8D/@me", nil, nil)
	bg.Wait("MESSAGE_REACTION_ADD")

	var history []struct{ Content string }
	bob.Must("GET", "/channels/"+dmOnB+"/messages?limit=10", nil, &history)
	if len(history) != 2 || history[0].Content != "hi bob" || history[1].Content != "psst, alice" {
		t.Fatalf("DM history on node B = %+v", history)
	}
}

// textChannels lists the IDs of a guild's text channels as c sees them.
func textChannels(t *testing.T, c *testnode.Client, guild string) []string {
	t.Helper()
	var all []struct {
		ID   string
		Type int
	}
	c.Must("GET", "/guilds/"+guild+"/channels", nil, &all)
	var out []string
	for _, ch := range all {
		if ch.Type == 0 {
			out = append(out, ch.ID)
		}
	}
	if len(out) == 0 {
		t.Fatalf("guild %s has no text channel: %+v", guild, all)
	}
	return out
}

// TestFederatedMediaFromAnotherMember: when the node a file was uploaded to is down, another
// node fetches its bytes from a member node that downloaded them before.
func TestFederatedMediaFromAnotherMember(t *testing.T) {
	a, b, c := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta")), testnode.Start(t, federated("gamma"))
	alice, bob, carol := a.Register(t, "alice"), b.Register(t, "bob"), c.Register(t, "carol")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Mirrors"}, &g)
	code := fedInvite(t, alice, g.text(t))
	var onB, onC struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &onB)
	carol.Must("POST", "/invites/"+url.PathEscape(code), nil, &onC)
	ag, cg := alice.Connect(-1), carol.Connect(-1)
	ag.Wait("GUILD_CREATE")
	cg.Wait("GUILD_CREATE")

	data := bytes.Repeat([]byte("mirrored bytes "), 4000)
	if st, m := upload(t, bob, textChannels(t, bob, onB.GuildID)[0], "mirror.bin", data, ""); st != 200 {
		t.Fatalf("bob's upload: %d %v", st, m)
	}
	type attached struct {
		Attachments []struct{ Filename, URL string }
	}
	wait := func(gw *testnode.Gateway) string {
		var m attached
		for len(m.Attachments) == 0 || m.Attachments[0].Filename != "mirror.bin" {
			gw.Wait("MESSAGE_CREATE").Decode(t, &m)
		}
		return m.Attachments[0].URL
	}
	onA, onCURL := wait(ag), wait(cg)
	if got := download(t, a.URL+onA); !bytes.Equal(got, data) { // node A fetches from node B
		t.Fatalf("node A served %d bytes, want %d", len(got), len(data))
	}
	b.Stop(t)
	if got := download(t, c.URL+onCURL); !bytes.Equal(got, data) { // node C: from node A
		t.Fatalf("node C served %d bytes, want %d", len(got), len(data))
	}
}

// fedPair is two federating nodes: alice's guild, homed on node A (alpha), with bob of node B
// (beta) in it, and both users' gateways past GUILD_CREATE.
type fedPair struct {
	a, b       *testnode.Node
	alice, bob *testnode.Client
	g          guild  // the guild as node A created it
	guildB     string // its ID on node B
	ag, bg     *testnode.Gateway
}

func startPair(t *testing.T, name string) *fedPair {
	t.Helper()
	p := &fedPair{a: testnode.Start(t, federated("alpha")), b: testnode.Start(t, federated("beta"))}
	p.alice, p.bob = p.a.Register(t, "alice"), p.b.Register(t, "bob")
	p.alice.Must("POST", "/guilds", map[string]string{"name": name}, &p.g)
	code := fedInvite(t, p.alice, p.g.text(t))
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	p.bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	p.guildB = joined.GuildID
	p.ag, p.bg = p.alice.Connect(-1), p.bob.Connect(-1)
	p.ag.Wait("GUILD_CREATE")
	p.bg.Wait("GUILD_CREATE")
	return p
}

// memberID returns the ID of the member named username in a guild, as c sees it.
func memberID(t *testing.T, c *testnode.Client, guild, username string) string {
	t.Helper()
	var members []struct{ User struct{ ID, Username string } }
	c.Must("GET", "/guilds/"+guild+"/members?limit=100", nil, &members)
	for _, m := range members {
		if m.User.Username == username {
			return m.User.ID
		}
	}
	t.Fatalf("no member %s in %+v", username, members)
	return ""
}

// TestFederatedProfiles: display names, avatars and nicknames of members cross nodes, also
// to a node that joins after they were set; an avatar's bytes come from the user's own node
// when another node's client asks for them.
func TestFederatedProfiles(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob := a.Register(t, "alice"), b.Register(t, "bob")
	raw, uri := pngDataURI(t, color.RGBA{10, 160, 90, 255})
	bob.Must("PATCH", "/users/@me", map[string]any{"global_name": "Bobby", "avatar": uri}, nil)
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Faces"}, &g)
	ag := alice.Connect(-1)
	ag.Wait("GUILD_CREATE")
	code := fedInvite(t, alice, g.text(t))
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	bg := bob.Connect(-1)
	bg.Wait("GUILD_CREATE")

	type member struct {
		Nick *string
		User struct {
			ID, Username string
			GlobalName   *string `json:"global_name"`
			Avatar       *string
		}
	}
	// Bob's profile, published when he joined, shows on node A.
	var m member
	for m.User.Avatar == nil || m.User.Username != "bob@beta" {
		ag.Wait("GUILD_MEMBER_UPDATE").Decode(t, &m)
	}
	if m.User.GlobalName == nil || *m.User.GlobalName != "Bobby" {
		t.Fatalf("bob on node A = %+v", m.User)
	}
	if got := download(t, a.URL+"/avatars/"+m.User.ID+"/"+*m.User.Avatar+".png"); !bytes.Equal(got, raw) {
		t.Fatalf("node A served %d avatar bytes, want bob's %d", len(got), len(raw))
	}

	// A nickname set on node B.
	bob.Must("PATCH", "/guilds/"+joined.GuildID+"/members/@me", map[string]any{"nick": "Bob the Builder"}, nil)
	for m.Nick == nil || *m.Nick != "Bob the Builder" {
		ag.Wait("GUILD_MEMBER_UPDATE").Decode(t, &m)
	}

	// Alice's new display name reaches node B the other way.
	alice.Must("PATCH", "/users/@me", map[string]any{"global_name": "Alice A."}, nil)
	var am member
	for am.User.GlobalName == nil || *am.User.GlobalName != "Alice A." {
		bg.Wait("GUILD_MEMBER_UPDATE").Decode(t, &am)
	}
	if am.User.Username != "alice@alpha" {
		t.Fatalf("alice on node B = %+v", am.User)
	}

	// A node that joins afterwards shows the profiles set before it joined.
	carol := testnode.Start(t, federated("gamma")).Register(t, "carol")
	cg := carol.Connect(-1)
	carol.Must("POST", "/invites/"+url.PathEscape(code), nil, nil)
	var gc struct{ Members []member }
	cg.Wait("GUILD_CREATE").Decode(t, &gc)
	shown := map[string]member{}
	for _, m := range gc.Members {
		shown[m.User.Username] = m
	}
	if m := shown["bob@beta"]; m.Nick == nil || *m.Nick != "Bob the Builder" || m.User.GlobalName == nil || *m.User.GlobalName != "Bobby" || m.User.Avatar == nil {
		t.Errorf("bob on node C, which joined after he set his profile: nick %v, %+v", m.Nick, m.User)
	}
	if m := shown["alice@alpha"]; m.User.GlobalName == nil || *m.User.GlobalName != "Alice A." {
		t.Errorf("alice on node C: %+v", m.User)
	}
}

// TestFederatedInviteLimits: a federation invite keeps the limits it was made with.
func TestFederatedInviteLimits(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob, dave := a.Register(t, "alice"), b.Register(t, "bob"), b.Register(t, "dave")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Limited"}, &g)
	fedInvite(t, alice, g.text(t)) // the guild is federated now
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{"max_uses": 1}, &inv)
	if !strings.HasPrefix(inv.Code, "hearth:") {
		t.Fatalf("code %q is not a federation invite", inv.Code)
	}
	bob.Must("POST", "/invites/"+url.PathEscape(inv.Code), nil, nil)
	if st := dave.Do("POST", "/invites/"+url.PathEscape(inv.Code), nil, nil); st != 404 {
		t.Fatalf("a second use of a one-use invite: status %d, want 404", st)
	}
}
