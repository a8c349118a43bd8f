package fanout

import (
	"sync"
	"testing"
)

type fakeSession struct {
	uid uint64
	mu  sync.Mutex
	got []string
}

func (f *fakeSession) UserID() uint64 { return f.uid }
func (f *fakeSession) Deliver(ev *Event) {
	f.mu.Lock()
	f.got = append(f.got, ev.Type)
	f.mu.Unlock()
}

func TestPublishRouting(t *testing.T) {
	h := NewHub()
	a1, a2, b, c := &fakeSession{uid: 1}, &fakeSession{uid: 1}, &fakeSession{uid: 2}, &fakeSession{uid: 3}
	h.Add(a1, []uint64{100})
	h.Add(a2, []uint64{100})
	h.Add(b, []uint64{100, 200})
	h.Add(c, []uint64{200})

	h.Publish(&Event{Type: "G100", GuildID: 100})
	h.Publish(&Event{Type: "G200-visible-to-3", GuildID: 200, Visible: func(u uint64) bool { return u == 3 }})
	h.Publish(&Event{Type: "DM", UserIDs: []uint64{1, 3}})
	h.Publish(&Event{Type: "except", GuildID: 100, Except: a1})
	h.Leave(100, 2)
	h.Publish(&Event{Type: "after-leave", GuildID: 100})

	want := map[*fakeSession][]string{
		a1: {"G100", "DM", "after-leave"},
		a2: {"G100", "DM", "except", "after-leave"},
		b:  {"G100", "except"},
		c:  {"G200-visible-to-3", "DM"},
	}
	for s, w := range want {
		if len(s.got) != len(w) {
			t.Fatalf("user %d got %v, want %v", s.uid, s.got, w)
		}
		for i := range w {
			if s.got[i] != w[i] {
				t.Fatalf("user %d got %v, want %v", s.uid, s.got, w)
			}
		}
	}
	if last := h.Remove(a1, []uint64{100}); last {
		t.Fatal("Remove(a1) reported last session while a2 remains")
	}
	if last := h.Remove(a2, []uint64{100}); !last || h.Online(1) {
		t.Fatal("user 1 still online after removing both sessions")
	}
}

// BenchmarkPublish10k measures routing one event to 10,000 sessions of one guild.
func BenchmarkPublish10k(b *testing.B) {
	h := NewHub()
	for i := 0; i < 10_000; i++ {
		h.Add(nopSession(uint64(i+1)), []uint64{1})
	}
	ev := &Event{Type: "MESSAGE_CREATE", GuildID: 1, Visible: func(uint64) bool { return true }}
	b.ReportAllocs()
	for b.Loop() {
		h.Publish(ev)
	}
}

type nopSession uint64

func (n nopSession) UserID() uint64 { return uint64(n) }
func (nopSession) Deliver(*Event)   {}
