package fed

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/guild"
	"github.com/libp2p/go-libp2p/core/peer"
)

func send(t testing.TB, n *tnode, g, ch event.ID, content string) *event.Event {
	t.Helper()
	ev, err := n.svc.Publish(ctx(t), g, ch, n.name, event.KindMessageCreate, &event.MessageCreate{Content: content})
	if err != nil {
		t.Fatalf("%s publish: %v", n.name, err)
	}
	return ev
}

// TestInviteJoinChat: Alice creates a guild and an invite, Bob and Carol
// join from their own nodes, and all three chat in real time.
func TestInviteJoinChat(t *testing.T) {
	alice, bob, carol := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	g, ch := guildOf(t, alice, bob, carol)

	st, _ := bob.svc.Guild(g)
	if st.Info().Home != alice.svc.Node() || !st.IsMember(event.User{Node: bob.svc.Node(), Name: "bob"}) {
		t.Fatal("bob's state does not show him as a member of alice's guild")
	}
	for i, n := range []*tnode{alice, bob, carol} {
		send(t, n, g, ch, fmt.Sprintf("hello from %s %d", n.name, i))
	}
	waitFor(t, 10*time.Second, func() string { return converged(ch, 3, alice, bob, carol) })

	// Edit and delete rules travel too: Bob may edit his own message only.
	bobs := send(t, bob, g, ch, "typo")
	waitFor(t, 10*time.Second, func() string { return converged(ch, 4, alice, bob, carol) })
	if _, err := carol.svc.Publish(ctx(t), g, ch, "carol", event.KindMessageEdit, &event.MessageEdit{Target: bobs.ID, Content: "x"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("carol edited bob's message: %v", err)
	}
	if _, err := bob.svc.Publish(ctx(t), g, ch, "bob", event.KindMessageEdit, &event.MessageEdit{Target: bobs.ID, Content: "fixed"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*tnode{alice, bob, carol} {
		if d := n.duplicates(); len(d) > 0 {
			t.Errorf("%s got %d events twice", n.name, len(d))
		}
	}
}

// TestModerationRequest: a remote moderator's ban goes to the home node as a
// request and comes back to everyone as a state event; the banned user's
// node can no longer post.
func TestModerationRequest(t *testing.T) {
	alice, bob, carol := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	g, ch := guildOf(t, alice, bob, carol)
	bobU := event.User{Node: bob.svc.Node(), Name: "bob"}
	carolU := event.User{Node: carol.svc.Node(), Name: "carol"}

	// Bob is not a moderator yet: forbidden.
	if _, err := bob.svc.Moderate(ctx(t), g, "bob", event.KindBanAdd, "", &event.BanAdd{User: carolU}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("unprivileged ban: %v", err)
	}
	mod, err := alice.svc.Moderate(ctx(t), g, "alice", event.KindRoleCreate, "", &event.RoleCreate{Name: "mod", Permissions: 1 << 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.svc.Moderate(ctx(t), g, "alice", event.KindMemberRoles, "", &event.MemberRoles{User: bobU, Roles: []event.ID{mod}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		st, _ := bob.svc.Guild(g)
		if m, _ := st.Member(bobU); len(m.Roles) != 1 {
			return "bob's node has not seen his role"
		}
		return ""
	})
	if _, err := bob.svc.Moderate(ctx(t), g, "bob", event.KindBanAdd, "", &event.BanAdd{User: carolU, Reason: "spam"}); err != nil {
		t.Fatalf("moderator ban: %v", err)
	}
	waitFor(t, 10*time.Second, func() string {
		for _, n := range []*tnode{alice, bob, carol} {
			if st, _ := n.svc.Guild(g); !st.Banned(carolU) {
				return n.name + " has not seen the ban"
			}
		}
		return ""
	})
	if _, err := carol.svc.Publish(ctx(t), g, ch, "carol", event.KindMessageCreate, &event.MessageCreate{Content: "still here?"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("banned user published: %v", err)
	}
}

// TestPartitionHeal cuts Bob off while everyone keeps writing, then heals:
// every node ends with the same messages, none lost, none twice.
func TestPartitionHeal(t *testing.T) {
	alice, bob, carol := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	g, ch := guildOf(t, alice, bob, carol)

	partition := func() {
		bob.gater.block(alice.svc.ID(), carol.svc.ID())
		alice.gater.block(bob.svc.ID())
		carol.gater.block(bob.svc.ID())
		for _, p := range []peer.ID{alice.svc.ID(), carol.svc.ID()} {
			_ = bob.svc.Host().Network().ClosePeer(p)
		}
	}
	partition()
	waitFor(t, 5*time.Second, func() string {
		if len(bob.svc.Host().Network().Peers()) != 0 {
			return "bob still connected"
		}
		return ""
	})
	const perNode = 15
	for i := range perNode {
		send(t, alice, g, ch, fmt.Sprintf("alice %02d", i))
		send(t, bob, g, ch, fmt.Sprintf("bob %02d", i))
		send(t, carol, g, ch, fmt.Sprintf("carol %02d", i))
	}
	waitFor(t, 10*time.Second, func() string { return converged(ch, 2*perNode, alice, carol) })
	if got := len(bob.messages(ch)); got != perNode {
		t.Fatalf("bob saw %d messages during the partition, want only his %d", got, perNode)
	}

	for _, n := range []*tnode{alice, bob, carol} {
		n.gater.unblockAll()
	}
	waitFor(t, 20*time.Second, func() string { return converged(ch, 3*perNode, alice, bob, carol) })
	for _, n := range []*tnode{alice, bob, carol} {
		if d := n.duplicates(); len(d) > 0 {
			t.Errorf("%s delivered %d events twice", n.name, len(d))
		}
	}
	// Vectors agree too.
	va, _ := alice.svc.Vector(g)
	for _, n := range []*tnode{bob, carol} {
		v, _ := n.svc.Vector(g)
		for o, s := range va {
			if v[o] != s {
				t.Errorf("%s vector[%s] = %d, alice has %d", n.name, o, v[o], s)
			}
		}
	}
}

// TestHomeDown: with the home node gone, the other members keep chatting;
// when it returns it catches up.
func TestHomeDown(t *testing.T) {
	alice, bob, carol := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	g, ch := guildOf(t, alice, bob, carol)
	waitFor(t, 10*time.Second, func() string {
		if bob.svc.Host().Network().Connectedness(carol.svc.ID()) != 1 {
			return "bob and carol are not connected directly"
		}
		return ""
	})
	alice.stop()
	for i := range 5 {
		send(t, bob, g, ch, fmt.Sprintf("bob %d", i))
		send(t, carol, g, ch, fmt.Sprintf("carol %d", i))
	}
	waitFor(t, 10*time.Second, func() string { return converged(ch, 10, bob, carol) })

	// Alice restarts from her data dir: same identity, same guild, and she
	// fetches what she missed.
	alice.start()
	alice.mu.Lock()
	alice.events, alice.seen = nil, map[event.ID]int{}
	alice.mu.Unlock()
	waitFor(t, 20*time.Second, func() string {
		if got := len(alice.messages(ch)); got != 10 {
			return fmt.Sprintf("alice has %d of 10 messages after restart", got)
		}
		return ""
	})
}

// TestHistoryBackfill: a node that joined late fetches older history on
// demand.
func TestHistoryBackfill(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, err := alice.svc.CreateGuild(ctx(t), "alice", "g")
	if err != nil {
		t.Fatal(err)
	}
	ch := general(t, alice, g)
	for i := range 120 {
		send(t, alice, g, ch, fmt.Sprintf("old %03d", i))
	}
	inv, err := alice.svc.CreateInvite(ctx(t), g, "alice", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := bob.svc.Join(ctx(t), inv, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Recent) != RecentPerChannel || len(snap.Channels) != 1 || len(snap.Members) != 2 {
		t.Fatalf("snapshot: %d recent, %d channels, %d members", len(snap.Recent), len(snap.Channels), len(snap.Members))
	}
	oldest := snap.Recent[0].TS
	page, err := bob.svc.History(ctx(t), g, ch, oldest, 50)
	if err != nil || len(page) != 50 {
		t.Fatalf("history page: %d %v", len(page), err)
	}
	if page[0].TS >= oldest || page[0].TS < page[49].TS {
		t.Fatal("history is not older-than-before, newest first")
	}
	// The invite had one use.
	if _, err := startNode(t, "carol").svc.Join(ctx(t), inv, "carol"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("used-up invite: %v", err)
	}
}

// TestPresence: presence crosses nodes in batches and expires when the
// publishing node vanishes.
func TestPresence(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, _ := guildOf(t, alice, bob)
	_ = g
	bobU := event.User{Node: bob.svc.Node(), Name: "bob"}
	// A batch published before the ephemeral topic's mesh has formed reaches
	// nobody (and would wait for the 10 s republish): set the status again
	// on every poll until it crosses.
	waitFor(t, 10*time.Second, func() string {
		bob.svc.SetPresence("bob", event.StatusOnline)
		alice.mu.Lock()
		defer alice.mu.Unlock()
		if alice.pres[bobU] != event.StatusOnline {
			return "alice does not see bob online"
		}
		return ""
	})
	waitFor(t, 10*time.Second, func() string {
		bob.svc.SetPresence("bob", event.StatusIdle)
		alice.mu.Lock()
		defer alice.mu.Unlock()
		if alice.pres[bobU] != event.StatusIdle {
			return "alice does not see bob idle"
		}
		return ""
	})
	// Expiry is exercised with a fake clock in TestPresenceExpiry.
}

// TestMemberRestartCatchUp: Bob's node goes down while the others chat and
// catches up when it returns, with nothing lost and nothing twice.
func TestMemberRestartCatchUp(t *testing.T) {
	alice, bob, carol := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	g, ch := guildOf(t, alice, bob, carol)
	send(t, bob, g, ch, "before")
	waitFor(t, 10*time.Second, func() string { return converged(ch, 1, alice, bob, carol) })
	bob.stop()
	for i := range 20 {
		send(t, alice, g, ch, fmt.Sprintf("alice %02d", i))
		send(t, carol, g, ch, fmt.Sprintf("carol %02d", i))
	}
	bob.start()
	waitFor(t, 20*time.Second, func() string { return converged(ch, 41, alice, bob, carol) })
	if d := bob.duplicates(); len(d) > 0 {
		t.Fatalf("bob delivered %d events twice across the restart", len(d))
	}
	// Bob keeps writing after the restart with the next sequence number.
	send(t, bob, g, ch, "after")
	waitFor(t, 10*time.Second, func() string { return converged(ch, 42, alice, bob, carol) })
}

// TestJoinOnHomeNode: a user of the home node joins with an invite without a stream
// [FED-056]: before, the user's messages are forbidden; after, they reach the other nodes;
// a banned local user cannot join.
func TestJoinOnHomeNode(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, ch := guildOf(t, alice, bob)
	if _, err := alice.svc.Publish(ctx(t), g, ch, "dave", event.KindMessageCreate, &event.MessageCreate{Content: "early"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a non-member's message: %v, want ErrForbidden", err)
	}
	inv, err := alice.svc.CreateInvite(ctx(t), g, "alice", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := alice.svc.Join(ctx(t), inv, "dave")
	if err != nil {
		t.Fatal(err)
	}
	dave := event.User{Node: alice.svc.Node(), Name: "dave"}
	if snap.Info.ID != g || !slices.ContainsFunc(snap.Members, func(m guild.Member) bool { return m.User == dave }) {
		t.Fatalf("snapshot %+v does not show dave as a member", snap.Info)
	}
	if _, err := alice.svc.Join(ctx(t), inv, "dave"); err != nil {
		t.Fatalf("joining again: %v", err)
	}
	send(t, alice, g, ch, "hi from dave's node")
	if _, err := alice.svc.Publish(ctx(t), g, ch, "dave", event.KindMessageCreate, &event.MessageCreate{Content: "dave here"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		if !slices.Contains(bob.messages(ch), "dave here") {
			return "dave's message has not reached bob"
		}
		return ""
	})
	if _, err := alice.svc.Moderate(ctx(t), g, "alice", event.KindBanAdd, "", &event.BanAdd{User: event.User{Node: alice.svc.Node(), Name: "eve"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.svc.Join(ctx(t), inv, "eve"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a banned user's join: %v, want ErrForbidden", err)
	}
}

// TestIssue: the home node issues state changes its own permission model authorised, for
// actors the federated state gives no permission; other nodes cannot.
func TestIssue(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, _ := guildOf(t, alice, bob)
	bobU := event.User{Node: bob.svc.Node(), Name: "bob"}
	if _, err := alice.svc.Moderate(ctx(t), g, "dave", event.KindBanAdd, "", &event.BanAdd{User: bobU}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Moderate by a non-member: %v, want ErrForbidden", err)
	}
	if _, err := bob.svc.Issue(ctx(t), g, "bob", event.KindBanAdd, "", &event.BanAdd{User: bobU}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Issue off the home node: %v, want ErrForbidden", err)
	}
	if _, err := alice.svc.Issue(ctx(t), g, "dave", event.KindBanAdd, "", &event.BanAdd{User: bobU, Reason: "spam"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		if st, _ := bob.svc.Guild(g); !st.Banned(bobU) {
			return "bob's node has not seen the ban"
		}
		return ""
	})
}

// TestJoinTail: a member node joining a further user sends its state head and
// gets only the state events above it [FED-068], and the user is a member
// everywhere; a node new to the guild still gets the whole chain [FED-053].
func TestJoinTail(t *testing.T) {
	alice, bob, carol := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	g, _ := guildOf(t, alice, bob, carol)
	rt := alice.svc.guild(g)
	head := rt.st.Info().SN
	if got := alice.svc.joinResponse(rt, bob.svc.ID(), 0).State; uint64(len(got)) != head {
		t.Fatalf("a join without have-sn carries %d state events, want all %d", len(got), head)
	}
	tail := alice.svc.joinResponse(rt, bob.svc.ID(), head-2).State
	if len(tail) != 2 {
		t.Fatalf("a join with have-sn %d carries %d state events, want 2", head-2, len(tail))
	}
	if ev, err := event.Decode(tail[0]); err != nil || ev.SN != head-1 {
		t.Fatalf("the tail starts at %v (%v), want sn %d", ev, err, head-1)
	}

	inv, err := alice.svc.CreateInvite(ctx(t), g, "alice", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.svc.Join(ctx(t), inv, "bob2"); err != nil {
		t.Fatal(err)
	}
	bob2 := event.User{Node: bob.svc.Node(), Name: "bob2"}
	waitFor(t, 10*time.Second, func() string {
		for _, n := range []*tnode{alice, bob, carol} {
			st, _ := n.svc.Guild(g)
			if !st.IsMember(bob2) {
				return n.name + " does not show bob2 as a member"
			}
			if sn := st.Info().SN; sn != rt.st.Info().SN {
				return fmt.Sprintf("%s is at sn %d, alice at %d", n.name, sn, rt.st.Info().SN)
			}
		}
		return ""
	})
}
