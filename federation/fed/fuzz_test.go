package fed

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
)

// FuzzIngest feeds arbitrary bytes to the gossip validators of a node that
// holds a guild: nothing panics, nothing undecodable is accepted, and an
// accepted event is stored exactly once.
func FuzzIngest(f *testing.F) {
	alice := startNode(f, "alice")
	g, err := alice.svc.CreateGuild(ctx(f), "alice", "g")
	if err != nil {
		f.Fatal(err)
	}
	ch := general(f, alice, g)
	ev, err := alice.svc.Publish(ctx(f), g, ch, "alice", event.KindMessageCreate, &event.MessageCreate{Content: "seed"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ev.Raw, false)
	f.Add(ev.Raw[:len(ev.Raw)/2], false)
	f.Add([]byte{0xa2, 0x00, 0x41, 0x00, 0x01, 0x80}, true)
	f.Fuzz(func(t *testing.T, raw []byte, ephemeral bool) {
		verdict := alice.svc.handleGossip(ctx(t), g, "12D3KooWHhinnS1JuWnGe6dWxBm2GWtTDBtEa8tUphMoQxZ7TDYs", raw, ephemeral)
		if verdict == 0 { // accepted: it must decode and verify
			ev, err := event.Decode(raw)
			if err != nil || ev.Verify() != nil {
				t.Fatalf("accepted an invalid event: %v", err)
			}
		}
	})
}

// FuzzParseInvite checks the invite decoder on untrusted text.
func FuzzParseInvite(f *testing.F) {
	inv := Invite{Guild: event.HashID([]byte("g")), Code: "abcdefgh", Home: "", Addrs: [][]byte{{4, 127, 0, 0, 1, 6, 0x0f, 0xa1}}}
	f.Add(inv.String())
	f.Add("hearth:")
	f.Add("hearth:oQA")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseInvite(s)
		if err != nil {
			return
		}
		if len(got.HomeAddrs()) == 0 || got.Code == "" {
			t.Fatal("accepted an invite without address or code")
		}
		again, err := ParseInvite(got.String())
		if err != nil || again.Guild != got.Guild || again.Code != got.Code || !bytes.Equal(again.Addrs[0], got.Addrs[0]) {
			t.Fatalf("invite does not round-trip: %v", err)
		}
	})
}

// TestPresenceExpiry: a remote user whose node stops refreshing goes offline
// after the TTL [EVT-082] [FED-061], measured on a fake clock.
func TestPresenceExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	alice := startNode(t, "alice", func(c *Config) { c.Now = clock })
	bob := startNode(t, "bob")
	guildOf(t, alice, bob)
	bobU := event.User{Node: bob.svc.Node(), Name: "bob"}
	status := func() (uint8, bool) {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		st, ok := alice.pres[bobU]
		return st, ok
	}
	waitFor(t, 10*time.Second, func() string {
		// Again on every poll: a batch sent before the mesh formed is lost.
		bob.svc.SetPresence("bob", event.StatusOnline)
		if st, _ := status(); st != event.StatusOnline {
			return "bob not online at alice"
		}
		return ""
	})
	bob.stop() // vanishes without saying goodbye
	advance(PresenceTTL - time.Second)
	time.Sleep(300 * time.Millisecond) // several expiry sweeps at 100 ms
	if st, _ := status(); st != event.StatusOnline {
		t.Fatal("bob expired before the TTL")
	}
	advance(2 * time.Second)
	waitFor(t, 5*time.Second, func() string {
		if st, _ := status(); st != event.StatusOffline {
			return "bob did not expire after the TTL"
		}
		return ""
	})
}

// TestCloseStopsGoroutines: after Close, no goroutine of the federation
// packages is left running.
func TestCloseStopsGoroutines(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	g, ch := guildOf(t, alice, bob)
	send(t, bob, g, ch, "hi")
	bob.svc.SetPresence("bob", event.StatusOnline)
	waitFor(t, 10*time.Second, func() string { return converged(ch, 1, alice, bob) })
	alice.stop()
	bob.stop()
	waitFor(t, 10*time.Second, func() string {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, gr := range strings.Split(stacks, "\n\n") {
			if strings.Contains(gr, "hearth/federation/") && !strings.Contains(gr, "TestCloseStopsGoroutines") &&
				!strings.Contains(gr, "testing.tRunner") {
				return "leaked goroutine:\n" + gr
			}
		}
		return ""
	})
}
