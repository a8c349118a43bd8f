package server_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/testnode"
	"github.com/hearth-chat/hearth/voice/voiceclient"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// voiceRoom is a node with two voice channels, A and B, where alice talks in A and carol
// in B (each packet's first payload byte names its speaker), and bob, connected to the
// gateway, who joins or switches: the set-up of the join and switch benchmarks.
type voiceRoom struct {
	n            *testnode.Node
	guild, a, b  string
	bob          *testnode.Client
	bg           *testnode.Gateway
	api          *webrtc.API
	alice, carol *voiceclient.Client
	stop         chan struct{}
	wg           sync.WaitGroup
}

func newVoiceRoom(tb testing.TB) *voiceRoom {
	n := testnode.Start(tb, testnode.Options{Config: func(c *config.Config) { c.VoiceLoopback = true }})
	alice, bob, carol := n.Register(tb, "alice"), n.Register(tb, "bob"), n.Register(tb, "carol")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Bench"}, &g)
	r := &voiceRoom{n: n, guild: g.ID, bob: bob, stop: make(chan struct{})}
	text := ""
	for _, c := range g.Channels {
		switch c.Type {
		case 0:
			text = c.ID
		case 2:
			r.a = c.ID
		}
	}
	var chB struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "B", "type": 2}, &chB)
	r.b = chB.ID
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+text+"/invites", map[string]any{}, &inv)
	bob.Must("POST", "/invites/"+inv.Code, nil, nil)
	carol.Must("POST", "/invites/"+inv.Code, nil, nil)
	api, err := voiceclient.NewAPI()
	if err != nil {
		tb.Fatal(err)
	}
	r.api = api
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, m := range []struct {
		c    *testnode.Client
		ch   string
		mark byte
		out  **voiceclient.Client
	}{{alice, r.a, 'A', &r.alice}, {carol, r.b, 'C', &r.carol}} {
		gw := m.c.Connect(-1)
		tok, endpoint := joinVoice(tb, gw, g.ID, m.ch, false)
		vc, err := voiceclient.Dial(ctx, endpoint, api, m.c.UserID, g.ID, tok, voiceclient.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		*m.out = vc
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			payload := make([]byte, 60)
			payload[0] = m.mark
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-r.stop:
					return
				case <-tick.C:
					_ = vc.WriteAudio(payload, 20)
				}
			}
		}()
	}
	r.bg = bob.Connect(-1)
	tb.Cleanup(func() {
		close(r.stop)
		r.wg.Wait()
		r.alice.Close()
		r.carol.Close()
	})
	return r
}

// firstFrom returns voiceclient options whose OnRTP sends on the returned channel the time
// of each packet whose speaker mark is wanted().
func firstFrom(wanted func() byte) (voiceclient.Options, <-chan time.Time) {
	ch := make(chan time.Time, 1)
	return voiceclient.Options{OnRTP: func(_, _ string, p *rtp.Packet) {
		if len(p.Payload) > 0 && p.Payload[0] == wanted() {
			select {
			case ch <- time.Now():
			default:
			}
		}
	}}, ch
}

// report adds the p50, p99 and max of ds to b's output.
func report(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	pct := func(p int) float64 { return float64(ds[(len(ds)-1)*p/100]) / float64(time.Millisecond) }
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(99), "p99-ms")
	b.ReportMetric(pct(100), "max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkVoiceJoin measures the join of issue 7's goal: gateway op 4 sent to the first
// packet of another member's audio received, through VOICE_SERVER_UPDATE, the voice
// WebSocket, the offer/answer, ICE and DTLS (a fresh PeerConnection each time).
func BenchmarkVoiceJoin(b *testing.B) {
	r := newVoiceRoom(b)
	opts, first := firstFrom(func() byte { return 'A' })
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		tok, endpoint := joinVoice(b, r.bg, r.guild, r.a, false)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		vc, err := voiceclient.Dial(ctx, endpoint, r.api, r.bob.UserID, r.guild, tok, opts)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-first:
			ds = append(ds, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatal("no audio from alice 10 s after op 4")
		}
		r.bg.Send(map[string]any{"op": 4, "d": map[string]any{"guild_id": r.guild, "channel_id": nil}})
		<-vc.Closed()
		vc.Close()
		select { // a packet that came in after the first one
		case <-first:
		default:
		}
	}
	report(b, ds)
}

// BenchmarkVoiceSwitch measures a channel switch on one PeerConnection: gateway op 4 for the
// other channel sent to the first packet of that channel's speaker received, through
// VOICE_SERVER_UPDATE and Channel Switch (106) on the open voice WebSocket.
func BenchmarkVoiceSwitch(b *testing.B) {
	r := newVoiceRoom(b)
	var mu sync.Mutex
	want := byte('A')
	opts, first := firstFrom(func() byte { mu.Lock(); defer mu.Unlock(); return want })
	tok, endpoint := joinVoice(b, r.bg, r.guild, r.a, false)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	vc, err := voiceclient.Dial(ctx, endpoint, r.api, r.bob.UserID, r.guild, tok, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		b.Fatal("no audio from alice")
	}
	var ds []time.Duration
	for i := 0; b.Loop(); i++ {
		ch, mark := r.b, byte('C')
		if i%2 == 1 {
			ch, mark = r.a, 'A'
		}
		mu.Lock()
		want = mark
		mu.Unlock()
		select {
		case <-first:
		default:
		}
		start := time.Now()
		tok, _ := joinVoice(b, r.bg, r.guild, ch, false)
		vc.Send(voiceclient.OpChannelSwitch, map[string]string{"token": tok})
		select {
		case at := <-first:
			ds = append(ds, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatalf("no audio from %c 10 s after op 4", mark)
		}
	}
	report(b, ds)
}
