package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/hearth-chat/hearth/node/fanout"
)

// Opcodes (Discord gateway v10).
const (
	OpDispatch            = 0
	OpHeartbeat           = 1
	OpIdentify            = 2
	OpPresenceUpdate      = 3
	OpVoiceStateUpdate    = 4
	OpResume              = 6
	OpReconnect           = 7
	OpRequestGuildMembers = 8
	OpInvalidSession      = 9
	OpHello               = 10
	OpHeartbeatACK        = 11
)

// Close codes (Discord).
const (
	CloseUnknownError         = 4000
	CloseUnknownOpcode        = 4001
	CloseDecodeError          = 4002
	CloseNotAuthenticated     = 4003
	CloseAuthenticationFailed = 4004
	CloseAlreadyAuthenticated = 4005
	CloseInvalidSeq           = 4007
	CloseRateLimited          = 4008
	CloseSessionTimedOut      = 4009
	CloseInvalidAPIVersion    = 4012
	CloseInvalidIntents       = 4013
)

// MaxFrame is the largest client frame accepted, as on Discord.
const MaxFrame = 4096

// Frame is a client frame as decoded. D stays raw until the op is known.
type Frame struct {
	Op *int            `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

var errDecode = errors.New("gateway: decode error")

// DecodeFrame parses a client frame. It fails for anything that is not a JSON object with a
// numeric op, or that is larger than MaxFrame.
func DecodeFrame(b []byte) (Frame, error) {
	var f Frame
	if len(b) > MaxFrame {
		return f, errDecode
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return f, errDecode
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Op == nil {
		return f, errDecode
	}
	return f, nil
}

// appendDispatch appends the dispatch frame of ev with sequence number seq.
func appendDispatch(dst []byte, ev *fanout.Event, seq uint64, withContent bool) []byte {
	data := ev.Payload(withContent)
	dst = append(dst, `{"op":0,"t":"`...)
	dst = append(dst, ev.Type...)
	dst = append(dst, `","s":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"d":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// controlFrame encodes a non-dispatch frame.
func controlFrame(op int, d any) []byte {
	b, err := json.Marshal(map[string]any{"op": op, "d": d, "s": nil, "t": nil})
	if err != nil {
		panic(err) // only called with marshalable values
	}
	return b
}
