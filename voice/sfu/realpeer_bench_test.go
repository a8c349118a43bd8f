package sfu

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/voice/voiceclient"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// directPeer connects an SFU session to an in-process pion client without
// the WebSocket: offers are answered at once, candidates passed through.
type directPeer struct {
	pc   *webrtc.PeerConnection
	sess atomic.Pointer[Session]
}

func (p *directPeer) Send(m Message) error {
	switch m := m.(type) {
	case Offer:
		go func() {
			if err := p.pc.SetRemoteDescription(m.SDP); err != nil {
				return
			}
			ans, err := p.pc.CreateAnswer(nil)
			if err == nil {
				err = p.pc.SetLocalDescription(ans)
			}
			if err == nil {
				_ = p.sess.Load().HandleAnswer(ans, m.Revision)
			}
		}()
	case Candidate:
		if m.Candidate != "" {
			_ = p.pc.AddICECandidate(m.ICECandidateInit)
		}
	}
	return nil
}
func (p *directPeer) Close(error) {}

// joinDirect joins a pion client to the SFU in process, optionally
// publishing a microphone, and returns the client and its session.
func joinDirect(tb testing.TB, s *SFU, api *webrtc.API, user string, publish bool) (*webrtc.PeerConnection, *Session, *webrtc.TrackLocalStaticRTP, *atomic.Int64) {
	tb.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pc.Close() })
	var mic *webrtc.TrackLocalStaticRTP
	if publish {
		mic, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", user)
		if _, err := pc.AddTrack(mic); err != nil {
			tb.Fatal(err)
		}
	} else if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		tb.Fatal(err)
	}
	got := &atomic.Int64{}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := t.Read(buf); err != nil {
				return
			}
			got.Add(1)
		}
	})
	peer := &directPeer{pc: pc}
	sess, err := s.Join(context.Background(), JoinRequest{UserID: user, GuildID: "g", ChannelID: "c", Peer: peer})
	if err != nil {
		tb.Fatal(err)
	}
	peer.sess.Store(sess)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	<-done
	ans, err := sess.HandleOffer(context.Background(), *pc.LocalDescription())
	if err != nil {
		tb.Fatal(err)
	}
	if err := pc.SetRemoteDescription(ans); err != nil {
		tb.Fatal(err)
	}
	sess.AnswerSent()
	return pc, sess, mic, got
}

// BenchmarkForwardRealPeers measures the SFU's own cost of forwarding one
// audio packet to 49 real subscribers (a speaker in a 50-member room):
// header rewrite, pion interceptors, SRTP and the UDP send, run serially
// as the read loop runs them. ns/op is therefore also the latency the
// fan-out adds for the last subscriber on an idle core.
func BenchmarkForwardRealPeers(b *testing.B) {
	for _, n := range []int{1, 49} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchForward(b, n) })
	}
}

func benchForward(b *testing.B, n int) {
	s, err := New(Config{Loopback: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	api, err := voiceclient.NewAPI()
	if err != nil {
		b.Fatal(err)
	}
	_, pub, mic, _ := joinDirect(b, s, api, "pub", true)
	var counts []*atomic.Int64
	for i := range n {
		_, _, _, got := joinDirect(b, s, api, "sub"+strconv.Itoa(i), false)
		counts = append(counts, got)
	}
	// Publish until every subscriber receives, so that the up track exists
	// and every down track is bound.
	deadline := time.Now().Add(20 * time.Second)
	for seq := uint16(0); ; seq++ {
		_ = mic.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: make([]byte, 80)})
		time.Sleep(20 * time.Millisecond)
		all := true
		for _, c := range counts {
			all = all && c.Load() > 0
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("subscribers did not all receive")
		}
	}
	s.mu.Lock()
	var up *upTrack
	for _, u := range pub.published {
		up = u
	}
	s.mu.Unlock()
	subs := up.loadSubs()
	if len(subs) != n {
		b.Fatalf("%d subscribers bound, want %d", len(subs), n)
	}
	h := &rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1000, Timestamp: 960000, SSRC: 7}
	payload := make([]byte, 80)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.SequenceNumber++
		h.Timestamp += 960
		now := time.Now()
		for _, d := range subs {
			d.write(layerLow, h, payload, true, now)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/forward")
}
