package sfu

import "github.com/pion/webrtc/v4"

// State is one member's voice state, in the shape of Discord's voice state
// object. The node turns it into a VOICE_STATE_UPDATE dispatch.
type State struct {
	GuildID string
	// ChannelID is the voice channel; empty means the member left voice.
	ChannelID string
	UserID    string
	// SessionID is the gateway session from the member's voice token.
	SessionID  string
	SelfMute   bool
	SelfDeaf   bool
	Mute       bool // server mute
	Deaf       bool // server deaf
	SelfVideo  bool // publishing a camera
	SelfStream bool // publishing a screen share
	// Remote is set for a member of another node, whom the cascade put in
	// the room; that node enforces the member's mute and deafen.
	Remote bool
}

// Events is how the SFU tells the node about voice-state changes. The node
// implements it; calls come from SFU goroutines, must not block for long and
// must not call back into the SFU synchronously.
type Events interface {
	// VoiceState reports a join, leave, move or mute/deaf/video change.
	VoiceState(State)
	// Speaking reports a member starting or stopping to speak.
	Speaking(guildID, channelID, userID string, speaking bool)
}

type nopEvents struct{}

func (nopEvents) VoiceState(State)                {}
func (nopEvents) Speaking(_, _, _ string, _ bool) {}

// Peer is how a session sends signaling to its client: the voice WebSocket
// implements it. Send must not block on the network for long (queue and
// drop, or fail); Close ends the client connection with a reason whose
// close code the implementation derives with CloseCode.
type Peer interface {
	Send(Message) error
	Close(reason error)
}

// Message is one server-to-client signaling message. It is one of Offer,
// Candidate, Tracks, Speaking, ClientsConnect, ClientDisconnect and
// ChannelSwitched.
type Message interface{ isMessage() }

// Offer is a server-initiated renegotiation (op 100).
type Offer struct {
	SDP      webrtc.SessionDescription
	Revision int
}

// Candidate is a trickled server ICE candidate (op 103). A zero value
// (empty Candidate) ends gathering.
type Candidate struct{ webrtc.ICECandidateInit }

// TrackInfo names who and what a track received by the client carries.
type TrackInfo struct {
	UserID   string `json:"user_id"`
	StreamID string `json:"stream_id"`
	TrackID  string `json:"track_id"`
	Kind     string `json:"kind"`
	Source   Source `json:"source"`
	Mid      string `json:"mid"`
}

// Tracks is the full current track map of a session (op 105).
type Tracks struct{ Tracks []TrackInfo }

// Speaking reports that a member in the room started or stopped speaking
// (op 5).
type Speaking struct {
	UserID   string
	SSRC     uint32
	Speaking bool
}

// ClientsConnect lists members present in or joining the room (op 11).
type ClientsConnect struct{ UserIDs []string }

// ClientDisconnect reports a member leaving the room (op 13).
type ClientDisconnect struct{ UserID string }

// ChannelSwitched reports that the session now sits in another channel
// (op 107), after a client switch or a moderator move.
type ChannelSwitched struct{ GuildID, ChannelID string }

func (Offer) isMessage()            {}
func (Candidate) isMessage()        {}
func (Tracks) isMessage()           {}
func (Speaking) isMessage()         {}
func (ClientsConnect) isMessage()   {}
func (ClientDisconnect) isMessage() {}
func (ChannelSwitched) isMessage()  {}
