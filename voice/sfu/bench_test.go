package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// discardWriter is a TrackLocalWriter that drops packets, so benchmarks
// measure only the SFU's own forwarding work.
type discardWriter struct{}

func (discardWriter) WriteRTP(*rtp.Header, []byte) (int, error) { return 0, nil }
func (discardWriter) Write(b []byte) (int, error)               { return len(b), nil }

func newFanout(n int) (*upTrack, []*downTrack) {
	owner := &Session{userID: "1"}
	up := &upTrack{owner: owner, id: "1-microphone", kind: webrtc.RTPCodecTypeAudio,
		codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}}
	var ds []*downTrack
	for range n {
		d := newDownTrack(up, &Session{}, nil)
		d.writer, d.ssrc, d.pt = discardWriter{}, 1, 111
		d.enabled.Store(true)
		up.addSub(d)
		ds = append(ds, d)
	}
	return up, ds
}

func TestForwardingDoesNotAllocate(t *testing.T) {
	up, _ := newFanout(49)
	h := &rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1, Timestamp: 960, SSRC: 5}
	if err := h.SetExtension(1, []byte{0x90}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 80)
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		h.SequenceNumber++
		for _, d := range up.loadSubs() {
			d.write(layerLow, h, payload, true, now)
		}
		up.speaking.observe(h.GetExtension(1)[0]&0x7f, now)
	})
	if allocs != 0 {
		t.Fatalf("forwarding one packet to 49 subscribers allocates %v times", allocs)
	}
}

// BenchmarkFanout49 forwards one audio packet to 49 subscribers (one
// speaker in a 50-member room), without SRTP and sockets.
func BenchmarkFanout49(b *testing.B) {
	up, _ := newFanout(49)
	h := &rtp.Header{Version: 2, PayloadType: 111, SSRC: 5}
	payload := make([]byte, 80)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		h.SequenceNumber++
		for _, d := range up.loadSubs() {
			d.write(layerLow, h, payload, true, now)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/49, "ns/forward")
}

// BenchmarkReadParse is the per-packet work of the read loop before
// fan-out: header parse, audio level, speaking detection.
func BenchmarkReadParse(b *testing.B) {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 5}, Payload: make([]byte, 80)}
	_ = pkt.Header.SetExtension(1, []byte{0x90})
	raw, _ := pkt.Marshal()
	var h rtp.Header
	var sd speakingDetector
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Unmarshal(raw); err != nil {
			b.Fatal(err)
		}
		if ext := h.GetExtension(1); len(ext) > 0 {
			sd.observe(ext[0]&0x7f, now)
		}
	}
}
