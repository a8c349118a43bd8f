// Package voice is Hearth's voice and video: a per-node SFU, the voice
// WebSocket that clients signal through, and the tokens that bind them to
// a channel. The protocol is spec/voice.md; this comment is the contract
// with the node, which wires the parts in. The subpackages:
//
//   - voice/token mints and verifies voice tokens (HMAC, at most 60 s, bound
//     to user, guild and channel).
//   - voice/sfu forwards media: rooms per voice channel, speaking
//     detection, server mute and deafen, simulcast layers, channel switches
//     on one PeerConnection.
//   - voice/signal is the voice WebSocket, an http.Handler.
//   - voice/cascade relays voice between nodes of a federated guild over
//     the libp2p protocol /hearth/voice/cascade/1.0.0: other nodes' members
//     become remote members of the SFU's rooms (sfu.SFU.SetRemote), local
//     tracks are tapped for them (sfu.SFU.Tap), once per node.
//   - voice/voiceclient is a Go client of the voice WebSocket for tests and
//     benchmarks (the node's tests use it too).
//
// The node's wiring is node/server/voice.go (op 4, events, moderation),
// node/server/voicecascade.go (the cascade, when federation is on: the ID
// mapping between the SFU and federation, moderation from the home node) and
// node/chat/voice.go (voice states, the CONNECT check). Voice states the SFU
// reports with State.Remote set are other nodes' members: the node shows
// them but does not enforce its stored mute and deafen on them (their own
// node does).
//
// # Wiring
//
// At start-up the node builds, from its flags (--voice-udp-port or
// --voice-udp-range, --voice-tcp-port, --voice-public-ip, TURN settings):
//
//	tokens, err := token.New(secret32, 0) // secret: 32+ random bytes, kept across restarts or not
//	s, err := sfu.New(sfu.Config{
//		UDPPort:   udpPort,        // or UDPPortMin/UDPPortMax
//		TCPPort:   tcpPort,        // ICE-TCP fallback; 0 disables
//		PublicIPs: publicIPs,      // --voice-public-ip
//		Events:    voiceEvents,    // the node's sfu.Events implementation
//		Logger:    logger,
//	})
//	mux.Handle("/voice", &signal.Handler{SFU: s, Tokens: tokens, ICEServers: turnServers})
//	defer s.Close() // on shutdown: sessions end with close code 4015
//
// # Gateway op 4 (Voice State Update)
//
// When a client sends op 4 with a channel, the node checks CONNECT (and
// SPEAK for the client's UI) and then:
//
//	tok, err := tokens.Mint(token.Claims{UserID: u, GuildID: g, ChannelID: c, SessionID: gatewaySessionID})
//	// dispatch VOICE_SERVER_UPDATE {token: tok, guild_id: g, endpoint: "ws://HOST/voice"} to that session
//	_ = s.SetSelfState(g, u, selfMute, selfDeaf) // if the user is already in voice (ErrNoSession otherwise)
//
// The client then opens the voice WebSocket itself. A client already in
// voice that switches channel sends the fresh token over its open voice
// WebSocket (op 106), which keeps its PeerConnection. Op 4 with a null
// channel: s.Disconnect(g, u).
//
// VOICE_STATE_UPDATE is dispatched from the node's Events implementation,
// not from op 4: the SFU calls Events.VoiceState on every join, leave,
// move, mute, deafen, camera and screen-share change, with ChannelID ""
// for a leave. Events.Speaking reports speaking changes (the voice
// WebSocket already delivers them to the room; the node may ignore them).
// Both are called from SFU goroutines and must not block or call back
// into the SFU synchronously.
//
// # Moderation
//
// PATCH /guilds/{g}/members/{u} with mute, deaf or channel_id, after the
// node checked MUTE_MEMBERS, DEAFEN_MEMBERS or MOVE_MEMBERS:
//
//	s.SetServerMute(g, u, mute) // audio dropped at the SFU
//	s.SetServerDeaf(g, u, deaf) // nothing forwarded to the member
//	s.Move(g, u, channelID)     // same PeerConnection, client gets op 107
//	s.Disconnect(g, u)          // channel_id null: voice WebSocket closes with 4014
//
// All return an error wrapping sfu.ErrNoSession if the user is not in voice
// in that guild. s.Participants(g, c) lists a channel's voice states, for
// the guild's voice_states in READY and GUILD_CREATE.
//
// # Limits
//
// The voice WebSocket has no Close of its own: SFU.Close ends every
// identified connection (4015), and a connection that never identified
// ends at its Identify timeout (10 s). Cascade media rides the libp2p
// stream between nodes (spec/voice.md VOICE-133); there is no WebRTC
// transport between SFUs. Batched sends (one sendmmsg per fan-out) need the
// shared UDP port (--voice-udp-port); with a port per session every copy
// is its own send.
package voice
