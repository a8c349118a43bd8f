package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// apply measures how many signed events node B verifies and applies per second: first a
// burst written on A as fast as A takes it (B applies from live gossip), then a burst
// written while B is cut off (B applies from catch-up after the heal). The rate is taken
// between the first and the last MESSAGE_CREATE on B's gateway client.
func apply(o options) error {
	c, err := startCluster(o, 2, false)
	if err != nil {
		return err
	}
	defer c.stop()
	a, b := c.nodes[0], c.nodes[1]
	fg, err := newFedGuild(a)
	if err != nil {
		return err
	}
	// Live events are limited to 10/s per author with a burst of 50 [FED-018]: 25 per author.
	authors, err := members(fg, a, max(o.burst/25, 1), "w_")
	if err != nil {
		return err
	}
	readers, err := members(fg, b, 1, "r_")
	if err != nil {
		return err
	}
	got := newArrivals()
	sess, err := listen(readers[0], got)
	if err != nil {
		return err
	}
	defer sess.close()
	if _, err := authors[0].send(fg.channels[a], "warm"); err != nil {
		return err
	}
	if err := waitFor(30*time.Second, func() string {
		if got.count() == 0 {
			return "warm-up message not on " + b.name
		}
		return ""
	}); err != nil {
		return err
	}

	release, err := measuring(o.lock)
	if err != nil {
		return err
	}
	defer release()
	burst := func(tag string) (time.Duration, error) {
		start := time.Now()
		err := parallel(o.burst, 32, func(i int) error {
			_, err := authors[i%len(authors)].send(fg.channels[a], tag+strconv.Itoa(i))
			return err
		})
		return time.Since(start), err
	}
	report := func(tag string, since time.Time, within time.Duration) (int, time.Duration, time.Time) {
		_ = waitFor(within, func() string {
			if n := countPrefix(got, tag); n < o.burst {
				return fmt.Sprintf("%d of %d", n, o.burst)
			}
			return ""
		})
		got.mu.Lock()
		defer got.mu.Unlock()
		var first, last time.Time
		n := 0
		for content, at := range got.at {
			if !strings.HasPrefix(content, tag) {
				continue
			}
			n++
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
		return n, last.Sub(first), first
	}

	// Live.
	took, err := burst("live-")
	if err != nil {
		return err
	}
	sentEnd := time.Now()
	n, span, _ := report("live-", sentEnd, 120*time.Second)
	got.mu.Lock()
	lastLive := got.last
	got.mu.Unlock()
	fmt.Printf("apply (live gossip): %d messages written on %s in %v (%.0f/s); %s applied %d of them, %.0f/s between its first and last; last one %v after the last write\n",
		o.burst, a.name, took.Round(time.Millisecond), float64(o.burst)/took.Seconds(), b.name, n, float64(n)/span.Seconds(), lastLive.Sub(sentEnd).Round(time.Millisecond))
	liveMissing := o.burst - n

	// Catch-up.
	time.Sleep(3 * time.Second) // refill the authors' live budget (it does not apply to sync, but keep runs alike)
	if err := c.isolate(1, true); err != nil {
		return err
	}
	took, err = burst("sync-")
	if err != nil {
		return err
	}
	heal := time.Now()
	profA, profB := a.profile(o.profile, "apply-catchup", 4*time.Second), b.profile(o.profile, "apply-catchup", 4*time.Second)
	if err := c.isolate(1, false); err != nil {
		return err
	}
	n, span, first := report("sync-", heal, 180*time.Second)
	profA()
	profB()
	fmt.Printf("apply (catch-up): %d messages written on %s while %s was cut off (%v); after the heal %s applied %d of them, %.0f/s between its first and last (first one %v after the heal)\n",
		o.burst, a.name, b.name, took.Round(time.Millisecond), b.name, n, float64(n)/span.Seconds(), first.Sub(heal).Round(time.Millisecond))
	if liveMissing > 0 || n < o.burst {
		fmt.Printf("apply: %s logged: %s\n", b.name, b.logSummary())
		// Does a restart bring the missing ones (the node replays stored events at start)?
		if err := b.restart(o.logLevel); err != nil {
			return err
		}
		var held int
		_ = waitFor(120*time.Second, func() string {
			h, err := readers[0].history(fg.channels[b])
			if err != nil {
				return err.Error()
			}
			held = 0
			for _, m := range h {
				if strings.HasPrefix(m.Content, "live-") || strings.HasPrefix(m.Content, "sync-") {
					held++
				}
			}
			if held < 2*o.burst {
				return fmt.Sprintf("%d of %d", held, 2*o.burst)
			}
			return ""
		})
		fmt.Printf("apply: after a restart of %s its history holds %d of the %d messages\n", b.name, held, 2*o.burst)
		return fmt.Errorf("messages missing on %s until a restart: %d of the live burst, %d of the catch-up burst", b.name, liveMissing, o.burst-n)
	}
	return nil
}

func countPrefix(a *arrivals, prefix string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for c := range a.at {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}
