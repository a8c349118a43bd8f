package signal

import (
	"sync"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/voice/internal/voiceclient"
	"github.com/hearth-chat/hearth/voice/sfu"
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
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(30 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			key := seq%10 == 0
			_ = voiceclient.WriteVP8(screen, seq, key)
			_ = voiceclient.WriteVP8(camera, seq, key)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

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
