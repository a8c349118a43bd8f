package server_test

import (
	"testing"

	"github.com/hearth-chat/hearth/node/testnode"
)

// TestRestartKeepsEverything stops a node and starts another on the same data directory:
// accounts, tokens, guilds, roles, members, messages, read states and invites come back.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	n := testnode.Start(t, testnode.Options{DataDir: dir})
	alice, bob := n.Register(t, "alice"), n.Register(t, "bob")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Persistent"}, &g)
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{"max_age": 0}, &inv)
	bob.Must("POST", "/invites/"+inv.Code, nil, nil)
	var m message
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "hey <@" + bob.UserID + ">"}, &m)
	n.Stop(t)

	n2 := testnode.Start(t, testnode.Options{DataDir: dir})
	bob2 := n2.Client(t, bob.Token)
	var hist []message
	bob2.Must("GET", "/channels/"+g.text(t)+"/messages", nil, &hist)
	if len(hist) != 1 || hist[0].ID != m.ID {
		t.Fatalf("history after restart = %+v", hist)
	}
	gw := bob2.Connect(-1)
	var ready struct {
		ReadState struct {
			Entries []struct {
				ID           string `json:"id"`
				MentionCount int    `json:"mention_count"`
			} `json:"entries"`
		} `json:"read_state"`
	}
	gw.Wait("GUILD_CREATE")
	// READY was consumed by Connect; read states are checked through a second session.
	c := testnode.Dial(t, n2, "")
	c.Send(map[string]any{"op": 2, "d": map[string]any{"token": bob.Token}})
	c.Wait("READY").Decode(t, &ready)
	if len(ready.ReadState.Entries) != 1 || ready.ReadState.Entries[0].MentionCount != 1 {
		t.Fatalf("read state after restart = %+v", ready.ReadState)
	}
	bob2.Must("POST", "/channels/"+g.text(t)+"/messages/"+m.ID+"/ack", map[string]any{}, nil)
	var info struct{ Uses int }
	bob2.Must("GET", "/invites/"+inv.Code, nil, &info)
	if info.Uses != 1 {
		t.Fatalf("invite uses after restart = %d", info.Uses)
	}
	// New IDs stay above old ones.
	var m2 message
	bob2.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "after"}, &m2)
	if m2.ID <= m.ID && len(m2.ID) <= len(m.ID) {
		t.Fatalf("new ID %s not above %s", m2.ID, m.ID)
	}
}
