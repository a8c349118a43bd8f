package voice

import (
	"fmt"
	"strings"
	"time"

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
	if len(a.seen(opICECandidate)) == 0 {
		t.Errorf("VOICE-054: the server sent no ICE Candidate (103) to a client that trickles")
	}
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
	a.waitSFURead("the packets written while muted")
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
		a.waitSFURead("the packets written while B is " + st.what)
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
