package cascade

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// Frame types on a link (spec/voice.md section 5).
const (
	typeState       byte = 1
	typeSubscribe   byte = 2
	typeUnsubscribe byte = 3
	typeKeyframe    byte = 4
	typePing        byte = 5
	typeModerate    byte = 6
	typeRTP         byte = 16
)

// maxFrame bounds a frame (type and body) [VOICE-130].
const maxFrame = 65535

// Member flags in a state frame.
const (
	flagSelfMute = 1 << iota
	flagSelfDeaf
	flagMute
	flagDeaf
	flagVideo
	flagStream
	flagSpeaking
)

// stateBody is a state frame: every member the sender has in voice in a
// guild; an empty list means none.
type stateBody struct {
	Guild   string       `cbor:"1,keyasint"`
	Members []memberWire `cbor:"2,keyasint"`
}

type memberWire struct {
	Name    string      `cbor:"1,keyasint"`
	Channel string      `cbor:"2,keyasint"`
	Session string      `cbor:"3,keyasint,omitempty"`
	Flags   uint32      `cbor:"4,keyasint"`
	Tracks  []trackWire `cbor:"5,keyasint,omitempty"`
}

type trackWire struct {
	ID       uint64 `cbor:"1,keyasint"`
	Source   string `cbor:"2,keyasint"`
	Mime     string `cbor:"3,keyasint"`
	Clock    uint32 `cbor:"4,keyasint"`
	Channels uint16 `cbor:"5,keyasint,omitempty"`
	Fmtp     string `cbor:"6,keyasint,omitempty"`
}

// trackBody is a subscribe, unsubscribe or keyframe frame.
type trackBody struct {
	Guild string `cbor:"1,keyasint"`
	Track uint64 `cbor:"2,keyasint"`
	Layer uint8  `cbor:"3,keyasint,omitempty"` // subscribe: the highest video layer wanted
}

// moderateBody is a moderator's change to a member of the receiving node,
// sent by the guild's home node [VOICE-135].
type moderateBody struct {
	Guild      string `cbor:"1,keyasint"`
	Name       string `cbor:"2,keyasint"`
	Mute       *bool  `cbor:"3,keyasint,omitempty"`
	Deaf       *bool  `cbor:"4,keyasint,omitempty"`
	Channel    string `cbor:"5,keyasint,omitempty"` // move to this channel
	Disconnect bool   `cbor:"6,keyasint,omitempty"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	if decMode, err = (cbor.DecOptions{MaxArrayElements: 4096, MaxMapPairs: 64, MaxNestedLevels: 8}).DecMode(); err != nil {
		panic(err)
	}
}

// appendControl appends a control frame with a CBOR body to b.
func appendControl(b []byte, typ byte, body any) ([]byte, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = encMode.Marshal(body); err != nil {
			return b, fmt.Errorf("cascade: encode frame %d: %w", typ, err)
		}
	}
	if 1+len(raw) > maxFrame {
		return b, fmt.Errorf("cascade: frame %d of %d bytes is over the limit", typ, 1+len(raw))
	}
	b = binary.AppendUvarint(b, uint64(1+len(raw)))
	b = append(b, typ)
	return append(b, raw...), nil
}

var errFrame = errors.New("cascade: bad frame")

// readFrame reads one frame into buf (grown as needed) and returns its type
// and body.
func readFrame(r *bufio.Reader, buf []byte) (byte, []byte, []byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, nil, buf, err
	}
	if n == 0 || n > maxFrame {
		return 0, nil, buf, fmt.Errorf("%w: length %d", errFrame, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, buf, err
	}
	return buf[0], buf[1:], buf, nil
}
