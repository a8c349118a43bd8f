package sfu

import (
	"bytes"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

func rtpBytes(t testing.TB, ssrc uint32, exts map[uint8]string) []byte {
	t.Helper()
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, SSRC: ssrc}
	for id, v := range exts {
		if err := h.SetExtension(id, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := (&rtp.Packet{Header: h, Payload: []byte{1, 2, 3, 4}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStreamIDs checks that a remembered simulcast SSRC gets its mid and
// rid back in its first packets, and that other streams pass untouched.
func TestStreamIDs(t *testing.T) {
	const midExt, ridExt = 4, 10
	exts := []interceptor.RTPHeaderExtension{{URI: sdp.SDESMidURI, ID: midExt}, {URI: sdp.SDESRTPStreamIDURI, ID: ridExt}}
	ids := &streamIDs{ids: map[uint32]streamID{}, sending: map[string]bool{}}
	ids.setSending(map[string]webrtc.RTPCodecType{"1": webrtc.RTPCodecTypeVideo})
	ids.remember(1111, "1", "h")
	ids.remember(3333, "2", "") // no RID: not simulcast, not remembered
	for _, tc := range []struct {
		name             string
		ssrc             uint32
		in               map[uint8]string
		n                int // packets read before
		wantMid, wantRid string
	}{
		{name: "known SSRC without extensions", ssrc: 1111, wantMid: "1", wantRid: "h"},
		{name: "known SSRC with its own extensions", ssrc: 1111, in: map[uint8]string{midExt: "1", ridExt: "f"}, wantMid: "1", wantRid: "f"},
		{name: "known SSRC after the probe", ssrc: 1111, n: streamIDProbe},
		{name: "unknown SSRC", ssrc: 2222},
		{name: "SSRC without RID", ssrc: 3333},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := rtpBytes(t, tc.ssrc, tc.in)
			r := ids.BindRemoteStream(&interceptor.StreamInfo{SSRC: tc.ssrc, RTPHeaderExtensions: exts},
				interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
					return copy(b, pkt), a, nil
				}))
			buf := make([]byte, 1500)
			for range tc.n {
				if _, _, err := r.Read(buf, nil); err != nil {
					t.Fatal(err)
				}
			}
			p := readPacket(t, r, buf)
			if got := string(p.GetExtension(midExt)); got != tc.wantMid {
				t.Errorf("mid %q, want %q", got, tc.wantMid)
			}
			if got := string(p.GetExtension(ridExt)); got != tc.wantRid {
				t.Errorf("rid %q, want %q", got, tc.wantRid)
			}
			if !bytes.Equal(p.Payload, []byte{1, 2, 3, 4}) || p.SSRC != tc.ssrc || p.SequenceNumber != 7 {
				t.Errorf("packet changed: %+v", p)
			}
		})
	}
}

// TestStreamIDsWhileStopped checks that packets of a known SSRC that arrive
// while its m-line does not send are dropped, and the first one after the
// m-line sends again comes out marked.
func TestStreamIDsWhileStopped(t *testing.T) {
	ids := &streamIDs{ids: map[uint32]streamID{}, sending: map[string]bool{}}
	ids.remember(1111, "1", "q")
	pkt := rtpBytes(t, 1111, nil)
	reads := 0
	r := ids.BindRemoteStream(&interceptor.StreamInfo{SSRC: 1111, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{
		{URI: sdp.SDESMidURI, ID: 4}, {URI: sdp.SDESRTPStreamIDURI, ID: 10}}},
		interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
			if reads++; reads == 3 { // two packets in flight, then the client sends again
				ids.setSending(map[string]webrtc.RTPCodecType{"1": webrtc.RTPCodecTypeVideo})
			}
			return copy(b, pkt), a, nil
		}))
	p := readPacket(t, r, make([]byte, 1500))
	if reads != 3 || string(p.GetExtension(4)) != "1" || string(p.GetExtension(10)) != "q" {
		t.Fatalf("after %d reads: mid %q rid %q, want the third packet marked 1/q", reads, p.GetExtension(4), p.GetExtension(10))
	}
}

// FuzzMarkStream feeds markStream arbitrary packets from a client: it must
// not panic, must stay within the buffer, and a packet it changes must parse
// with the mid and rid and its payload.
func FuzzMarkStream(f *testing.F) {
	f.Add(rtpBytes(f, 1, nil), 1500)
	f.Add(rtpBytes(f, 1, map[uint8]string{4: "0"}), 1500)
	f.Add(rtpBytes(f, 1, map[uint8]string{2: "xyz"}), 20)
	f.Fuzz(func(t *testing.T, pkt []byte, size int) {
		if size < len(pkt) || size > 4096 {
			size = len(pkt)
		}
		b := make([]byte, size)
		copy(b, pkt)
		n := markStream(b, len(pkt), 4, 10, streamID{"1", "q"})
		if n > len(b) {
			t.Fatalf("length %d beyond buffer %d", n, len(b))
		}
		if n == len(pkt) && bytes.Equal(b[:n], pkt) {
			return
		}
		var in, out rtp.Packet
		if err := in.Unmarshal(pkt); err != nil {
			t.Fatalf("changed a packet that does not parse: %v", err)
		}
		if err := out.Unmarshal(b[:n]); err != nil {
			t.Fatalf("marked packet does not parse: %v", err)
		}
		if string(out.GetExtension(4)) != "1" || string(out.GetExtension(10)) != "q" || !bytes.Equal(out.Payload, in.Payload) {
			t.Fatalf("marked packet: mid %q rid %q payload %x, want payload %x", out.GetExtension(4), out.GetExtension(10), out.Payload, in.Payload)
		}
	})
}

// readPacket reads one RTP packet from r into buf and parses it.
func readPacket(t *testing.T, r interceptor.RTPReader, buf []byte) rtp.Packet {
	t.Helper()
	n, _, err := r.Read(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	return p
}
