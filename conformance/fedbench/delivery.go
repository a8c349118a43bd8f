package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-chat/hearth/conformance/loadwire"
)

// delivery measures REST create on node A → MESSAGE_CREATE on a gateway client of node B,
// open loop at o.rate messages per second from o.authors writers.
func delivery(o options) error {
	c, err := startCluster(o, 2, true)
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

	// Each author posts over a keep-alive connection of its own (loadwire.Poster), as cheap
	// for this tool as a request can be, since the tool shares the cores with the nodes.
	pools := make([]*loadwire.PosterPool, len(authors))
	for i, u := range authors {
		if pools[i], err = loadwire.NewPosterPool(1, a.base, u.token, "/channels/"+fg.channels[a]+"/messages"); err != nil {
			return err
		}
		defer pools[i].Close()
	}

	release, err := measuring(o.lock)
	if err != nil {
		return err
	}
	defer release()
	total := int(o.duration.Seconds() * float64(o.rate))
	interval := time.Second / time.Duration(o.rate)
	var mu sync.Mutex
	sentAt := make(map[string]time.Time, total)
	answered := make(map[string]answer, total)
	var failed atomic.Int64
	var wg sync.WaitGroup
	profA, profB := a.profile(o.profile, "delivery", o.duration), b.profile(o.profile, "delivery", o.duration)
	defer profA()
	defer profB()
	cpuA, cpuB, cpuSelf := loadwire.NodeCPU(a.base), loadwire.NodeCPU(b.base), loadwire.SelfCPU()
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
		go func(pp *loadwire.PosterPool) {
			defer wg.Done()
			data, err := pp.Post([]byte(`{"content":"` + content + `"}`))
			var m struct {
				ID string `json:"id"`
			}
			if err == nil {
				err = json.Unmarshal(data, &m)
			}
			if err != nil {
				failed.Add(1)
				return
			}
			at := time.Now()
			mu.Lock()
			answered[content] = answer{id: m.ID, at: at}
			mu.Unlock()
		}(pools[i%len(pools)])
	}
	wg.Wait()
	sendTime := time.Since(start)
	cores := func(cpu0, cpu1 float64) float64 { return (cpu1 - cpu0) / sendTime.Seconds() }
	cpuLine := fmt.Sprintf("delivery:   CPU while sending: %s %.2f cores, %s %.2f cores, fedbench %.2f cores",
		a.name, cores(cpuA, loadwire.NodeCPU(a.base)), b.name, cores(cpuB, loadwire.NodeCPU(b.base)), cores(cpuSelf, loadwire.SelfCPU()))
	_ = waitFor(30*time.Second, func() string {
		if n := got.count() - len(authors); n+int(failed.Load()) < total {
			return fmt.Sprintf("%d of %d", n, total)
		}
		return ""
	})
	got.mu.Lock()
	var lat []time.Duration
	var st stages
	slow := make([]int, int(sendTime/time.Second)+1) // deliveries over the goal, by second sent
	for content, at := range sentAt {
		r, ok := got.at[content]
		if ok {
			lat = append(lat, r.Sub(at))
			if r.Sub(at) > deliveryGoal {
				slow[min(int(at.Sub(start)/time.Second), len(slow)-1)]++
			}
		}
		if ans, answered := answered[content]; answered && ok {
			st.add(at, ans, r)
		}
	}
	got.mu.Unlock()
	sortDurations(lat)
	fmt.Printf("delivery: %d messages at %d/s from %d authors on %s (sent in %v): %d delivered on %s, %d REST failures; p50 %s, p99 %s, max %s\n",
		total, o.rate, len(authors), a.name, sendTime.Round(time.Millisecond), len(lat), b.name, failed.Load(),
		ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(percentile(lat, 100)))
	st.print(a.name, b.name)
	printSlow(slow, start)
	fmt.Println(cpuLine)
	if len(lat)+int(failed.Load()) < total {
		fmt.Printf("delivery: %s logged: %s\n", b.name, b.logSummary())
		return fmt.Errorf("%d messages never reached %s", total-len(lat)-int(failed.Load()), b.name)
	}
	return nil
}

// deliveryGoal is the delivery scenario's goal for p99 (the federation issue's).
const deliveryGoal = 15 * time.Millisecond

// printSlow tells how the deliveries over the goal spread over the run: over every second
// (the machine) or in a few (a stall of the nodes, such as a flush or a collection). The
// worst second's clock time lines it up with what the nodes did then (their logs, the times
// of their database files).
func printSlow(bySecond []int, start time.Time) {
	total, seconds, worst := 0, 0, 0
	for i, n := range bySecond {
		total += n
		if n > 0 {
			seconds++
		}
		if n > bySecond[worst] {
			worst = i
		}
	}
	fmt.Printf("delivery:   over %v: %d, sent in %d of %d seconds", deliveryGoal, total, seconds, len(bySecond))
	if total > 0 {
		fmt.Printf("; most in second %d (%d), from %s", worst, bySecond[worst],
			start.Add(time.Duration(worst)*time.Second).UTC().Format("15:04:05"))
	}
	fmt.Println()
}

// answer is node A's answer to one REST create: the message ID and when it arrived.
type answer struct {
	id string
	at time.Time
}

// stages splits each delivery at the moment node A signed the event, which the message ID
// tells (a federated message's ID carries its event's millisecond, spec/federation.md
// [FED-066]; same clock, since the nodes run on this machine), and at A's REST answer.
type stages struct {
	toSigned, toAnswer, signedToB []time.Duration
}

func (s *stages) add(sent time.Time, ans answer, delivered time.Time) {
	id, err := strconv.ParseUint(ans.id, 10, 64)
	if err != nil {
		return
	}
	signed := time.UnixMilli(int64(id>>22) + discordEpoch)
	s.toSigned = append(s.toSigned, signed.Sub(sent))
	s.toAnswer = append(s.toAnswer, ans.at.Sub(sent))
	s.signedToB = append(s.signedToB, delivered.Sub(signed))
}

// discordEpoch is the snowflake epoch in Unix milliseconds.
const discordEpoch = 1420070400000

func (s *stages) print(a, b string) {
	for _, st := range []struct {
		name string
		d    []time.Duration
	}{{"sent → signed on " + a + " (1 ms resolution)", s.toSigned}, {"sent → REST answer from " + a, s.toAnswer},
		{"signed on " + a + " → MESSAGE_CREATE on " + b + " (1 ms resolution)", s.signedToB}} {
		sortDurations(st.d)
		fmt.Printf("delivery:   %s: p50 %s, p90 %s, p99 %s\n", st.name, ms(percentile(st.d, 50)), ms(percentile(st.d, 90)), ms(percentile(st.d, 99)))
	}
}
