package server_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

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
	var found channelInfo
	waitUntil(t, func() string {
		var chans []channelInfo
		c.Must("GET", "/guilds/"+guild+"/channels", nil, &chans)
		for _, ch := range chans {
			if ch.Name == name {
				found = ch
				return ""
			}
		}
		return fmt.Sprintf("channels = %+v, want one named %s", chans, name)
	})
	return found
}

// TestFederatedRolesFromMemberNode: a remote member whom the home node gave MANAGE_ROLES
// creates a role, gives it to a member, sets a channel overwrite for it and deletes it from
// their own node; each change goes through the home node [FED-081] and shows there, and
// the home node's own changes still reach the member node. With the home node gone the
// change is refused with 503 and undone.
func TestFederatedRolesFromMemberNode(t *testing.T) {
	p := startPair(t, "Roles")
	guildB := "/guilds/" + p.guildB
	type role struct {
		ID, Name, Permissions string
		Position              int
	}
	rolesOn := func(c *testnode.Client, guild string) []role {
		var rs []role
		c.Must("GET", "/guilds/"+guild+"/roles", nil, &rs)
		return rs
	}
	waitRole := func(c *testnode.Client, guild, name string, present bool) role {
		t.Helper()
		var found role
		waitUntil(t, func() string {
			rs := rolesOn(c, guild)
			i := slices.IndexFunc(rs, func(r role) bool { return r.Name == name })
			if (i >= 0) != present {
				return fmt.Sprintf("roles = %+v; want %s present: %v", rs, name, present)
			}
			if i >= 0 {
				found = rs[i]
			}
			return ""
		})
		return found
	}
	rolesOf := func(c *testnode.Client, guild, member, want string) {
		t.Helper()
		waitUntil(t, func() string {
			var m struct{ Roles []string }
			c.Must("GET", "/guilds/"+guild+"/members/"+member, nil, &m)
			if !slices.Contains(m.Roles, want) {
				return fmt.Sprintf("member roles = %v, want %s among them", m.Roles, want)
			}
			return ""
		})
	}

	// Without MANAGE_ROLES, bob's node refuses at once.
	if st := p.bob.Do("POST", guildB+"/roles", map[string]any{"name": "Mine"}, nil); st != 403 {
		t.Fatalf("role created without MANAGE_ROLES: status %d, want 403", st)
	}
	// Alice gives bob@beta MANAGE_ROLES (1<<28) on node A.
	var admins struct{ ID string }
	p.alice.Must("POST", "/guilds/"+p.g.ID+"/roles", map[string]any{"name": "Admins", "permissions": "268435456"}, &admins)
	bobOnA := memberID(t, p.alice, p.g.ID, "bob@beta")
	p.alice.Must("PUT", "/guilds/"+p.g.ID+"/members/"+bobOnA+"/roles/"+admins.ID, nil, nil)
	adminsOnB := waitRole(p.bob, p.guildB, "Admins", true)
	bobOnB := memberID(t, p.bob, p.guildB, "bob")
	rolesOf(p.bob, p.guildB, bobOnB, adminsOnB.ID)

	// Bob creates a role on node B: it shows on node A.
	var made role
	p.bob.Must("POST", guildB+"/roles", map[string]any{"name": "FromBeta", "permissions": "0"}, &made)
	if made.Name != "FromBeta" {
		t.Fatalf("role made on node B = %+v", made)
	}
	onA := waitRole(p.alice, p.g.ID, "FromBeta", true)

	// Bob gives it to himself: node A shows bob@beta with it.
	p.bob.Must("PUT", guildB+"/members/"+bobOnB+"/roles/"+made.ID, nil, nil)
	rolesOf(p.alice, p.g.ID, bobOnA, onA.ID)

	// Bob denies SEND_MESSAGES to FromBeta in the text channel: node A holds the overwrite.
	textB := textChannels(t, p.bob, p.guildB)[0]
	p.bob.Must("PUT", "/channels/"+textB+"/permissions/"+made.ID, map[string]any{"type": 0, "allow": "0", "deny": "2048"}, nil)
	waitUntil(t, func() string {
		var ch struct {
			PermissionOverwrites []struct{ ID, Deny string } `json:"permission_overwrites"`
		}
		p.alice.Must("GET", "/channels/"+p.g.text(t), nil, &ch)
		if !slices.ContainsFunc(ch.PermissionOverwrites, func(o struct{ ID, Deny string }) bool { return o.ID == onA.ID && o.Deny == "2048" }) {
			return fmt.Sprintf("overwrites on node A = %+v, want FromBeta denied 2048", ch.PermissionOverwrites)
		}
		return ""
	})

	// The home node's own changes still reach node B.
	p.alice.Must("PATCH", "/guilds/"+p.g.ID+"/roles/"+admins.ID, map[string]any{"name": "Admins2"}, nil)
	waitRole(p.bob, p.guildB, "Admins2", true)

	// Bob deletes his role: it goes on node A.
	p.bob.Must("DELETE", guildB+"/roles/"+made.ID, nil, nil)
	waitRole(p.alice, p.g.ID, "FromBeta", false)

	// With the home node gone, a role cannot be made: 503, and node B does not keep it.
	p.a.Stop(t)
	if st := p.bob.Do("POST", guildB+"/roles", map[string]any{"name": "Orphan"}, nil); st != 503 {
		t.Fatalf("role created with the home node down: status %d, want 503", st)
	}
	if slices.ContainsFunc(rolesOn(p.bob, p.guildB), func(r role) bool { return r.Name == "Orphan" }) {
		t.Fatal("node B kept a role its home node never saw")
	}
}

// TestFederatedCategories: categories and the channels in them cross nodes [EVT-063], made
// on the home node or, by a member with MANAGE_CHANNELS, on a member node; moving a channel
// out of its category moves it on both.
func TestFederatedCategories(t *testing.T) {
	p := startPair(t, "Categories")
	type ch struct {
		ID, Name string
		Type     int
		ParentID *string `json:"parent_id"`
	}
	// find waits until c shows a channel named name in guild and returns it with its
	// category's name ("" for none).
	find := func(c *testnode.Client, guild, name string, wantParent string) ch {
		t.Helper()
		var found ch
		waitUntil(t, func() string {
			var chans []ch
			c.Must("GET", "/guilds/"+guild+"/channels", nil, &chans)
			byID := map[string]ch{}
			for _, x := range chans {
				byID[x.ID] = x
			}
			for _, x := range chans {
				parent := ""
				if x.ParentID != nil {
					parent = byID[*x.ParentID].Name
				}
				if x.Name == name && parent == wantParent {
					found = x
					return ""
				}
			}
			return fmt.Sprintf("channels = %+v, want %s in category %q", chans, name, wantParent)
		})
		return found
	}
	var cat, inside ch
	p.alice.Must("POST", "/guilds/"+p.g.ID+"/channels", map[string]any{"name": "Home Cat", "type": 4}, &cat)
	p.alice.Must("POST", "/guilds/"+p.g.ID+"/channels", map[string]any{"name": "inside", "parent_id": cat.ID}, &inside)
	if got := find(p.bob, p.guildB, "Home Cat", ""); got.Type != 4 {
		t.Fatalf("the category on node B = %+v", got)
	}
	find(p.bob, p.guildB, "inside", "Home Cat")

	p.alice.Must("PATCH", "/channels/"+inside.ID, map[string]any{"parent_id": nil}, nil)
	find(p.bob, p.guildB, "inside", "")

	// Bob, given MANAGE_CHANNELS, makes a category and a channel in it on node B.
	var admins struct{ ID string }
	p.alice.Must("POST", "/guilds/"+p.g.ID+"/roles", map[string]any{"name": "Admins", "permissions": "16"}, &admins)
	p.alice.Must("PUT", "/guilds/"+p.g.ID+"/members/"+memberID(t, p.alice, p.g.ID, "bob@beta")+"/roles/"+admins.ID, nil, nil)
	guildB := "/guilds/" + p.guildB
	var bcat ch
	waitUntil(t, func() string { // until bob's role has reached node B
		if st := p.bob.Do("POST", guildB+"/channels", map[string]any{"name": "Beta Cat", "type": 4}, &bcat); st/100 != 2 {
			return fmt.Sprintf("bob's category: status %d", st)
		}
		return ""
	})
	p.bob.Must("POST", guildB+"/channels", map[string]any{"name": "beta-inside", "parent_id": bcat.ID}, nil)
	find(p.alice, p.g.ID, "beta-inside", "Beta Cat")
	find(p.bob, p.guildB, "beta-inside", "Beta Cat")
}

// TestFederatedInviteRevoke: deleting a federation invite revokes it in the guild's
// federated state [FED-082], so no node admits anyone with it afterwards [FED-051]: one
// deleted on the home node, and one that a member of another node created and deleted from
// their own node (through the home node, as its creator [FED-042]).
func TestFederatedInviteRevoke(t *testing.T) {
	p := startPair(t, "Revokes")
	carol := p.b.Register(t, "carol")
	dave := p.a.Register(t, "dave")

	// Alice's invite, deleted on node A, no longer admits carol of node B.
	code := fedInvite(t, p.alice, p.g.text(t))
	p.alice.Must("DELETE", "/invites/"+url.PathEscape(code), nil, nil)
	if st := carol.Do("POST", "/invites/"+url.PathEscape(code), nil, nil); st != 404 {
		t.Fatalf("join with an invite revoked on the home node: status %d, want 404", st)
	}

	// Bob's invite, made and deleted on node B, no longer admits dave of node A.
	var chans []struct{ ID, Name string }
	p.bob.Must("GET", "/guilds/"+p.guildB+"/channels", nil, &chans)
	var textB string
	for _, c := range chans {
		if c.Name == "general" {
			textB = c.ID
		}
	}
	mine := fedInvite(t, p.bob, textB)
	p.bob.Must("DELETE", "/invites/"+url.PathEscape(mine), nil, nil)
	if st := dave.Do("POST", "/invites/"+url.PathEscape(mine), nil, nil); st != 404 {
		t.Fatalf("join with an invite its creator revoked on a member node: status %d, want 404", st)
	}

	// An invite still in force admits as before.
	live := fedInvite(t, p.alice, p.g.text(t))
	carol.Must("POST", "/invites/"+url.PathEscape(live), nil, nil)
}
