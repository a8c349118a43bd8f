package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/node/auth"
)

// PollHandler serves the long-polling form of the gateway (spec §3.5) under prefix, e.g.
// /api/v10/gateway/poll: POST prefix (Identify or Resume), GET prefix?session_id&seq
// (wait for dispatches), POST prefix/{session_id} (a command).
func (g *Gateway) PollHandler(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, prefix), "/")
		switch {
		case r.Method == http.MethodPost && rest == "":
			g.pollStart(w, r)
		case r.Method == http.MethodGet && rest == "":
			g.pollWait(w, r)
		case r.Method == http.MethodPost && rest != "":
			g.pollCommand(w, r, rest)
		default:
			pollError(w, http.StatusNotFound, 0, "404: Not Found")
		}
	})
}

func pollError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

func pollJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func readFrame(w http.ResponseWriter, r *http.Request) (Frame, bool) {
	b := make([]byte, MaxFrame+1)
	n, _ := readFull(http.MaxBytesReader(w, r.Body, MaxFrame+1), b)
	f, err := DecodeFrame(b[:n])
	if err != nil {
		pollError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return f, false
	}
	return f, true
}

func readFull(r interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// pollStart identifies or resumes a long-poll session and returns the frames it has.
func (g *Gateway) pollStart(w http.ResponseWriter, r *http.Request) {
	f, ok := readFrame(w, r)
	if !ok {
		return
	}
	switch *f.Op {
	case OpIdentify:
		s, ready, code := g.identify(f.D)
		if code != 0 {
			pollError(w, http.StatusUnauthorized, 0, "401: Unauthorized ("+closeReason(code)+")")
			return
		}
		g.readyEvents(s, ready, resumeURL(g, r))
		s.mu.Lock()
		s.lastSeen = time.Now()
		g.scheduleExpiry(s, g.opts.PollIdle)
		events, _ := s.since(0, g.opts.ResumeBuffer)
		s.mu.Unlock()
		pollJSON(w, map[string]any{"session_id": s.id, "events": g.frames(s, events)})
	case OpResume:
		s, seq, ok, code := g.resume(f.D)
		if code != 0 {
			pollError(w, http.StatusUnauthorized, 0, "401: Unauthorized ("+closeReason(code)+")")
			return
		}
		if !ok {
			pollJSON(w, map[string]any{"events": []json.RawMessage{controlFrame(OpInvalidSession, false)}})
			return
		}
		s.Deliver(resumedEvent)
		s.mu.Lock()
		s.lastSeen = time.Now()
		g.scheduleExpiry(s, g.opts.PollIdle)
		events, _ := s.since(seq, g.opts.ResumeBuffer)
		s.mu.Unlock()
		pollJSON(w, map[string]any{"session_id": s.id, "events": g.frames(s, events)})
	default:
		pollError(w, http.StatusBadRequest, 50035, "the first frame must be Identify (2) or Resume (6)")
	}
}

// pollSession authenticates a poll request and finds its session.
func (g *Gateway) pollSession(w http.ResponseWriter, r *http.Request, id string) *Session {
	uid, err := g.dom.Authenticate(auth.ParseAuthorization(r.Header.Get("Authorization")))
	if err != nil {
		pollError(w, http.StatusUnauthorized, 0, "401: Unauthorized")
		return nil
	}
	g.mu.Lock()
	s := g.sessions[id]
	g.mu.Unlock()
	if s == nil || s.user != uint64(uid) {
		pollError(w, http.StatusNotFound, 0, "Unknown Session")
		return nil
	}
	return s
}

// pollWait answers with the dispatches after seq as soon as there is one, or an empty list
// after the timeout.
func (g *Gateway) pollWait(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s := g.pollSession(w, r, q.Get("session_id"))
	if s == nil {
		return
	}
	seq, _ := strconv.ParseUint(q.Get("seq"), 10, 64)
	timeout := 25 * time.Second
	if t, err := strconv.Atoi(q.Get("timeout")); err == nil && t >= 0 && t <= 60 {
		timeout = time.Duration(t) * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		s.lastSeen = time.Now()
		if s.out == nil && !s.dead {
			g.scheduleExpiry(s, g.opts.PollIdle+timeout)
		}
		events, ok := s.since(seq, g.opts.ResumeBuffer)
		dead := s.dead
		var wait chan struct{}
		if ok && len(events) == 0 && !dead {
			if s.polls == nil {
				s.polls = make(chan struct{})
			}
			wait = s.polls
		}
		s.mu.Unlock()
		if dead || !ok {
			pollError(w, http.StatusNotFound, 0, "Unknown Session")
			return
		}
		if len(events) > 0 {
			pollJSON(w, map[string]any{"events": g.frames(s, events)})
			return
		}
		select {
		case <-wait:
		case <-deadline.C:
			pollJSON(w, map[string]any{"events": []any{}})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// pollCommand runs a command frame on a long-poll session.
func (g *Gateway) pollCommand(w http.ResponseWriter, r *http.Request, id string) {
	s := g.pollSession(w, r, id)
	if s == nil {
		return
	}
	f, ok := readFrame(w, r)
	if !ok {
		return
	}
	if code := g.command(s, f, nil, requestOrigin(r)); code != 0 {
		pollError(w, http.StatusBadRequest, code, closeReason(code))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// frames encodes entries as dispatch frames.
func (g *Gateway) frames(s *Session, events []entry) []json.RawMessage {
	out := make([]json.RawMessage, len(events))
	for i, e := range events {
		out[i] = appendDispatch(nil, e.ev, e.seq, s.withContent())
	}
	return out
}
