package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-chat/hearth/conformance/loadwire"
)

// percentile returns the p-th percentile (0–100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// latencyConns is how many keep-alive connections the latency scenario's open-loop sender
// spreads its requests over; a request waits for a free one, and that wait counts.
const latencyConns = 32

// latency sends rate messages per second from one user and measures, per message, the time
// from sending the REST request to the MESSAGE_CREATE frame at another user's gateway.
func latency(ctx context.Context, base string, rate int, dur time.Duration) error {
	sender, err := register(base)
	if err != nil {
		return err
	}
	listener, err := register(base)
	if err != nil {
		return err
	}
	_, ch, err := newGuild(sender)
	if err != nil {
		return err
	}
	if err := join(sender, listener, ch); err != nil {
		return err
	}
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	var lat, rest []time.Duration // send → MESSAGE_CREATE; send → REST answer
	sess, err := connect(listener, func(t string, frame []byte) {
		if t != "MESSAGE_CREATE" {
			return
		}
		now := time.Now()
		c := loadwire.ContentOf(frame)
		mu.Lock()
		if at, ok := sentAt[c]; ok {
			lat = append(lat, now.Sub(at))
			delete(sentAt, c)
		}
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer sess.close()
	total := int(dur.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	pool, err := loadwire.NewPosterPool(latencyConns, sender.base, sender.token, "/channels/"+ch+"/messages")
	if err != nil {
		return err
	}
	defer pool.Close()
	u0 := takeUsage(base)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for i := 0; i < total; i++ {
		// Open-loop schedule: message i goes at start + i*interval, whatever the node does.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		content := "lat-" + strconv.Itoa(i)
		mu.Lock()
		sentAt[content] = time.Now()
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if _, err := pool.Post([]byte(`{"content":"` + content + `"}`)); err != nil {
				failed.Add(1)
				return
			}
			d := time.Since(t0)
			mu.Lock()
			rest = append(rest, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n+int(failed.Load()) >= total {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	u1 := takeUsage(base)
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("latency: %d msgs at %d/s over %v: delivered %d, failed %d, p50 %s, p90 %s, p99 %s, max %s\n",
		total, rate, dur, len(lat), failed.Load(), ms(percentile(lat, 50)), ms(percentile(lat, 90)), ms(percentile(lat, 99)), ms(percentile(lat, 100)))
	sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
	fmt.Printf("  REST answer (persisted, fsync included): p50 %s, p90 %s, p99 %s\n", ms(percentile(rest, 50)), ms(percentile(rest, 90)), ms(percentile(rest, 99)))
	fmt.Println(costLine(u0, u1, int64(total), int64(len(lat))))
	fmt.Println(machineLine(os.TempDir()))
	return nil
}

// throughput runs 10 guilds with one channel and 10 listener sessions each; writers post as
// fast as the node answers for dur. It reports messages persisted (answered 200) per second
// and deliveries per second.
func throughput(ctx context.Context, base string, dur time.Duration) error {
	const channels, listeners = 10, 10
	writersPerChannel := max(throughputWriters/channels, 1)
	type chanSetup struct {
		owner *user
		ch    string
	}
	var setups []chanSetup
	var delivered atomic.Int64
	var sessions []*session
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	for c := 0; c < channels; c++ {
		owner, err := register(base)
		if err != nil {
			return err
		}
		_, ch, err := newGuild(owner)
		if err != nil {
			return err
		}
		setups = append(setups, chanSetup{owner, ch})
		for l := 0; l < listeners; l++ {
			u, err := register(base)
			if err != nil {
				return err
			}
			if err := join(owner, u, ch); err != nil {
				return err
			}
			s, err := connectBuffered(u, 32<<10, func(t string, _ []byte) {
				if t == "MESSAGE_CREATE" {
					delivered.Add(1)
				}
			})
			if err != nil {
				return err
			}
			sessions = append(sessions, s)
		}
	}
	var persisted, failed atomic.Int64
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	u0 := takeUsage(base)
	start := time.Now()
	body := []byte(`{"content":"tp"}`)
	for _, st := range setups {
		for w := 0; w < writersPerChannel; w++ {
			p, err := loadwire.DialPoster(st.owner.base, st.owner.token, "/channels/"+st.ch+"/messages")
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { p.Close() }()
				for time.Now().Before(stop) {
					if _, err := p.Post(body); err != nil {
						failed.Add(1)
						p.Close()
						if p, err = loadwire.DialPoster(st.owner.base, st.owner.token, "/channels/"+st.ch+"/messages"); err != nil {
							return
						}
						continue
					}
					persisted.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	want := persisted.Load() * listeners
	deadline := time.Now().Add(10 * time.Second)
	for delivered.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	u1 := takeUsage(base)
	fmt.Printf("throughput: %d channels × %d listeners, %d writers: %.0f messages/s persisted, %.0f deliveries/s, %d/%d deliveries arrived, %d failed\n",
		channels, listeners, channels*writersPerChannel, float64(persisted.Load())/elapsed.Seconds(),
		float64(delivered.Load())/elapsed.Seconds(), delivered.Load(), want, failed.Load())
	fmt.Println(costLine(u0, u1, persisted.Load(), delivered.Load()))
	fmt.Println(machineLine(os.TempDir()))
	return nil
}

// fanout connects n sessions (100 users × n/100 sessions) to one guild, sends one message,
// and measures the time from the send until the last session has received it.
func fanout(ctx context.Context, base string, n int) error {
	owner, err := register(base)
	if err != nil {
		return err
	}
	_, ch, err := newGuild(owner)
	if err != nil {
		return err
	}
	users := 100
	if n < users {
		users = n
	}
	var members []*user
	for i := 0; i < users; i++ {
		u, err := register(base)
		if err != nil {
			return err
		}
		if err := join(owner, u, ch); err != nil {
			return err
		}
		members = append(members, u)
	}
	var got, lastAt atomic.Int64
	var marker atomic.Pointer[string]
	onDispatch := func(t string, frame []byte) {
		if m := marker.Load(); t == "MESSAGE_CREATE" && m != nil && bytes.Contains(frame, []byte(*m)) {
			got.Add(1)
			lastAt.Store(time.Now().UnixNano())
		}
	}
	sessions, err := openSessions(n, func(i int) *user { return members[i%users] }, onDispatch)
	defer closeAll(sessions)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let READY/GUILD_CREATE traffic drain
	var took []time.Duration
	for r := 0; r < max(fanoutRounds, 1); r++ {
		m := "fanout-" + randomName()
		got.Store(0)
		marker.Store(&m)
		u0 := takeUsage(base)
		start := time.Now()
		if err := owner.call("POST", "/channels/"+ch+"/messages", map[string]string{"content": m}, nil); err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for got.Load() < int64(n) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		last := time.Unix(0, lastAt.Load())
		u1 := takeUsage(base)
		fmt.Printf("fanout: one message to %d sessions: %d received, last after %s\n", n, got.Load(), ms(last.Sub(start)))
		fmt.Println(costLine(u0, u1, 1, got.Load()))
		if got.Load() < int64(n) {
			return fmt.Errorf("only %d of %d sessions received the message", got.Load(), n)
		}
		took = append(took, last.Sub(start))
		time.Sleep(300 * time.Millisecond) // let the machine settle between rounds
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	fmt.Printf("fanout: %d rounds to %d sessions: best %s, median %s, worst %s\n", len(took), n, ms(took[0]), ms(percentile(took, 50)), ms(took[len(took)-1]))
	fmt.Println(machineLine(os.TempDir()))
	return nil
}

// idle opens n identified sessions that then sit idle, and reports the node's resident
// memory growth per session (from its /metrics process_resident_memory_bytes) and Go heap
// growth per session.
func idle(ctx context.Context, base string, n int) error {
	u, err := register(base)
	if err != nil {
		return err
	}
	if _, _, err := newGuild(u); err != nil {
		return err
	}
	rss0, heap0, err := nodeMemory(base)
	if err != nil {
		return err
	}
	sessions, err := openSessions(n, func(int) *user { return u }, nil)
	defer closeAll(sessions)
	if err != nil {
		return err
	}
	time.Sleep(idleSettle) // let the node's garbage collector settle
	rss1, heap1, err := nodeMemory(base)
	if err != nil {
		return err
	}
	fmt.Printf("idle: %d sessions: node RSS +%.1f MiB (%.1f KiB/session), Go heap+stacks in use +%.1f MiB (%.1f KiB/session)\n",
		n, float64(rss1-rss0)/(1<<20), float64(rss1-rss0)/1024/float64(n), float64(heap1-heap0)/(1<<20), float64(heap1-heap0)/1024/float64(n))
	return nil
}

// nodeMemory reads process_resident_memory_bytes and, as "heap", the Go heap plus goroutine
// stacks in use (go_memstats_heap_inuse_bytes + go_memstats_stack_inuse_bytes) from the
// node's /metrics.
func nodeMemory(base string) (rss, heap float64, err error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range []string{"process_resident_memory_bytes ", "go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes "} {
			if strings.HasPrefix(line, name) {
				v, _ := strconv.ParseFloat(strings.TrimPrefix(line, name), 64)
				if name == "process_resident_memory_bytes " {
					rss = v
				} else {
					heap += v
				}
			}
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no process_resident_memory_bytes in %s/metrics", base)
	}
	return rss, heap, sc.Err()
}

// openSessions connects n identified sessions, 64 at a time; userFor picks the user of the
// i-th. On error it returns the sessions it opened (for the caller to close) and the error.
func openSessions(n int, userFor func(i int) *user, onDispatch func(t string, frame []byte)) ([]*session, error) {
	sessions := make([]*session, 0, n)
	var mu sync.Mutex
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var connErr atomic.Value
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(u *user) {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := connect(u, onDispatch)
			if err != nil {
				connErr.Store(err)
				return
			}
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
		}(userFor(i))
	}
	wg.Wait()
	if err, _ := connErr.Load().(error); err != nil {
		return sessions, fmt.Errorf("opened %d of %d sessions: %w", len(sessions), n, err)
	}
	return sessions, nil
}

func closeAll(sessions []*session) {
	for _, s := range sessions {
		s.close()
	}
}
