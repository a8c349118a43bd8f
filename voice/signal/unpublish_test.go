package signal

import (
	"testing"
	"time"

	"github.com/hearth-chat/hearth/voice/sfu"
	"github.com/hearth-chat/hearth/voice/voiceclient"
)

// TestUnpublish stops a camera by turning its m-line inactive and checks
// VOICE-069 and VOICE-076: the member's state loses self_video, the subscriber gets a
// server offer in which the m-line no longer sends and a track map without
// it, and no more packets. The same m-line then publishes again. A screen
// share removed with removeTrack may be shared again on a new m-line
// (VOICE-068).
func TestUnpublish(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	a := e.join("1", "c1")
	b := e.join("2", "c1")
	cam, err := a.AddVideo("camera")
	if err != nil {
		t.Fatal(err)
	}
	pump := voiceclient.PumpVP8(cam)
	defer pump.Stop()
	camera := func() int64 { return b.ReceivedFromSource("1", "camera") }
	waitFor(t, 10*time.Second, func() string {
		if camera() < 10 {
			return "B does not receive A's camera"
		}
		if st, _ := e.events.last("1"); !st.SelfVideo {
			return "A's state lacks self_video"
		}
		return ""
	})
	mid := b.TrackMid("1", "camera")
	if mid == "" || !b.ServerSends(mid) {
		t.Fatalf("B's camera m-line %q not sending", mid)
	}

	if err := a.StopVideo(cam); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		if st, _ := e.events.last("1"); st.SelfVideo || st.ChannelID != "c1" {
			return "A's state still has self_video"
		}
		if b.TrackMid("1", "camera") != "" {
			return "B's track map still lists A's camera"
		}
		if b.ServerSends(mid) {
			return "the server still sends on B's camera m-line " + mid
		}
		return ""
	})
	if growing(camera) {
		t.Fatal("B still receives A's stopped camera")
	}

	// The same m-line publishes again (direction back to sendonly).
	if err := a.ResumeVideo(cam); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		if st, _ := e.events.last("1"); !st.SelfVideo {
			return "A's state lacks self_video after the resume"
		}
		m := b.TrackMid("1", "camera")
		if m == "" || !b.ServerSends(m) {
			return "B has no sending m-line for A's camera again"
		}
		if !growing(camera) {
			return "B does not receive A's camera again"
		}
		return ""
	})

	// A screen share removed with removeTrack; a new share on a new m-line is
	// not a second screen (VOICE-065 counts sending m-lines only).
	screen, err := a.AddVideo("screen")
	if err != nil {
		t.Fatal(err)
	}
	pump.Add(screen)
	waitFor(t, 10*time.Second, func() string {
		if st, _ := e.events.last("1"); !st.SelfStream {
			return "A's state lacks self_stream"
		}
		return ""
	})
	if err := a.RemoveVideo(screen); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		if st, _ := e.events.last("1"); st.SelfStream || !st.SelfVideo {
			return "A's state after removing the screen: want self_video without self_stream"
		}
		return ""
	})
	screen2, err := a.AddVideo("screen")
	if err != nil {
		t.Fatal(err)
	}
	pump.Add(screen2)
	b.Send(OpWatch, watch{UserID: "1", Watch: true})
	waitFor(t, 10*time.Second, func() string {
		if st, _ := e.events.last("1"); !st.SelfStream {
			return "A's state lacks self_stream after sharing again"
		}
		if !growing(func() int64 { return b.ReceivedFromSource("1", "screen") }) {
			return "B does not receive A's new screen share"
		}
		return ""
	})

	// A simulcast camera on a new m-line replaces the old camera, and stops
	// with every layer.
	if err := a.RemoveVideo(cam); err != nil {
		t.Fatal(err)
	}
	layers, err := a.AddSimulcastVideo("camera")
	if err != nil {
		t.Fatal(err)
	}
	pump.Add(layers...)
	waitFor(t, 10*time.Second, func() string {
		m := b.TrackMid("1", "camera")
		if m == "" || !b.ServerSends(m) {
			return "B has no m-line for A's simulcast camera"
		}
		if !growing(camera) {
			return "B does not receive A's simulcast camera"
		}
		return ""
	})
	if err := a.RemoveVideo(layers[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		if st, _ := e.events.last("1"); st.SelfVideo {
			return "A's state still has self_video after the simulcast camera stopped"
		}
		if b.TrackMid("1", "camera") != "" {
			return "B's track map still lists A's simulcast camera"
		}
		return ""
	})
	if growing(camera) {
		t.Fatal("B still receives A's stopped simulcast camera")
	}
	if code := a.CloseCode(); code != 0 {
		t.Fatalf("A closed with %d", code)
	}
}
