package store

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hearth-chat/hearth/federation/event"
	"github.com/libp2p/go-libp2p/core/crypto"
)

func openDB(t testing.TB) *badger.DB {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func signer(t testing.TB) *event.Signer {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	s, err := event.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVectorAndRanges(t *testing.T) {
	s := New(openDB(t), nil, nil)
	sg := signer(t)
	u := event.User{Node: sg.Origin(), Name: "alice"}
	gen, err := sg.Sign(event.Envelope{Kind: event.KindGuildCreate, Author: u, Seq: 1, TS: 1, SN: 1}, &event.GuildCreate{Name: "g", Owner: u})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*event.Event{gen}
	for seq := uint64(2); seq <= 6; seq++ {
		m, err := sg.Sign(event.Envelope{Kind: event.KindMessageCreate, Guild: gen.ID, Channel: gen.ID, Author: u, Seq: seq, TS: event.HLC(seq * 10)},
			&event.MessageCreate{Content: "m"})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	// Store 1, 2, 4, 5 first: the vector stops at the gap.
	if _, err := s.Put(msgs[0], msgs[1], msgs[3], msgs[4]); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Vector(gen.ID)
	if v[sg.Origin()] != 2 {
		t.Fatalf("vector %d, want 2", v[sg.Origin()])
	}
	if max, _ := s.MaxSeq(gen.ID, sg.Origin()); max != 5 {
		t.Fatalf("max seq %d", max)
	}
	fresh, err := s.Put(msgs[2], msgs[1])
	if err != nil || !fresh[0] || fresh[1] {
		t.Fatalf("put fresh %v %v", fresh, err)
	}
	v, _ = s.Vector(gen.ID)
	if v[sg.Origin()] != 5 {
		t.Fatalf("vector %d after filling the gap, want 5", v[sg.Origin()])
	}
	got, more, err := s.Range(gen.ID, sg.Origin(), 2, 10, 2)
	if err != nil || len(got) != 2 || !more {
		t.Fatalf("range %d %v %v", len(got), more, err)
	}
	hist, err := s.History(gen.ID, gen.ID, event.HLC(50), 10)
	if err != nil || len(hist) != 3 { // ts 40, 30, 20
		t.Fatalf("history %d %v", len(hist), err)
	}
	first, _ := event.Decode(hist[0])
	if first.TS != 40 {
		t.Fatalf("history not newest first: %d", first.TS)
	}
	chain, err := s.StateChain(gen.ID, 1)
	if err != nil || len(chain) != 1 {
		t.Fatalf("state chain %d %v", len(chain), err)
	}
	if id, _ := s.BySeq(gen.ID, sg.Origin(), 3); id != msgs[2].ID {
		t.Fatal("by seq")
	}
}

// TestWritesSync: with a sync function (a DB without SyncWrites), every write returns only
// after sync did, and a failed sync fails the write.
func TestWritesSync(t *testing.T) {
	var calls int
	var fail error
	s := New(openDB(t), func() error { calls++; return fail }, nil)
	sg := signer(t)
	u := event.User{Node: sg.Origin(), Name: "alice"}
	gen, err := sg.Sign(event.Envelope{Kind: event.KindGuildCreate, Author: u, Seq: 1, TS: 1, SN: 1}, &event.GuildCreate{Name: "g", Owner: u})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(gen); err != nil || calls != 1 {
		t.Fatalf("Put: err %v, %d syncs; want nil, 1", err, calls)
	}
	if err := s.AddGuild(gen.ID); err != nil || calls != 2 {
		t.Fatalf("AddGuild: err %v, %d syncs; want nil, 2", err, calls)
	}
	fail = errors.New("disk gone")
	if err := s.AddGuild(gen.ID); !errors.Is(err, fail) {
		t.Fatalf("AddGuild with a failing sync = %v, want it wrapped", err)
	}
}

// TestHomeAddrs: the home node's addresses round-trip; a guild without any has none.
func TestHomeAddrs(t *testing.T) {
	s := New(openDB(t), nil, nil)
	if got, err := s.HomeAddrs("g1"); err != nil || got != nil {
		t.Fatalf("HomeAddrs of an unknown guild = %v, %v", got, err)
	}
	want := [][]byte{{1, 2, 3}, {4}}
	if err := s.SetHomeAddrs("g1", want); err != nil {
		t.Fatal(err)
	}
	got, err := s.HomeAddrs("g1")
	if err != nil || len(got) != 2 || string(got[0]) != string(want[0]) || string(got[1]) != string(want[1]) {
		t.Fatalf("HomeAddrs = %v, %v; want %v", got, err, want)
	}
}
