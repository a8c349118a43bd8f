package cascade

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pion/rtp"
)

// link is this node's outbound stream to one other node. Everything this
// node says to that node goes on it; the stream is written only. Frames are
// appended to a buffer by any goroutine and written by the link's own
// goroutine, so a slow peer never blocks a publisher's read loop: media is
// dropped when the buffer is over the limit, control frames never are.
type link struct {
	c    *Cascade
	peer peer.ID

	mu      sync.Mutex
	buf     []byte
	spare   []byte
	closed  bool
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
	sent    atomic.Int64 // unix nanos of the last write
}

func newLink(c *Cascade, p peer.ID) *link {
	l := &link{c: c, peer: p, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	l.sent.Store(time.Now().UnixNano())
	return l
}

func (l *link) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// control queues a control frame; it is never dropped while the link lives.
func (l *link) control(typ byte, body any) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	var err error
	l.buf, err = appendControl(l.buf, typ, body)
	l.mu.Unlock()
	if err != nil {
		l.c.log.Error("cascade: frame", "peer", l.peer, "err", err)
		return
	}
	l.kick()
}

// rtp queues one media packet of track id, or drops it when the link is
// behind.
func (l *link) rtp(id uint64, h *rtp.Header, payload []byte) {
	size := h.MarshalSize() + len(payload)
	n := 1 + uvarintLen(id) + size
	l.mu.Lock()
	// The frame is queued only if the queue stays within MaxQueue with it [VOICE-133].
	if l.closed || len(l.buf)+uvarintLen(uint64(n))+n > l.c.cfg.MaxQueue {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.buf = binary.AppendUvarint(l.buf, uint64(n))
	l.buf = append(l.buf, typeRTP)
	l.buf = binary.AppendUvarint(l.buf, id)
	start := len(l.buf)
	l.buf = slices.Grow(l.buf, size)[:start+size]
	hn, err := h.MarshalTo(l.buf[start:])
	if err != nil {
		l.buf = l.buf[:start-1-uvarintLen(id)-uvarintLen(uint64(n))]
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	copy(l.buf[start+hn:], payload)
	l.mu.Unlock()
	l.kick()
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// close stops the link; its goroutine closes the stream.
func (l *link) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.stop)
	}
	l.mu.Unlock()
}

// run opens the stream and writes queued frames until the link closes or a
// write fails. It is owned by the Cascade's wait group.
func (l *link) run() {
	defer close(l.done)
	defer l.c.linkEnded(l)
	ctx, cancel := context.WithTimeout(l.c.ctx, l.c.cfg.Timeout)
	s, err := l.c.cfg.Host.NewStream(ctx, l.peer, Protocol)
	cancel()
	if err != nil {
		l.c.log.Debug("cascade: open link", "peer", l.peer, "err", err)
		l.close()
		return
	}
	for {
		select {
		case <-l.wake:
		case <-l.stop:
			_ = s.Close()
			return
		case <-l.c.ctx.Done():
			_ = s.Reset()
			return
		}
		l.mu.Lock()
		out := l.buf
		l.buf, l.spare = l.spare[:0], nil
		l.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		_ = s.SetWriteDeadline(time.Now().Add(l.c.cfg.Timeout))
		_, err := s.Write(out)
		l.mu.Lock()
		l.spare = out[:0]
		l.mu.Unlock()
		if err != nil {
			l.c.log.Info("cascade: link lost", "peer", l.peer, "err", err)
			_ = s.Reset()
			l.close()
			return
		}
		l.sent.Store(time.Now().UnixNano())
	}
}
