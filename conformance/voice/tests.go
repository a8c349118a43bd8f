package voice

import (
	"fmt"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// VOICE-001: "The node MUST check the CONNECT permission on the channel before
// issuing a voice token, and MUST answer a refused join with no VOICE_SERVER_UPDATE."
func connectPermission(t *T) {
	o, g, so := setup(t)
	m := t.NewUser()
	t.Join(g, m)
	r := t.Call(o.Client, "PUT", "/channels/"+g.Voice+"/permissions/"+m.ID, Obj{"allow": "0", "deny": fmt.Sprint(permConnect), "type": 1})
	if r.Status != 204 {
		t.Fatalf("overwrite: %s", r)
	}
	sm := t.Connect(m, harness.AllIntents)
	t.Expect(sm.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	_ = sm.Send(harness.OpVoiceState, Obj{"guild_id": g.ID, "channel_id": g.Voice, "self_mute": false, "self_deaf": false})
	sentinel := t.Send(o, g.Text, "sentinel")
	t.Expect(sm.Gateway, "MESSAGE_CREATE", harness.Field("id", str(sentinel["id"])))
	if f, ok := sm.Seen(func(f harness.Frame) bool { return f.T == "VOICE_SERVER_UPDATE" }); ok {
		t.Errorf("a member without CONNECT received %s", f)
	}
	join(t, so, g.ID, g.Voice) // the owner may connect
}

// VOICE-002: VOICE_STATE_UPDATE to the guild and VOICE_SERVER_UPDATE {token, guild_id,
// endpoint} to the requesting session only. VOICE-003: endpoint is the voice WebSocket
// URL of the client's own node. VOICE-004: every voice state change is dispatched as
// VOICE_STATE_UPDATE to every session that can see the guild.
func joinDispatches(t *T) {
	o, g, s1 := setup(t)
	s2 := t.Connect(o, harness.AllIntents)
	m := t.NewUser()
	t.Join(g, m)
	sm := t.Connect(m, harness.AllIntents)
	t.Expect(sm.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	v := join(t, s1, g.ID, g.Voice)
	if !strings.HasPrefix(v.Endpoint, "ws://") && !strings.HasPrefix(v.Endpoint, "wss://") {
		t.Errorf("endpoint %q is not a WebSocket URL", v.Endpoint)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(t.Node.BaseURL, "http://"), "https://")
	if !strings.Contains(v.Endpoint, host) {
		t.Logf("endpoint %q names another host than %s (public URL configured?)", v.Endpoint, host)
	}
	connectVoice(t, s1, v)
	for _, s := range []*harness.Session{s1, s2, sm} {
		t.Expect(s.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
			return str(d["user_id"]) == o.ID && str(d["channel_id"]) == g.Voice
		})
	}
	if f, ok := s2.Seen(func(f harness.Frame) bool { return f.T == "VOICE_SERVER_UPDATE" }); ok {
		t.Errorf("VOICE_SERVER_UPDATE reached another session of the user: %s", f)
	}
	if f, ok := sm.Seen(func(f harness.Frame) bool { return f.T == "VOICE_SERVER_UPDATE" }); ok {
		t.Errorf("VOICE_SERVER_UPDATE reached another user: %s", f)
	}
	_ = s1.Send(harness.OpVoiceState, Obj{"guild_id": g.ID, "channel_id": nil, "self_mute": false, "self_deaf": false})
	t.Expect(sm.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
		return str(d["user_id"]) == o.ID && d["channel_id"] == nil
	})
}

// VOICE-005: "A user MUST be in at most one voice channel per node at a time; joining
// another channel moves the user."
func oneChannel(t *T) {
	o, g, s := setup(t)
	var second Obj
	t.OK(o.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "Second", "type": 2}, &second)
	other := t.NewGuild(o)
	t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", other.ID))
	connectVoice(t, s, join(t, s, g.ID, g.Voice))
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", harness.Field("channel_id", g.Voice))
	connectVoice(t, s, join(t, s, g.ID, str(second["id"])))
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", harness.Field("channel_id", str(second["id"])))
	connectVoice(t, s, join(t, s, other.ID, other.Voice))
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
		return str(d["guild_id"]) == g.ID && str(d["user_id"]) == o.ID && d["channel_id"] == nil
	})
}

// VOICE-010: "A token MUST expire no later than 60 seconds after it is issued, and the
// voice gateway MUST refuse an expired token with close code 4004."
func tokenExpires(t *T) {
	o, g, s := setup(t)
	v := join(t, s, g.ID, g.Voice)
	select {
	case <-time.After(62 * time.Second): // the rule is about the token's age
	case <-t.Ctx.Done():
		t.Fatalf("%v", t.Ctx.Err())
	}
	vg, _ := dialVoice(t, v.Endpoint)
	send(t, vg, opIdentify, identify(s, v, o.ID))
	expectClose(t, vg, "Identify with a 62-second-old token", 4004)
}

// VOICE-012: "The voice gateway MUST refuse a token whose user or guild differs from
// the Identify payload with close code 4004."
func tokenMismatch(t *T) {
	o, g, s := setup(t)
	v := join(t, s, g.ID, g.Voice)
	other := t.NewUser()
	for what, mutate := range map[string]func(Obj){
		"user":  func(d Obj) { d["user_id"] = other.ID },
		"guild": func(d Obj) { d["server_id"] = "4242424242424242" },
	} {
		vg, _ := dialVoice(t, v.Endpoint)
		d := identify(s, v, o.ID)
		mutate(d)
		send(t, vg, opIdentify, d)
		expectClose(t, vg, "Identify with another "+what, 4004)
	}
}

// VOICE-020: frames up to 64 KiB accepted; larger frames or undecodable JSON close
// with 4002. VOICE-022: "an unknown opcode MUST close the connection with 4001."
func badFrames(t *T) {
	_, g, s := setup(t)
	v := join(t, s, g.ID, g.Voice)
	vg, _ := dialVoice(t, v.Endpoint)
	_ = vg.SendRaw([]byte("{nope"))
	expectClose(t, vg, "undecodable JSON", 4002)
	vg, _ = dialVoice(t, v.Endpoint)
	_ = vg.SendRaw([]byte(`{"op":3,"d":{"t":1},"pad":"` + strings.Repeat("x", 70<<10) + `"}`))
	expectClose(t, vg, "a 70 KiB frame", 4002)
	vg, _ = dialVoice(t, v.Endpoint)
	send(t, vg, opHeartbeat, Obj{"t": 5, "pad": strings.Repeat("y", 60<<10)})
	if f, err := vg.WaitOp(t.Timeout(), opHeartbeatACK); err != nil {
		t.Errorf("a 60 KiB heartbeat: expected Heartbeat ACK, got %v (%s)", err, f)
	}
	vg, _ = dialVoice(t, v.Endpoint)
	send(t, vg, 55, Obj{})
	expectClose(t, vg, "op 55", 4001)
}

// VOICE-030: Hello (8) first. VOICE-034: Ready (2) after a valid Identify. VOICE-021:
// unknown fields ignored. VOICE-038: Heartbeat ACK echoes t.
func handshake(t *T) {
	o, g, s := setup(t)
	v := join(t, s, g.ID, g.Voice)
	vg, hello := dialVoice(t, v.Endpoint)
	if harness.Num(hello["heartbeat_interval"]) <= 0 {
		t.Errorf("Hello without heartbeat_interval: %s", harness.JSON(hello))
	}
	d := identify(s, v, o.ID)
	d["x_future_field"] = Obj{"a": 1}
	send(t, vg, opIdentify, d)
	f, err := vg.WaitOp(t.Timeout(), opReady)
	if err != nil {
		t.Fatalf("Identify: expected Ready (2), got %v (frames %v)", err, vg.Frames())
	}
	if _, ok := f.Obj()["ice_servers"].([]any); !ok {
		t.Errorf("Ready lacks the ice_servers array: %s", f)
	}
	send(t, vg, opHeartbeat, Obj{"t": 123456})
	ack, err := vg.WaitOp(t.Timeout(), opHeartbeatACK)
	if err != nil || harness.Num(ack.Obj()["t"]) != 123456 {
		t.Errorf("Heartbeat {t:123456}: expected an ACK echoing t, got %s (%v)", ack, err)
	}
}

// VOICE-032: a known opcode other than Heartbeat before identification closes with
// 4003. VOICE-033: a second Identify closes with 4005.
func identifyOrder(t *T) {
	o, g, s := setup(t)
	v := join(t, s, g.ID, g.Voice)
	vg, _ := dialVoice(t, v.Endpoint)
	send(t, vg, opSelectProtocol, Obj{"protocol": "webrtc", "data": Obj{"sdp": "", "type": "offer"}})
	expectClose(t, vg, "Select Protocol before Identify", 4003)

	vg, _ = dialVoice(t, v.Endpoint)
	send(t, vg, opIdentify, identify(s, v, o.ID))
	if _, err := vg.WaitOp(t.Timeout(), opReady); err != nil {
		t.Fatalf("Identify: %v", err)
	}
	send(t, vg, opIdentify, identify(s, v, o.ID))
	expectClose(t, vg, "second Identify", 4005)
}

// VOICE-036: "Select Protocol with a protocol other than webrtc MUST close with 4012."
func notWebRTC(t *T) {
	o, g, s := setup(t)
	v := join(t, s, g.ID, g.Voice)
	vg, _ := dialVoice(t, v.Endpoint)
	send(t, vg, opIdentify, identify(s, v, o.ID))
	if _, err := vg.WaitOp(t.Timeout(), opReady); err != nil {
		t.Fatalf("Identify: %v", err)
	}
	send(t, vg, opSelectProtocol, Obj{"protocol": "udp", "data": Obj{"address": "127.0.0.1", "port": 1, "mode": "xsalsa20_poly1305"}})
	expectClose(t, vg, "Select Protocol udp", 4012)
}

// negotiate identifies on the voice WebSocket and completes one offer/answer with a
// pion audio offer; it returns the connection and the SDP answer.
func negotiate(t *T) (*harness.Gateway, string) {
	_, g, s := setup(t)
	vg := connectVoice(t, s, join(t, s, g.ID, g.Voice))
	pc, offer := offerSDP(t)
	send(t, vg, opSelectProtocol, Obj{"protocol": "webrtc", "data": Obj{"sdp": offer, "type": "offer", "sources": Obj{"0": "microphone"}}})
	f, err := vg.WaitOp(t.Timeout(), opSessionDesc)
	if err != nil {
		t.Fatalf("Select Protocol webrtc: expected Session Description (4), got %v", err)
	}
	answer := str(f.Obj()["sdp"])
	if str(f.Obj()["type"]) != "answer" || answer == "" {
		t.Fatalf("Session Description is not an answer: %s", f)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("the SDP answer does not apply: %v", err)
	}
	return vg, answer
}

// VOICE-037: "With webrtc, the server MUST answer with Session Description (4)
// containing the SDP answer."
func offerAnswer(t *T) { negotiate(t) }

// VOICE-055: "After each negotiation the server MUST send Track Map (105)."
func trackMap(t *T) {
	vg, _ := negotiate(t)
	f, err := vg.WaitOp(t.Timeout(), opTrackMap)
	if err != nil {
		t.Fatalf("no Track Map (105) after the negotiation: %v", err)
	}
	if _, ok := f.Obj()["tracks"].([]any); !ok {
		t.Errorf("Track Map without a tracks array: %s", f)
	}
}

// VOICE-060: "Audio MUST be Opus at 48 kHz ...; the server MUST put useinbandfec=1 and
// usedtx=1 in the Opus fmtp of its descriptions."
func opusFmtp(t *T) {
	_, answer := negotiate(t)
	low := strings.ToLower(answer)
	for _, want := range []string{"opus/48000", "useinbandfec=1", "usedtx=1"} {
		if !strings.Contains(low, want) {
			t.Errorf("the SDP answer lacks %q:\n%s", want, answer)
		}
	}
}

// VOICE-061: "The server MUST negotiate the RTP header extensions ssrc-audio-level
// (RFC 6464) for audio and transport-wide-cc for audio and video."
func headerExtensions(t *T) {
	_, answer := negotiate(t)
	for _, want := range []string{"urn:ietf:params:rtp-hdrext:ssrc-audio-level",
		"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"} {
		if !strings.Contains(answer, want) {
			t.Errorf("the SDP answer lacks the extension %q", want)
		}
	}
}
