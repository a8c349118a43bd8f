package cascade

import (
	"io"
	"log/slog"
	"testing"

	"github.com/pion/rtp"
)

// TestLinkQueueBound checks VOICE-133: a link that falls behind (here, one
// whose writer never runs) queues media only up to MaxQueue and drops the
// rest, while control frames are still queued.
func TestLinkQueueBound(t *testing.T) {
	c := &Cascade{cfg: Config{MaxQueue: 4 << 10}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	l := newLink(c, "other")
	payload := make([]byte, 160)
	h := &rtp.Header{Version: 2, PayloadType: 111, SSRC: 1}
	for i := range 1000 {
		h.SequenceNumber = uint16(i)
		l.rtp(7, h, payload)
	}
	l.mu.Lock()
	queued := len(l.buf)
	l.mu.Unlock()
	frame := 1 + 1 + 1 + h.MarshalSize() + len(payload)
	if queued > c.cfg.MaxQueue+frame {
		t.Fatalf("%d bytes queued, limit %d", queued, c.cfg.MaxQueue)
	}
	if d := l.dropped.Load(); d == 0 || int(d)+queued/frame != 1000 {
		t.Fatalf("dropped %d media frames of 1000 with %d bytes queued", d, queued)
	}
	l.control(typePing, nil)
	l.mu.Lock()
	after := len(l.buf)
	l.mu.Unlock()
	if after <= queued {
		t.Fatalf("a control frame was not queued on a full link (%d bytes before, %d after)", queued, after)
	}
}
