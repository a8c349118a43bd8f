package gateway

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/snowflake"
)

// resumedEvent is dispatched after a resume's replay.
var resumedEvent = &fanout.Event{Type: "RESUMED", Data: []byte(`{"_trace":["hearth"]}`)}

type counters struct {
	slow atomic.Uint64
}

func (c *counters) slowClosed() { c.slow.Add(1) }

// conn is one WebSocket connection. The reader goroutine owns reads; at most one writer
// goroutine at a time drains control frames and the session's unsent dispatches.
type conn struct {
	gw   *Gateway
	ws   *websocket.Conn
	zlib bool
	// origin is the scheme and host the client dialled (see VoiceRequest.Origin).
	origin    string
	resumeURL string
	// br is the connection's read buffer (shared with the WebSocket library), to see
	// whether input is buffered before parking; nil if unknown.
	br *bufio.Reader
	// raw is the socket, for the poller; nil if it cannot be polled (TLS, say).
	raw       syscall.RawConn
	poll      *poller     // nil: the reader goroutine blocks in reads
	pollID    int32       // the poller's name for the connection; 0 before the first park
	pollAdded bool        // the socket is in the poller's epoll set (reader goroutine only)
	idle      *time.Timer // wakes a parked connection at its read deadline

	mu           sync.Mutex
	parked       bool      // no reader goroutine: the poller or the idle timer starts one
	readDeadline time.Time // the socket's read deadline
	sess         *Session
	control      [][]byte // frames to send before dispatches
	pongs        [][]byte // WebSocket pongs to send
	writing      bool
	closed       bool
	// lateClose, when not zero, is a close code the writer sends after the frame it is
	// writing, instead of any further dispatch (a session that fell behind).
	lateClose int
	zw        *zlib.Writer
	zbuf      bytes.Buffer
	scratch   []byte // a dispatch before compression (zlib-stream only)

	// wlock is held while writing to the socket (a buffered channel so that a close can
	// give up waiting for it); wdeadline is the socket's write deadline, under wlock.
	wlock     chan struct{}
	wdeadline time.Time

	frames      int       // client frames in the current minute
	windowStart time.Time // start of that minute
}

// ServeHTTP upgrades the request and serves the gateway protocol on it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := q.Get("v")
	if q.Get("encoding") != "" && q.Get("encoding") != "json" {
		http.Error(w, "only encoding=json is supported", http.StatusBadRequest)
		return
	}
	hj := &hijacker{ResponseWriter: w}
	ws, err := g.up.Upgrade(hj, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &conn{gw: g, ws: ws, zlib: q.Get("compress") == "zlib-stream", origin: requestOrigin(r), resumeURL: resumeURL(g, r),
		br: hj.br, windowStart: time.Now(), wlock: make(chan struct{}, 1)}
	if sc, ok := ws.NetConn().(syscall.Conn); ok && hj.br != nil {
		c.raw, _ = sc.SyscallConn()
	}
	ws.SetPingHandler(c.queuePong)
	// The reader answers a client's close frame with closeNow; the library must not write.
	ws.SetCloseHandler(func(int, string) error { return nil })
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		c.closeNow(1012, "server restarting")
		return
	}
	g.conns[c] = struct{}{}
	g.wg.Add(1)
	if g.poll == nil && !g.noPoll {
		p, err := newPoller()
		if err != nil {
			g.log.Info("gateway: every connection keeps a reader goroutine", "err", err)
			g.noPoll = true
		}
		g.poll = p
	}
	c.poll = g.poll
	g.mu.Unlock()
	if v != "" && v != "10" && v != "9" {
		c.closeNow(CloseInvalidAPIVersion, "invalid API version")
		g.forget(c)
		return
	}
	go c.readLoop()
}

// hijacker gives the WebSocket library a small read buffer of its own making when it
// hijacks the connection, and keeps it, so that the gateway can see whether input is
// buffered (see park).
type hijacker struct {
	http.ResponseWriter
	br *bufio.Reader
}

// Hijack implements http.Hijacker.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("gateway: the response cannot be hijacked")
	}
	nc, rw, err := hj.Hijack()
	if err != nil || rw.Reader.Buffered() > 0 {
		return nc, rw, err // the library refuses a client that sent data early
	}
	h.br = bufio.NewReaderSize(nc, readBufferSize)
	return nc, bufio.NewReadWriter(h.br, rw.Writer), nil
}

func resumeURL(g *Gateway, r *http.Request) string {
	if g.opts.ResumeURL != "" {
		return g.opts.ResumeURL
	}
	return requestOrigin(r) + "/gateway"
}

// requestOrigin is the WebSocket scheme and host of a request.
func requestOrigin(r *http.Request) string {
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	return scheme + "://" + r.Host
}

func (g *Gateway) forget(c *conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	g.wg.Done()
}

// readLoop starts serving a new connection: Hello, then frames until the connection ends.
func (c *conn) readLoop() {
	// Read up to 16 frames' worth so an oversized frame gets Discord's 4002 rather than
	// the WebSocket's 1009; anything larger is cut off by the library.
	c.ws.SetReadLimit(16 * MaxFrame)
	hb := c.gw.opts.HeartbeatInterval
	c.setReadDeadline(time.Now().Add(hb * 3 / 2))
	c.send(controlFrame(OpHello, map[string]any{"heartbeat_interval": hb.Milliseconds()}))
	c.serve()
}

// serve reads and handles client frames. It returns when the connection has ended (after
// finish), or when the connection is parked: nothing more is buffered from the client and
// the poller will call readable, which starts serve again, when there is.
func (c *conn) serve() {
	for {
		typ, msg, err := c.ws.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			clientClosed := false // the client closed with 1000 or 1001: its session ends, as on Discord
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				c.closeNow(CloseSessionTimedOut, "session timed out")
			case errors.Is(err, websocket.ErrReadLimit):
				c.closeNow(CloseDecodeError, "frame too large")
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway):
				clientClosed = true
				c.closeNow(websocket.CloseNormalClosure, "")
			default:
				c.closeNow(websocket.CloseNormalClosure, "")
			}
			c.finish(clientClosed)
			return
		}
		code := 0
		switch {
		case !c.allowFrame():
			code = CloseRateLimited
		case typ != websocket.TextMessage:
			code = CloseDecodeError
		}
		if code == 0 {
			if f, err := DecodeFrame(msg); err != nil {
				code = CloseDecodeError
			} else if c.poll != nil {
				code = c.handle(f) // this goroutine ends when the connection is idle
			} else {
				code = c.handleOffStack(f)
			}
		}
		if code != 0 {
			reason := closeReason(code)
			if typ != websocket.TextMessage && code == CloseDecodeError {
				reason = "binary frames are not accepted"
			}
			c.closeNow(code, reason)
			c.finish(false)
			return
		}
		if c.park() {
			return
		}
	}
}

// finish ends the connection's part in the gateway, once: its session is detached (or
// ended, if the client closed normally) and the connection forgotten.
func (c *conn) finish(clientClosed bool) {
	g := c.gw
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.poll != nil {
		c.poll.forget(c)
	}
	switch {
	case s == nil:
	case clientClosed:
		g.end(s)
	default:
		g.detach(s, c)
	}
	g.forget(c)
}

// park hands an idle connection to the poller and reports whether it did; the caller's
// goroutine then ends. Without a poller, for a socket it cannot poll (TLS), with input
// already buffered, or once the connection is closing, it returns false and the caller
// reads on.
func (c *conn) park() bool {
	p := c.poll
	if p == nil || c.raw == nil || c.br == nil || c.br.Buffered() > 0 {
		return false
	}
	// A client that stays silent past the read deadline must still be noticed (close
	// 4009): a timer wakes the connection then, and the read fails with a timeout. The
	// timer is set before the connection is marked parked, so that only this goroutine
	// touches c.idle (another reader may start as soon as parked is set).
	c.mu.Lock()
	deadline := c.readDeadline
	c.mu.Unlock()
	if c.idle == nil {
		c.idle = time.AfterFunc(time.Until(deadline), c.readable)
	} else {
		c.idle.Reset(time.Until(deadline))
	}
	c.mu.Lock()
	// If the timer fired already (it found the connection not parked), read on: the read
	// fails with a timeout at once.
	if c.closed || !time.Now().Before(deadline) {
		c.mu.Unlock()
		return false
	}
	c.parked = true
	c.mu.Unlock()
	if !p.arm(c) {
		c.mu.Lock()
		wasParked := c.parked
		c.parked = false
		c.mu.Unlock()
		if wasParked {
			return false
		}
		// readable already started another reader.
	}
	return true
}

// readable starts a reader for a parked connection (input arrived, its read deadline
// passed, or it was closed).
func (c *conn) readable() {
	c.mu.Lock()
	start := c.parked
	c.parked = false
	c.mu.Unlock()
	if start {
		go c.serve()
	}
}

// setReadDeadline sets the socket's read deadline and remembers it for park.
func (c *conn) setReadDeadline(t time.Time) {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	_ = c.ws.SetReadDeadline(t)
}

// handleOffStack runs handle on a short-lived goroutine and waits for it. Identify and
// Resume build large payloads, and whatever stack they need would otherwise stay with the
// reader goroutine for the life of the connection; an idle connection then costs a small
// stack instead (see docs/benchmarks.md, idle sessions). Frames are rare, so the extra
// goroutine per frame is cheap. With a poller, the reader goroutine itself is short-lived
// and handle runs on it.
func (c *conn) handleOffStack(f Frame) int {
	done := make(chan int, 1)
	go func() { done <- c.handle(f) }()
	return <-done
}

// allowFrame counts a client frame against FrameLimit per minute.
func (c *conn) allowFrame() bool {
	now := time.Now()
	if now.Sub(c.windowStart) >= time.Minute {
		c.windowStart, c.frames = now, 0
	}
	c.frames++
	return c.frames <= c.gw.opts.FrameLimit
}

// handle processes one client frame and returns a close code, or 0 to go on.
func (c *conn) handle(f Frame) int {
	g := c.gw
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	switch *f.Op {
	case OpHeartbeat:
		c.setReadDeadline(time.Now().Add(g.opts.HeartbeatInterval * 3 / 2))
		c.send(controlFrame(OpHeartbeatACK, nil))
		return 0
	case OpIdentify:
		if s != nil {
			return CloseAlreadyAuthenticated
		}
		s, ready, code := g.identify(f.D)
		if code != 0 {
			return code
		}
		g.readyEvents(s, ready, c.resumeURL)
		c.attach(s, 0)
		return 0
	case OpResume:
		if s != nil {
			return CloseAlreadyAuthenticated
		}
		rs, seq, ok, code := g.resume(f.D)
		if code != 0 {
			return code
		}
		if !ok {
			c.send(controlFrame(OpInvalidSession, false))
			return 0
		}
		c.attach(rs, seq)
		rs.Deliver(resumedEvent)
		return 0
	}
	if s == nil {
		switch *f.Op {
		case OpPresenceUpdate, OpVoiceStateUpdate, OpRequestGuildMembers:
			return CloseNotAuthenticated
		}
		return CloseUnknownOpcode
	}
	return g.command(s, f, c, c.origin)
}

// command handles the ops that need an identified session (WebSocket or long poll); c is nil
// for long polling. origin is the scheme and host the client reached the node at.
func (g *Gateway) command(s *Session, f Frame, c *conn, origin string) int {
	uid := snowflake.ID(s.user)
	switch *f.Op {
	case OpHeartbeat:
		return 0
	case OpPresenceUpdate:
		var p chat.Presence
		if err := json.Unmarshal(f.D, &p); err != nil || !chat.ValidStatus(p.Status) {
			return CloseDecodeError
		}
		g.dom.SetPresence(uid, p)
		return 0
	case OpVoiceStateUpdate:
		if g.opts.Voice == nil {
			g.log.Debug("voice state update ignored: voice is not enabled", "user", uid)
			return 0
		}
		events, err := g.opts.Voice(context.Background(), VoiceRequest{User: uid, SessionID: s.id, Origin: origin, Data: f.D})
		if errors.Is(err, ErrBadPayload) {
			return CloseDecodeError
		}
		if err != nil {
			g.log.Info("voice state update refused", "user", uid, "err", err)
		}
		for _, ev := range events {
			s.Deliver(ev)
		}
		return 0
	case OpRequestGuildMembers:
		var req struct {
			GuildID   snowflake.ID   `json:"guild_id"`
			Query     string         `json:"query"`
			Limit     int            `json:"limit"`
			UserIDs   []snowflake.ID `json:"user_ids"`
			Presences bool           `json:"presences"`
			Nonce     string         `json:"nonce"`
		}
		if err := json.Unmarshal(f.D, &req); err != nil {
			return CloseDecodeError
		}
		members, pres, err := g.dom.SearchMembers(uid, req.GuildID, req.Query, req.UserIDs, req.Limit)
		if err != nil {
			members = []chat.MemberOut{}
		}
		if members == nil {
			members = []chat.MemberOut{}
		}
		d := map[string]any{"guild_id": req.GuildID, "members": members, "chunk_index": 0, "chunk_count": 1, "not_found": []any{}}
		if req.Presences {
			if pres == nil {
				pres = []chat.PresenceOut{}
			}
			d["presences"] = pres
		}
		if req.Nonce != "" {
			d["nonce"] = req.Nonce
		}
		s.Deliver(&fanout.Event{Type: "GUILD_MEMBERS_CHUNK", Data: mustJSON(d)})
		return 0
	}
	return CloseUnknownOpcode
}

// attach binds the connection to a session and starts writing what it has not sent.
func (c *conn) attach(s *Session, sent uint64) {
	s.mu.Lock()
	if old := s.out; old != nil && old != c {
		defer old.closeNow(CloseUnknownError, "session resumed elsewhere")
	}
	s.out = c
	s.sent = sent
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.mu.Unlock()
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	c.wake()
}

// send queues a control frame.
func (c *conn) send(b []byte) {
	c.mu.Lock()
	c.control = append(c.control, b)
	c.mu.Unlock()
	c.wake()
}

// wake starts the writer if it is not running.
func (c *conn) wake() {
	c.mu.Lock()
	if c.writing || c.closed {
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.mu.Unlock()
	c.gw.wg.Add(1)
	go c.writeLoop()
}

// writeLoop writes control frames and unsent dispatches until there are none, then exits.
// Everything queued when it looks goes out in one write system call (up to maxBatch bytes),
// so a connection that receives many dispatches at once costs few syscalls; the buffer comes
// from a pool and goes back when the writer exits, so an idle connection holds none.
func (c *conn) writeLoop() {
	defer c.gw.wg.Done()
	bp := writeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			*bp = (*bp)[:0]
			writeBufs.Put(bp)
		}
	}()
	for {
		// Let whatever else is runnable (handlers creating more messages) go first: under load
		// more frames are queued by the time this writer collects them, and they share one
		// write; on an idle node nothing else is runnable and this returns at once.
		runtime.Gosched()
		c.mu.Lock()
		control, pongs := c.control, c.pongs
		c.control, c.pongs = nil, nil
		s := c.sess
		late := c.lateClose
		c.mu.Unlock()
		if late != 0 {
			c.stopWriting()
			c.closeWithin(late, closeReason(late), c.gw.writeTimeout())
			return
		}
		b := (*bp)[:0]
		for _, p := range pongs {
			b = appendFrame(b, wsPong, p)
		}
		for _, m := range control {
			var err error
			if b, err = c.appendMessage(b, m); err != nil {
				c.fail(err)
				return
			}
		}
		if s != nil {
			var ok bool
			var err error
			b, ok, err = c.appendPending(b, s)
			if err != nil {
				c.fail(err)
				return
			}
			if !ok {
				c.closeNow(CloseUnknownError, "resume buffer overrun")
				c.stopWriting()
				return
			}
		}
		*bp = b
		if len(b) == 0 {
			if c.finishIfIdle() {
				return
			}
			continue
		}
		if err := c.writeRaw(b, c.gw.writeTimeout()); err != nil {
			c.fail(err)
			return
		}
		// Most writes empty the queue (a fanout queues one frame per connection): stop now
		// rather than after another pass that yields and collects nothing.
		if c.finishIfIdle() {
			return
		}
	}
}

// finishIfIdle ends the writer, clearing c.writing, when nothing waits to be written. It
// checks under c.mu, which wake takes, so a wake between the writer's last look and its
// return is not lost.
func (c *conn) finishIfIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.control) == 0 && len(c.pongs) == 0 && c.lateClose == 0 && (c.sess == nil || !c.sess.hasUnsent(c)) {
		c.writing = false
		return true
	}
	return false
}

// appendPending appends frames for s's dispatches that c has not written, up to maxBatch
// bytes, and marks them written. ok is false when the resume buffer no longer holds them.
func (c *conn) appendPending(b []byte, s *Session) (_ []byte, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != c {
		return b, true, nil
	}
	withContent := s.withContent()
	ok = s.each(s.sent, func(e entry) bool {
		if c.zlib {
			c.scratch = appendDispatch(c.scratch[:0], e.ev, e.seq, withContent)
			if b, err = c.appendMessage(b, c.scratch); err != nil {
				return false
			}
		} else {
			b = appendDispatchFrame(b, e.ev, e.seq, withContent)
		}
		s.sent = e.seq
		return len(b) < maxBatch
	})
	return b, ok, err
}

// hasUnsent reports whether c is s's connection and s has dispatches c has not written.
func (s *Session) hasUnsent(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out == c && s.seq > s.sent
}

func (c *conn) stopWriting() {
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
}

func (c *conn) fail(err error) {
	c.gw.log.Debug("gateway write failed", "err", err)
	c.stopWriting()
	c.closeNow(websocket.CloseAbnormalClosure, "")
}

// appendMessage appends payload m as one frame: text, or binary compressed into the
// connection's zlib stream if it asked for that.
func (c *conn) appendMessage(b, m []byte) ([]byte, error) {
	if !c.zlib {
		return appendFrame(b, wsText, m), nil
	}
	c.zbuf.Reset()
	if c.zw == nil {
		c.zw = zlib.NewWriter(&c.zbuf)
	}
	if _, err := c.zw.Write(m); err != nil {
		return b, fmt.Errorf("gateway: zlib: %w", err)
	}
	if err := c.zw.Flush(); err != nil { // sync flush: ends with 00 00 ff ff
		return b, fmt.Errorf("gateway: zlib: %w", err)
	}
	return appendFrame(b, wsBinary, c.zbuf.Bytes()), nil
}

// writeRaw writes encoded frames to the socket, waiting at least d for the client to take
// them. Writes are serialised by c.wlock so that a close frame never lands inside another
// write. The socket's write deadline moves only when less than d of it is left, and then to
// 2d from now: a write waits between d and 2d for a client that does not read, and most
// writes skip the runtime's timer update (about 6% of a fanout's CPU per session).
func (c *conn) writeRaw(b []byte, d time.Duration) error {
	c.wlock <- struct{}{}
	defer func() { <-c.wlock }()
	nc := c.ws.NetConn()
	if now := time.Now(); c.wdeadline.Sub(now) < d {
		c.wdeadline = now.Add(2 * d)
		_ = nc.SetWriteDeadline(c.wdeadline)
	}
	if _, err := nc.Write(b); err != nil {
		return fmt.Errorf("gateway: write: %w", err)
	}
	return nil
}

// queuePong answers a client's ping through the writer (the library's default handler would
// write from the reader goroutine).
func (c *conn) queuePong(data string) error {
	c.mu.Lock()
	if len(c.pongs) < maxPongs {
		c.pongs = append(c.pongs, []byte(data))
	}
	c.mu.Unlock()
	c.wake()
	return nil
}

// writeTimeout is how long a write may at least wait for a client that does not read (at
// most twice that, see writeRaw): as long as a client may go without a heartbeat (1.5
// intervals), so a client that pauses reading is treated like one that pauses heartbeating,
// and one that fell behind still receives its 4000 close frame once it reads again.
func (g *Gateway) writeTimeout() time.Duration { return g.opts.HeartbeatInterval * 3 / 2 }

// closeBehind closes a connection whose session fell too far behind: the writer sends the
// close frame (4000, resumable) right after the frame it is writing, so a client that
// resumes reading within the write timeout learns why, then the connection is closed.
// It reports whether this call started the close.
func (c *conn) closeBehind() bool {
	c.mu.Lock()
	if c.closed || c.lateClose != 0 {
		c.mu.Unlock()
		return false
	}
	c.lateClose = CloseUnknownError
	c.mu.Unlock()
	c.wake()
	return true
}

// closeNow sends a close frame with code (none for CloseAbnormalClosure) and closes the
// connection; safe from any goroutine, and only the first call has an effect.
func (c *conn) closeNow(code int, reason string) { c.closeWithin(code, reason, time.Second) }

// closeWithin is closeNow waiting up to d for room in the socket for the close frame.
func (c *conn) closeWithin(code int, reason string, d time.Duration) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	if code != websocket.CloseAbnormalClosure {
		// Wait up to d for a write in progress, then up to d for room in the socket.
		t := time.NewTimer(d)
		select {
		case c.wlock <- struct{}{}:
			t.Stop()
			nc := c.ws.NetConn()
			c.wdeadline = time.Now().Add(d)
			_ = nc.SetWriteDeadline(c.wdeadline)
			_, _ = nc.Write(appendFrame(nil, wsClose, closeFramePayload(code, reason)))
			<-c.wlock
		case <-t.C:
		}
	}
	_ = c.ws.Close()
	c.readable() // a parked connection's reader sees the close and finishes
}

// reconnect asks the client to reconnect and resume (server shutdown): it queues op 7,
// gives the writer up to a second to send it, then closes with 1012 (resumable).
func (c *conn) reconnect() {
	c.send(controlFrame(OpReconnect, nil))
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		idle := c.closed || (!c.writing && len(c.control) == 0)
		c.mu.Unlock()
		if idle {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.closeNow(1012, "server restarting")
}

func closeReason(code int) string {
	switch code {
	case CloseUnknownOpcode:
		return "unknown opcode"
	case CloseDecodeError:
		return "decode error"
	case CloseNotAuthenticated:
		return "not authenticated"
	case CloseAuthenticationFailed:
		return "authentication failed"
	case CloseAlreadyAuthenticated:
		return "already authenticated"
	case CloseInvalidIntents:
		return "invalid intents"
	case CloseRateLimited:
		return "rate limited"
	case CloseUnknownError:
		return "session fell behind; resume"
	}
	return ""
}
