package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/node/testnode"
)

// TestFederatedAdminFromMemberNode: a remote member whom the home node gave MANAGE_CHANNELS
// and MANAGE_GUILD creates, changes and deletes channels and renames the guild from their own
// node. Each change goes through the home node [FED-040] [FED-080], so it shows on both nodes
// alike, once; without the role the member node answers 403 and nothing moves.
func TestFederatedAdminFromMemberNode(t *testing.T) {
	p := startPair(t, "Admins")
	guildB := "/guilds/" + p.guildB

	// Without a role, bob's node refuses at once.
	if st := p.bob.Do("POST", guildB+"/channels", map[string]any{"name": "mine"}, nil); st != 403 {
		t.Fatalf("channel created without MANAGE_CHANNELS: status %d, want 403", st)
	}

	// Alice gives bob@beta a role with MANAGE_CHANNELS (16) and MANAGE_GUILD (32) on node A.
	var admins struct{ ID string }
	p.alice.Must("POST", "/guilds/"+p.g.ID+"/roles", map[string]any{"name": "Admins", "permissions": "48"}, &admins)
	bobOnA := memberID(t, p.alice, p.g.ID, "bob@beta")
	p.alice.Must("PUT", "/guilds/"+p.g.ID+"/members/"+bobOnA+"/roles/"+admins.ID, nil, nil)
	p.bg.WaitFor("bob's role on node B", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "GUILD_MEMBER_UPDATE" && strings.Contains(string(e.D), `"username":"bob"`) && !strings.Contains(string(e.D), `"roles":[]`) {
				return true
			}
		}
		return false
	})

	// Bob creates a channel on node B: the answer is the channel, and node A shows it too.
	var made struct{ ID, Name, Topic string }
	p.bob.Must("POST", guildB+"/channels", map[string]any{"name": "From Beta", "topic": "made on a member node"}, &made)
	if made.Name != "from-beta" || made.Topic != "made on a member node" {
		t.Fatalf("channel made on node B = %+v", made)
	}
	onA := waitChannel(t, p.alice, p.g.ID, "from-beta")
	if onA.Topic != "made on a member node" {
		t.Fatalf("channel on node A = %+v", onA)
	}
	p.bob.Must("POST", "/channels/"+made.ID+"/messages", map[string]string{"content": "first in from-beta"}, nil)

	// Bob renames it: both nodes show the new name, and node B dispatched one CHANNEL_UPDATE.
	p.bob.Must("PATCH", "/channels/"+made.ID, map[string]any{"name": "renamed-on-beta"}, nil)
	waitChannel(t, p.alice, p.g.ID, "renamed-on-beta")
	var got struct{ Name string }
	p.bob.Must("GET", "/channels/"+made.ID, nil, &got)
	if got.Name != "renamed-on-beta" {
		t.Fatalf("channel on node B after the rename = %+v", got)
	}

	// Bob renames the guild from node B.
	p.bob.Must("PATCH", guildB, map[string]any{"name": "Renamed from Beta"}, nil)
	p.ag.WaitFor("the new name on node A", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "GUILD_UPDATE" && strings.Contains(string(e.D), `"Renamed from Beta"`) {
				return true
			}
		}
		return false
	})

	// Bob deletes the channel: it goes on both nodes.
	p.bob.Must("DELETE", "/channels/"+made.ID, nil, nil)
	if st := p.bob.Do("GET", "/channels/"+made.ID, nil, nil); st != 404 {
		t.Fatalf("deleted channel on node B: status %d, want 404", st)
	}
	p.ag.WaitFor("the channel deleted on node A", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			if e.T == "CHANNEL_DELETE" && strings.Contains(string(e.D), `"`+onA.ID+`"`) {
				return true
			}
		}
		return false
	})

	// Each change reached node B's clients once: the state events, arriving after node B
	// applied the changes, found nothing left to do. A message from the home node, gossiped
	// after them, shows they have arrived.
	p.alice.Must("POST", "/channels/"+p.g.text(t)+"/messages", map[string]string{"content": "sentinel"}, nil)
	counts := map[string]int{}
	p.bg.WaitFor("the sentinel on node B", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		clear(counts)
		seen := false
		for _, e := range events {
			switch {
			case e.T == "MESSAGE_CREATE" && strings.Contains(string(e.D), `"sentinel"`):
				seen = true
			case e.T == "CHANNEL_UPDATE" && strings.Contains(string(e.D), `"renamed-on-beta"`),
				e.T == "GUILD_UPDATE" && strings.Contains(string(e.D), `"Renamed from Beta"`),
				e.T == "CHANNEL_CREATE" && strings.Contains(string(e.D), `"from-beta"`),
				e.T == "CHANNEL_DELETE" && strings.Contains(string(e.D), `"`+made.ID+`"`):
				counts[e.T]++
			}
		}
		return seen
	})
	for _, typ := range []string{"CHANNEL_CREATE", "CHANNEL_UPDATE", "GUILD_UPDATE", "CHANNEL_DELETE"} {
		if counts[typ] != 1 {
			t.Errorf("node B dispatched %s %d times, want once (all: %v)", typ, counts[typ], counts)
		}
	}

	// With the home node gone, a change cannot be made: 503, and nothing changes on node B.
	p.a.Stop(t)
	if st := p.bob.Do("POST", guildB+"/channels", map[string]any{"name": "orphan"}, nil); st != 503 {
		t.Fatalf("channel created with the home node down: status %d, want 503", st)
	}
	var names []struct{ Name string }
	p.bob.Must("GET", guildB+"/channels", nil, &names)
	for _, c := range names {
		if c.Name == "orphan" {
			t.Fatal("node B created a channel its home node never saw")
		}
	}
}

type channelInfo struct{ ID, Name, Topic string }

// waitChannel waits until c sees a channel named name in guild, and returns it.
func waitChannel(t *testing.T, c *testnode.Client, guild, name string) channelInfo {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var chans []channelInfo
		c.Must("GET", "/guilds/"+guild+"/channels", nil, &chans)
		for _, ch := range chans {
			if ch.Name == name {
				return ch
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("channels = %+v, want one named %s", chans, name)
		}
	}
}
