package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/testnode"
	"github.com/hearth-chat/hearth/voice/voiceclient"
)

// TestVoiceUnpublish checks VOICE-068, VOICE-069 and VOICE-076 through a real node: a member who
// turns the camera off (its m-line inactive, announced with a client offer) is shown to
// the guild without self_video, and the other member's m-line for that camera stops
// sending after a server offer; the camera comes back on the same m-line. A screen
// share ended with removeTrack clears self_stream the same way. A simulcast camera turned
// off and on again on its m-line comes back each time, though its layers return on their
// old SSRCs without the mid and rid header extensions, as Chromium sends them.
func TestVoiceUnpublish(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Config: func(c *config.Config) { c.VoiceLoopback = true }})
	alice, bob, carol := n.Register(t, "alice"), n.Register(t, "bob"), n.Register(t, "carol")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Cameras"}, &g)
	ch := ""
	for _, c := range g.Channels {
		if c.Type == 2 {
			ch = c.ID
		}
	}
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
	bob.Must("POST", "/invites/"+inv.Code, nil, nil)
	carol.Must("POST", "/invites/"+inv.Code, nil, nil)
	ag, bg, cg := alice.Connect(-1), bob.Connect(-1), carol.Connect(-1)
	api, err := voiceclient.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tok, endpoint := joinVoice(t, ag, g.ID, ch, false)
	ac, err := voiceclient.Dial(ctx, endpoint, api, alice.UserID, g.ID, tok, voiceclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	tok, endpoint = joinVoice(t, bg, g.ID, ch, false)
	bc, err := voiceclient.Dial(ctx, endpoint, api, bob.UserID, g.ID, tok, voiceclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()

	cam, err := ac.AddVideo("camera")
	if err != nil {
		t.Fatal(err)
	}
	pump := voiceclient.PumpVP8(cam)
	defer pump.Stop()

	camera := func() int64 { return bc.ReceivedFromSource(alice.UserID, "camera") }
	alicesCamera := func(on bool) func(voiceState) bool {
		return func(vs voiceState) bool { return vs.UserID == alice.UserID && in(ch)(vs) && vs.SelfVideo == on }
	}
	waitVoiceState(t, cg, "alice's camera on", alicesCamera(true))
	waitUntil(t, func() string {
		if camera() < 10 {
			return "bob does not receive alice's camera"
		}
		return ""
	})
	mid := bc.TrackMid(alice.UserID, "camera")
	if mid == "" || !bc.ServerSends(mid) {
		t.Fatalf("bob's m-line for alice's camera %q is not sending", mid)
	}
	ssrc := bc.ServerSSRC(mid)

	// Camera off: self_video false to the guild, bob's m-line stops sending, no packets.
	if err := ac.StopVideo(cam); err != nil {
		t.Fatal(err)
	}
	cg.WaitFor("alice's camera off after it was on", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		on := false
		for _, e := range events {
			var vs voiceState
			if e.T != "VOICE_STATE_UPDATE" || json.Unmarshal(e.D, &vs) != nil || vs.UserID != alice.UserID {
				continue
			}
			if vs.SelfVideo {
				on = true
			} else if on && in(ch)(vs) {
				return true
			}
		}
		return false
	})
	waitUntil(t, func() string {
		if bc.TrackMid(alice.UserID, "camera") != "" {
			return "bob's track map still lists alice's camera"
		}
		if bc.ServerSends(mid) {
			return "the node still sends on bob's m-line " + mid
		}
		return ""
	})
	waitUntil(t, func() string {
		// Packets in flight when the camera stopped may still arrive; then none
		// for 300 ms (the camera sends every 20 ms).
		if waitGrow(camera, camera(), 300*time.Millisecond) {
			return "bob still receives alice's stopped camera"
		}
		return ""
	})
	for _, p := range gcVoiceStates(t, carol) {
		if p.UserID == alice.UserID && p.SelfVideo {
			t.Fatalf("GUILD_CREATE shows alice's stopped camera: %+v", p)
		}
	}

	// Camera on again, on the same m-line.
	if err := ac.ResumeVideo(cam); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() string {
		m := bc.TrackMid(alice.UserID, "camera")
		if m == "" || !bc.ServerSends(m) {
			return "bob has no sending m-line for alice's camera again"
		}
		if bc.ServerSSRC(m) == ssrc {
			return fmt.Sprintf("alice's camera comes back to bob on SSRC %d, which m-line %s had (VOICE-077)", ssrc, m)
		}
		if !waitGrow(camera, camera(), time.Second) {
			return "bob does not receive alice's camera again"
		}
		return ""
	})

	// A screen share ended with removeTrack.
	screen, err := ac.AddVideo("screen")
	if err != nil {
		t.Fatal(err)
	}
	pump.Add(screen)
	waitVoiceState(t, cg, "alice sharing", func(vs voiceState) bool { return vs.UserID == alice.UserID && vs.SelfStream })
	if err := ac.RemoveVideo(screen); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() string {
		for _, p := range gcVoiceStates(t, carol) {
			if p.UserID == alice.UserID && in(ch)(p) && !p.SelfStream && p.SelfVideo {
				return ""
			}
		}
		return "alice's voice state still shows her screen share (or lost her camera)"
	})

	// A simulcast camera (rids q, h, f) turned off and on again on the same
	// m-line, as the web client does: bob gets it back each time.
	if err := ac.RemoveVideo(cam); err != nil {
		t.Fatal(err)
	}
	layers, err := ac.AddSimulcastVideo("camera")
	if err != nil {
		t.Fatal(err)
	}
	pump.Add(layers...)
	for i := 0; ; i++ {
		waitUntil(t, func() string {
			m := bc.TrackMid(alice.UserID, "camera")
			if m == "" || !bc.ServerSends(m) {
				return fmt.Sprintf("bob has no sending m-line for alice's simulcast camera (round %d)", i)
			}
			if !waitGrow(camera, camera(), time.Second) {
				return fmt.Sprintf("bob does not receive alice's simulcast camera (round %d)", i)
			}
			return ""
		})
		if i == 2 {
			break
		}
		if err := ac.StopVideo(layers[0]); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, func() string {
			if bc.TrackMid(alice.UserID, "camera") != "" {
				return fmt.Sprintf("bob's track map still lists alice's stopped simulcast camera (round %d)", i)
			}
			return ""
		})
		if err := ac.ResumeVideo(layers[0]); err != nil {
			t.Fatal(err)
		}
	}
	if code := ac.CloseCode(); code != 0 {
		t.Fatalf("alice's voice WebSocket closed with %d", code)
	}
}

// waitGrow reports whether n rises above before within d.
func waitGrow(n func() int64, before int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if n() > before {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
