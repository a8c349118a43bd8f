package gateway

import (
	"encoding/binary"
	"strconv"
	"sync"

	"github.com/hearth-chat/hearth/node/fanout"
)

// The gateway writes its WebSocket frames itself (RFC 6455 §5.2: a server's frames are
// unmasked, so a frame is a 2-, 4- or 10-byte header and the payload), so that a
// connection's queued frames go out in one write system call; the WebSocket library is used
// for the handshake and for reading. See writeLoop.

// WebSocket opcodes the gateway writes.
const (
	wsText   = 0x1
	wsBinary = 0x2
	wsClose  = 0x8
	wsPong   = 0xA
)

const (
	// maxBatch is how many bytes of frames the writer encodes before it writes them out.
	maxBatch = 32 << 10
	// maxPooledBuf is the largest write buffer returned to the pool.
	maxPooledBuf = 64 << 10
	// maxPongs is how many unanswered pings a connection keeps; more are dropped.
	maxPongs = 4
)

// writeBufs holds write buffers: a connection holds one only while it is writing.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// appendFrameHeader appends the header of a final, unmasked frame with opcode op and a
// payload of n bytes.
func appendFrameHeader(dst []byte, op byte, n int) []byte {
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126)
		return binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// appendFrame appends a whole frame with opcode op and payload p.
func appendFrame(dst []byte, op byte, p []byte) []byte {
	return append(appendFrameHeader(dst, op, len(p)), p...)
}

// closeFramePayload is the payload of a close frame: the code, then the reason, cut so that
// the payload fits a control frame (125 bytes).
func closeFramePayload(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(p, reason...)
}

// dispatchLen is len(appendDispatch(nil, ev, seq, withContent)).
func dispatchLen(ev *fanout.Event, seq uint64, withContent bool) int {
	const fixed = len(`{"op":0,"t":"`) + len(`","s":`) + len(`,"d":`) + len(`}`)
	var digits [20]byte
	return fixed + len(ev.Type) + len(strconv.AppendUint(digits[:0], seq, 10)) + len(ev.Payload(withContent))
}

// appendDispatchFrame appends the dispatch as one uncompressed text frame.
func appendDispatchFrame(dst []byte, ev *fanout.Event, seq uint64, withContent bool) []byte {
	dst = appendFrameHeader(dst, wsText, dispatchLen(ev, seq, withContent))
	return appendDispatch(dst, ev, seq, withContent)
}
