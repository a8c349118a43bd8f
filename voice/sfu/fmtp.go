package sfu

import (
	"regexp"
	"strings"
)

var opusRtpmap = regexp.MustCompile(`(?m)^a=rtpmap:(\d+) opus/48000`)

// withOpusFmtp makes every Opus fmtp line of an SDP ask for in-band FEC and DTX. pion
// answers with the parameters of the offer's matching codec, and browsers offer
// "minptime=10;useinbandfec=1" without usedtx, so the SFU's own wish has to be added to
// the answer sent to the client for the client to send DTX (spec/voice.md, VOICE-060).
func withOpusFmtp(sdp string) string {
	for _, m := range opusRtpmap.FindAllStringSubmatch(sdp, -1) {
		prefix := "a=fmtp:" + m[1] + " "
		lines := strings.Split(sdp, "\r\n")
		for i, l := range lines {
			if !strings.HasPrefix(l, prefix) {
				continue
			}
			params := l[len(prefix):]
			for _, want := range []string{"useinbandfec=1", "usedtx=1"} {
				key := want[:strings.IndexByte(want, '=')+1]
				if !strings.Contains(";"+params, ";"+key) {
					params += ";" + want
				}
			}
			lines[i] = prefix + params
		}
		sdp = strings.Join(lines, "\r\n")
	}
	return sdp
}
