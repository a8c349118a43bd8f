package fed

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	fhost "github.com/hearth-chat/hearth/federation/host"
	"github.com/hearth-chat/hearth/federation/proto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// TestGapGrace checks [FED-036] with gossip's reordering: a gap that the missing event
// closes within GapGrace is not fetched, and one that stays open is fetched from the peer
// that delivered the event above it. A relay peer, which serves alice's events from her
// store and records what it is asked, delivers alice's messages to bob out of order.
func TestGapGrace(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, ch := guildOf(t, alice, bob)
	cutOff(t, bob, alice)
	var evs []*event.Event
	for i := range 4 {
		ev, err := alice.svc.Publish(ctx(t), g, ch, "alice", event.KindMessageCreate, &event.MessageCreate{Content: fmt.Sprintf("m%d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	relay := startRelay(t, alice, g, nil)
	bob.svc.Host().Peerstore().AddAddrs(relay.h.ID(), relay.h.Addrs(), peerstore.PermanentAddrTTL)
	ingest := func(i int) {
		if _, err := bob.svc.ingest(g, relay.h.ID(), evs[i].Raw, true); err != nil {
			t.Fatalf("m%d: %v", i+1, err)
		}
	}
	// m2 opens a gap that m1 closes within GapGrace: nobody is asked for m1 meanwhile.
	ingest(1)
	for deadline := time.Now().Add(GapGrace / 2); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n, _ := relay.requests(); n > 0 {
			t.Fatalf("bob asked the relay %d times within %v of the gap", n, GapGrace/2)
		}
	}
	ingest(0)
	// m4 opens one that nothing closes.
	ingest(3)
	waitFor(t, 10*time.Second, func() string {
		if !slices.Contains(bob.messages(ch), "m3") {
			return "bob lacks m3, which only the relay can give him"
		}
		return ""
	})
	for _, seq := range relay.fetched() {
		if seq <= evs[1].Seq {
			t.Errorf("bob fetched seq %d, below the gap that closed by itself (m1..m2 are %d..%d)", seq, evs[0].Seq, evs[1].Seq)
		}
	}
}

// TestOneCatchUpPerPeer checks that a catch-up asked for while one with the same peer runs
// waits for it and then runs once, instead of fetching the same events alongside it.
func TestOneCatchUpPerPeer(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, _ := guildOf(t, alice, bob)
	gate := make(chan struct{})
	relay := startRelay(t, alice, g, gate)
	bob.svc.Host().Peerstore().AddAddrs(relay.h.ID(), relay.h.Addrs(), peerstore.PermanentAddrTTL)
	bob.svc.syncer.Trigger(g, relay.h.ID())
	waitFor(t, 10*time.Second, func() string {
		if n, _ := relay.requests(); n == 0 {
			return "no catch-up with the relay yet"
		}
		return ""
	})
	for range 3 {
		bob.svc.syncer.Trigger(g, relay.h.ID())
	}
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, most := relay.requests(); most > 1 {
			t.Fatalf("%d catch-ups with one peer ran at once", most)
		}
	}
	close(gate)
	// The relay holds what bob holds: each catch-up is one heads request.
	waitFor(t, 10*time.Second, func() string {
		if n, _ := relay.requests(); n < 2 {
			return "the catch-up asked for meanwhile did not run after the first"
		}
		return ""
	})
	if n, most := relay.requests(); n != 2 || most != 1 {
		t.Errorf("%d requests, at most %d at once; want 2, one at a time", n, most)
	}
}

// relay serves sync (heads and fetch) for one guild from a node's store, as a peer that is
// not a member node, and records the seqs it is asked for.
type relay struct {
	h host.Host
	// gate, when not nil, holds every request until it is closed.
	gate     chan struct{}
	mu       gosync.Mutex
	n        int      // requests
	inflight int      // requests being served
	most     int      // the most served at once
	seq      []uint64 // seqs of the node's origin asked for
}

func startRelay(t *testing.T, from *tnode, g event.ID, gate chan struct{}) *relay {
	t.Helper()
	h, _, err := fhost.New(fhost.Config{DataDir: t.TempDir(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r := &relay{h: h, gate: gate}
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fail := func(e *proto.Error) *proto.SyncResponse { return &proto.SyncResponse{Status: e.Status, Error: e.Msg} }
	proto.Handle(c, h, proto.Sync, from.svc.log, func(_ context.Context, _ peer.ID, req *proto.SyncRequest) *proto.SyncResponse {
		if req.Guild != g {
			return fail(proto.Fail(proto.NotFound, "not this guild"))
		}
		r.mu.Lock()
		r.n++
		r.inflight++
		r.most = max(r.most, r.inflight)
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.inflight--
			r.mu.Unlock()
		}()
		if r.gate != nil {
			<-r.gate
		}
		src := (*source)(from.svc)
		switch req.Op {
		case proto.OpHeads:
			v, err := src.Vector(g)
			if err != nil {
				return fail(proto.Fail(proto.Unavailable, "%v", err))
			}
			resp := &proto.SyncResponse{StateHead: src.StateHead(g)}
			for o, s := range v {
				resp.Vector = append(resp.Vector, proto.Head{Origin: o, Seq: s})
			}
			return resp
		case proto.OpFetch:
			resp := &proto.SyncResponse{}
			for _, rg := range req.Ranges {
				raws, _, err := src.Range(g, rg.Origin, rg.From, rg.To, 1000)
				if err != nil {
					return fail(proto.Fail(proto.Unavailable, "%v", err))
				}
				resp.Events = append(resp.Events, raws...)
				if rg.Origin == from.svc.Node() {
					r.mu.Lock()
					for s := rg.From; s <= rg.To; s++ {
						r.seq = append(r.seq, s)
					}
					r.mu.Unlock()
				}
			}
			return resp
		}
		return fail(proto.Fail(proto.BadRequest, "op %d", req.Op))
	}, fail)
	return r
}

// requests counts the requests served, and the most served at once.
func (r *relay) requests() (n, most int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.most
}

// fetched lists the seqs of the node's origin that were asked for.
func (r *relay) fetched() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seq)
}
