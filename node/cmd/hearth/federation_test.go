package main_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestTwoProcessesFederate runs the built binary as two nodes: a user of node B joins a
// guild of node A with the invite code A returned, and one message crosses each way.
func TestTwoProcessesFederate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	a := start(t, bin, t.TempDir(), freePort(t), "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--node-name", "alpha")
	b := start(t, bin, t.TempDir(), freePort(t), "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--node-name", "beta")
	var alice, bob struct{ Token string }
	a.call("POST", "/auth/register", "", map[string]string{"username": "alice", "password": "federated pw"}, &alice)
	b.call("POST", "/auth/register", "", map[string]string{"username": "bob", "password": "federated pw"}, &bob)
	var g struct {
		Channels []struct {
			ID   string
			Type int
		}
	}
	a.call("POST", "/guilds", alice.Token, map[string]string{"name": "Two Processes"}, &g)
	var ch string
	for _, c := range g.Channels {
		if c.Type == 0 {
			ch = c.ID
		}
	}
	code := ""
	poll(t, "a federation invite", func() bool {
		var inv struct{ Code string }
		a.call("POST", "/channels/"+ch+"/invites", alice.Token, map[string]any{}, &inv)
		code = inv.Code
		return strings.HasPrefix(code, "hearth:")
	})
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	if st, err := b.call("POST", "/invites/"+url.PathEscape(code), bob.Token, nil, &joined); err != nil || st != 200 {
		t.Fatalf("join on node B: %d %v\n%s", st, err, b.logs)
	}
	var chans []struct {
		ID   string
		Type int
	}
	b.call("GET", "/guilds/"+joined.GuildID+"/channels", bob.Token, nil, &chans)
	chB := ""
	for _, c := range chans {
		if c.Type == 0 && chB == "" {
			chB = c.ID
		}
	}
	if chB == "" {
		t.Fatalf("no text channel on node B: %+v", chans)
	}
	a.call("POST", "/channels/"+ch+"/messages", alice.Token, map[string]string{"content": "from process A"}, nil)
	b.call("POST", "/channels/"+chB+"/messages", bob.Token, map[string]string{"content": "from process B"}, nil)
	has := func(p *proc, token, channel, content string) bool {
		var msgs []struct{ Content string }
		p.call("GET", "/channels/"+channel+"/messages", token, nil, &msgs)
		for _, m := range msgs {
			if m.Content == content {
				return true
			}
		}
		return false
	}
	poll(t, "A's message on B", func() bool { return has(b, bob.Token, chB, "from process A") })
	poll(t, "B's message on A", func() bool { return has(a, alice.Token, ch, "from process B") })
}

// poll waits up to 15 s for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
