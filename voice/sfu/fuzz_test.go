package sfu

import (
	"context"
	"errors"
	"testing"

	"github.com/pion/webrtc/v4"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

type nopPeer struct{}

func (nopPeer) Send(Message) error { return nil }
func (nopPeer) Close(error)        {}

// FuzzHandleOffer feeds arbitrary SDP through the SFU's validation and
// pion's parser in a real session; nothing may panic, and the session must
// close cleanly.
func FuzzHandleOffer(f *testing.F) {
	s, err := New(Config{Loopback: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Add("v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=rid:q send\r\na=simulcast:send q;h;f\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		se, err := s.Join(context.Background(), JoinRequest{UserID: "u", GuildID: "g", ChannelID: "c", Peer: nopPeer{}})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = se.HandleOffer(context.Background(), webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: raw})
		se.Close(nil)
	})
}

func FuzzValidateOffer(f *testing.F) {
	f.Add("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Fuzz(func(t *testing.T, raw string) { _, _ = validateOffer(raw) })
}
