// Package voice holds the voice signaling conformance tests (prefix VOICE): the
// gateway's Voice State Update flow and the voice WebSocket handshake, including
// one real SDP offer/answer made with pion. Media checks (speaking, layers,
// cascade) need a full WebRTC client and are listed as not covered.
package voice

import (
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/hearth-chat/hearth/conformance/harness"
)

type (
	// T is the test context.
	T = harness.T
	// Obj is a decoded JSON object.
	Obj = harness.Obj
)

var str = harness.Str

// Voice gateway opcodes (spec/voice.md §3.1).
const (
	opIdentify       = 0
	opSelectProtocol = 1
	opReady          = 2
	opHeartbeat      = 3
	opSessionDesc    = 4
	opHeartbeatACK   = 6
	opHello          = 8
	opTrackMap       = 105
)

const permConnect = 1 << 20

// Tests are the voice tests, in a stable order.
var Tests = []harness.Test{
	{IDs: []string{"VOICE-001"}, Name: "voice/connect-permission", Run: connectPermission},
	{IDs: []string{"VOICE-002", "VOICE-003", "VOICE-004"}, Name: "voice/join-dispatches", Run: joinDispatches},
	{IDs: []string{"VOICE-005"}, Name: "voice/one-channel-per-node", Run: oneChannel},
	{IDs: []string{"VOICE-010"}, Name: "voice/token-expires", Run: tokenExpires},
	{IDs: []string{"VOICE-012"}, Name: "voice/token-user-mismatch", Run: tokenMismatch},
	{IDs: []string{"VOICE-020", "VOICE-022"}, Name: "voice/bad-frames", Run: badFrames},
	{IDs: []string{"VOICE-021", "VOICE-030", "VOICE-034", "VOICE-035", "VOICE-038"}, Name: "voice/handshake", Run: handshake},
	{IDs: []string{"VOICE-032", "VOICE-033"}, Name: "voice/identify-order", Run: identifyOrder},
	{IDs: []string{"VOICE-036"}, Name: "voice/protocol-not-webrtc", Run: notWebRTC},
	{IDs: []string{"VOICE-037"}, Name: "voice/offer-answer", Run: offerAnswer},
	{IDs: []string{"VOICE-055"}, Name: "voice/track-map", Run: trackMap},
	{IDs: []string{"VOICE-060"}, Name: "voice/opus-fmtp", Run: opusFmtp},
	{IDs: []string{"VOICE-061"}, Name: "voice/header-extensions", Run: headerExtensions},
	{IDs: []string{"VOICE-006"}, Name: "voice/bad-voice-state-closes", Run: badVoiceState},
	{IDs: []string{"VOICE-007", "VOICE-009"}, Name: "voice/leave-with-null-channel", Run: leaveVoice},
	{IDs: []string{"VOICE-008"}, Name: "voice/self-flags", Run: selfFlags},
	{IDs: []string{"VOICE-014", "VOICE-009"}, Name: "voice/guild-create-voice-states", Run: guildCreateStates},
	{IDs: []string{"VOICE-085", "VOICE-086"}, Name: "voice/server-mute-stored", Run: serverMuteStored},
	{IDs: []string{"VOICE-087"}, Name: "voice/leaving-guild-disconnects", Run: leaveGuildDisconnects},
	{IDs: []string{"VOICE-088"}, Name: "voice/channel-delete-disconnects", Run: channelDeleted},
	{IDs: []string{"VOICE-031"}, Name: "voice/identify-timeout", Run: identifyTimeout},
	{IDs: []string{"VOICE-040"}, Name: "voice/resume", Run: resume},
	{IDs: []string{"VOICE-056"}, Name: "voice/ice-timeout", Run: iceTimeout},
	{IDs: []string{"VOICE-063", "VOICE-064", "VOICE-067"}, Name: "voice/bad-offers-refused", Run: badOffers},
	{IDs: []string{"VOICE-082", "VOICE-083", "VOICE-084"}, Name: "voice/moderation", Run: moderation},
	{IDs: []string{"VOICE-091", "VOICE-011"}, Name: "voice/channel-switch", Run: channelSwitch},
	{IDs: []string{"VOICE-054", "VOICE-057", "VOICE-058"}, Name: "voice/media-forwarding", Run: forwarding},
	{IDs: []string{"VOICE-070", "VOICE-071", "VOICE-072", "VOICE-073", "VOICE-075"}, Name: "voice/speaking", Run: speaking},
	{IDs: []string{"VOICE-074", "VOICE-081"}, Name: "voice/server-mute-drops-audio", Run: serverMute},
	{IDs: []string{"VOICE-080"}, Name: "voice/deafened-receive-nothing", Run: deafened},
	{IDs: []string{"VOICE-050", "VOICE-057", "VOICE-058", "VOICE-092"}, Name: "voice/channel-switch-media", Run: switchMedia},
	{IDs: []string{"VOICE-041", "VOICE-051", "VOICE-052", "VOICE-053"}, Name: "voice/renegotiation", Run: renegotiation},
	{IDs: []string{"VOICE-039"}, Name: "voice/heartbeat-timeout", Run: heartbeatTimeout},
	{IDs: []string{"VOICE-069", "VOICE-076", "VOICE-077"}, Name: "voice/stop-source", Run: stopSource},
	{IDs: []string{"VOICE-110"}, Name: "voice/floods-closed", Run: floods},
	{IDs: []string{"VOICE-111"}, Name: "voice/bad-input-ends-one-session", Run: badInputEndsOneSession},
	{IDs: []string{"VOICE-065"}, Name: "voice/one-screen-share", Run: oneScreen},
	{IDs: []string{"VOICE-106"}, Name: "voice/screen-1080p", Run: screen1080p},
	{IDs: []string{"VOICE-078", "VOICE-077"}, Name: "voice/simulcast-resume", Run: simulcastResume},
	{IDs: []string{"VOICE-120", "VOICE-121", "VOICE-122", "VOICE-123", "VOICE-124"}, Name: "voice/network", Needs: harness.Needs{OwnNode: true, Managed: true, Args: networkArgs}, Run: network},
	{IDs: []string{"VOICE-062", "VOICE-100", "VOICE-101", "VOICE-102", "VOICE-103", "VOICE-104", "VOICE-105"}, Name: "voice/video-layers", Run: video},
	{IDs: []string{"VOICE-135", "VOICE-137", "VOICE-138", "VOICE-140", "VOICE-141"}, Name: "voice/cascade", Needs: harness.Needs{P2P: true, Nodes: 2}, Run: cascade},
	{IDs: []string{"VOICE-130", "VOICE-131", "VOICE-132", "VOICE-134", "VOICE-135", "VOICE-136", "VOICE-137", "VOICE-138", "VOICE-139", "VOICE-140", "VOICE-141"}, Name: "voice/cascade-with-fake-home", Needs: harness.Needs{P2P: true}, Run: cascadeWithFake},
	{IDs: []string{"VOICE-139"}, Name: "voice/cascade-link-lost", Needs: harness.Needs{P2P: true, Nodes: 2, Proxy: true}, Run: cascadeLinkLost},
}

// server is a VOICE_SERVER_UPDATE.
type server struct{ Token, GuildID, Endpoint string }

// join sends op 4 for channel and waits for VOICE_SERVER_UPDATE.
func join(t *T, s *harness.Session, guild, channel string) server {
	_ = s.Send(harness.OpVoiceState, Obj{"guild_id": guild, "channel_id": channel, "self_mute": false, "self_deaf": false})
	d := t.Expect(s.Gateway, "VOICE_SERVER_UPDATE", harness.Field("guild_id", guild))
	v := server{Token: str(d["token"]), GuildID: str(d["guild_id"]), Endpoint: str(d["endpoint"])}
	if v.Token == "" || v.Endpoint == "" {
		t.Fatalf("VOICE_SERVER_UPDATE lacks token or endpoint: %s", harness.JSON(d))
	}
	return v
}

// setup makes an owner with a gateway session in a fresh guild.
func setup(t *T) (*harness.User, *harness.Guild, *harness.Session) {
	u := t.NewUser()
	g := t.NewGuild(u)
	if g.Voice == "" {
		t.Fatalf("new guild has no voice channel")
	}
	s := t.Connect(u, harness.AllIntents)
	t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	return u, g, s
}

// dialVoice opens the voice WebSocket at endpoint (reached at the node's own
// address) and returns it after Hello.
func dialVoice(t *T, endpoint string) (*harness.Gateway, Obj) {
	u := voiceURL(t.Node, endpoint)
	g := t.DialURL(u)
	f, err := g.Next(t.Timeout())
	if err != nil || f.Op != opHello {
		t.Fatalf("voice WebSocket: expected Hello (8) first, got %s (%v)", f, err)
	}
	return g, f.Obj()
}

// connectVoice opens the voice WebSocket for v and identifies, waiting for Ready:
// the client is then in the voice channel, whichever of op 4 or the voice
// Identify a node counts as the join.
func connectVoice(t *T, s *harness.Session, v server) *harness.Gateway {
	vg, _ := dialVoice(t, v.Endpoint)
	send(t, vg, opIdentify, identify(s, v, s.User.ID))
	if f, err := vg.WaitOp(t.Timeout(), opReady); err != nil {
		t.Fatalf("voice Identify: expected Ready (2), got %v (%s)", err, f)
	}
	return vg
}

func identify(s *harness.Session, v server, user string) Obj {
	return Obj{"server_id": v.GuildID, "user_id": user, "session_id": s.SessionID(), "token": v.Token}
}

func send(t *T, g *harness.Gateway, op int, d any) {
	if err := g.Send(op, d); err != nil {
		t.Fatalf("%v", err)
	}
}

func expectClose(t *T, g *harness.Gateway, what string, want int) {
	code, err := g.WaitClose(t.Timeout())
	if err != nil || code != want {
		t.Errorf("%s: expected close %d, got %d (%v)", what, want, code, err)
	}
}

// offerSDP makes a real WebRTC offer with one send-receive audio m-line, shaped
// like a browser's: Opus with "minptime=10;useinbandfec=1", and the audio-level and
// transport-wide-cc header extensions offered.
func offerSDP(t *T) (*webrtc.PeerConnection, string) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatalf("pion: %v", err)
	}
	for _, uri := range []string{sdp.AudioLevelURI, sdp.TransportCCURI} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatalf("pion: %v", err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "conformance")
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatalf("pion: %v", err)
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
	return pc, pc.LocalDescription().SDP
}
