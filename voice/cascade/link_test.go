package cascade

import (
	"io"
	"log/slog"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pion/rtp"

	"github.com/hearth-chat/hearth/voice/sfu"
)

// TestLinkQueueBound checks VOICE-133: "a node MUST NOT queue more than 256 KiB of
// frames on a link for media: beyond that it drops media frames (never control
// frames)". A link that falls behind (here, one whose writer never runs) is fed
// far more media than fits: the queue never holds more than MaxQueue bytes (256
// KiB with the default of New), it is filled to within one frame of the bound
// (media is dropped only when the next frame would not fit), every packet is
// either queued or counted as dropped, and a control frame is still queued on the
// full link.
func TestLinkQueueBound(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		cascade func(t *testing.T) *Cascade
		payload int // RTP payload bytes per packet
	}{
		{"default of New, voice", defaultCascade, 160},
		{"default of New, video", defaultCascade, 1200},
		{"4 KiB, voice", func(*testing.T) *Cascade { return &Cascade{cfg: Config{MaxQueue: 4 << 10}, log: quiet} }, 160},
		{"4 KiB, video", func(*testing.T) *Cascade { return &Cascade{cfg: Config{MaxQueue: 4 << 10}, log: quiet} }, 1200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cascade(t)
			l := newLink(c, "other")
			payload := make([]byte, tc.payload)
			h := &rtp.Header{Version: 2, PayloadType: 111, SSRC: 1}
			// A frame: its length (two bytes for these sizes), type, track ID, packet.
			frame := 2 + 1 + 1 + h.MarshalSize() + len(payload)
			sent := 2*c.cfg.MaxQueue/frame + 100
			for i := range sent {
				h.SequenceNumber = uint16(i)
				l.rtp(7, h, payload)
			}
			l.mu.Lock()
			queued := len(l.buf)
			l.mu.Unlock()
			if queued > c.cfg.MaxQueue {
				t.Fatalf("%d bytes of media queued on a link that fell behind, limit %d", queued, c.cfg.MaxQueue)
			}
			if queued <= c.cfg.MaxQueue-frame {
				t.Fatalf("only %d bytes queued (limit %d): media dropped before the queue was full", queued, c.cfg.MaxQueue)
			}
			if d := l.dropped.Load(); d == 0 || int(d)+queued/frame != sent || queued%frame != 0 {
				t.Fatalf("dropped %d media frames of %d with %d bytes queued", d, sent, queued)
			}
			l.control(typePing, nil)
			l.mu.Lock()
			after := len(l.buf)
			l.mu.Unlock()
			if after <= queued {
				t.Fatalf("a control frame was not queued on a full link (%d bytes before, %d after)", queued, after)
			}
		})
	}
}

// defaultCascade is a Cascade from New with MaxQueue left 0 (its default).
func defaultCascade(t *testing.T) *Cascade {
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	s, err := sfu.New(sfu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c, err := New(Config{Host: h, SFU: s, Dir: fakeDir{nodes: []peer.ID{h.ID()}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if c.cfg.MaxQueue != 256<<10 {
		t.Fatalf("New's default MaxQueue is %d bytes, VOICE-133 allows 256 KiB", c.cfg.MaxQueue)
	}
	return c
}
