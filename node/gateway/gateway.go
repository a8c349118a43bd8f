// Package gateway serves the real-time dispatch stream (spec/client-api.md §3): Discord's
// v10 gateway over WebSocket, with resume, zombie detection, optional zlib-stream
// compression, and the same stream over HTTP long polling.
//
// Each identified client is a Session registered with the fanout hub. A session outlives its
// connection for ResumeWindow so the client can resume. On Linux an idle connection has no
// goroutine at all: an epoll poller starts a reader when the client sends something (or its
// read deadline passes), and a writer goroutine exists only while there is something to
// write. The gateway writes WebSocket frames itself, everything a connection has queued in
// one write system call. Elsewhere each connection keeps a reader goroutine.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/snowflake"
)

// Domain is what the gateway needs from the chat domain.
type Domain interface {
	Authenticate(token string) (snowflake.ID, error)
	Ready(user snowflake.ID) chat.ReadyState
	UserGuilds(user snowflake.ID) []uint64
	SetPresence(user snowflake.ID, p chat.Presence)
	SearchMembers(actor, guildID snowflake.ID, query string, userIDs []snowflake.ID, limit int) ([]chat.MemberOut, []chat.PresenceOut, error)
}

// Hub is what the gateway needs from fanout.
type Hub interface {
	Add(s fanout.Session, guilds []uint64)
	Remove(s fanout.Session, guilds []uint64) bool
	Publish(ev *fanout.Event)
}

// VoiceRequest is one op 4 (Voice State Update) from an identified session.
type VoiceRequest struct {
	User      snowflake.ID
	SessionID string
	// Origin is the scheme and host the client reached the gateway at, such as
	// "ws://127.0.0.1:8080" ("wss://…" over TLS), so that the node can name a voice endpoint
	// on the same host when it has no public URL.
	Origin string
	// Data is the op's d payload, undecoded.
	Data json.RawMessage
}

// VoiceHandler handles op 4 (Voice State Update). It returns dispatches meant for the
// calling session only (VOICE_SERVER_UPDATE), which the gateway delivers in order. An error
// wrapping ErrBadPayload closes the connection with 4002; any other error is logged and the
// connection stays open. A nil VoiceHandler means voice is not available and op 4 is ignored.
type VoiceHandler func(ctx context.Context, req VoiceRequest) ([]*fanout.Event, error)

// ErrBadPayload is what a command handler wraps when the client's payload cannot be decoded.
var ErrBadPayload = errors.New("gateway: bad payload")

// Options configure New. Zero values take the defaults in brackets.
type Options struct {
	HeartbeatInterval time.Duration // [41.25 s]
	ResumeWindow      time.Duration // how long a disconnected session can be resumed [5 min]
	ResumeBuffer      int           // dispatches kept for resume [1000]
	MaxQueue          int           // unsent dispatches before a connection is closed with 4000 [500]
	PollIdle          time.Duration // a long-poll session with no poll this long is closed [60 s]
	FrameLimit        int           // client frames per minute before close 4008 [120]
	Voice             VoiceHandler
	Logger            *slog.Logger
	// ResumeURL is the resume_gateway_url in READY; empty derives it from the request.
	ResumeURL string
}

// Gateway serves sessions.
type Gateway struct {
	dom     Domain
	hub     Hub
	opts    Options
	log     *slog.Logger
	up      websocket.Upgrader
	metrics counters

	mu       sync.Mutex
	sessions map[string]*Session
	conns    map[*conn]struct{}
	closing  bool
	wg       sync.WaitGroup // connections (until finish) and writer goroutines
	poll     *poller        // started with the first connection; nil without epoll
	noPoll   bool           // the poller could not start
}

// readBufferSize is a connection's read buffer: client frames are at most 4 KiB and rare.
const readBufferSize = 512

// New returns a gateway.
func New(dom Domain, hub Hub, opts Options) *Gateway {
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 41250 * time.Millisecond
	}
	if opts.ResumeWindow == 0 {
		opts.ResumeWindow = 5 * time.Minute
	}
	if opts.ResumeBuffer == 0 {
		opts.ResumeBuffer = 1000
	}
	if opts.MaxQueue == 0 {
		opts.MaxQueue = 500
	}
	if opts.PollIdle == 0 {
		opts.PollIdle = 60 * time.Second
	}
	if opts.FrameLimit == 0 {
		opts.FrameLimit = 120
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Gateway{
		dom: dom, hub: hub, opts: opts, log: opts.Logger,
		up: websocket.Upgrader{
			// The read buffer is made by hijacker (readBufferSize), which the library reuses
			// when ReadBufferSize is 0; the gateway writes frames itself (writeLoop), so the
			// library's write buffers are pooled and unused.
			ReadBufferSize: 0, WriteBufferSize: 0, WriteBufferPool: &sync.Pool{},
			CheckOrigin: func(*http.Request) bool { return true }, // tokens, not cookies, authenticate
		},
		sessions: map[string]*Session{}, conns: map[*conn]struct{}{},
	}
}

func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Stats reports live sessions, attached WebSocket connections, and connections closed for
// falling behind.
func (g *Gateway) Stats() (sessions, connections int, slowClosed uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions), len(g.conns), g.metrics.slow.Load()
}

// identify validates an Identify payload and creates a session.
func (g *Gateway) identify(d json.RawMessage) (*Session, chat.ReadyState, int) {
	var id struct {
		Token    string          `json:"token"`
		Intents  json.RawMessage `json:"intents"`
		Presence *chat.Presence  `json:"presence"`
	}
	if err := json.Unmarshal(d, &id); err != nil {
		return nil, chat.ReadyState{}, CloseDecodeError
	}
	uid, err := g.dom.Authenticate(stripScheme(id.Token))
	if err != nil {
		return nil, chat.ReadyState{}, CloseAuthenticationFailed
	}
	intents := uint64(1<<63 - 1)
	if len(id.Intents) > 0 && string(id.Intents) != "null" {
		var n int64
		if err := json.Unmarshal(id.Intents, &n); err != nil || n < 0 {
			return nil, chat.ReadyState{}, CloseInvalidIntents
		}
		intents = uint64(n)
	}
	s := &Session{gw: g, id: newSessionID(), user: uint64(uid), intents: intents, lastSeen: time.Now()}
	ready := g.dom.Ready(uid)
	s.guilds = g.dom.UserGuilds(uid)
	g.mu.Lock()
	g.sessions[s.id] = s
	g.mu.Unlock()
	g.hub.Add(s, s.guilds)
	p := chat.Presence{Status: "online"}
	if id.Presence != nil && chat.ValidStatus(id.Presence.Status) {
		p = *id.Presence
	}
	g.dom.SetPresence(uid, p)
	return s, ready, 0
}

// readyEvents pushes READY and one GUILD_CREATE per guild into the session.
func (g *Gateway) readyEvents(s *Session, ready chat.ReadyState, resumeURL string) {
	stubs := make([]map[string]any, len(ready.Guilds))
	for i, gd := range ready.Guilds {
		stubs[i] = map[string]any{"id": gd.ID, "unavailable": true}
	}
	readStates := ready.ReadStates
	payload := map[string]any{
		"v": 10, "user": ready.User, "guilds": stubs, "session_id": s.id, "resume_gateway_url": resumeURL,
		"private_channels": ready.PrivateChannels, "relationships": []any{}, "user_settings": map[string]any{},
		"read_state":  map[string]any{"entries": readStates, "partial": false, "version": 1},
		"application": map[string]any{"id": ready.User.ID, "flags": 0}, "session_type": "normal",
		"shard": []int{0, 1},
	}
	s.mu.Lock()
	s.push(&fanout.Event{Type: "READY", Data: mustJSON(payload)})
	for _, gd := range ready.Guilds {
		if s.intents&1 != 0 {
			s.push(&fanout.Event{Type: "GUILD_CREATE", Data: mustJSON(gd)})
		}
	}
	s.mu.Unlock()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// resume finds a session to resume for token, session ID and last seen sequence number.
// A bad token is an authentication failure (close 4004); anything else that prevents the
// resume is an invalid session (ok false, code 0).
func (g *Gateway) resume(d json.RawMessage) (s *Session, seq uint64, ok bool, code int) {
	var r struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       uint64 `json:"seq"`
	}
	if err := json.Unmarshal(d, &r); err != nil {
		return nil, 0, false, CloseDecodeError
	}
	uid, err := g.dom.Authenticate(stripScheme(r.Token))
	if err != nil {
		return nil, 0, false, CloseAuthenticationFailed
	}
	g.mu.Lock()
	s = g.sessions[r.SessionID]
	g.mu.Unlock()
	if s == nil || s.user != uint64(uid) {
		return nil, 0, false, 0
	}
	s.mu.Lock()
	_, ok = s.since(r.Seq, 0)
	dead := s.dead
	s.mu.Unlock()
	if !ok || dead {
		return nil, 0, false, 0
	}
	return s, r.Seq, true, 0
}

func stripScheme(token string) string {
	for _, p := range []string{"Bot ", "Bearer "} {
		if len(token) > len(p) && token[:len(p)] == p {
			return token[len(p):]
		}
	}
	return token
}

// detach records that s has no connection and schedules its expiry.
func (g *Gateway) detach(s *Session, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != c || s.dead {
		return
	}
	s.out = nil
	s.lastSeen = time.Now()
	g.scheduleExpiry(s, g.opts.ResumeWindow)
}

// scheduleExpiry (re)arms the timer that ends s after d without a connection or poll.
// Callers hold s.mu.
func (g *Gateway) scheduleExpiry(s *Session, d time.Duration) {
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.expiry = time.AfterFunc(d, func() {
		s.mu.Lock()
		idle := s.out == nil && time.Since(s.lastSeen) >= d-time.Millisecond
		s.mu.Unlock()
		if idle {
			g.end(s)
		}
	})
}

// end removes a session for good: from the hub, and the user goes offline if it was their
// last session.
func (g *Gateway) end(s *Session) {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return
	}
	s.dead = true
	if s.expiry != nil {
		s.expiry.Stop()
	}
	if s.polls != nil {
		close(s.polls)
		s.polls = nil
	}
	s.mu.Unlock()
	g.mu.Lock()
	delete(g.sessions, s.id)
	g.mu.Unlock()
	if g.hub.Remove(s, s.guilds) {
		g.dom.SetPresence(snowflake.ID(s.user), chat.Presence{Status: "offline"})
	}
}

// Shutdown sends Reconnect to every connection, closes them with a resumable code, and waits
// for their goroutines until ctx is done.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closing = true
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	sessions := make([]*Session, 0, len(g.sessions))
	for _, s := range g.sessions {
		sessions = append(sessions, s)
	}
	g.mu.Unlock()
	var rw sync.WaitGroup
	for _, c := range conns {
		rw.Add(1)
		go func() { defer rw.Done(); c.reconnect() }()
	}
	rw.Wait()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.New("gateway: shutdown timed out waiting for connections")
	}
	g.mu.Lock()
	p := g.poll
	g.poll, g.noPoll = nil, true
	g.mu.Unlock()
	if p != nil {
		p.close()
	}
	for _, s := range sessions {
		s.mu.Lock()
		if s.expiry != nil {
			s.expiry.Stop()
		}
		s.mu.Unlock()
	}
	return err
}

// QueueDepth is the total of dispatches written to no connection yet, over attached
// sessions (a measure of fanout backlog).
func (g *Gateway) QueueDepth() int {
	g.mu.Lock()
	sessions := make([]*Session, 0, len(g.sessions))
	for _, s := range g.sessions {
		sessions = append(sessions, s)
	}
	g.mu.Unlock()
	n := 0
	for _, s := range sessions {
		s.mu.Lock()
		if s.out != nil {
			n += int(s.seq - s.sent)
		}
		s.mu.Unlock()
	}
	return n
}
