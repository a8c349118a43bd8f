package fed

import (
	"crypto/rand"
	"fmt"
	"slices"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// BenchmarkIngest measures signed events verified, validated, stored and
// delivered per second on one node. "gossip" runs many validators at once,
// as gossipsub does (each in its own goroutine); "fetch" applies sync
// responses of 1,000 events. Goal: ≥ 10,000/s.
func BenchmarkIngest(b *testing.B) {
	for _, durable := range []bool{false, true} {
		for _, path := range []string{"gossip", "fetch"} {
			b.Run(fmt.Sprintf("%s/syncwrites=%v", path, durable), func(b *testing.B) {
				benchIngest(b, path, durable)
			})
		}
	}
}

func benchIngest(b *testing.B, path string, durable bool) {
	alice := startNode(b, "alice", func(c *Config) { c.OnEvent = nil })
	if durable {
		alice.stop()
		alice.startDurable()
	}
	g, err := alice.svc.CreateGuild(ctx(b), "alice", "g")
	if err != nil {
		b.Fatal(err)
	}
	ch := general(b, alice, g)
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	bob, _ := event.NewSigner(k)
	rt := alice.svc.guild(g)
	bu := event.User{Node: bob.Origin(), Name: "bob"}
	if _, err := alice.svc.issue(ctx(b), rt, bu, event.KindMemberJoin, "", &event.MemberJoin{User: bu}); err != nil {
		b.Fatal(err)
	}
	sn := rt.st.Info().SN
	now := uint64(time.Now().UnixMilli()) + 1
	raws := make([][]byte, b.N)
	for i := range raws {
		ev, err := bob.Sign(event.Envelope{Kind: event.KindMessageCreate, Guild: g, Channel: ch, Author: bu,
			Seq: uint64(i + 1), TS: event.MakeHLC(now+uint64(i/1000), uint16(i%1000)), SN: sn},
			&event.MessageCreate{Content: "a chat message of ordinary length"})
		if err != nil {
			b.Fatal(err)
		}
		raws[i] = ev.Raw
	}
	b.ResetTimer()
	start := time.Now()
	switch path {
	case "gossip":
		var next atomic.Int64
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1) - 1
				if _, err := alice.svc.ingest(g, "", raws[i], false); err != nil {
					b.Error(err)
					return
				}
			}
		})
	case "fetch":
		for i := 0; i < len(raws); i += 1000 {
			chunk := raws[i:min(i+1000, len(raws))]
			n, err := (*applier)(alice.svc).Apply(ctx(b), g, "", chunk)
			if err != nil || n != len(chunk) {
				b.Fatalf("applied %d of %d: %v", n, len(chunk), err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkCrossHostLatency measures the time from Publish on one node to
// OnEvent on another over loopback, and reports p50 and p99.
func BenchmarkCrossHostLatency(b *testing.B) {
	arrived := make(chan event.ID, 1024)
	alice := startNode(b, "alice")
	bob := startNode(b, "bob", func(c *Config) {
		c.OnEvent = func(ev *event.Event) {
			if ev.Kind == event.KindMessageCreate {
				arrived <- ev.ID
			}
		}
		c.AuthorRate, c.AuthorBurst = 1e9, 1e9
	})
	g, ch := guildOf(b, alice, bob)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		ev, err := alice.svc.Publish(ctx(b), g, ch, "alice", event.KindMessageCreate, &event.MessageCreate{Content: "ping"})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case id := <-arrived:
			if id != ev.ID {
				b.Fatal("out of order")
			}
		case <-time.After(10 * time.Second):
			b.Fatal("message not delivered")
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCrossHostLoad publishes at a steady 1,000 messages/s from one
// node and reports the delivery latency at another (goal: p99 < 15 ms).
func BenchmarkCrossHostLoad(b *testing.B) {
	type arrival struct {
		id event.ID
		at time.Time
	}
	arrived := make(chan arrival, 1<<16)
	alice := startNode(b, "alice")
	bob := startNode(b, "bob", func(c *Config) {
		c.OnEvent = func(ev *event.Event) {
			if ev.Kind == event.KindMessageCreate {
				arrived <- arrival{ev.ID, time.Now()}
			}
		}
		c.AuthorRate, c.AuthorBurst = 1e9, 1e9
	})
	g, ch := guildOf(b, alice, bob)
	sent := make(map[event.ID]time.Time, b.N)
	var sentMu gosync.Mutex
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < b.N; i++ {
		<-tick.C
		start := time.Now()
		ev, err := alice.svc.Publish(ctx(b), g, ch, "alice", event.KindMessageCreate, &event.MessageCreate{Content: "load"})
		if err != nil {
			b.Fatal(err)
		}
		sentMu.Lock()
		sent[ev.ID] = start
		sentMu.Unlock()
	}
	lat := make([]time.Duration, 0, b.N)
	timeout := time.After(30 * time.Second)
	for len(lat) < b.N {
		select {
		case a := <-arrived:
			sentMu.Lock()
			lat = append(lat, a.at.Sub(sent[a.id]))
			sentMu.Unlock()
		case <-timeout:
			b.Fatalf("only %d of %d delivered", len(lat), b.N)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCatchUp measures catch-up after a partition: b.N messages are
// written on alice while bob is cut off; after the heal it reports the time
// until bob holds the first of them and the rate at which he applies them
// (goal: ≥ 10,000/s).
func BenchmarkCatchUp(b *testing.B) {
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("syncwrites=%v", durable), func(b *testing.B) { benchCatchUp(b, durable) })
	}
}

func benchCatchUp(b *testing.B, durable bool) {
	var mu gosync.Mutex
	var first, last time.Time
	got := 0
	alice := startNode(b, "alice")
	count := func(c *Config) {
		c.OnEvent = func(ev *event.Event) {
			if ev.Kind != event.KindMessageCreate {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			if got == 0 {
				first = now
			}
			got++
			last = now
		}
	}
	bob := startNode(b, "bob", count)
	if durable {
		bob.stop()
		bob.startDurable(count)
	}
	g, ch := guildOf(b, alice, bob)
	cutOff(b, bob, alice)
	for i := 0; i < b.N; i++ {
		if _, err := alice.svc.Publish(ctx(b), g, ch, "alice", event.KindMessageCreate, &event.MessageCreate{Content: fmt.Sprintf("a chat message of ordinary length %d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	heal := time.Now()
	alice.gater.unblockAll()
	bob.gater.unblockAll()
	waitFor(b, 120*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		if got < b.N {
			return fmt.Sprintf("bob holds %d of %d", got, b.N)
		}
		return ""
	})
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	b.ReportMetric(float64(first.Sub(heal).Milliseconds()), "first-ms")
	if span := last.Sub(first); span > 0 {
		b.ReportMetric(float64(got)/span.Seconds(), "events/s")
	}
}
