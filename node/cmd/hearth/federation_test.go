package main_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// procNode is a hearth process with federation on and one registered user.
type procNode struct {
	*proc
	token, guild, channel string // the user's token; the shared guild and its text channel here
}

func startProcNode(t *testing.T, bin, name, user string) *procNode {
	t.Helper()
	n := &procNode{proc: start(t, bin, t.TempDir(), freePort(t), "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--node-name", name)}
	var reg struct{ Token string }
	if st, err := n.call("POST", "/auth/register", "", map[string]string{"username": user, "password": "federated pw"}, &reg); err != nil || st != 201 {
		t.Fatalf("register on %s: %d %v\n%s", name, st, err, n.logs)
	}
	n.token = reg.Token
	return n
}

// do calls the node as its user and fails the test unless the status is 2xx.
func (n *procNode) do(t *testing.T, method, path string, body, out any) {
	t.Helper()
	if st, err := n.call(method, path, n.token, body, out); err != nil || st/100 != 2 {
		t.Fatalf("%s %s: %d %v\n%s", method, path, st, err, n.logs)
	}
}

// messages returns the contents of the newest messages of the node's channel, with the
// reactions on each.
func (n *procNode) messages(t *testing.T) map[string][]string {
	t.Helper()
	var msgs []struct {
		Content   string
		Reactions []struct{ Emoji struct{ Name string } }
	}
	n.call("GET", "/channels/"+n.channel+"/messages?limit=50", n.token, nil, &msgs)
	out := map[string][]string{}
	for _, m := range msgs {
		out[m.Content] = nil
		for _, r := range m.Reactions {
			out[m.Content] = append(out[m.Content], r.Emoji.Name)
		}
	}
	return out
}

// memberID returns the ID of the member called username in the node's copy of the guild.
func (n *procNode) memberID(username string) string {
	var members []struct{ User struct{ ID, Username string } }
	n.call("GET", "/guilds/"+n.guild+"/members?limit=100", n.token, nil, &members)
	for _, m := range members {
		if m.User.Username == username {
			return m.User.ID
		}
	}
	return ""
}

// TestThreeProcessesFederate runs the built binary as three nodes: users of nodes B and C
// join a guild of node A with the invite code A returned; messages, edits, deletes and
// reactions cross every way; a role given on A lets bob ban carol from node B.
func TestThreeProcessesFederate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	a, b, c := startProcNode(t, bin, "alpha", "alice"), startProcNode(t, bin, "beta", "bob"), startProcNode(t, bin, "gamma", "carol")
	var g struct {
		ID       string
		Channels []struct {
			ID   string
			Type int
		}
	}
	a.do(t, "POST", "/guilds", map[string]string{"name": "Three Processes"}, &g)
	a.guild = g.ID
	for _, ch := range g.Channels {
		if ch.Type == 0 {
			a.channel = ch.ID
		}
	}
	code := ""
	poll(t, "a federation invite", func() bool {
		var inv struct{ Code string }
		a.call("POST", "/channels/"+a.channel+"/invites", a.token, map[string]any{}, &inv)
		code = inv.Code
		return strings.HasPrefix(code, "hearth:")
	})
	for _, n := range []*procNode{b, c} {
		var joined struct {
			GuildID string `json:"guild_id"`
		}
		n.do(t, "POST", "/invites/"+url.PathEscape(code), nil, &joined)
		n.guild = joined.GuildID
		var chans []struct {
			ID   string
			Type int
		}
		n.do(t, "GET", "/guilds/"+n.guild+"/channels", nil, &chans)
		for _, ch := range chans {
			if ch.Type == 0 && n.channel == "" {
				n.channel = ch.ID
			}
		}
		if n.channel == "" {
			t.Fatalf("no text channel: %+v\n%s", chans, n.logs)
		}
	}

	// One message from each node reaches every node.
	ids := map[string]string{} // content → ID on its own node
	for i, n := range []*procNode{a, b, c} {
		var m struct{ ID string }
		content := fmt.Sprintf("hello from node %d", i)
		n.do(t, "POST", "/channels/"+n.channel+"/messages", map[string]string{"content": content}, &m)
		ids[content] = m.ID
	}
	everywhere := func(what string, ok func(map[string][]string) bool) {
		t.Helper()
		for _, n := range []*procNode{a, b, c} {
			poll(t, what+" on "+n.base, func() bool { return ok(n.messages(t)) })
		}
	}
	everywhere("the three messages", func(m map[string][]string) bool {
		_, x := m["hello from node 0"]
		_, y := m["hello from node 1"]
		_, z := m["hello from node 2"]
		return x && y && z
	})

	// Bob edits his message, carol deletes hers, alice reacts to bob's.
	b.do(t, "PATCH", "/channels/"+b.channel+"/messages/"+ids["hello from node 1"], map[string]string{"content": "edited on node 1"}, nil)
	c.do(t, "DELETE", "/channels/"+c.channel+"/messages/"+ids["hello from node 2"], nil, nil)
	everywhere("the edit and the delete", func(m map[string][]string) bool {
		_, edited := m["edited on node 1"]
		_, deleted := m["hello from node 2"]
		return edited && !deleted
	})
	var onA []struct{ ID, Content string }
	a.do(t, "GET", "/channels/"+a.channel+"/messages?limit=50", nil, &onA)
	for _, m := range onA {
		if m.Content == "edited on node 1" {
			a.do(t, "PUT", "/channels/"+a.channel+"/messages/"+m.ID+"/reactions/"+url.PathEscape("👍")+"/@me", nil, nil)
		}
	}
	everywhere("alice's reaction", func(m map[string][]string) bool { return slices.Contains(m["edited on node 1"], "👍") })

	// Bob may not ban carol until alice gives him a role with BAN_MEMBERS on node A.
	carolOnB := b.memberID("carol@gamma")
	if st, _ := b.call("PUT", "/guilds/"+b.guild+"/bans/"+carolOnB, b.token, map[string]any{}, nil); st != 403 {
		t.Fatalf("bob's ban without the permission: status %d, want 403", st)
	}
	var mods struct{ ID string }
	a.do(t, "POST", "/guilds/"+a.guild+"/roles", map[string]any{"name": "Mods", "permissions": "4"}, &mods)
	poll(t, "bob@beta on node A", func() bool { return a.memberID("bob@beta") != "" })
	a.do(t, "PUT", "/guilds/"+a.guild+"/members/"+a.memberID("bob@beta")+"/roles/"+mods.ID, nil, nil)
	poll(t, "bob's ban of carol from node B", func() bool {
		st, _ := b.call("PUT", "/guilds/"+b.guild+"/bans/"+carolOnB, b.token, map[string]any{"reason": "test"}, nil)
		return st == 204 || st == 200
	})
	poll(t, "carol out of the guild on node C", func() bool {
		st, _ := c.call("GET", "/guilds/"+c.guild, c.token, nil, nil)
		return st == 403 || st == 404
	})
	poll(t, "carol out of the member list on node A", func() bool { return a.memberID("carol@gamma") == "" })
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
