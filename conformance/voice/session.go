package voice

import (
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// Voice WebSocket session rules that need no media: timers, resume, SDP
// refusals, moderation and channel switching (spec/voice.md §3.2–3.7).

const (
	opResume         = 7
	opResumed        = 9
	opChannelSwitch  = 106
	opChannelSwitchd = 107
)

// VOICE-031: "The client MUST send Identify (0) or Resume (7) within 10 seconds,
// else the server closes with 4003."
func identifyTimeout(t *T) {
	_, g, s := setup(t)
	v := join(t, s, g.ID, g.Voice)
	vg, _ := dialVoice(t, v.Endpoint)
	if code, err := vg.WaitClose(20 * time.Second); err != nil || code != 4003 {
		t.Errorf("a voice WebSocket without Identify: expected close 4003 within 20 s, got %d (%v)", code, err)
	}
}

// VOICE-040: "A closed voice WebSocket does not end the voice session at once:
// the session MUST survive for at least 15 seconds so that Resume (7) with the
// same token and session ID re-attaches it, answered by Resumed (9)."
func resume(t *T) {
	o, g, s := setup(t)
	v := join(t, s, g.ID, g.Voice)
	vg := connectVoice(t, s, v)
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", stateOf(o.ID, g.Voice))
	vg.Close()
	again, _ := dialVoice(t, v.Endpoint)
	send(t, again, opResume, Obj{"server_id": g.ID, "session_id": s.SessionID(), "token": v.Token})
	if f, err := again.WaitOp(t.Timeout(), opResumed); err != nil {
		t.Errorf("Resume right after the voice WebSocket closed: expected Resumed (9), got %v (%s)", err, f)
	}
}

// VOICE-056: "A session whose ICE does not connect within 15 seconds of Identify
// MUST be closed with 4104." The client makes its offer and then drops its
// PeerConnection, so ICE never connects.
func iceTimeout(t *T) {
	_, g, s := setup(t)
	vg := connectVoice(t, s, join(t, s, g.ID, g.Voice))
	pc, offer := offerSDP(t)
	send(t, vg, opSelectProtocol, Obj{"protocol": "webrtc", "data": Obj{"sdp": offer, "type": "offer"}})
	if _, err := vg.WaitOp(t.Timeout(), opSessionDesc); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	_ = pc.Close()
	if code, err := vg.WaitClose(30 * time.Second); err != nil || code != 4104 {
		t.Errorf("a session whose ICE never connects: expected close 4104 within 30 s, got %d (%v)", code, err)
	}
}

// offerWith makes an offer from a PeerConnection with the given codecs and
// tracks.
func offerWith(t *T, codecs []webrtc.RTPCodecParameters, kind webrtc.RTPCodecType, tracks int) string {
	me := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, kind); err != nil {
			t.Fatalf("pion: %v", err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for i := range tracks {
		tr, err := webrtc.NewTrackLocalStaticSample(codecs[0].RTPCodecCapability, "t"+string(rune('a'+i)), "conformance")
		if err != nil {
			t.Fatalf("pion: %v", err)
		}
		if _, err := pc.AddTrack(tr); err != nil {
			t.Fatalf("pion: %v", err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatalf("pion: %v", err)
	}
	select {
	case <-done:
	case <-time.After(t.Timeout()):
		t.Fatalf("pion: ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// VOICE-063: video other than VP8 or H.264 is refused (4101). VOICE-064: naming a
// source twice closes with 4102. VOICE-067: an SDP that does not parse closes
// with 4100.
func badOffers(t *T) {
	_, g, s := setup(t)
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	vp9 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000}, PayloadType: 98}
	cases := []struct {
		id, what string
		data     Obj
		code     int
	}{
		{"VOICE-067", "an SDP that does not parse", Obj{"sdp": "v=0\r\nthis is not SDP\r\n", "type": "offer"}, 4100},
		{"VOICE-063", "VP9 video only", Obj{"sdp": offerWith(t, []webrtc.RTPCodecParameters{vp9}, webrtc.RTPCodecTypeVideo, 1), "type": "offer", "sources": Obj{"0": "camera"}}, 4101},
		{"VOICE-064", "five send m-lines", Obj{"sdp": offerWith(t, []webrtc.RTPCodecParameters{opus}, webrtc.RTPCodecTypeAudio, 5), "type": "offer"}, 4102},
		{"VOICE-064", "two m-lines named microphone", Obj{"sdp": offerWith(t, []webrtc.RTPCodecParameters{opus}, webrtc.RTPCodecTypeAudio, 2), "type": "offer", "sources": Obj{"0": "microphone", "1": "microphone"}}, 4102},
	}
	for _, c := range cases {
		vg := connectVoice(t, s, join(t, s, g.ID, g.Voice))
		send(t, vg, opSelectProtocol, Obj{"protocol": "webrtc", "data": c.data})
		expectClose(t, vg, c.id+": an offer with "+c.what, c.code)
	}
}

// VOICE-082: moderation through PATCH /guilds/{id}/members/{id} checks
// MUTE_MEMBERS, DEAFEN_MEMBERS and MOVE_MEMBERS. VOICE-083: a move is announced
// with Channel Switched (107). VOICE-084: a disconnect closes the voice WebSocket
// with 4014.
func moderation(t *T) {
	o, g, so := setup(t)
	var second Obj
	t.OK(o.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "Second", "type": 2}, &second)
	m := t.NewUser()
	other := t.NewUser()
	t.Join(g, m, other)
	sm := t.Connect(m, harness.AllIntents)
	t.Expect(sm.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	vg := connectVoice(t, sm, join(t, sm, g.ID, g.Voice))
	t.Expect(so.Gateway, "VOICE_STATE_UPDATE", stateOf(m.ID, g.Voice))
	path := "/guilds/" + g.ID + "/members/" + m.ID
	for what, body := range map[string]Obj{"mute": {"mute": true}, "deafen": {"deaf": true}, "move": {"channel_id": str(second["id"])}, "disconnect": {"channel_id": nil}} {
		if r := t.Call(other.Client, "PATCH", path, body); r.Status != 403 {
			t.Errorf("VOICE-082: a member without the permission to %s: %s, expected 403", what, r)
		}
	}
	if r := t.Call(o.Client, "PATCH", path, Obj{"channel_id": str(second["id"])}); r.Status/100 != 2 {
		t.Fatalf("move: %s", r)
	}
	f, err := vg.WaitOp(t.Timeout(), opChannelSwitchd)
	if err != nil || str(f.Obj()["channel_id"]) != str(second["id"]) {
		t.Errorf("VOICE-083: a moved member's voice WebSocket: expected Channel Switched (107) to %s, got %s (%v)", str(second["id"]), f, err)
	}
	t.Expect(so.Gateway, "VOICE_STATE_UPDATE", stateOf(m.ID, str(second["id"])))
	if r := t.Call(o.Client, "PATCH", path, Obj{"channel_id": nil}); r.Status/100 != 2 {
		t.Fatalf("disconnect: %s", r)
	}
	expectClose(t, vg, "VOICE-084: the voice WebSocket of a disconnected member", 4014)
	t.Expect(so.Gateway, "VOICE_STATE_UPDATE", stateOf(m.ID, nil))
}

// VOICE-091: Channel Switch (106) with a fresh token for another channel of the
// guild is verified and answered with Channel Switched (107). VOICE-011: the
// channel comes from the token, never from the client.
func channelSwitch(t *T) {
	o, g, s := setup(t)
	var second Obj
	t.OK(o.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "Second", "type": 2}, &second)
	v := join(t, s, g.ID, g.Voice)
	vg, _ := dialVoice(t, v.Endpoint)
	d := identify(s, v, o.ID)
	d["channel_id"] = str(second["id"]) // ignored: the token names the channel
	send(t, vg, opIdentify, d)
	if _, err := vg.WaitOp(t.Timeout(), opReady); err != nil {
		t.Fatalf("Identify: %v", err)
	}
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", stateOf(o.ID, g.Voice))
	fresh := join(t, s, g.ID, str(second["id"]))
	send(t, vg, opChannelSwitch, Obj{"token": fresh.Token})
	f, err := vg.WaitOp(t.Timeout(), opChannelSwitchd)
	if err != nil || str(f.Obj()["channel_id"]) != str(second["id"]) {
		t.Fatalf("Channel Switch: expected Channel Switched (107) to %s, got %s (%v)", str(second["id"]), f, err)
	}
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", stateOf(o.ID, str(second["id"])))
}
