package signal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Voice gateway opcodes (spec/voice.md section 3.1). 0-13 are Discord's.
const (
	OpIdentify         = 0
	OpSelectProtocol   = 1
	OpReady            = 2
	OpHeartbeat        = 3
	OpSessionDesc      = 4
	OpSpeaking         = 5
	OpHeartbeatACK     = 6
	OpResume           = 7
	OpHello            = 8
	OpResumed          = 9
	OpClientsConnect   = 11
	OpClientDisconnect = 13
	OpServerOffer      = 100
	OpClientAnswer     = 101
	OpClientOffer      = 102
	OpICECandidate     = 103
	OpLayerRequest     = 104
	OpTrackMap         = 105
	OpChannelSwitch    = 106
	OpChannelSwitched  = 107
	OpWatch            = 108
	OpError            = 109
)

// Close codes of the voice WebSocket that the handler itself decides; the
// SFU's codes come from sfu.CloseCode.
const (
	CloseUnknownOpcode    = 4001
	CloseDecode           = 4002
	CloseNotAuthenticated = 4003
	CloseAuthFailed       = 4004
	CloseAlreadyAuth      = 4005
	CloseSessionInvalid   = 4006
	CloseTimeout          = 4009
	CloseUnknownProtocol  = 4012
	CloseServerError      = 4015
)

// MaxFrame is the largest accepted client frame (VOICE-020).
const MaxFrame = 64 << 10

// Frame is one voice gateway message.
type Frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
}

var errFrame = errors.New("signal: bad frame")

// decodeFrame parses a client frame. It is the entry point for untrusted
// bytes and is fuzzed.
func decodeFrame(b []byte) (Frame, error) {
	if len(b) > MaxFrame {
		return Frame{}, fmt.Errorf("%w: %d bytes", errFrame, len(b))
	}
	var raw struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", errFrame, err)
	}
	if raw.Op == nil {
		return Frame{}, fmt.Errorf("%w: no op", errFrame)
	}
	return Frame{Op: *raw.Op, D: raw.D}, nil
}

// decodeD parses a frame's payload into v; unknown fields are ignored
// (VOICE-021), a missing payload is an error.
func decodeD(f Frame, v any) error {
	if len(f.D) == 0 || bytes.Equal(f.D, []byte("null")) {
		return fmt.Errorf("%w: op %d without payload", errFrame, f.Op)
	}
	if err := json.Unmarshal(f.D, v); err != nil {
		return fmt.Errorf("%w: op %d: %v", errFrame, f.Op, err)
	}
	return nil
}

type identify struct {
	ServerID  string `json:"server_id"`
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	Token     string `json:"token"`
}

type sessionDesc struct {
	Type     string `json:"type"`
	SDP      string `json:"sdp"`
	Revision int    `json:"revision,omitempty"`
	// Sources maps the client's send mids to sources (Hearth addition).
	Sources map[string]string `json:"sources,omitempty"`
}

type selectProtocol struct {
	Protocol string      `json:"protocol"`
	Data     sessionDesc `json:"data"`
}

type iceCandidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdp_mid"`
	SDPMLineIndex *uint16 `json:"sdp_mline_index"`
}

type layerRequest struct {
	UserID   string `json:"user_id"`
	Source   string `json:"source"`
	MaxLayer string `json:"max_layer"`
}

type watch struct {
	UserID string `json:"user_id"`
	Watch  bool   `json:"watch"`
}

type channelSwitch struct {
	Token string `json:"token"`
}
