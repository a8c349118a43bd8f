package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway opcodes (spec/client-api.md §3.1).
const (
	OpDispatch       = 0
	OpHeartbeat      = 1
	OpIdentify       = 2
	OpPresenceUpdate = 3
	OpVoiceState     = 4
	OpResume         = 6
	OpReconnect      = 7
	OpRequestMembers = 8
	OpInvalidSession = 9
	OpHello          = 10
	OpHeartbeatACK   = 11
)

// AllIntents asks for every intent group the spec defines.
const AllIntents = 1<<0 | 1<<1 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12 | 1<<13 | 1<<14 | 1<<15

// Frame is one gateway payload.
type Frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  string          `json:"t"`
	// Raw is the frame as received.
	Raw []byte `json:"-"`
}

// Obj decodes D as a JSON object (nil if it is not one).
func (f Frame) Obj() Obj {
	var o Obj
	_ = json.Unmarshal(f.D, &o)
	return o
}

// String is the frame as received, shortened for messages.
func (f Frame) String() string { return Snip(f.Raw) }

// Gateway is a minimal gateway client: a reader goroutine queues every frame,
// tests take them in order with Next or search with WaitDispatch.
type Gateway struct {
	conn *websocket.Conn

	mu        sync.Mutex
	frames    []Frame
	next      int // index of the next frame Next returns
	notify    chan struct{}
	closed    bool
	closeCode int // 0: not closed or closed without a close frame
	closeErr  error

	writeMu  sync.Mutex
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// ErrTimeout is returned when an awaited frame or close did not come in time.
var ErrTimeout = errors.New("timed out")

// DialGateway opens a WebSocket to url (ws://host/gateway?v=10&encoding=json).
// The caller must Close it.
func DialGateway(ctx context.Context, url string) (*Gateway, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, resp, fmt.Errorf("harness: dial %s: %w", url, err)
	}
	g := &Gateway{conn: conn, notify: make(chan struct{}), stop: make(chan struct{})}
	g.wg.Add(1)
	go g.read()
	return g, resp, nil
}

func (g *Gateway) read() {
	defer g.wg.Done()
	for {
		mt, data, err := g.conn.ReadMessage()
		g.mu.Lock()
		if err != nil {
			g.closed = true
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				g.closeCode = ce.Code
			}
			g.closeErr = err
			close(g.notify)
			g.mu.Unlock()
			return
		}
		f := Frame{Raw: data, Op: -1}
		if mt == websocket.TextMessage {
			if json.Unmarshal(data, &f) != nil {
				f.Op = -1
			}
		}
		g.frames = append(g.frames, f)
		close(g.notify)
		g.notify = make(chan struct{})
		g.mu.Unlock()
	}
}

// Send writes one frame {"op":op,"d":d}.
func (g *Gateway) Send(op int, d any) error {
	buf, err := json.Marshal(map[string]any{"op": op, "d": d})
	if err != nil {
		return fmt.Errorf("harness: encode frame: %w", err)
	}
	return g.SendRaw(buf)
}

// SendRaw writes data as one text message.
func (g *Gateway) SendRaw(data []byte) error {
	g.writeMu.Lock()
	defer g.writeMu.Unlock()
	_ = g.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := g.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("harness: gateway write: %w", err)
	}
	return nil
}

// Next returns the next unread frame, waiting up to timeout.
func (g *Gateway) Next(timeout time.Duration) (Frame, error) {
	deadline := time.After(timeout)
	for {
		g.mu.Lock()
		if g.next < len(g.frames) {
			f := g.frames[g.next]
			g.next++
			g.mu.Unlock()
			return f, nil
		}
		if g.closed {
			err := g.closeErr
			g.mu.Unlock()
			return Frame{}, fmt.Errorf("connection closed (%d): %w", g.closeCode, err)
		}
		ch := g.notify
		g.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return Frame{}, ErrTimeout
		}
	}
}

// WaitDispatch returns the first unread dispatch named name for which match is
// true (nil matches all), skipping the frames before it.
func (g *Gateway) WaitDispatch(timeout time.Duration, name string, match func(Frame) bool) (Frame, error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := g.Next(time.Until(deadline))
		if err != nil {
			return Frame{}, fmt.Errorf("waiting for %s: %w", name, err)
		}
		if f.Op == OpDispatch && f.T == name && (match == nil || match(f)) {
			return f, nil
		}
	}
}

// WaitOp returns the next unread frame with opcode op, skipping others.
func (g *Gateway) WaitOp(timeout time.Duration, op int) (Frame, error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := g.Next(time.Until(deadline))
		if err != nil {
			return Frame{}, fmt.Errorf("waiting for op %d: %w", op, err)
		}
		if f.Op == op {
			return f, nil
		}
	}
}

// Frames returns a copy of every frame received so far.
func (g *Gateway) Frames() []Frame {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Frame(nil), g.frames...)
}

// Seen reports whether any frame received so far matches.
func (g *Gateway) Seen(match func(Frame) bool) (Frame, bool) {
	for _, f := range g.Frames() {
		if match(f) {
			return f, true
		}
	}
	return Frame{}, false
}

// WaitClose waits up to timeout for the server to close the connection and
// returns the close code (0 if the connection ended without a close frame).
func (g *Gateway) WaitClose(timeout time.Duration) (int, error) {
	deadline := time.After(timeout)
	for {
		g.mu.Lock()
		if g.closed {
			code := g.closeCode
			g.mu.Unlock()
			return code, nil
		}
		ch := g.notify
		g.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return 0, ErrTimeout
		}
	}
}

// Heartbeat starts sending op 1 every interval with the last sequence number
// seen, until Close.
func (g *Gateway) Heartbeat(interval time.Duration) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-tk.C:
				if g.Send(OpHeartbeat, g.LastSeq()) != nil {
					return
				}
			}
		}
	}()
}

// LastSeq is the highest dispatch sequence number received (nil before any).
func (g *Gateway) LastSeq() *int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var last *int64
	for _, f := range g.frames {
		if f.S != nil && (last == nil || *f.S > *last) {
			last = f.S
		}
	}
	return last
}

// Close closes the connection (abruptly, without a close frame, like a dropped
// network) and waits for the client's goroutines.
func (g *Gateway) Close() {
	g.stopOnce.Do(func() {
		close(g.stop)
		_ = g.conn.Close()
	})
	g.wg.Wait()
}

// CloseWith sends a close frame with code, then closes.
func (g *Gateway) CloseWith(code int) {
	g.writeMu.Lock()
	_ = g.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	g.writeMu.Unlock()
	g.Close()
}
