// Package testnode starts real Hearth nodes inside a test process, each with its own data
// directory and loopback port, and gives tests small REST and gateway clients that speak the
// public protocol. Nodes are stopped when the test ends.
package testnode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/server"
)

// Node is a running node.
type Node struct {
	URL     string // http://127.0.0.1:PORT
	DataDir string
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// Options tune Start. The zero value is fine.
type Options struct {
	// DataDir reuses a data directory (to test restarts); empty means a fresh temp dir.
	DataDir string
	// Heartbeat is the gateway heartbeat interval; zero means 1 s.
	Heartbeat time.Duration
	// Config, if set, adjusts the config before the node starts.
	Config func(*config.Config)
}

// Start starts a node and waits until it answers /healthz.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = opts.DataDir
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.HeartbeatInterval = time.Second
	if opts.Heartbeat != 0 {
		cfg.HeartbeatInterval = opts.Heartbeat
	}
	cfg.RateGlobal, cfg.RateMessages = 100000, 100000
	cfg.ShutdownTimeout = 5 * time.Second
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	n, err := server.New(cfg, log)
	if err != nil {
		t.Fatalf("testnode: %v", err)
	}
	if err := n.Listen(); err != nil {
		t.Fatalf("testnode: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	node := &Node{URL: "http://" + n.Addr(), DataDir: cfg.DataDir, cancel: cancel, done: make(chan error, 1)}
	go func() { node.done <- n.Serve(ctx) }()
	t.Cleanup(func() { node.Stop(t) })
	return node
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// Stop shuts the node down gracefully and waits for it.
func (n *Node) Stop(t testing.TB) {
	if n.stopped {
		return
	}
	n.stopped = true
	n.cancel()
	if err := <-n.done; err != nil {
		t.Errorf("testnode: shutdown: %v", err)
	}
}

// Client is a user's REST client.
type Client struct {
	Node   *Node
	Token  string
	UserID string
	t      testing.TB
}

// Client returns a client with the given token (empty: anonymous).
func (n *Node) Client(t testing.TB, token string) *Client {
	return &Client{Node: n, Token: token, t: t}
}

// Register creates an account on the node.
func (n *Node) Register(t testing.TB, username string) *Client {
	t.Helper()
	c := &Client{Node: n, t: t}
	var out struct {
		Token  string `json:"token"`
		UserID string `json:"user_id"`
	}
	if st := c.Do("POST", "/auth/register", map[string]string{"username": username, "password": "correct horse battery"}, &out); st != 201 {
		t.Fatalf("register %s: status %d", username, st)
	}
	c.Token, c.UserID = out.Token, out.UserID
	return c
}

// Do sends a JSON request to /api/v10+path and decodes the answer into out (if not nil).
// It returns the status code.
func (c *Client) Do(method, path string, body, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.Node.URL+"/api/v10"+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", c.Token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// Must is Do that fails the test unless the status is 2xx.
func (c *Client) Must(method, path string, body, out any) {
	c.t.Helper()
	var raw json.RawMessage
	st := c.Do(method, path, body, &raw)
	if st/100 != 2 {
		c.t.Fatalf("%s %s: status %d: %s", method, path, st, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatal(err)
		}
	}
}

// Dispatch is one received dispatch.
type Dispatch struct {
	T string          `json:"t"`
	S int64           `json:"s"`
	D json.RawMessage `json:"d"`
}

// Gateway is a gateway client connection. A goroutine reads frames into a buffer; after
// Connect another one heartbeats.
type Gateway struct {
	WS        *websocket.Conn
	SessionID string
	t         testing.TB

	wmu    sync.Mutex // serialises writes (test and heartbeat goroutines)
	mu     sync.Mutex
	events []Dispatch
	other  []map[string]any
	closed error
	notify chan struct{}
	done   chan struct{}
}

// Connect opens the gateway and identifies with the given intents (-1: all). It waits for
// READY and returns the client; a goroutine heartbeats every interval.
func (c *Client) Connect(intents int64) *Gateway {
	c.t.Helper()
	g := Dial(c.t, c.Node, "")
	d := map[string]any{"token": c.Token, "properties": map[string]string{"os": "linux"}}
	if intents >= 0 {
		d["intents"] = intents
	}
	g.Send(map[string]any{"op": 2, "d": d})
	ready := g.Wait("READY")
	go g.heartbeat()
	var r struct {
		SessionID string `json:"session_id"`
	}
	_ = json.Unmarshal(ready.D, &r)
	g.SessionID = r.SessionID
	return g
}

// Dial opens a raw gateway connection with the query string q (default v=10&encoding=json),
// reading frames in the background. It does not identify.
func Dial(t testing.TB, n *Node, q string) *Gateway {
	t.Helper()
	if q == "" {
		q = "v=10&encoding=json"
	}
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(n.URL, "http", "ws", 1)+"/gateway?"+q, nil)
	if err != nil {
		t.Fatalf("dial gateway: %v", err)
	}
	g := &Gateway{WS: ws, t: t, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go g.read()
	t.Cleanup(func() { ws.Close(); <-g.done })
	return g
}

func (g *Gateway) read() {
	defer close(g.done)
	for {
		_, msg, err := g.WS.ReadMessage()
		g.mu.Lock()
		if err != nil {
			g.closed = err
			g.mu.Unlock()
			g.wake()
			return
		}
		var f map[string]any
		if json.Unmarshal(msg, &f) == nil {
			if op, _ := f["op"].(float64); op == 0 {
				var d Dispatch
				_ = json.Unmarshal(msg, &d)
				g.events = append(g.events, d)
			} else {
				g.other = append(g.other, f)
			}
		}
		g.mu.Unlock()
		g.wake()
	}
}

func (g *Gateway) wake() {
	select {
	case g.notify <- struct{}{}:
	default:
	}
}

// Send writes a frame.
func (g *Gateway) Send(v any) {
	g.t.Helper()
	g.wmu.Lock()
	err := g.WS.WriteJSON(v)
	g.wmu.Unlock()
	if err != nil {
		g.t.Fatalf("gateway send: %v", err)
	}
}

// heartbeat sends op 1 at half the interval from Hello until the connection closes.
func (g *Gateway) heartbeat() {
	interval := time.Second
	for _, f := range g.Frames() {
		if op, _ := f["op"].(float64); op == 10 {
			if d, ok := f["d"].(map[string]any); ok {
				interval = time.Duration(d["heartbeat_interval"].(float64)) * time.Millisecond
			}
		}
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-t.C:
			g.wmu.Lock()
			err := g.WS.WriteJSON(map[string]any{"op": 1, "d": nil})
			g.wmu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

// WaitFor waits up to 5 s until cond, evaluated under the lock on the received events and
// other frames, returns true.
func (g *Gateway) WaitFor(what string, cond func(events []Dispatch, other []map[string]any, closed error) bool) {
	g.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		g.mu.Lock()
		ok := cond(g.events, g.other, g.closed)
		g.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-g.notify:
		case <-deadline:
			g.mu.Lock()
			types := make([]string, len(g.events))
			for i, e := range g.events {
				types[i] = e.T
			}
			g.mu.Unlock()
			g.t.Fatalf("gateway: timed out waiting for %s; got dispatches %v, closed: %v", what, types, g.closed)
		}
	}
}

// Wait returns the first dispatch of type typ not returned by Wait before.
func (g *Gateway) Wait(typ string) Dispatch {
	g.t.Helper()
	var found Dispatch
	g.WaitFor(typ, func(events []Dispatch, _ []map[string]any, _ error) bool {
		for i, e := range events {
			if e.T == typ {
				found = e
				g.events = append(events[:i:i], events[i+1:]...)
				return true
			}
		}
		return false
	})
	return found
}

// Has reports whether a dispatch of type typ has been received and not consumed.
func (g *Gateway) Has(typ string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range g.events {
		if e.T == typ {
			return true
		}
	}
	return false
}

// CloseCode waits for the server to close the connection and returns the close code.
func (g *Gateway) CloseCode() int {
	g.t.Helper()
	var code int
	g.WaitFor("close", func(_ []Dispatch, _ []map[string]any, closed error) bool {
		if closed == nil {
			return false
		}
		if ce, ok := closed.(*websocket.CloseError); ok {
			code = ce.Code
		} else {
			code = -1
		}
		return true
	})
	return code
}

// Frames returns the non-dispatch frames received so far.
func (g *Gateway) Frames() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.other...)
}

// Decode unmarshals a dispatch payload.
func (d Dispatch) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(d.D, v); err != nil {
		t.Fatalf("decode %s: %v", d.T, err)
	}
}

// String is for failure messages.
func (d Dispatch) String() string { return fmt.Sprintf("%s #%d %s", d.T, d.S, d.D) }
