package signal

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		op     int
		wantOK bool
	}{
		{"heartbeat", `{"op":3,"d":{"t":1}}`, 3, true},
		{"unknown fields ignored", `{"op":0,"d":{},"extra":[1,2]}`, 0, true},
		{"op zero", `{"op":0}`, 0, true},
		{"no op", `{"d":1}`, 0, false},
		{"op string", `{"op":"3"}`, 0, false},
		{"array", `[1]`, 0, false},
		{"truncated", `{"op":3`, 0, false},
		{"too large", `{"op":3,"d":"` + strings.Repeat("x", MaxFrame) + `"}`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := decodeFrame([]byte(tt.in))
			if (err == nil) != tt.wantOK {
				t.Fatalf("err = %v, want ok=%v", err, tt.wantOK)
			}
			if err != nil && !errors.Is(err, errFrame) {
				t.Fatalf("err %v does not wrap errFrame", err)
			}
			if err == nil && f.Op != tt.op {
				t.Fatalf("op = %d, want %d", f.Op, tt.op)
			}
		})
	}
}

// FuzzDecodeFrame checks that no client frame crashes the decoder or the
// payload decoders that follow it.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"op":0,"d":{"server_id":"1","user_id":"2","session_id":"s","token":"hv1.a.b"}}`))
	f.Add([]byte(`{"op":1,"d":{"protocol":"webrtc","data":{"type":"offer","sdp":"v=0"}}}`))
	f.Add([]byte(`{"op":103,"d":{"candidate":"x","sdp_mid":"0","sdp_mline_index":0}}`))
	f.Add([]byte(`{"op":104,"d":{"user_id":"1","source":"screen","max_layer":"high"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			return
		}
		var (
			id identify
			sp selectProtocol
			ic iceCandidate
			lr layerRequest
			w  watch
			cs channelSwitch
		)
		for _, v := range []any{&id, &sp, &ic, &lr, &w, &cs} {
			_ = decodeD(fr, v)
		}
	})
}
