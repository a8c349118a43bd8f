package gateway

import (
	"sync"
	"time"

	"github.com/hearth-chat/hearth/node/fanout"
)

// entry is one dispatch in a session's resume buffer.
type entry struct {
	seq uint64
	ev  *fanout.Event
}

// Session is one identified client session: its sequence numbers and resume buffer outlive
// any one connection, so a client can resume on a new connection (or poll over HTTP) without
// losing a dispatch.
type Session struct {
	gw      *Gateway
	id      string
	user    uint64
	intents uint64
	guilds  []uint64

	mu       sync.Mutex
	seq      uint64
	buf      []entry // ring of the last gw.opts.ResumeBuffer dispatches
	start    int     // index of the oldest entry in buf once it is full
	out      *conn   // attached WebSocket connection, or nil
	sent     uint64  // highest seq written to out
	lastSeen time.Time
	expiry   *time.Timer
	dead     bool
	polls    chan struct{} // closed and replaced when a dispatch arrives (long polling)
}

// UserID implements fanout.Session.
func (s *Session) UserID() uint64 { return s.user }

// Deliver implements fanout.Session: it numbers the event, keeps it for resume, and wakes
// the writer. It never blocks; a connection too far behind is closed (resumable).
func (s *Session) Deliver(ev *fanout.Event) {
	if ev.Intent != 0 && s.intents&ev.Intent == 0 {
		return
	}
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return
	}
	s.push(ev)
	c := s.out
	behind := s.seq - s.sent
	s.mu.Unlock()
	if c != nil {
		if behind > uint64(s.gw.opts.MaxQueue) {
			if c.closeBehind() {
				s.gw.metrics.slowClosed()
			}
			return
		}
		c.wake()
	}
}

// push numbers ev and appends it to the ring. Callers hold s.mu.
func (s *Session) push(ev *fanout.Event) {
	s.seq++
	e := entry{seq: s.seq, ev: ev}
	if len(s.buf) < s.gw.opts.ResumeBuffer {
		s.buf = append(s.buf, e)
	} else {
		s.buf[s.start] = e
		s.start = (s.start + 1) % len(s.buf)
	}
	if s.polls != nil {
		close(s.polls)
		s.polls = nil
	}
}

// since returns a copy of the buffered entries after seq (at most max of them), and
// whether the buffer still holds everything after seq. Callers hold s.mu.
func (s *Session) since(seq uint64, max int) ([]entry, bool) {
	var out []entry
	ok := s.each(seq, func(e entry) bool {
		if len(out) >= max {
			return false
		}
		out = append(out, e)
		return true
	})
	return out, ok
}

// each calls fn with the buffered entries after seq, in order, until fn returns false. It
// reports whether the buffer still holds everything after seq. Callers hold s.mu.
func (s *Session) each(seq uint64, fn func(entry) bool) bool {
	if seq > s.seq {
		return false
	}
	if seq == s.seq {
		return true
	}
	n := len(s.buf)
	if n == 0 || s.buf[s.start].seq > seq+1 {
		return false
	}
	for i := int(seq + 1 - s.buf[s.start].seq); i < n; i++ {
		if !fn(s.buf[(s.start+i)%n]) {
			break
		}
	}
	return true
}

// withContent reports whether the session receives message content.
func (s *Session) withContent() bool { return s.intents&intentMessageContent != 0 }

const intentMessageContent = 1 << 15
