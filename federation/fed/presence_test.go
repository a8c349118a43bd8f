package fed

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
)

// TestPresenceBatchTiming checks the batching loop of [FED-060] and [FED-067] on a fake
// clock: a change after a quiet spell goes out at once, changes right after a
// batch wait for the end of the interval, and two batches are never closer
// than the interval.
func TestPresenceBatchTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const gap = 500 * time.Millisecond
		s := &Service{cfg: Config{BatchInterval: gap}}
		p := newPresence(s)
		s.pres = p
		var mu sync.Mutex
		var sent []time.Time
		p.send = func(context.Context) {
			p.mu.Lock()
			p.dirty = map[string]bool{}
			p.typing = map[event.ID][]event.Typing{}
			p.lastFull = s.now()
			p.mu.Unlock()
			mu.Lock()
			sent = append(sent, time.Now())
			mu.Unlock()
		}
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(sent) }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.run(ctx) }()

		// [FED-067] The first full republish is due at start and goes out at the first tick.
		time.Sleep(gap + time.Millisecond)
		synctest.Wait()
		if n := count(); n != 1 {
			t.Fatalf("%d batches after the first interval, want the full republish", n)
		}

		// Quiet for a while, then a change: it goes out at once.
		time.Sleep(3 * gap)
		synctest.Wait()
		before := count()
		at := time.Now()
		s.SetPresence("alice", event.StatusOnline)
		synctest.Wait()
		if n := count(); n != before+1 || !sent[n-1].Equal(at) {
			t.Fatalf("a change after a quiet spell was not published at once (%d batches, want %d)", n, before+1)
		}

		// Changes right after a batch wait for the end of the interval.
		time.Sleep(gap / 5)
		s.SetPresence("bob", event.StatusIdle)
		s.Typing(event.ID("g"), event.ID("c"), "bob")
		synctest.Wait()
		if n := count(); n != before+1 {
			t.Fatalf("a change %v after a batch went out before the interval ended", gap/5)
		}
		time.Sleep(gap)
		synctest.Wait()
		if n := count(); n != before+2 || !sent[n-1].Equal(at.Add(gap)) {
			t.Fatalf("the waiting change went out at %v after the previous batch, want %v", sent[count()-1].Sub(at), gap)
		}

		// A steady stream of changes: one batch per interval, never closer.
		for range 40 {
			s.SetPresence("carol", event.StatusDND)
			time.Sleep(gap / 4)
		}
		synctest.Wait()
		mu.Lock()
		for i := 1; i < len(sent); i++ {
			if d := sent[i].Sub(sent[i-1]); d < gap {
				t.Errorf("batches %d and %d only %v apart", i-1, i, d)
			}
		}
		if n := len(sent) - (before + 2); n < 9 || n > 11 {
			t.Errorf("%d batches for 5 s of changes every %v, want about 10", n, gap/4)
		}
		mu.Unlock()
		cancel()
		<-done
	})
}

// TestTypingRelayedAtReceipt checks the receiver's side of [EVT-083]: "A receiver
// MUST expire a typing entry 10,000 ms after receiving it." The node keeps no typing
// entry of its own: each entry of a received typing.batch goes to OnTyping at the
// moment of receipt (which relays it as TYPING_START, and clients end a TYPING_START
// 10 s after it arrives), once, and nothing of it is held to be announced again. On
// a fake clock: entries are delivered at receipt, a second batch is delivered again
// in full, and over the next 30 s of the presence loop (expiry sweeps, republishes)
// no entry comes back and no presence is made of it.
func TestTypingRelayedAtReceipt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type got struct {
			guild, channel event.ID
			user           event.User
			at             time.Time
		}
		var (
			mu       sync.Mutex
			typing   []got
			presence int
		)
		s := &Service{cfg: Config{BatchInterval: 500 * time.Millisecond,
			OnTyping: func(guild, channel event.ID, user event.User) {
				mu.Lock()
				defer mu.Unlock()
				typing = append(typing, got{guild, channel, user, time.Now()})
			},
			OnPresence: func(event.ID, event.User, uint8) {
				mu.Lock()
				defer mu.Unlock()
				presence++
			},
		}}
		p := newPresence(s)
		s.pres = p
		p.send = func(context.Context) { // nothing local to publish
			p.mu.Lock()
			p.lastFull = s.now()
			p.mu.Unlock()
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.run(ctx) }()

		origin := event.Node("remote-node")
		batch := &event.Event{Envelope: event.Envelope{Kind: "typing.batch", Origin: origin},
			Body: &event.TypingBatch{Entries: []event.Typing{{Name: "bob", Channel: "c1"}, {Name: "eve", Channel: "c2"}}}}
		want := []got{{"g", "c1", event.User{Node: origin, Name: "bob"}, time.Time{}}, {"g", "c2", event.User{Node: origin, Name: "eve"}, time.Time{}}}
		check := func(what string, n int, at time.Time) {
			t.Helper()
			mu.Lock()
			defer mu.Unlock()
			if len(typing) != n {
				t.Fatalf("%s: %d typing entries delivered, want %d", what, len(typing), n)
			}
			for i, g := range typing[n-2:] {
				w := want[i]
				w.at = at
				if g != w {
					t.Errorf("%s: delivered %+v, want %+v (at receipt)", what, g, w)
				}
			}
		}

		time.Sleep(3 * time.Second)
		first := time.Now()
		p.receive("g", batch)
		check("first batch", 2, first)

		time.Sleep(4 * time.Second) // typing again while the first entries would still show
		second := time.Now()
		p.receive("g", batch)
		check("second batch", 4, second)

		time.Sleep(30 * time.Second)
		synctest.Wait()
		check("30 s later", 4, second)
		mu.Lock()
		if presence != 0 {
			t.Errorf("typing made %d presence changes", presence)
		}
		mu.Unlock()
		p.mu.Lock()
		if len(p.remote) != 0 {
			t.Errorf("the receiver holds remote entries after typing only: %v", p.remote)
		}
		p.mu.Unlock()
		cancel()
		<-done
	})
}
