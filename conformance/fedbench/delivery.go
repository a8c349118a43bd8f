package main

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// delivery measures REST create on node A → MESSAGE_CREATE on a gateway client of node B,
// open loop at o.rate messages per second from o.authors writers.
func delivery(o options) error {
	c, err := startCluster(o, 2)
	if err != nil {
		return err
	}
	defer c.stop()
	a, b := c.nodes[0], c.nodes[1]
	fg, err := newFedGuild(a)
	if err != nil {
		return err
	}
	authors, err := members(fg, a, o.authors, "w_")
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
	// Warm up: one message from every author, so that B knows them all.
	if err := parallel(len(authors), 16, func(i int) error {
		_, err := authors[i].send(fg.channels[a], "warm-"+strconv.Itoa(i))
		return err
	}); err != nil {
		return err
	}
	if err := waitFor(60*time.Second, func() string {
		if n := got.count(); n < len(authors) {
			return fmt.Sprintf("%d of %d warm-up messages on %s", n, len(authors), b.name)
		}
		return ""
	}); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the authors' federation rate budget refill (10/s, burst 50)

	release, err := measuring(o.lock)
	if err != nil {
		return err
	}
	defer release()
	total := int(o.duration.Seconds() * float64(o.rate))
	interval := time.Second / time.Duration(o.rate)
	var mu sync.Mutex
	sentAt := make(map[string]time.Time, total)
	var failed atomic.Int64
	var wg sync.WaitGroup
	profA, profB := a.profile(o.profile, "delivery", o.duration), b.profile(o.profile, "delivery", o.duration)
	defer profA()
	defer profB()
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		content := "d-" + strconv.Itoa(i)
		mu.Lock()
		sentAt[content] = time.Now()
		mu.Unlock()
		wg.Add(1)
		go func(u *user) {
			defer wg.Done()
			if _, err := u.send(fg.channels[a], content); err != nil {
				failed.Add(1)
			}
		}(authors[i%len(authors)])
	}
	wg.Wait()
	sendTime := time.Since(start)
	_ = waitFor(30*time.Second, func() string {
		if n := got.count() - len(authors); n+int(failed.Load()) < total {
			return fmt.Sprintf("%d of %d", n, total)
		}
		return ""
	})
	got.mu.Lock()
	var lat []time.Duration
	for content, at := range sentAt {
		if r, ok := got.at[content]; ok {
			lat = append(lat, r.Sub(at))
		}
	}
	got.mu.Unlock()
	sortDurations(lat)
	fmt.Printf("delivery: %d messages at %d/s from %d authors on %s (sent in %v): %d delivered on %s, %d REST failures; p50 %s, p99 %s, max %s\n",
		total, o.rate, len(authors), a.name, sendTime.Round(time.Millisecond), len(lat), b.name, failed.Load(),
		ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(percentile(lat, 100)))
	if len(lat)+int(failed.Load()) < total {
		fmt.Printf("delivery: %s logged: %s\n", b.name, b.logSummary())
		return fmt.Errorf("%d messages never reached %s", total-len(lat)-int(failed.Load()), b.name)
	}
	return nil
}
