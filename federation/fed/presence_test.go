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
