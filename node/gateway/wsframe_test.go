package gateway

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/hearth-chat/hearth/node/fanout"
)

func TestAppendFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xFF, 0xFF}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := appendFrameHeader(nil, wsText, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("header(%d) = % x, want % x", tc.n, got, tc.want)
		}
	}
}

func TestAppendDispatchFrame(t *testing.T) {
	ev := &fanout.Event{Type: "MESSAGE_CREATE", Data: bytes.Repeat([]byte("x"), 300), NoContent: func() []byte { return []byte(`{}`) }}
	for _, withContent := range []bool{true, false} {
		for _, seq := range []uint64{1, 9, 10, 1 << 40} {
			f := appendDispatchFrame(nil, ev, seq, withContent)
			payload := appendDispatch(nil, ev, seq, withContent)
			var n int
			switch f[1] {
			case 126:
				n, f = int(binary.BigEndian.Uint16(f[2:4])), f[4:]
			case 127:
				t.Fatal("unexpected 64-bit length")
			default:
				n, f = int(f[1]), f[2:]
			}
			if n != len(payload) || !bytes.Equal(f, payload) {
				t.Errorf("seq %d content %v: length %d, payload %q; want %d, %q", seq, withContent, n, f, len(payload), payload)
			}
		}
	}
}

func TestClosePayload(t *testing.T) {
	p := closeFramePayload(4000, string(bytes.Repeat([]byte("r"), 200)))
	if len(p) != 125 || binary.BigEndian.Uint16(p) != 4000 {
		t.Fatalf("close payload: %d bytes, code %d", len(p), binary.BigEndian.Uint16(p))
	}
}
