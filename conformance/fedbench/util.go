package main

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-chat/hearth/conformance/loadwire"
)

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop the others early
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// members registers n users on nd and joins them to the guild.
func members(fg *fedGuild, nd *node, n int, prefix string) ([]*user, error) {
	users := make([]*user, n)
	err := parallel(n, 8, func(i int) error {
		u, err := register(nd, prefix)
		if err != nil {
			return err
		}
		if err := fg.join(u); err != nil {
			return fmt.Errorf("join of %s on %s: %w", u.name, nd.name, err)
		}
		users[i] = u
		return nil
	})
	return users, err
}

// waitFor polls cond every 20 ms until it returns "" (done) or within passes; the error
// carries cond's last answer.
func waitFor(within time.Duration, cond func() string) error {
	deadline := time.Now().Add(within)
	for {
		why := cond()
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %v: %s", within, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// arrivals records when each content first arrived on a gateway session.
type arrivals struct {
	mu    sync.Mutex
	at    map[string]time.Time
	first time.Time
	last  time.Time
}

func newArrivals() *arrivals { return &arrivals{at: map[string]time.Time{}} }

func (a *arrivals) record(content string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.at[content]; dup {
		return
	}
	a.at[content] = at
	if a.first.IsZero() || at.Before(a.first) {
		a.first = at
	}
	if at.After(a.last) {
		a.last = at
	}
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// listen connects u's gateway and records MESSAGE_CREATE contents into a.
func listen(u *user, a *arrivals) (*session, error) {
	return connect(u, intentGuilds|intentGuildMessages|intentMessageContent, func(t string, at time.Time, frame []byte) {
		if t == "MESSAGE_CREATE" {
			a.record(loadwire.ContentOf(frame), at)
		}
	})
}

// percentile returns the p-th percentile (0–100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p/100)]
}

func sortDurations(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
