// Package signal is the voice WebSocket (spec/voice.md section 3): an
// http.Handler that authenticates clients with voice tokens and carries
// their SDP, ICE and speaking messages to and from the SFU.
package signal

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-chat/hearth/voice/sfu"
	"github.com/hearth-chat/hearth/voice/token"
	"github.com/pion/webrtc/v4"
)

// Verifier checks voice tokens; *token.Issuer implements it.
type Verifier interface {
	Verify(tok string) (token.Claims, error)
}

// Handler serves the voice WebSocket. Mount it at /voice. Fields must be
// set before the first request and not changed afterwards.
type Handler struct {
	// SFU runs the sessions. Required.
	SFU *sfu.SFU
	// Tokens verifies voice tokens. Required.
	Tokens Verifier
	// ICEServers are sent to clients in Ready (STUN/TURN with their
	// credentials, VOICE-123). Nil sends an empty list.
	ICEServers []webrtc.ICEServer
	// HeartbeatInterval is announced in Hello. Zero means 13.75 s, as
	// Discord does.
	HeartbeatInterval time.Duration
	// IdentifyTimeout closes a connection that has not identified. Zero
	// means 10 s (VOICE-031).
	IdentifyTimeout time.Duration
	// CheckOrigin is passed to the WebSocket upgrader. Nil accepts any
	// origin: voice tokens, not cookies, authenticate.
	CheckOrigin func(*http.Request) bool
	// Logger receives connection logs. Nil means slog.Default().
	Logger *slog.Logger
}

func (h *Handler) heartbeat() time.Duration {
	if h.HeartbeatInterval > 0 {
		return h.HeartbeatInterval
	}
	return 13750 * time.Millisecond
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// ServeHTTP upgrades to a WebSocket and runs the connection until it ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	check := h.CheckOrigin
	if check == nil {
		check = func(*http.Request) bool { return true }
	}
	up := websocket.Upgrader{CheckOrigin: check, ReadBufferSize: 4096, WriteBufferSize: 4096}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &conn{h: h, ws: ws, out: make(chan []byte, 256), done: make(chan struct{}),
		log: h.logger().With("remote", r.RemoteAddr)}
	c.wg.Add(1)
	go c.writeLoop()
	c.run(r.Context())
	c.Close(nil)
	c.wg.Wait()
	// The close frame is out. Read until the client's close reply (or a
	// second) before dropping TCP: closing with unread client data would
	// reset the connection and the client would never see the close code.
	_ = ws.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	_ = ws.Close()
}

// conn is one voice WebSocket. It implements sfu.Peer.
type conn struct {
	h   *Handler
	ws  *websocket.Conn
	log *slog.Logger

	out       chan []byte
	done      chan struct{}
	closeOnce sync.Once
	closeCode int
	closeMsg  string
	wg        sync.WaitGroup

	sess *sfu.Session // set by Identify or Resume; read loop only
}

type closeError struct {
	code int
	msg  string
}

func (e *closeError) Error() string { return e.msg }

func closeWith(code int, msg string) error { return &closeError{code, msg} }

// Send implements sfu.Peer.
func (c *conn) Send(m sfu.Message) error {
	op, d := encodeMessage(m)
	return c.sendOp(op, d)
}

func (c *conn) sendOp(op int, d any) error {
	b, err := json.Marshal(struct {
		Op int `json:"op"`
		D  any `json:"d"`
	}{op, d})
	if err != nil {
		return err
	}
	select {
	case c.out <- b:
		return nil
	case <-c.done:
		return errors.New("signal: connection closed")
	default:
		// A client that does not read its messages is gone for our
		// purposes; it may resume.
		c.Close(closeWith(CloseTimeout, "send queue full"))
		return errors.New("signal: send queue full")
	}
}

// Close implements sfu.Peer: it sends a close frame with the reason's code
// and ends the connection.
func (c *conn) Close(reason error) {
	c.closeOnce.Do(func() {
		code, msg := websocket.CloseNormalClosure, ""
		var ce *closeError
		switch {
		case reason == nil:
		case errors.As(reason, &ce):
			code, msg = ce.code, ce.msg
		case sfu.CloseCode(reason) != 0:
			code, msg = sfu.CloseCode(reason), reason.Error()
		default:
			code, msg = CloseServerError, reason.Error()
		}
		if len(msg) > 120 {
			msg = msg[:120]
		}
		c.closeCode, c.closeMsg = code, msg
		close(c.done)
	})
}

// writeLoop owns all writes to the socket; it ends after sending the close
// frame, and ServeHTTP then closes the socket.
func (c *conn) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case b := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.Close(err)
				return
			}
		case <-c.done:
			// Flush what is queued, then say why we close.
			for {
				select {
				case b := <-c.out:
					_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
					_ = c.ws.WriteMessage(websocket.TextMessage, b)
					continue
				default:
				}
				break
			}
			_ = c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(c.closeCode, c.closeMsg), time.Now().Add(time.Second))
			// Unblock the read loop within a second if the client does
			// not answer the close.
			_ = c.ws.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
	}
}

// run is the read loop: it owns c.sess and ends on any error.
func (c *conn) run(ctx context.Context) {
	hb := c.h.heartbeat()
	idTimeout := c.h.IdentifyTimeout
	if idTimeout == 0 {
		idTimeout = 10 * time.Second
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(idTimeout))
	_ = c.sendOp(OpHello, map[string]any{"heartbeat_interval": hb.Milliseconds(), "v": 1})
	for {
		b, err := c.readFrame()
		if err != nil {
			var ne interface{ Timeout() bool }
			switch {
			case errors.Is(err, errTooLarge):
				c.Close(closeWith(CloseDecode, "frame too large"))
			case errors.As(err, &ne) && ne.Timeout() && c.sess == nil:
				c.Close(closeWith(CloseNotAuthenticated, "identify timeout"))
			case errors.As(err, &ne) && ne.Timeout():
				c.Close(closeWith(CloseTimeout, "heartbeat timeout"))
			}
			break
		}
		f, err := decodeFrame(b)
		if err == nil {
			err = c.handle(ctx, f, hb)
		}
		if err != nil {
			var ce *closeError
			if !errors.As(err, &ce) && sfu.CloseCode(err) == 0 {
				err = closeWith(CloseDecode, err.Error())
			}
			c.log.Info("voice: closing connection", "err", err)
			c.Close(err)
			break
		}
		select {
		case <-c.done:
		default:
			continue
		}
		break
	}
	if c.sess != nil {
		select {
		case <-c.sess.Done():
		default:
			c.sess.Detach(c)
		}
	}
}

var errTooLarge = errors.New("signal: frame too large")

// readFrame reads one message, never buffering more than MaxFrame+1 bytes
// (VOICE-020). gorilla's own read limit would close with 1009 instead of
// the spec's 4002.
func (c *conn) readFrame() ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxFrame+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFrame {
		return nil, errTooLarge
	}
	return b, nil
}

// handle processes one client frame; a returned error closes the
// connection with its code.
func (c *conn) handle(ctx context.Context, f Frame, hb time.Duration) error {
	if c.sess == nil && f.Op != OpIdentify && f.Op != OpResume && f.Op != OpHeartbeat {
		if !knownOp(f.Op) {
			return closeWith(CloseUnknownOpcode, "unknown opcode")
		}
		return closeWith(CloseNotAuthenticated, "not authenticated")
	}
	switch f.Op {
	case OpIdentify:
		if c.sess != nil {
			return closeWith(CloseAlreadyAuth, "already authenticated")
		}
		var id identify
		if err := decodeD(f, &id); err != nil {
			return err
		}
		cl, err := c.h.Tokens.Verify(id.Token)
		if err != nil || cl.UserID != id.UserID || cl.GuildID != id.ServerID {
			return closeWith(CloseAuthFailed, "authentication failed")
		}
		ice := c.h.ICEServers
		if ice == nil {
			ice = []webrtc.ICEServer{}
		}
		// Ready goes first so that it precedes what the room sends.
		if err := c.sendOp(OpReady, map[string]any{"ssrc": 0, "ip": "", "port": 0,
			"modes": []string{"webrtc"}, "ice_servers": ice, "heartbeat_interval": hb.Milliseconds()}); err != nil {
			return err
		}
		s, err := c.h.SFU.Join(ctx, sfu.JoinRequest{UserID: cl.UserID, GuildID: cl.GuildID,
			ChannelID: cl.ChannelID, SessionID: cl.SessionID, Peer: c})
		if err != nil {
			return err
		}
		c.sess = s
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * hb))
		return nil
	case OpResume:
		if c.sess != nil {
			return closeWith(CloseAlreadyAuth, "already authenticated")
		}
		var id identify
		if err := decodeD(f, &id); err != nil {
			return err
		}
		cl, err := c.h.Tokens.Verify(id.Token)
		if (err != nil && !errors.Is(err, token.ErrExpired)) || cl.GuildID != id.ServerID ||
			cl.SessionID != id.SessionID {
			return closeWith(CloseAuthFailed, "authentication failed")
		}
		s, err := c.h.SFU.Session(cl.GuildID, cl.UserID)
		if err != nil || s.SessionID() != cl.SessionID {
			return closeWith(CloseSessionInvalid, "session no longer valid")
		}
		// Resumed first: Attach re-sends a pending offer, which must
		// follow it (VOICE-041).
		if err := c.sendOp(OpResumed, nil); err != nil {
			return err
		}
		if err := s.Attach(c); err != nil {
			return closeWith(CloseSessionInvalid, "session no longer valid")
		}
		c.sess = s
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * hb))
		return nil
	case OpHeartbeat:
		if c.sess != nil {
			_ = c.ws.SetReadDeadline(time.Now().Add(2 * hb))
		}
		var d json.RawMessage = f.D
		if len(d) == 0 {
			d = json.RawMessage("null")
		}
		return c.sendOp(OpHeartbeatACK, d)
	case OpSelectProtocol:
		var sp selectProtocol
		if err := decodeD(f, &sp); err != nil {
			return err
		}
		if sp.Protocol != "webrtc" {
			return closeWith(CloseUnknownProtocol, "unknown protocol")
		}
		return c.offer(ctx, sp.Data)
	case OpClientOffer:
		var sd sessionDesc
		if err := decodeD(f, &sd); err != nil {
			return err
		}
		return c.offer(ctx, sd)
	case OpClientAnswer:
		var sd sessionDesc
		if err := decodeD(f, &sd); err != nil {
			return err
		}
		err := c.sess.HandleAnswer(webrtc.SessionDescription{Type: webrtc.NewSDPType(sd.Type), SDP: sd.SDP}, sd.Revision)
		if errors.Is(err, sfu.ErrStaleAnswer) {
			return nil
		}
		return err
	case OpICECandidate:
		var ic iceCandidate
		if err := decodeD(f, &ic); err != nil {
			return err
		}
		if err := c.sess.AddICECandidate(webrtc.ICECandidateInit{Candidate: ic.Candidate,
			SDPMid: ic.SDPMid, SDPMLineIndex: ic.SDPMLineIndex}); err != nil {
			return c.sendOp(OpError, map[string]any{"code": CloseDecode, "message": err.Error()})
		}
		return nil
	case OpSpeaking:
		return nil // advisory only (VOICE-075)
	case OpLayerRequest:
		var lr layerRequest
		if err := decodeD(f, &lr); err != nil {
			return err
		}
		return c.softError(c.sess.RequestLayer(lr.UserID, sfu.Source(lr.Source), lr.MaxLayer))
	case OpWatch:
		var w watch
		if err := decodeD(f, &w); err != nil {
			return err
		}
		return c.softError(c.sess.Watch(w.UserID, w.Watch))
	case OpChannelSwitch:
		var cs channelSwitch
		if err := decodeD(f, &cs); err != nil {
			return err
		}
		cl, err := c.h.Tokens.Verify(cs.Token)
		if err != nil || cl.UserID != c.sess.UserID() {
			return closeWith(CloseAuthFailed, "authentication failed")
		}
		return c.h.SFU.Switch(c.sess, cl.GuildID, cl.ChannelID)
	}
	return closeWith(CloseUnknownOpcode, "unknown opcode")
}

// softError turns a refused request into op 109, except floods, which
// close the connection.
func (c *conn) softError(err error) error {
	if err == nil || sfu.CloseCode(err) != 0 {
		return err
	}
	return c.sendOp(OpError, map[string]any{"code": 0, "message": err.Error()})
}

func (c *conn) offer(ctx context.Context, sd sessionDesc) error {
	if len(sd.Sources) > 0 {
		src := make(map[string]sfu.Source, len(sd.Sources))
		for k, v := range sd.Sources {
			src[k] = sfu.Source(v)
		}
		if err := c.sess.SetSources(src); err != nil {
			return err
		}
	}
	ans, err := c.sess.HandleOffer(ctx, webrtc.SessionDescription{Type: webrtc.NewSDPType(sd.Type), SDP: sd.SDP})
	if errors.Is(err, sfu.ErrGlare) {
		return c.sendOp(OpError, map[string]any{"code": 0, "message": err.Error()})
	}
	if err != nil {
		return err
	}
	err = c.sendOp(OpSessionDesc, map[string]any{"type": "answer", "sdp": ans.SDP, "mode": "webrtc",
		"audio_codec": "opus", "video_codec": "VP8"})
	c.sess.AnswerSent() // server offers only after the answer (the client cannot take one before)
	return err
}

func knownOp(op int) bool {
	switch op {
	case OpIdentify, OpSelectProtocol, OpHeartbeat, OpSpeaking, OpResume, OpClientAnswer,
		OpClientOffer, OpICECandidate, OpLayerRequest, OpChannelSwitch, OpWatch:
		return true
	}
	return false
}

// encodeMessage maps an SFU message to its opcode and payload.
func encodeMessage(m sfu.Message) (int, any) {
	switch m := m.(type) {
	case sfu.Offer:
		return OpServerOffer, map[string]any{"type": "offer", "sdp": m.SDP.SDP, "revision": m.Revision}
	case sfu.Candidate:
		return OpICECandidate, map[string]any{"candidate": m.Candidate, "sdp_mid": m.SDPMid,
			"sdp_mline_index": m.SDPMLineIndex}
	case sfu.Tracks:
		t := m.Tracks
		if t == nil {
			t = []sfu.TrackInfo{}
		}
		return OpTrackMap, map[string]any{"tracks": t}
	case sfu.Speaking:
		sp := 0
		if m.Speaking {
			sp = 1
		}
		return OpSpeaking, map[string]any{"user_id": m.UserID, "ssrc": m.SSRC, "speaking": sp}
	case sfu.ClientsConnect:
		return OpClientsConnect, map[string]any{"user_ids": m.UserIDs}
	case sfu.ClientDisconnect:
		return OpClientDisconnect, map[string]any{"user_id": m.UserID}
	case sfu.ChannelSwitched:
		return OpChannelSwitched, map[string]any{"guild_id": m.GuildID, "channel_id": m.ChannelID}
	}
	return OpError, map[string]any{"code": 0, "message": "internal: unknown message"}
}
