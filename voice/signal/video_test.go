package signal

import (
	"fmt"

	"github.com/pion/rtp"
	"sync"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/voice/sfu"
	"github.com/hearth-chat/hearth/voice/voiceclient"
)

// TestScreenShareIsOptIn publishes a camera and a screen share through a
// client offer (op 102) and checks that the camera reaches others at once
// while the screen reaches only a member who sent Watch (VOICE-100).
func TestScreenShareIsOptIn(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	a := e.join("1", "c1")
	b := e.join("2", "c1")
	screen, err := a.AddVideo("screen")
	if err != nil {
		t.Fatal(err)
	}
	camera, err := a.AddVideo("camera")
	if err != nil {
		t.Fatal(err)
	}
	pump := voiceclient.PumpVP8(screen, camera)
	defer pump.Stop()

	waitFor(t, 10*time.Second, func() string {
		if b.ReceivedFromSource("1", "camera") < 10 {
			return "B does not receive A's camera"
		}
		return ""
	})
	if n := b.ReceivedFromSource("1", "screen"); n != 0 {
		t.Fatalf("B received %d screen packets without watching", n)
	}
	if st, _ := e.events.last("1"); !st.SelfStream || !st.SelfVideo {
		t.Fatalf("state %+v, want self_stream and self_video", st)
	}
	b.Send(OpWatch, watch{UserID: "1", Watch: true})
	waitFor(t, 10*time.Second, func() string {
		if b.ReceivedFromSource("1", "screen") < 10 {
			return "B does not receive A's screen after Watch"
		}
		return ""
	})
	b.Send(OpWatch, watch{UserID: "1", Watch: false})
	waitFor(t, 5*time.Second, func() string {
		if growing(func() int64 { return b.ReceivedFromSource("1", "screen") }) {
			return "B still receives the screen after unwatching"
		}
		return ""
	})
	// A second screen share from the same member is refused (VOICE-065).
	_, _ = a.AddVideo("screen")
	select {
	case <-a.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("second screen share accepted")
	}
	if code := a.CloseCode(); code != 4102 {
		t.Fatalf("close code %d, want 4102", code)
	}
}

// TestSimulcastLayerRequest publishes a camera in three simulcast layers
// and checks that a subscriber gets the low layer by default, the layer it
// asks for after a Layer Request, on one SSRC with continuous sequence
// numbers across the switches (VOICE-101 to VOICE-105).
func TestSimulcastLayerRequest(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	a := e.join("1", "c1")
	var mu sync.Mutex
	var marks []byte
	ssrcs := map[uint32]bool{}
	var seqs []uint16
	b := e.connectOpts("2", "g1", e.token("2", "g1", "c1"), voiceclient.Options{
		OnRTP: func(user, source string, p *rtp.Packet) {
			if user != "1" || source != "camera" || len(p.Payload) == 0 {
				return
			}
			mu.Lock()
			marks = append(marks, p.Payload[len(p.Payload)-1])
			ssrcs[p.SSRC] = true
			seqs = append(seqs, p.SequenceNumber)
			mu.Unlock()
		},
	})
	t.Cleanup(b.Close)
	layers, err := a.AddSimulcastVideo("camera")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for l, tr := range layers {
				_ = tr.WriteVP8(seq, seq%15 == 0, byte(l))
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	lastMark := func(want byte) func() string {
		return func() string {
			mu.Lock()
			defer mu.Unlock()
			if n := len(marks); n < 5 || marks[n-1] != want {
				return fmt.Sprintf("last layers received %v, want %d", marks[max(0, n-5):], want)
			}
			return ""
		}
	}
	waitFor(t, 10*time.Second, lastMark(0))
	b.Send(OpLayerRequest, layerRequest{UserID: "1", Source: "camera", MaxLayer: "high"})
	waitFor(t, 10*time.Second, lastMark(2))
	b.Send(OpLayerRequest, layerRequest{UserID: "1", Source: "camera", MaxLayer: "medium"})
	waitFor(t, 10*time.Second, lastMark(1))

	mu.Lock()
	defer mu.Unlock()
	if len(ssrcs) != 1 {
		t.Fatalf("camera arrived on SSRCs %v, want one", ssrcs)
	}
	for i := 1; i < len(seqs); i++ {
		if d := seqs[i] - seqs[i-1]; d != 1 {
			t.Fatalf("sequence jumps by %d at packet %d (%d -> %d)", d, i, seqs[i-1], seqs[i])
		}
	}
}
