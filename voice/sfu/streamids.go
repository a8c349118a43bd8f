package sfu

import (
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// streamIDProbe is how many packets of a stream streamIDs marks: pion
// reads at most 11 while it looks for a simulcast stream's mid and rid.
const streamIDProbe = 32

// streamID is the m-line and simulcast RID a client's SSRC was seen with.
type streamID struct{ mid, rid string }

// streamIDs lets pion take up a simulcast layer that comes back on an SSRC
// it has seen before without the mid and rid header extensions. A browser
// sends those extensions only until the SSRC is acknowledged, and keeps a
// transceiver's SSRCs when it sends again after "inactive" (spec/voice.md
// 3.4.1), while pion identifies a simulcast stream it does not know by the
// extensions alone (the SDP declares RIDs, not SSRCs). So the session
// remembers each layer's SSRC (remember, from onTrack), and the interceptor
// writes the extensions into the first packets of such a stream when they
// lack them. Packets of such a stream that arrive while its m-line does not
// send (in flight when the client stopped it) are dropped: marked, they would
// make pion look for a receiver the m-line no longer has, fail, and ignore
// the SSRC for good; unmarked, pion's probe waits for the layer to come back.
// One per PeerConnection; streams it does not know pass untouched.
type streamIDs struct {
	interceptor.NoOp
	mu      sync.Mutex
	ids     map[uint32]streamID // by SSRC
	sending map[string]bool     // the mids the last client offer sends on
}

// streamIDFactory makes a PeerConnection's streamIDs and hands it to sink,
// from which Join takes it (NewPeerConnection calls the factory
// synchronously).
type streamIDFactory struct{ sink *estimatorSink }

func (f streamIDFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	ids := &streamIDs{ids: map[uint32]streamID{}, sending: map[string]bool{}}
	f.sink.ids = ids
	return ids, nil
}

// remember records that ssrc carried layer rid of m-line mid.
func (s *streamIDs) remember(ssrc uint32, mid, rid string) {
	if s == nil || rid == "" {
		return
	}
	s.mu.Lock()
	s.ids[ssrc] = streamID{mid, rid}
	s.mu.Unlock()
}

// setSending records the mids a client offer sends on, once the session has
// applied it.
func (s *streamIDs) setSending(sending map[string]webrtc.RTPCodecType) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sending)
	for mid := range sending {
		s.sending[mid] = true
	}
}

func (s *streamIDs) sends(mid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sending[mid]
}

// BindRemoteStream marks the first packets of a known SSRC with its mid and
// rid when they lack them.
func (s *streamIDs) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	s.mu.Lock()
	id, ok := s.ids[info.SSRC]
	s.mu.Unlock()
	var midExt, ridExt uint8
	for _, e := range info.RTPHeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midExt = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridExt = uint8(e.ID)
		}
	}
	if !ok || midExt == 0 || ridExt == 0 {
		return r
	}
	n := 0
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			i, a, err := r.Read(b, a)
			if err != nil || n >= streamIDProbe {
				return i, a, err
			}
			if !s.sends(id.mid) {
				continue // in flight when the m-line stopped
			}
			n++
			return markStream(b, i, midExt, ridExt, id), a, nil
		}
	})
}

// markStream adds the mid and rid extensions to the RTP packet in b[:n] if
// it has no mid, and returns its new length; a packet that does not parse,
// or would not fit in b, stays as it is.
func markStream(b []byte, n int, midExt, ridExt uint8, id streamID) int {
	var p rtp.Packet
	// A copy: the payload must not alias b, which MarshalTo overwrites.
	if p.Unmarshal(append([]byte(nil), b[:n]...)) != nil || p.GetExtension(midExt) != nil {
		return n
	}
	if p.SetExtension(midExt, []byte(id.mid)) != nil || p.SetExtension(ridExt, []byte(id.rid)) != nil {
		return n
	}
	if p.MarshalSize() > len(b) {
		return n
	}
	m, err := p.MarshalTo(b)
	if err != nil {
		return n
	}
	return m
}
