package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hearth-chat/hearth/node/fanout"
)

func TestDecodeFrame(t *testing.T) {
	good := []string{`{"op":1,"d":null}`, `{"op":2,"d":{"token":"x"}}`, ` {"op":11} `}
	for _, s := range good {
		if _, err := DecodeFrame([]byte(s)); err != nil {
			t.Errorf("DecodeFrame(%s): %v", s, err)
		}
	}
	bad := []string{``, `[]`, `null`, `{"d":1}`, `{"op":"1"}`, `{"op":1`, `{"op":1.5}`, `{"op":1,"d":"` + strings.Repeat("x", MaxFrame) + `"}`}
	for _, s := range bad {
		if _, err := DecodeFrame([]byte(s)); err == nil {
			t.Errorf("DecodeFrame(%.40s) succeeded", s)
		}
	}
}

func TestAppendDispatch(t *testing.T) {
	ev := &fanout.Event{Type: "MESSAGE_CREATE", Data: []byte(`{"content":"hi"}`), NoContent: func() []byte { return []byte(`{"content":""}`) }}
	var f struct {
		Op int
		T  string
		S  uint64
		D  struct{ Content string }
	}
	if err := json.Unmarshal(appendDispatch(nil, ev, 42, true), &f); err != nil {
		t.Fatal(err)
	}
	if f.Op != 0 || f.T != "MESSAGE_CREATE" || f.S != 42 || f.D.Content != "hi" {
		t.Fatalf("frame = %+v", f)
	}
	if err := json.Unmarshal(appendDispatch(nil, ev, 43, false), &f); err != nil || f.D.Content != "" {
		t.Fatalf("no-content frame = %+v, %v", f, err)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{`{"op":1}`, `{"op":2,"d":{"token":"a","intents":513}}`, `{`, `[]`, `{"op":6,"d":{"seq":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err == nil && fr.Op == nil {
			t.Fatal("accepted frame without op")
		}
		if err == nil && len(b) > MaxFrame {
			t.Fatal("accepted oversized frame")
		}
	})
}
