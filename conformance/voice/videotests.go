package voice

import (
	"fmt"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// Video tests of spec/voice.md 3.4.1 and 3.8 beyond voice/video-layers:
// the capacity of a screen share's high layer, and simulcast layers that
// come back without their mid and rid header extensions.

// The high layer of voice/screen-1080p: 1920×1080 at 30 frames a second and
// about 2.5 Mbit/s (10,416 bytes a frame, in 9 packets).
var hd = layerShape{FPS: 30, FrameBytes: 2_500_000 / 8 / 30, W: 1920, H: 1080}

// hdWindow is how much of the high layer voice/screen-1080p measures, in
// RTP time (90 kHz): 2 seconds.
const hdWindow = 2 * 90000

// VOICE-106: "Screen share MUST support 1920×1080 at 30 frames per second on
// the high layer." A member shares its screen as simulcast whose high layer
// is VP8 at 1920×1080, 30 frames a second, about 2.5 Mbit/s; another member
// watches it and asks for the high layer. The SFU forwards without decoding,
// so synthetic frames of that size and rate stand in for an encoder's: the
// key frame's VP8 header declares 1920×1080, and every packet ends with the
// sender's trailer and is checked byte for byte (CRC-32 of the VP8 payload).
// Over 2 seconds of the high layer the watcher must get at least 27 whole
// frames a second, in RTP time and in arrival time. The watcher declares no
// video in Identify, so no downlink estimate limits its layers (VOICE-059):
// the test measures what the high layer carries, not how fast an estimate
// starting at a lower rate grows (VOICE-103).
func screen1080p(t *T) {
	_, g, so := setup(t)
	sb := members(t, g, 1)[0]
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{Video: true})
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{})
	a.waitReceive("B's audio reaches A", from(b, -1)) // A has answered the Server Offer for it
	screen := a.publishVideo("screen", screenBase, true, 0, layerShape{W: 480, H: 270}, layerShape{W: 960, H: 540}, hd)
	b.sendOp(opWatch, Obj{"user_id": a.User.ID, "watch": true})
	b.sendOp(opLayerRequest, Obj{"user_id": a.User.ID, "source": "screen", "max_layer": "high", "width": hd.W, "height": hd.H})
	high := videoOf(a, screenBase, 2)
	key := b.waitReceive("VOICE-106: a key frame of the high layer of A's screen share reaches B", func(e rx) bool { return high(e) && e.W > 0 })
	if key.W != hd.W || key.H != hd.H {
		t.Errorf("VOICE-106: the high layer's key frame reached B declaring %d×%d, A sent %d×%d", key.W, key.H, hd.W, hd.H)
	}
	perFrame := hd.packets()
	const want = 27 * hdWindow / 90000 // frames in the window at 27 a second
	var summary string
	t.Eventually(fmt.Sprintf("VOICE-106: %d s of the high layer at 1920×1080 and 30 frames/s reach B whole", hdWindow/90000), func() error {
		got := b.received(high)
		written := screen.written() // after: a packet is recorded before it is written
		frames := map[uint32][]rx{} // by RTP timestamp
		passed := false             // a packet after the window arrived
		for _, e := range got {
			d := int32(e.TS - key.TS)
			switch {
			case d < 0:
				continue
			case d >= hdWindow:
				passed = true
				continue
			}
			if w := written[e.N]; w.size != e.Size || w.sum != e.Sum {
				return harness.Permanent(fmt.Errorf("packet %d of the high layer reached B with %d VP8 payload bytes (CRC-32 %08x); A wrote %d (%08x)", e.N, e.Size, e.Sum, w.size, w.sum))
			}
			frames[e.TS] = append(frames[e.TS], e)
		}
		if !passed {
			return fmt.Errorf("the window has not passed: %d frames of it so far", len(frames))
		}
		whole, bytes := 0, 0
		var first, last time.Time
		for _, l := range frames {
			ns, marker, done := map[uint32]bool{}, false, time.Time{}
			size := 0
			for _, e := range l {
				if !ns[e.N] {
					ns[e.N] = true
					size += e.Size
				}
				marker = marker || e.Marker
				if e.At.After(done) {
					done = e.At
				}
			}
			if len(ns) != perFrame || !marker {
				continue
			}
			whole++
			bytes += size
			if first.IsZero() || done.Before(first) {
				first = done
			}
			if done.After(last) {
				last = done
			}
		}
		span := last.Sub(first)
		summary = fmt.Sprintf("%d of %d frames whole in %d s of RTP time (%d packets a frame), the first and last arriving %v apart; %.2f Mbit/s", whole, len(frames), hdWindow/90000, perFrame, span.Round(time.Millisecond), float64(bytes*8)/1e6/(hdWindow/90000))
		if whole < want {
			return fmt.Errorf("%s: expected at least %d", summary, want)
		}
		if fps := float64(whole-1) / span.Seconds(); fps < 27 {
			return fmt.Errorf("%s: %.1f frames a second as they arrived, expected at least 27", summary, fps)
		}
		return nil
	})
	t.Logf("the high layer at B: %s", summary)
}

// VOICE-078: "The server MUST take such layers up by the SSRCs it saw them on
// before." A simulcast camera is turned off as a browser does it (the
// transceiver's direction "inactive", Client Offer 102) and on again on the
// same m-line ("sendonly", op 102); its layers come back on their earlier
// SSRCs without the mid and rid header extensions, as Chromium sends them,
// while the offer declares new SSRCs. The member watching must get each
// layer again, twice over. VOICE-077: a layer that comes back on an m-line
// of the watcher's that carried the camera before does so on a new SSRC.
func simulcastResume(t *T) {
	_, g, so := setup(t)
	sb := members(t, g, 1)[0]
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{Video: true})
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{Video: true})
	a.waitReceive("B's audio reaches A", from(b, -1)) // A has answered the Server Offer for it
	cam := a.publishVideo("camera", camBase, true, 0)
	layers := []string{"low", "medium", "high"}
	since := time.Time{}
	for round := range 3 {
		what := "A's simulcast camera"
		if round > 0 {
			what = fmt.Sprintf("A's simulcast camera on again (%d of 2)", round)
		}
		for layer, name := range layers {
			b.sendOp(opLayerRequest, Obj{"user_id": a.User.ID, "source": "camera", "max_layer": name})
			b.waitReceive(fmt.Sprintf("VOICE-078: layer %s of %s reaches B", name, what), func(e rx) bool {
				return videoOf(a, camBase, layer)(e) && cam.writtenAt(e.N).After(since)
			})
		}
		if round == 2 {
			break
		}
		// The SSRCs each of B's m-lines has carried A's camera on.
		before := map[string]map[uint32]bool{}
		for _, e := range b.received(videoOf(a, camBase, -1)) {
			if before[e.Mid] == nil {
				before[e.Mid] = map[uint32]bool{}
			}
			before[e.Mid][e.SSRC] = true
		}
		cam.stop()
		t.Eventually("B's Track Map without A's stopped camera", func() error {
			m, _ := b.trackMap()
			for mid, x := range m {
				if str(x["user_id"]) == a.User.ID && str(x["source"]) == "camera" {
					return fmt.Errorf("the Track Map still has A's camera on mid %s", mid)
				}
			}
			return nil
		})
		since = time.Now()
		cam.resume()
		for i, tr := range cam.tracks {
			if !tr.resumed() || tr.ssrc != cam.ssrc[i] {
				t.Fatalf("the suite's client did not resume layer %d on its earlier SSRC %d", i, cam.ssrc[i])
			}
		}
		resumed := since
		t.Cleanup(func() {
			after := map[string]map[uint32]bool{}
			for _, e := range b.received(videoOf(a, camBase, -1)) {
				if !cam.writtenAt(e.N).After(resumed) {
					continue
				}
				if before[e.Mid][e.SSRC] {
					t.Errorf("VOICE-077: A's camera, on again, reached B on m-line %s on SSRC %d, which that m-line carried before", e.Mid, e.SSRC)
					return
				}
				if after[e.Mid] == nil {
					after[e.Mid] = map[uint32]bool{}
				}
				after[e.Mid][e.SSRC] = true
			}
			t.Logf("round %d: B received A's camera on (mid: SSRCs) %v before the stop, %v after the resume", round+1, before, after)
		})
	}
}
