package voice

import (
	"strings"
	"testing"

	"github.com/hearth-chat/hearth/conformance/harness"
)

func TestTrailerRoundTrip(t *testing.T) {
	payload := append([]byte{0xfc, 1, 2, 3}, trailer("0a0b0c", 31, 70000)...)
	from, phase, n, ok := parseTrailer(payload)
	if !ok || from != "0a0b0c" || phase != 31 || n != 70000 {
		t.Fatalf("parseTrailer = %q %d %d %v", from, phase, n, ok)
	}
	for _, p := range [][]byte{nil, {0xfc}, []byte("not a trailer, just bytes")} {
		if _, _, _, ok := parseTrailer(p); ok {
			t.Errorf("parseTrailer(%q) found a trailer", p)
		}
	}
}

func TestSendsOn(t *testing.T) {
	sdp := strings.Join([]string{"v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "t=0 0",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=sendrecv",
		"m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=recvonly",
		"m=video 0 UDP/TLS/RTP/SAVPF 96", "a=mid:2", "a=sendonly",
		"m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:3", ""}, "\r\n")
	for mid, want := range map[string]bool{"0": true, "1": false, "2": false, "3": true} {
		if got, found := sendsOn(sdp, mid); !found || got != want {
			t.Errorf("sendsOn(mid %s) = %v, %v; want %v", mid, got, found, want)
		}
	}
	if _, found := sendsOn(sdp, "9"); found {
		t.Errorf("sendsOn found mid 9")
	}
}

func TestVoiceURL(t *testing.T) {
	node, err := harness.Target("http://127.0.0.1:5")
	if err != nil {
		t.Fatal(err)
	}
	for endpoint, want := range map[string]string{
		"ws://example.org:9/voice":        "/voice?v=1",
		"wss://example.org/voice?v=1":     "/voice?v=1",
		"ws://10.0.0.1:8080/hearth/voice": "/hearth/voice?v=1",
	} {
		if got := voiceURL(node, endpoint); got != "ws://127.0.0.1:5"+want {
			t.Errorf("voiceURL(%q) = %q, want ws://127.0.0.1:5%s", endpoint, got, want)
		}
	}
}
