package sfu

import (
	"strings"
	"testing"
)

func TestWithOpusFmtp(t *testing.T) {
	in := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\na=fmtp:0 x=1\r\n"
	out := withOpusFmtp(in)
	if !strings.Contains(out, "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n") {
		t.Fatalf("opus fmtp not completed:\n%s", out)
	}
	if !strings.Contains(out, "a=fmtp:0 x=1\r\n") {
		t.Fatalf("other codec touched:\n%s", out)
	}
	if again := withOpusFmtp(out); again != out {
		t.Fatalf("not idempotent:\n%s", again)
	}
}
