package voice

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// Voice media tests (spec/voice.md §3.3–3.6): members with the suite's own
// WebRTC client (media.go) exchanging real RTP through the SFU.

// members makes n-1 more members of g, each with a gateway session that has
// seen the guild.
func members(t *T, g *harness.Guild, n int) []*harness.Session {
	var out []*harness.Session
	for range n {
		u := t.NewUserOn(g.Owner.Node)
		t.Join(g, u)
		s := t.Connect(u, harness.AllIntents)
		t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
		out = append(out, s)
	}
	return out
}

// voiceChannel creates another voice channel in g.
func voiceChannel(t *T, g *harness.Guild, name string) string {
	var ch Obj
	t.OK(g.Owner.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": name, "type": 2}, &ch)
	return str(ch["id"])
}

// noneAfter fails when c received a packet written by sender after at.
func noneAfter(t *T, c, sender *mediaClient, at time.Time, what string) {
	for _, e := range c.received(from(sender, -1)) {
		if w := sender.writtenAt(e.N); !w.IsZero() && w.After(at) {
			t.Errorf("%s: packet %d of %s, written %v after, reached %s", what, e.N, sender.User.Name, w.Sub(at), c.User.Name)
			return
		}
	}
}

// VOICE-054: the server trickles its candidates with op 103 and takes the
// client's (the suite's client sends its offer without candidates and
// trickles every one). VOICE-057, VOICE-058: each received track is the
// member the Track Map names for its mid, and a member's leave changes the
// map.
func forwarding(t *T) {
	_, g, so := setup(t)
	sb := members(t, g, 1)[0]
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{})
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{})
	t.Eventually("VOICE-054: an ICE Candidate (103) from the server to a client that trickles", func() error {
		if len(a.seen(opICECandidate)) == 0 {
			return fmt.Errorf("none")
		}
		return nil
	})
	for _, pair := range [][2]*mediaClient{{a, b}, {b, a}} {
		src, dst := pair[0], pair[1]
		e := dst.waitReceive(fmt.Sprintf("%s's audio reaches %s", src.User.Name, dst.User.Name), from(src, -1))
		t.Eventually("VOICE-057: the Track Map names the sender of each received track", func() error {
			m, _ := dst.trackMap()
			if got := str(m[e.Mid]["user_id"]); got != src.User.ID {
				return fmt.Errorf("mid %s carries %s's packets, the Track Map names %q (%s)", e.Mid, src.User.Name, got, dst.debug())
			}
			if got := str(m[e.Mid]["source"]); got != "microphone" {
				return fmt.Errorf("mid %s: source %q, expected microphone", e.Mid, got)
			}
			return nil
		})
	}
	_ = so.Send(harness.OpVoiceState, Obj{"guild_id": g.ID, "channel_id": nil, "self_mute": false, "self_deaf": false})
	t.Eventually("VOICE-058: a new Track Map without the member who left", func() error {
		m, _ := b.trackMap()
		for mid, e := range m {
			if str(e["user_id"]) == a.User.ID {
				return fmt.Errorf("mid %s still maps to %s", mid, a.User.Name)
			}
		}
		return nil
	})
}

// VOICE-070, VOICE-071: speaking follows the audio level of the microphone:
// it starts when 2 of the last 3 packets are loud (never with one loud packet
// in five) and stops without loud packets, by quiet packets or by DTX.
// VOICE-072: never sooner than 400 ms after the last loud packet. VOICE-073:
// every other member gets each change, and a member entering the room gets
// the members speaking then. VOICE-075: a client's own Speaking (5) does not
// override the server's detection.
func speaking(t *T) {
	_, g, so := setup(t)
	ss := members(t, g, 2)
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{})
	b := enterVoice(t, ss[0], g.ID, g.Voice, mediaOpts{})
	id := a.User.ID

	a.setLevels(10, 127, 127, 127, 127) // one loud packet in five: not speaking
	a.waitWritten(50)
	a.waitSFURead("the sparse loud packets")
	b.sync("after the sparse loud packets")
	if l := b.speaking(id); len(l) > 0 {
		t.Errorf("VOICE-071: one loud packet in five reported as speaking: %v", l)
	}

	a.setLevel(10)
	on := b.waitSpeaking("VOICE-070: Speaking (5) for a member sending loud packets", id, true, 0)
	c := enterVoice(t, ss[1], g.ID, g.Voice, mediaOpts{})
	cOn := c.waitSpeaking("VOICE-073: a member entering the room gets Speaking (5) for the member speaking", id, true, 0)

	// Quiet packets end speaking after the hangover; so does DTX.
	for i, quiet := range []int32{127, -1} {
		a.setLevel(quiet)
		if quiet > 0 {
			// A client's own Speaking (5) is advisory (VOICE-075).
			a.sendOp(opSpeaking, Obj{"speaking": 1, "delay": 0, "ssrc": a.micSSRC.Load()})
			a.sync("after A's own Speaking (5)")
		}
		off := b.waitSpeaking(fmt.Sprintf("VOICE-071: speaking ends by %s", []string{"quiet packets", "DTX"}[i]), id, false, on+1)
		last := time.Unix(0, a.lastLoud.Load())
		l := b.speaking(id)
		if gap := l[off].At.Sub(last); gap < 400*time.Millisecond {
			t.Errorf("VOICE-072: the stop arrived %v after the last loud packet was written, expected at least 400 ms", gap)
		}
		if i == 0 {
			b.sync("after A's own Speaking (5)")
			l = b.speaking(id)
			if len(l) > off+1 {
				t.Errorf("VOICE-075: a Speaking (5) from a quiet member's client turned speaking on: %v", l[off:])
			}
		}
		cOff := c.waitSpeaking("VOICE-073: every other member gets the change", id, false, cOn+1)
		a.setLevel(10)
		on = b.waitSpeaking("speaking again", id, true, off+1)
		cOn = c.waitSpeaking("VOICE-073: every other member gets the change", id, true, cOff+1)
	}
}

// VOICE-074: a server-muted member is not reported speaking. VOICE-081: its
// audio is dropped at the SFU whatever its client sends.
func serverMute(t *T) {
	o, g, so := setup(t)
	ss := members(t, g, 2)
	a := enterVoice(t, ss[0], g.ID, g.Voice, mediaOpts{})
	b := enterVoice(t, ss[1], g.ID, g.Voice, mediaOpts{})
	id := a.User.ID
	a.setLevel(10)
	b.waitReceive("A's audio reaches B", from(a, 0))
	on := b.waitSpeaking("A speaking", id, true, 0)

	path := "/guilds/" + g.ID + "/members/" + id
	t.OK(o.Client, "PATCH", path, Obj{"mute": true}, nil)
	t.Expect(so.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool { return stateOf(id, g.Voice)(d) && d["mute"] == true })
	off := b.waitSpeaking("VOICE-074: a member server-muted while speaking is reported as not speaking", id, false, on+1)
	a.setPhase(1) // written while muted
	a.waitWritten(25)
	a.endPhase("the packets written while muted")
	b.sync("after the packets written while muted")
	if n := len(b.received(from(a, 1))); n > 0 {
		t.Errorf("VOICE-081: %d packets a server-muted member sent reached another member", n)
	}
	if l := b.speaking(id); len(l) > off+1 {
		t.Errorf("VOICE-074: a server-muted member sending loud packets reported speaking: %v", l[off:])
	}
	t.OK(o.Client, "PATCH", path, Obj{"mute": false}, nil)
	t.Expect(so.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool { return stateOf(id, g.Voice)(d) && d["mute"] == false })
	a.setPhase(2)
	b.waitReceive("A's audio reaches B again after the unmute", from(a, 2))
	if n := len(b.received(from(a, 1))); n > 0 {
		t.Errorf("VOICE-081: %d packets a server-muted member sent reached another member after the unmute", n)
	}
}

// VOICE-080: a deafened member (self or server) receives no forwarded audio.
func deafened(t *T) {
	o, g, so := setup(t)
	ss := members(t, g, 2)
	a := enterVoice(t, ss[0], g.ID, g.Voice, mediaOpts{})
	sb := ss[1]
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{})
	id := b.User.ID
	b.waitReceive("A's audio reaches B", from(a, 0))
	path := "/guilds/" + g.ID + "/members/" + id
	steps := []struct {
		what      string
		deaf, un  func()
		deafState func(Obj) bool
	}{
		{"self-deafened",
			func() {
				_ = sb.Send(harness.OpVoiceState, Obj{"guild_id": g.ID, "channel_id": g.Voice, "self_mute": false, "self_deaf": true})
			},
			func() {
				_ = sb.Send(harness.OpVoiceState, Obj{"guild_id": g.ID, "channel_id": g.Voice, "self_mute": false, "self_deaf": false})
			},
			func(d Obj) bool { return d["self_deaf"] == true }},
		{"server-deafened",
			func() { t.OK(o.Client, "PATCH", path, Obj{"deaf": true}, nil) },
			func() { t.OK(o.Client, "PATCH", path, Obj{"deaf": false}, nil) },
			func(d Obj) bool { return d["deaf"] == true }},
	}
	for i, st := range steps {
		phase := byte(2*i + 1)
		st.deaf()
		t.Expect(so.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool { return stateOf(id, g.Voice)(d) && st.deafState(d) })
		a.setPhase(phase)
		a.waitWritten(25)
		a.endPhase("the packets written while B is " + st.what)
		st.un()
		t.Expect(so.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool { return stateOf(id, g.Voice)(d) && !st.deafState(d) })
		a.setPhase(phase + 1)
		b.waitReceive("A's audio reaches B again after "+st.what, from(a, int(phase+1)))
		if n := len(b.received(from(a, int(phase)))); n > 0 {
			t.Errorf("VOICE-080: a %s member received %d audio packets", st.what, n)
		}
	}
}

// VOICE-050: a channel switch reuses the PeerConnection (server offers keep
// its ICE credentials and DTLS fingerprint; it never leaves connected).
// VOICE-092: from Channel Switched (107) on, no audio of the old room reaches
// the member and none of the member's reaches the old room. VOICE-057,
// VOICE-058: the Track Map follows the new room.
func switchMedia(t *T) {
	_, g, so := setup(t)
	ss := members(t, g, 3)
	second := voiceChannel(t, g, "Second")
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{})
	b := enterVoice(t, ss[0], g.ID, g.Voice, mediaOpts{})
	c := enterVoice(t, ss[1], g.ID, g.Voice, mediaOpts{})
	d := enterVoice(t, ss[2], g.ID, second, mediaOpts{})
	c.waitReceive("A's audio reaches C", from(a, -1))
	a.waitReceive("C's audio reaches A", from(c, -1))
	firstAnswer := ""
	for _, f := range c.gw().Frames() {
		if f.Op == opSessionDesc {
			firstAnswer = str(f.Obj()["sdp"])
			break
		}
	}
	offersBefore := len(c.serverOffers())

	fresh := join(t, c.S, g.ID, second)
	c.sendOp(opChannelSwitch, Obj{"token": fresh.Token})
	var at time.Time
	t.Eventually("Channel Switched (107)", func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.switched) == 0 {
			return fmt.Errorf("not yet")
		}
		at = c.switched[0]
		return nil
	})
	e := c.waitReceive("D's audio reaches C in the new room", from(d, -1))
	d.waitReceive("C's audio reaches D in the new room", from(c, -1))
	t.Eventually("VOICE-057/058: the Track Map names D for the mid D's audio arrives on", func() error {
		m, _ := c.trackMap()
		if got := str(m[e.Mid]["user_id"]); got != d.User.ID {
			return fmt.Errorf("mid %s carries D's packets, the Track Map names %q (%s)", e.Mid, got, c.debug())
		}
		for mid, x := range m {
			if u := str(x["user_id"]); u == a.User.ID || u == b.User.ID {
				return fmt.Errorf("the Track Map still maps mid %s to a member of the old room", mid)
			}
		}
		return nil
	})
	// Sentinels: A keeps hearing B, written well after the switch.
	b.waitWritten(25)
	a.waitReceive("B's audio keeps reaching A", func(e rx) bool {
		w := b.writtenAt(e.N)
		return e.From == b.Tag && w.After(at.Add(300*time.Millisecond))
	})
	c.waitReceive("D's audio keeps reaching C", func(e rx) bool {
		w := d.writtenAt(e.N)
		return e.From == d.Tag && w.After(at.Add(300*time.Millisecond))
	})
	noneAfter(t, c, a, at, "VOICE-092: audio of the old room after Channel Switched")
	noneAfter(t, c, b, at, "VOICE-092: audio of the old room after Channel Switched")
	noneAfter(t, a, c, at, "VOICE-092: the switched member's audio in the old room after Channel Switched")

	for _, st := range c.connStates() {
		if st != webrtc.PeerConnectionStateConnecting && st != webrtc.PeerConnectionStateConnected {
			t.Errorf("VOICE-050: the PeerConnection went %s around a channel switch (states %v)", st, c.connStates())
			break
		}
	}
	for _, o := range c.serverOffers()[offersBefore:] {
		for _, attr := range []string{"a=ice-ufrag:", "a=fingerprint:"} {
			if v1, v2 := sdpAttr(firstAnswer, attr), sdpAttr(str(o["sdp"]), attr); v1 != v2 {
				t.Errorf("VOICE-050: a Server Offer after the switch changes %s%s (was %s): a new ICE or DTLS handshake", attr, v2, v1)
			}
		}
	}
}

// sdpAttr is the value of the first line of s starting with prefix.
func sdpAttr(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
			return v
		}
	}
	return ""
}

// waitOffer waits for a Server Offer (100) beyond the first skip and returns it.
func waitOffer(t *T, c *mediaClient, what string, skip int) Obj {
	var o Obj
	t.Eventually(what, func() error {
		if l := c.serverOffers(); len(l) > skip {
			o = l[skip]
			return nil
		}
		return fmt.Errorf("%d Server Offers", len(c.serverOffers()))
	})
	return o
}

// VOICE-051: one Server Offer outstanding at a time, later changes coalesced
// into the next. VOICE-052: revisions increase; a stale answer is ignored.
// VOICE-041: an offer still pending is sent again after Resumed. VOICE-053:
// a Client Offer during an outstanding Server Offer is ignored; the client
// rolls back, answers and offers again.
func renegotiation(t *T) {
	_, g, so := setup(t)
	ss := members(t, g, 3)
	b := enterVoice(t, so, g.ID, g.Voice, mediaOpts{ManualOffers: true})
	a1 := enterVoice(t, ss[0], g.ID, g.Voice, mediaOpts{})
	first := waitOffer(t, b, "a Server Offer (100) for a new member's track", 0)
	a2 := enterVoice(t, ss[1], g.ID, g.Voice, mediaOpts{})
	a2.setLevel(10) // a sentinel: Speaking (5) about A2 says its track is published
	b.waitSpeaking("A2 speaking", a2.User.ID, true, 0)
	b.sync("after A2 published")
	if n := len(b.serverOffers()); n != 1 {
		t.Errorf("VOICE-051: %d Server Offers sent before the first was answered, expected 1", n)
	}
	rev := harness.Num(first["revision"])
	b.sendOp(opClientAnswer, Obj{"type": "answer", "sdp": "v=0\r\nstale\r\n", "revision": rev - 1})
	b.sync("VOICE-052: a stale answer (revision " + fmt.Sprint(rev-1) + ") is ignored")

	b.reconnect()
	t.Eventually("VOICE-041: the pending Server Offer is sent again after Resumed", func() error {
		if l := b.seen(opServerOffer); len(l) > 0 {
			return nil
		}
		return fmt.Errorf("no Server Offer on the resumed WebSocket")
	})
	b.setManual(false)
	for _, x := range []*mediaClient{a1, a2} {
		b.waitReceive(x.User.Name+"'s audio reaches B after the renegotiations", from(x, -1))
	}
	last := rev
	for _, o := range b.serverOffers() {
		r := harness.Num(o["revision"])
		if r < last {
			t.Errorf("VOICE-052: Server Offer revisions go down: %v after %v", r, last)
		}
		last = r
	}

	// Glare: an outstanding Server Offer (for A3) and a Client Offer at once.
	b.setManual(true)
	n := len(b.serverOffers())
	a3 := enterVoice(t, ss[2], g.ID, g.Voice, mediaOpts{})
	waitOffer(t, b, "a Server Offer for A3's track", n)
	answers := b.answerCount()
	// The offer in glare is made from the PeerConnection as it stands and
	// never applied (pion cannot roll back a local offer, and a rolled-back
	// offer leaves the PeerConnection as it was).
	b.clientOffer(nil, true)
	b.sync("after a Client Offer in glare")
	b.setManual(false) // answers the Server Offer
	cam, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "camera", "cf-"+b.Tag)
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	tr, err := b.pc.AddTransceiverFromTrack(cam, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	b.clientOffer(map[*webrtc.RTPTransceiver]string{tr: "camera"}, false)
	t.Eventually("the Client Offer sent again after the rollback is answered", func() error {
		if b.answerCount() > answers {
			return nil
		}
		return fmt.Errorf("no Session Description (4)")
	})
	b.sync("after the answer")
	if got := b.answerCount() - answers; got != 1 {
		t.Errorf("VOICE-053: %d Session Descriptions (4) for two Client Offers, the first in glare: expected 1", got)
	}
	b.waitReceive("A3's audio reaches B", from(a3, -1))
}

// VOICE-039: a voice session whose client stops heartbeating is closed with
// 4009 after two heartbeat intervals (its ICE connected, so the ICE limit of
// VOICE-056 does not end it first).
func heartbeatTimeout(t *T) {
	_, g, so := setup(t)
	c := enterVoice(t, so, g.ID, g.Voice, mediaOpts{NoHeartbeat: true})
	if c.hb <= 0 {
		t.Fatalf("Hello has no heartbeat_interval")
	}
	code, err := c.gw().WaitClose(2*c.hb + 20*time.Second)
	if err != nil || code != 4009 {
		t.Errorf("a connected session without heartbeats for two intervals (%v each): expected close 4009, got %d (%v)", c.hb, code, err)
	}
}

// Phase bytes of video packets: the camera's layers are 20+layer, the
// screen's 30+layer.
const (
	camBase    = 20
	screenBase = 30
)

// videoOf matches video packets of sender's source (base) at a layer (any
// with layer < 0) written after n (0: any).
func videoOf(sender *mediaClient, base byte, layer int) func(rx) bool {
	return func(e rx) bool {
		if e.From != sender.Tag || e.Phase < base || e.Phase > base+2 {
			return false
		}
		return layer < 0 || int(e.Phase-base) == layer
	}
}

// VOICE-062: the answer negotiates NACK and PLI feedback for video.
// VOICE-100: screen video reaches a member only after Watch (108).
// VOICE-101: camera video is forwarded at layer low by default. VOICE-102,
// VOICE-103: a Layer Request (104) sets the highest layer forwarded (the
// highest not above it); "off" stops the video. VOICE-104: on a switch the
// SFU asks the publisher for a key frame on the new layer and keeps
// forwarding the old one until it comes. VOICE-105: the forwarded stream
// keeps one SSRC with continuous sequence numbers across switches.
func video(t *T) {
	_, g, so := setup(t)
	sb := members(t, g, 1)[0]
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{Video: true})
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{Video: true})
	const keyLag = 10
	cam := a.publishVideo("camera", camBase, true, keyLag)
	answer := ""
	if l := a.seen(opSessionDesc); len(l) > 0 {
		answer = str(l[len(l)-1].Obj()["sdp"])
	}
	checkVideoFeedback(t, answer)
	screen := a.publishVideo("screen", screenBase, true, keyLag)

	b.waitReceive("VOICE-101: A's camera reaches B", videoOf(a, camBase, -1))
	// A sentinel for the screen: camera packets written a second after the
	// screen started.
	screenStart := time.Now()
	b.waitReceive("A's camera keeps reaching B", func(e rx) bool {
		return videoOf(a, camBase, -1)(e) && cam.writtenAt(e.N).After(screenStart.Add(time.Second))
	})
	if n := len(b.received(videoOf(a, screenBase, -1))); n > 0 {
		t.Errorf("VOICE-100: %d packets of a screen share reached a member who did not Watch it", n)
	}
	if l := b.received(videoOf(a, camBase, -1)); len(l) > 0 {
		for _, e := range l {
			if e.Phase != camBase {
				t.Errorf("VOICE-101: camera layer %d forwarded before any Layer Request, expected low", e.Phase-camBase)
				break
			}
		}
	}
	b.sendOp(opWatch, Obj{"user_id": a.User.ID, "watch": true})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("B: %s; screen PLIs %d %d %d; B's frames %s", b.debug(), screen.plisFor(0), screen.plisFor(1), screen.plisFor(2), frameOps(b))
		}
	})
	b.waitReceive("VOICE-100: the screen share reaches B after Watch (108)", videoOf(a, screenBase, -1))

	// low → medium → high: each switch asks A for a key frame on the new layer.
	for layer, name := range []string{"", "medium", "high"} {
		if layer == 0 {
			continue
		}
		plis, requested := cam.plisFor(layer), time.Now()
		b.sendOp(opLayerRequest, Obj{"user_id": a.User.ID, "source": "camera", "max_layer": name})
		b.sync("after the Layer Request " + name)
		e := b.waitReceive(fmt.Sprintf("VOICE-102/103: camera layer %s after a Layer Request for it", name), videoOf(a, camBase, layer))
		if cam.plisFor(layer) <= plis {
			t.Errorf("VOICE-104: no key-frame request (PLI or FIR) to the publisher for layer %s before it was forwarded", name)
		}
		if !e.Key {
			t.Errorf("VOICE-104: the first packet of layer %s forwarded is not a key frame", name)
		}
		// The old layer goes on until the key frame: A sends keyLag delta
		// frames on the new layer after the request, and the old layer's
		// packets written meanwhile must reach B.
		asked := cam.pliAfter(layer, requested)
		if l := b.received(func(x rx) bool {
			return videoOf(a, camBase, layer-1)(x) && cam.writtenAt(x.N).After(asked)
		}); len(l) == 0 {
			t.Errorf("VOICE-104: no packet of layer %d written after the key-frame request for layer %s reached B: the old layer stopped before the key frame", layer-1, name)
		}
		if layer == 1 {
			if n := len(b.received(videoOf(a, camBase, 2))); n > 0 {
				t.Errorf("VOICE-103: %d packets of layer high forwarded to a member who asked for medium", n)
			}
		}
	}
	checkContinuous(t, b, videoOf(a, camBase, -1))

	b.sendOp(opLayerRequest, Obj{"user_id": a.User.ID, "source": "camera", "max_layer": "off"})
	b.sync("after the Layer Request off")
	off := time.Now()
	b.waitReceive("the screen share keeps reaching B", func(e rx) bool {
		return videoOf(a, screenBase, -1)(e) && screen.writtenAt(e.N).After(off.Add(500*time.Millisecond))
	})
	for _, e := range b.received(videoOf(a, camBase, -1)) {
		if cam.writtenAt(e.N).After(off) {
			t.Errorf("VOICE-102: camera packets written after a Layer Request off reached B")
			break
		}
	}
}

// checkVideoFeedback checks that every video section of an SDP answer has
// NACK and PLI feedback for each codec (VOICE-062).
func checkVideoFeedback(t *T, answer string) {
	sections := strings.Split(answer, "\nm=")
	found := false
	for _, sec := range sections[1:] {
		if !strings.HasPrefix(sec, "video") || strings.Contains(sec, "a=inactive") {
			continue
		}
		found = true
		for _, want := range []string{" nack\r", " nack pli\r"} {
			if !strings.Contains(sec, "a=rtcp-fb:") || !strings.Contains(sec+"\r", want) {
				t.Errorf("VOICE-062: a video section of the answer lacks rtcp-fb%s:\nm=%s", strings.TrimSuffix(want, "\r"), sec)
			}
		}
	}
	if !found {
		t.Errorf("VOICE-062: no active video section in the answer to a camera offer")
	}
}

// checkContinuous checks that the packets c received matching one track
// keep one SSRC and continuous sequence numbers and timestamps (VOICE-105).
// A hole may be a loss the receiver's NACK has not recovered yet: it is
// waited for (bounded) before it counts.
func checkContinuous(t *T, c *mediaClient, match func(rx) bool) {
	l := c.received(match)
	if len(l) < 2 {
		t.Errorf("VOICE-105: too few video packets to check (%d)", len(l))
		return
	}
	first := l[0].Seq // offsets from it, so that a wrap at 65535 does not matter
	lo, hi := int16(0), int16(0)
	for _, e := range l {
		if e.SSRC != l[0].SSRC {
			t.Errorf("VOICE-105: the forwarded camera changed SSRC from %d to %d", l[0].SSRC, e.SSRC)
			return
		}
		lo, hi = min(lo, int16(e.Seq-first)), max(hi, int16(e.Seq-first))
	}
	err := harness.Eventually(t.Ctx, t.Timeout(), func() error {
		seen := map[uint16]rx{}
		for _, e := range c.received(match) {
			seen[e.Seq] = e
		}
		var prev *rx
		for off := lo; off <= hi; off++ {
			e, ok := seen[first+uint16(off)]
			if !ok {
				return fmt.Errorf("sequence number %d missing from the forwarded camera (from %d to %d)", first+uint16(off), first+uint16(lo), first+uint16(hi))
			}
			if prev != nil && int32(e.TS-prev.TS) < 0 {
				return harness.Permanent(fmt.Errorf("the timestamp goes back from %d to %d at sequence number %d", prev.TS, e.TS, e.Seq))
			}
			prev = &e
		}
		return nil
	})
	if err != nil {
		t.Errorf("VOICE-105: %v", err)
	}
}

// frameOps lists the ops c received (for failure messages).
func frameOps(c *mediaClient) string {
	var ops []string
	for _, f := range c.gw().Frames() {
		if f.Op != opHeartbeatACK {
			ops = append(ops, fmt.Sprint(f.Op))
		}
	}
	return strings.Join(ops, ",")
}

// sendsOn reports whether the m-line mid of an SDP sends (its port is not 0
// and it is neither recvonly nor inactive), from the offerer's side.
func sendsOn(s, mid string) (sends, found bool) {
	for _, sec := range strings.Split(s, "\nm=")[1:] {
		if sdpAttr("\n"+sec, "a=mid:") != mid {
			continue
		}
		fields := strings.Fields(sec)
		if len(fields) > 1 && fields[1] == "0" {
			return false, true
		}
		return !strings.Contains(sec, "a=recvonly") && !strings.Contains(sec, "a=inactive"), true
	}
	return false, false
}

// VOICE-069: a Client Offer that stops sending on a published track's
// m-line unpublishes it: out of the Track Map, a speaking microphone
// reported not speaking, self_video cleared. VOICE-076: each subscriber gets
// a Server Offer in which that m-line no longer sends, and a Track Map
// without it. VOICE-077: the camera published again reaches B on a new
// SSRC if it comes on B's stopped m-line.
func stopSource(t *T) {
	_, g, so := setup(t)
	sb := members(t, g, 1)[0]
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{Video: true})
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{Video: true})
	cam := a.publishVideo("camera", camBase, false, 0)
	a.setLevel(10)
	on := b.waitSpeaking("A speaking", a.User.ID, true, 0)
	e := b.waitReceive("A's camera reaches B", videoOf(a, camBase, -1))
	t.Expect(sb.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool { return stateOf(a.User.ID, g.Voice)(d) && d["self_video"] == true })
	m := b.waitReceive("A's microphone reaches B", from(a, -1))

	for _, st := range []struct {
		what, mid string
		sender    *webrtc.RTPSender
	}{{"camera", e.Mid, cam.Tr.Sender()}, {"microphone", m.Mid, a.pc.GetTransceivers()[0].Sender()}} {
		offers := len(b.serverOffers())
		if err := a.pc.RemoveTrack(st.sender); err != nil {
			t.Fatalf("pion: remove the %s: %v", st.what, err)
		}
		answers := a.answerCount()
		a.clientOffer(nil, false)
		t.Eventually("the answer to the offer stopping the "+st.what, func() error {
			if a.answerCount() > answers {
				return nil
			}
			return fmt.Errorf("no Session Description (4)")
		})
		t.Eventually("VOICE-076: a Server Offer to B in which the "+st.what+"'s m-line no longer sends", func() error {
			for _, o := range b.serverOffers()[offers:] {
				if sends, found := sendsOn(str(o["sdp"]), st.mid); found && !sends {
					return nil
				}
			}
			return fmt.Errorf("%d Server Offers since, none stops mid %s", len(b.serverOffers())-offers, st.mid)
		})
		t.Eventually("VOICE-069/076: B's Track Map without A's "+st.what, func() error {
			mp, _ := b.trackMap()
			for mid, x := range mp {
				if str(x["user_id"]) == a.User.ID && (mid == st.mid || str(x["kind"]) == map[string]string{"camera": "video", "microphone": "audio"}[st.what]) {
					return fmt.Errorf("the Track Map still has A's %s on mid %s", st.what, mid)
				}
			}
			return nil
		})
		if st.what == "camera" {
			t.Expect(sb.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
				return stateOf(a.User.ID, g.Voice)(d) && d["self_video"] == false
			})
		} else {
			b.waitSpeaking("VOICE-069: a speaking microphone that stops is reported not speaking", a.User.ID, false, on+1)
		}
	}
	since := time.Now()
	a.publishVideo("camera", camBase, false, 0)
	again := b.waitReceive("A's camera, published again, reaches B", func(r rx) bool {
		return videoOf(a, camBase, -1)(r) && r.At.After(since)
	})
	if again.Mid == e.Mid && again.SSRC == e.SSRC {
		t.Fatalf("VOICE-077: A's camera comes back to B on m-line %s with its earlier SSRC %d", e.Mid, e.SSRC)
	}
}

// VOICE-110: a flood of Client Offers or of Layer Requests (more than 10 in
// 10 seconds) closes the session with 4103.
func floods(t *T) {
	_, g, so := setup(t)
	sb := members(t, g, 1)[0]
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{})
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{})
	for i := range 15 {
		a.sendOp(opLayerRequest, Obj{"user_id": b.User.ID, "source": "camera", "max_layer": []string{"low", "medium", "high"}[i%3]})
	}
	expectClose(t, a.gw(), "15 Layer Requests at once", 4103)
	for range 15 {
		b.clientOffer(nil, true)
	}
	expectClose(t, b.gw(), "15 Client Offers at once", 4103)
}

// VOICE-111: a session that sends bad input ends alone: the others in its
// room keep their media and new members still join.
func badInputEndsOneSession(t *T) {
	_, g, so := setup(t)
	ss := members(t, g, 3)
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{})
	b := enterVoice(t, ss[0], g.ID, g.Voice, mediaOpts{})
	c := enterVoice(t, ss[1], g.ID, g.Voice, mediaOpts{})
	a.waitReceive("B's audio reaches A", from(b, -1))
	c.waitWritten(5)
	// Bad media: audio-level extensions of the wrong size, then bad signaling.
	for _, ext := range [][]byte{{}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}} {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 60000, Timestamp: 1}, Payload: []byte{0xfc}}
		if c.levelExt != 0 && len(ext) > 0 {
			_ = p.Header.SetExtension(c.levelExt, ext)
		}
		_ = c.mic.WriteRTP(p)
	}
	c.sendOp(opICECandidate, Obj{"candidate": "candidate:garbage", "sdp_mid": "9", "sdp_mline_index": 7})
	c.sendOp(opLayerRequest, Obj{"user_id": "x", "source": "nose", "max_layer": "ultra"})
	c.sendOp(opClientAnswer, Obj{"type": "answer", "sdp": "garbage", "revision": 999})
	c.sendOp(opClientOffer, Obj{"type": "offer", "sdp": "v=0\r\ngarbage\r\n"})
	if code, err := c.gw().WaitClose(t.Timeout()); err != nil {
		t.Fatalf("the session sending garbage was not closed: %v", err)
	} else {
		t.Logf("the session sending garbage closed with %d", code)
	}
	closed := time.Now()
	b.waitWritten(25)
	a.waitReceive("B's audio keeps reaching A after another session failed", func(e rx) bool {
		return e.From == b.Tag && b.writtenAt(e.N).After(closed)
	})
	d := enterVoice(t, ss[2], g.ID, g.Voice, mediaOpts{})
	d.waitReceive("a member joining afterwards gets audio", from(a, -1))
	if r, err := http.Get(t.Node.BaseURL + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Errorf("the node's /healthz after a session sent bad input: %v %v", r, err)
	} else {
		r.Body.Close()
	}
}

// VOICE-065: a member has at most one screen share: a second one is refused
// and never reaches the others.
func oneScreen(t *T) {
	_, g, so := setup(t)
	sb := members(t, g, 1)[0]
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{Video: true})
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{Video: true})
	a.publishVideo("screen", screenBase, false, 0)
	b.sendOp(opWatch, Obj{"user_id": a.User.ID, "watch": true})
	b.waitReceive("A's screen share reaches B", videoOf(a, screenBase, -1))
	tr2, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen2", "cf-"+a.Tag)
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	x, err := a.pc.AddTransceiverFromTrack(tr2, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	a.clientOffer(map[*webrtc.RTPTransceiver]string{x: "screen"}, false)
	t.Eventually("the second screen share is refused (close 4102 or Error 109)", func() error {
		if _, err := a.gw().WaitClose(0); err == nil {
			return nil
		}
		if len(a.seen(109)) > 0 {
			return nil
		}
		return fmt.Errorf("neither")
	})
	b.sync("after the second screen offer")
	mp, _ := b.trackMap()
	n := 0
	for _, e := range mp {
		if str(e["user_id"]) == a.User.ID && str(e["source"]) == "screen" {
			n++
		}
	}
	if n > 1 {
		t.Errorf("VOICE-065: B's Track Map shows %d screen shares of one member", n)
	}
}

// The network settings voice/network starts its node with: the reference
// node's serve flags for one UDP port, ICE-TCP, a public IP and a TURN server.
// The public IP is IPv4 only, so that the node must announce none of its
// IPv6 addresses (VOICE-124).
var networkArgs = []string{"--voice-udp-port", "{free_port}", "--voice-tcp-port", "{free_port}",
	"--voice-public-ip", "127.0.0.1", "--voice-turn-urls", "turn:turn.conformance.invalid:3478?transport=udp",
	"--voice-turn-username", "cf-user", "--voice-turn-credential", "cf-secret"}

// serverCandidates lists the candidates the server gave c: in its answers
// and on op 103.
func serverCandidates(c *mediaClient) []string {
	var out []string
	for _, f := range c.gw().Frames() {
		switch f.Op {
		case opSessionDesc:
			for _, l := range strings.Split(str(f.Obj()["sdp"]), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a="); ok && strings.HasPrefix(v, "candidate:") {
					out = append(out, v)
				}
			}
		case opICECandidate:
			if v := str(f.Obj()["candidate"]); v != "" {
				out = append(out, strings.TrimPrefix(v, "a="))
			}
		}
	}
	return out
}

// VOICE-120: with one UDP port configured, every session's UDP candidates
// use that port (ICE UDP mux) and media flows. VOICE-121: ICE-TCP candidates
// on the configured TCP port. VOICE-122: the configured public IP replaces
// the local addresses in host candidates. VOICE-124: the public IP is IPv4
// only, and no other address (no IPv6 one) is announced. VOICE-123: the TURN
// server goes to clients in Ready (2) with its credentials.
func network(t *T) {
	udp, tcp := t.Node.Arg("--voice-udp-port"), t.Node.Arg("--voice-tcp-port")
	_, g, so := setup(t)
	sb := members(t, g, 1)[0]
	a := enterVoice(t, so, g.ID, g.Voice, mediaOpts{})
	b := enterVoice(t, sb, g.ID, g.Voice, mediaOpts{})
	b.waitReceive("A's audio reaches B through the one UDP port", from(a, -1))
	a.waitReceive("B's audio reaches A through the one UDP port", from(b, -1))
	for _, c := range []*mediaClient{a, b} {
		cands := serverCandidates(c)
		var sawTCP, sawUDP bool
		for _, cand := range cands {
			f := strings.Fields(cand)
			if len(f) < 8 {
				t.Errorf("a server candidate that does not parse: %q", cand)
				continue
			}
			proto, ip, port, typ := strings.ToLower(f[2]), f[4], f[5], f[7]
			switch proto {
			case "udp":
				sawUDP = true
				if port != udp {
					t.Errorf("VOICE-120: a UDP candidate on port %s, the node's one UDP port is %s: %q", port, udp, cand)
				}
			case "tcp":
				sawTCP = true
				if port != tcp && port != "9" {
					t.Errorf("VOICE-121: an ICE-TCP candidate on port %s, the node's TCP port is %s: %q", port, tcp, cand)
				}
			}
			switch {
			case ip == "127.0.0.1":
			case strings.Contains(ip, ":"):
				t.Errorf("VOICE-124: an IPv6 candidate %s from a node whose only public IP is 127.0.0.1: %q", ip, cand)
			case typ == "host":
				t.Errorf("VOICE-122: a host candidate with address %s, the node's public IP is 127.0.0.1: %q", ip, cand)
			}
		}
		if !sawUDP {
			t.Errorf("VOICE-120: no UDP candidate from the server (%v)", cands)
		}
		if !sawTCP {
			t.Errorf("VOICE-121: no ICE-TCP candidate from a node with a TCP port (%v)", cands)
		}
		ready := c.seen(opReady)
		if len(ready) == 0 { // Ready came before the client's loop: on the same connection
			for _, f := range c.gw().Frames() {
				if f.Op == opReady {
					ready = append(ready, f)
				}
			}
		}
		if len(ready) == 0 {
			t.Fatalf("no Ready (2) recorded")
		}
		servers, _ := ready[0].Obj()["ice_servers"].([]any)
		found := false
		for _, s := range servers {
			o, _ := s.(Obj)
			urls := harness.JSON(o["urls"])
			if strings.Contains(urls, "turn.conformance.invalid") && str(o["username"]) == "cf-user" && str(o["credential"]) == "cf-secret" {
				found = true
			}
		}
		if !found {
			t.Errorf("VOICE-123: Ready's ice_servers lack the configured TURN server with its credentials: %s", harness.JSON(ready[0].Obj()["ice_servers"]))
		}
	}
}
