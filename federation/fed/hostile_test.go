package fed

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/gossip"
	fhost "github.com/hearth-chat/hearth/federation/host"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// mallory is a hostile peer: a bare libp2p host with a pubsub router that
// validates nothing, so it can publish anything on a guild topic.
type mallory struct {
	t      *testing.T
	signer *event.Signer
	id     peer.ID
	topic  *pubsub.Topic
}

func startMallory(t *testing.T, g event.ID, targets ...*tnode) *mallory {
	t.Helper()
	h, key, err := fhost.New(fhost.Config{DataDir: t.TempDir(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	s, err := event.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(c, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(), pubsub.WithFloodPublish(true),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { id, _ := event.PeekID(m.Data); return string(id) }))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(gossip.Topic(g))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topic.Subscribe(); err != nil {
		t.Fatal(err)
	}
	for _, n := range targets {
		if err := h.Connect(ctx(t), peer.AddrInfo{ID: n.svc.ID(), Addrs: n.svc.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() string {
		if len(topic.ListPeers()) < len(targets) {
			return "mallory does not see the honest nodes on the topic"
		}
		return ""
	})
	return &mallory{t: t, signer: s, id: h.ID(), topic: topic}
}

func (m *mallory) publish(raw []byte) {
	m.t.Helper()
	if err := m.topic.Publish(ctx(m.t), raw); err != nil {
		m.t.Fatal(err)
	}
}

func (m *mallory) message(g, ch event.ID, name string, seq, sn uint64, ts event.HLC, content string) *event.Event {
	m.t.Helper()
	ev, err := m.signer.Sign(event.Envelope{Kind: event.KindMessageCreate, Guild: g, Channel: ch,
		Author: event.User{Node: m.signer.Origin(), Name: name}, Seq: seq, TS: ts, SN: sn}, &event.MessageCreate{Content: content})
	if err != nil {
		m.t.Fatal(err)
	}
	return ev
}

type signedWire struct {
	Payload []byte            `cbor:"0,keyasint"`
	Sigs    []event.Signature `cbor:"1,keyasint"`
}

// tamper re-encodes ev's envelope after edit, keeping the old signatures.
func tamper(t *testing.T, ev *event.Event, edit func(*event.Envelope)) []byte {
	env := ev.Envelope
	edit(&env)
	p, err := event.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := event.Marshal(&signedWire{Payload: p, Sigs: ev.Sigs})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestHostilePeer: forged, replayed, oversized, future-dated, non-member,
// banned-author, unknown-kind and equivocating events from a hostile peer
// never reach the application, and the peer is graylisted.
func TestHostilePeer(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, ch := guildOf(t, alice, bob)
	m := startMallory(t, g, alice, bob)

	// Mallory's node hosts two members: "mal", and "banned", who is then banned.
	rt := alice.svc.guild(g)
	mal := event.User{Node: m.signer.Origin(), Name: "mal"}
	banned := event.User{Node: m.signer.Origin(), Name: "banned"}
	for _, u := range []event.User{mal, banned} {
		if _, err := alice.svc.issue(ctx(t), rt, u, event.KindMemberJoin, "", &event.MemberJoin{User: u}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.svc.Moderate(ctx(t), g, "alice", event.KindBanAdd, "", &event.BanAdd{User: banned}); err != nil {
		t.Fatal(err)
	}
	sn := rt.st.Info().SN
	waitFor(t, 10*time.Second, func() string {
		if st, _ := bob.svc.Guild(g); st.Info().SN != sn {
			return "bob is behind on state"
		}
		return ""
	})
	genuine := send(t, bob, g, ch, "genuine from bob")
	waitFor(t, 10*time.Second, func() string { return converged(ch, 1, alice, bob) })

	now := event.MakeHLC(uint64(time.Now().UnixMilli()), 0)
	good := m.message(g, ch, "mal", 1, sn, now, "mal is allowed to say this")
	m.publish(good.Raw)
	waitFor(t, 10*time.Second, func() string { return converged(ch, 2, alice, bob) })

	bad := map[string][]byte{
		"equivocation": m.message(g, ch, "mal", 1, sn, now+1, "BAD equivocation").Raw,
		"forged": tamper(t, m.message(g, ch, "mal", 2, sn, now+2, "BAD forged"), func(e *event.Envelope) {
			e.Origin, e.Author.Node = bob.svc.Node(), bob.svc.Node()
		}),
		"future":       m.message(g, ch, "mal", 3, sn, now+event.HLC(5*time.Minute.Milliseconds())<<16, "BAD future").Raw,
		"non-member":   m.message(g, ch, "eve", 4, sn, now+4, "BAD non-member").Raw,
		"banned":       m.message(g, ch, "banned", 5, sn, now+5, "BAD banned").Raw,
		"unknown kind": tamper(t, m.message(g, ch, "mal", 6, sn, now+6, "BAD kind"), func(e *event.Envelope) { e.Kind = "message.explode" }),
		"oversize":     []byte("BAD" + strings.Repeat("x", event.MaxSize+10)),
		"garbage":      []byte("BAD garbage"),
	}
	for _, raw := range bad {
		m.publish(raw)
	}
	m.publish(genuine.Raw) // replay: dropped by the seen cache, never delivered twice

	waitFor(t, 10*time.Second, func() string {
		if s := alice.svc.gossip.Score(m.id); s >= gossip.GraylistThreshold {
			return fmt.Sprintf("mallory's score at alice is %.0f, not below the graylist threshold", s)
		}
		return ""
	})
	for _, n := range []*tnode{alice, bob} {
		for _, c := range n.messages(ch) {
			if strings.HasPrefix(c, "BAD") {
				t.Errorf("%s accepted %q", n.name, c)
			}
		}
		if d := n.duplicates(); len(d) > 0 {
			t.Errorf("%s delivered %d events twice", n.name, len(d))
		}
	}
	if got := len(alice.messages(ch)); got != 2 {
		t.Errorf("alice has %d messages, want 2", got)
	}
}

// TestFlood: a member node that floods valid events beyond the per-author
// rate is rejected and scored down.
func TestFlood(t *testing.T) {
	limit := func(c *Config) { c.AuthorRate, c.AuthorBurst = 5, 10 }
	alice := startNode(t, "alice", limit)
	g, err := alice.svc.CreateGuild(ctx(t), "alice", "g")
	if err != nil {
		t.Fatal(err)
	}
	ch := general(t, alice, g)
	m := startMallory(t, g, alice)
	rt := alice.svc.guild(g)
	mal := event.User{Node: m.signer.Origin(), Name: "mal"}
	if _, err := alice.svc.issue(ctx(t), rt, mal, event.KindMemberJoin, "", &event.MemberJoin{User: mal}); err != nil {
		t.Fatal(err)
	}
	sn := rt.st.Info().SN
	start := time.Now()
	now := event.MakeHLC(uint64(start.UnixMilli()), 0)
	const flood = 200
	for i := range flood {
		m.publish(m.message(g, ch, "mal", uint64(i+1), sn, now+event.HLC(i), fmt.Sprintf("flood %d", i)).Raw)
	}
	waitFor(t, 10*time.Second, func() string {
		if s := alice.svc.gossip.Score(m.id); s >= gossip.GraylistThreshold {
			return fmt.Sprintf("flooder's score is %.0f", s)
		}
		return ""
	})
	allowed := 10 + int(5*time.Since(start).Seconds()) + 1
	if got := len(alice.messages(ch)); got > allowed || got == 0 {
		t.Fatalf("alice accepted %d flood messages, want 1..%d", got, allowed)
	}
}
