package fed

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/guild"
	"github.com/hearth-chat/hearth/federation/proto"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// bigGuild gives alice's guild n more members, users of one node that never
// connects, with one state event each.
func bigGuild(t testing.TB, alice *tnode, g event.ID, n int) {
	t.Helper()
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	far, _ := event.NewSigner(k)
	rt := alice.svc.guild(g)
	for i := range n {
		u := event.User{Node: far.Origin(), Name: fmt.Sprintf("u%d", i)}
		if _, err := alice.svc.issue(ctx(t), rt, u, event.KindMemberJoin, "", &event.MemberJoin{User: u, NodeName: "far"}); err != nil {
			t.Fatal(err)
		}
	}
}

func responseSize(t testing.TB, r *proto.JoinResponse) int {
	b, err := event.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// TestSnapshotJoin: a node new to a guild of 200 members joins from a signed
// snapshot [FED-102] [FED-103]: the answer is a fraction of the chain's size,
// the state is the home node's, later state events apply, messages of a member
// who left before the snapshot validate, catch-up closes the vector without
// delivering the state events the snapshot stands for, and a restart starts
// from the snapshot again [FED-104].
func TestSnapshotJoin(t *testing.T) {
	alice, carol, bob := startNode(t, "alice"), startNode(t, "carol"), startNode(t, "bob")
	g, general := guildOf(t, alice, carol)
	for i := range 3 {
		if _, err := carol.svc.Publish(ctx(t), g, general, "carol", event.KindMessageCreate, &event.MessageCreate{Content: fmt.Sprintf("carol %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() string { return converged(general, 3, alice, carol) })
	if _, err := carol.svc.Moderate(ctx(t), g, "carol", event.KindMemberLeave, "", &event.MemberRef{User: event.User{Node: carol.svc.Node(), Name: "carol"}}); err != nil {
		t.Fatal(err)
	}
	bigGuild(t, alice, g, 200)
	rt := alice.svc.guild(g)

	full := alice.svc.joinResponse(rt, bob.svc.ID(), 1) // the chain but genesis, as without snapshots
	snap := alice.svc.joinResponse(rt, bob.svc.ID(), 0)
	if snap.Snapshot == nil || len(snap.State) != 1 {
		t.Fatalf("a join without have-sn of a %d-event chain carries %d state events and snapshot %v", rt.st.Info().SN, len(snap.State), snap.Snapshot != nil)
	}
	if a, b := responseSize(t, snap), responseSize(t, full); a*3 > b {
		t.Fatalf("the snapshot answer is %d bytes, the chain answer %d", a, b)
	}

	inv, err := alice.svc.CreateInvite(ctx(t), g, "alice", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := bob.svc.Join(ctx(t), inv, "bob")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := bob.svc.Guild(g)
	if st.Base() == 0 || len(res.Members) != 202 {
		t.Fatalf("bob's guild starts at sn %d with %d members shown", st.Base(), len(res.Members))
	}
	same := func(n *tnode) string {
		mine, _ := n.svc.Guild(g)
		a, _ := mine.Snapshot()
		b, _ := rt.st.Snapshot()
		if string(a) != string(b) {
			return fmt.Sprintf("%s's state (sn %d) differs from alice's (sn %d)", n.name, mine.Info().SN, rt.st.Info().SN)
		}
		return ""
	}
	waitFor(t, 10*time.Second, func() string { return same(bob) })

	// A state event after the snapshot applies; carol's old messages arrive and validate.
	lobby, err := alice.svc.Moderate(ctx(t), g, "alice", event.KindChannelCreate, "", &event.ChannelCreate{Name: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		if _, ok := st.Channel(lobby); !ok {
			return "bob lacks the channel created after the snapshot"
		}
		return converged(general, 3, alice, bob)
	})
	// Catch-up closes bob's vector with the state events below the snapshot,
	// which reach neither OnEvent nor a replay.
	waitFor(t, 20*time.Second, func() string {
		want, _ := alice.svc.Vector(g)
		got, _ := bob.svc.Vector(g)
		if got[alice.svc.Node()] != want[alice.svc.Node()] {
			return fmt.Sprintf("bob holds alice's events up to %d of %d", got[alice.svc.Node()], want[alice.svc.Node()])
		}
		return ""
	})
	base := st.Base()
	delivered := func() []uint64 {
		bob.mu.Lock()
		defer bob.mu.Unlock()
		var sns []uint64
		for _, ev := range bob.events {
			if ev.Kind.Class() == event.ClassState && ev.Kind != event.KindGuildCreate && ev.SN <= base {
				sns = append(sns, ev.SN)
			}
		}
		return sns
	}
	if d := delivered(); len(d) > 0 {
		t.Fatalf("state events below the snapshot (sn %d) delivered: %v", base, d)
	}
	var replayed []uint64
	if err := bob.svc.Replay(g, func(ev *event.Event) error {
		if ev.Kind.Class() == event.ClassState && ev.SN < base {
			replayed = append(replayed, ev.SN)
		}
		return nil
	}); err != nil || len(replayed) > 0 {
		t.Fatalf("replay: %v, state events below the snapshot: %v", err, replayed)
	}

	bob.stop()
	bob.start()
	if why := same(bob); why != "" {
		t.Fatalf("after a restart: %s", why)
	}
	if st, _ := bob.svc.Guild(g); st.Base() != base {
		t.Fatalf("after a restart the guild starts at sn %d, want the snapshot's %d", st.Base(), base)
	}
}

// TestSnapshotTampered: a joining node refuses a snapshot that its home node
// did not sign as it is, and holds nothing of the guild afterwards [FED-103].
func TestSnapshotTampered(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, _ := guildOf(t, alice)
	bigGuild(t, alice, g, SnapshotAbove)
	rt := alice.svc.guild(g)
	resp := alice.svc.joinResponse(rt, bob.svc.ID(), 0)
	if resp.Snapshot == nil {
		t.Fatal("no snapshot")
	}
	flip := func(b []byte, i int) []byte {
		b = slices.Clone(b)
		b[i] ^= 1
		return b
	}
	good := *resp.Snapshot
	cases := map[string]proto.SignedSnapshot{
		"signature":        {State: good.State, Sig: flip(good.Sig, 5)},
		"state":            {State: flip(good.State, len(good.State)-3), Sig: good.Sig},
		"other signer":     {State: good.State, Sig: bob.svc.signer.SignDetached(SnapshotContext, good.State)},
		"no signature":     {State: good.State},
		"truncated":        {State: good.State[:len(good.State)/2], Sig: good.Sig},
		"other home state": {},
	}
	// A snapshot alice signed of another guild of hers.
	g2, err := alice.svc.CreateGuild(ctx(t), "alice", "other")
	if err != nil {
		t.Fatal(err)
	}
	other, err := alice.svc.signedSnapshot(alice.svc.guild(g2))
	if err != nil {
		t.Fatal(err)
	}
	cases["other home state"] = *other
	for name, sn := range cases {
		t.Run(name, func(t *testing.T) {
			if err := bob.svc.adoptState(g, alice.svc.Node(), resp.State, &sn); err == nil {
				t.Fatal("accepted")
			}
			if _, ok := bob.svc.Guild(g); ok {
				t.Fatal("bob holds the guild")
			}
		})
	}
	if err := bob.svc.adoptState(g, alice.svc.Node(), resp.State, &good); err != nil {
		t.Fatalf("the untouched snapshot: %v", err)
	}
}

// BenchmarkJoinAnswer compares, for a node new to a guild of 10,000 members, the
// join with the whole state chain (what every such join did before snapshots)
// and with a snapshot [FED-102]: the whole join until Join returns (the guild
// can be shown); the home node's answer (for the chain: a join with have-sn 1,
// every state event but genesis), with bytes/answer its encoded size; and what
// the joining node does with the answer before storing it (verify and fold the
// chain, or verify and load the snapshot).
func BenchmarkJoinAnswer(b *testing.B) {
	alice := startNode(b, "alice", func(c *Config) { c.OnEvent = nil })
	g, err := alice.svc.CreateGuild(ctx(b), "alice", "g")
	if err != nil {
		b.Fatal(err)
	}
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	far, _ := event.NewSigner(k)
	rt := alice.svc.guild(g)
	const members, workers = 10_000, 32
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < members; i += workers {
				u := event.User{Node: far.Origin(), Name: fmt.Sprintf("user%d", i)}
				if _, err := alice.svc.issue(context.Background(), rt, u, event.KindMemberJoin, "", &event.MemberJoin{User: u, NodeName: "far"}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	gen, err := alice.svc.store.Raw(g)
	if err != nil {
		b.Fatal(err)
	}
	genesis, _ := event.Decode(gen)
	// A whole join of a new node, until Join returns (the guild can be shown): with the
	// chain, the node verifies, applies and stores every state event first.
	for _, name := range []string{"chain", "snapshot"} {
		b.Run("join/"+name, func(b *testing.B) {
			if name == "chain" {
				snapshotAbove = math.MaxUint64
				defer func() { snapshotAbove = SnapshotAbove }()
			}
			for i := range b.N {
				b.StopTimer()
				bob := startNode(b, fmt.Sprintf("bob%d", i), func(c *Config) { c.OnEvent = nil })
				inv, err := alice.svc.CreateInvite(ctx(b), g, "alice", 0, 0)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := bob.svc.Join(ctx(b), inv, "bob"); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				bob.stop()
			}
		})
	}
	for _, have := range []uint64{1, 0} {
		name := map[uint64]string{1: "chain", 0: "snapshot"}[have]
		var resp *proto.JoinResponse
		b.Run("answer/"+name, func(b *testing.B) {
			for b.Loop() {
				resp = alice.svc.joinResponse(rt, "", have)
				if _, err := event.Marshal(resp); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(responseSize(b, resp)), "bytes/answer")
		})
		b.Run("adopt/"+name, func(b *testing.B) {
			for b.Loop() {
				if resp.Snapshot != nil {
					if err := event.VerifyDetached(genesis.Origin, SnapshotContext, resp.Snapshot.State, resp.Snapshot.Sig); err != nil {
						b.Fatal(err)
					}
					if _, err := guild.FromSnapshot(genesis, resp.Snapshot.State); err != nil {
						b.Fatal(err)
					}
					continue
				}
				st, _ := guild.New(genesis)
				for _, raw := range resp.State {
					ev, err := event.Decode(raw)
					if err == nil {
						err = ev.Verify()
					}
					if err == nil {
						err = st.Apply(ev)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
