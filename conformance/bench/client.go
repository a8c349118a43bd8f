package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-chat/hearth/conformance/loadwire"
)

var httpClient = &http.Client{
	Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000, IdleConnTimeout: time.Minute},
	Timeout:   30 * time.Second,
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// user is an account on the node.
type user struct {
	base, token, id string
}

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "bench_" + hex.EncodeToString(b)
}

func register(base string) (*user, error) {
	var out struct {
		Token  string `json:"token"`
		UserID string `json:"user_id"`
	}
	u := &user{base: base}
	if err := u.call("POST", "/auth/register", map[string]string{"username": randomName(), "password": "benchmark password"}, &out); err != nil {
		return nil, err
	}
	u.token, u.id = out.Token, out.UserID
	return u, nil
}

func (u *user) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.base+"/api/v10"+path, rd)
	if err != nil {
		return err
	}
	if u.token != "" {
		req.Header.Set("Authorization", u.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// newGuild creates a guild owned by u and returns its ID and its text channel.
func newGuild(u *user) (guildID, channelID string, err error) {
	var g struct {
		ID       string `json:"id"`
		Channels []struct {
			ID   string `json:"id"`
			Type int    `json:"type"`
		} `json:"channels"`
	}
	if err := u.call("POST", "/guilds", map[string]string{"name": "bench guild"}, &g); err != nil {
		return "", "", err
	}
	for _, c := range g.Channels {
		if c.Type == 0 {
			return g.ID, c.ID, nil
		}
	}
	return "", "", fmt.Errorf("new guild has no text channel")
}

// join makes u a member of the guild of channel through a fresh invite by owner.
func join(owner, u *user, channelID string) error {
	var inv struct{ Code string }
	if err := owner.call("POST", "/channels/"+channelID+"/invites", map[string]any{"max_age": 0}, &inv); err != nil {
		return err
	}
	return u.call("POST", "/invites/"+inv.Code, nil, nil)
}

// session is a gateway connection that calls onDispatch for every dispatch.
type session struct {
	ws      *websocket.Conn
	wg      sync.WaitGroup
	closing atomic.Bool
}

const benchIntents = 1 | 1<<9 | 1<<15 // GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT

// connect identifies u and returns once READY arrived; onDispatch (if not nil) is called from
// the reader goroutine with the dispatch type and raw frame, which is valid only during the
// call.
func connect(u *user, onDispatch func(t string, frame []byte)) (*session, error) {
	return connectBuffered(u, 1024, onDispatch)
}

// connectBuffered is connect with a read buffer of readBuf bytes: a session that receives
// many frames a second reads the node's batched writes (up to 32 KiB) in one system call
// with a large buffer, where the idle scenario's thousands of sessions keep small ones.
func connectBuffered(u *user, readBuf int, onDispatch func(t string, frame []byte)) (*session, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: readBuf, WriteBufferSize: 256}
	ws, _, err := d.Dial(strings.Replace(u.base, "http", "ws", 1)+"/gateway?v=10&encoding=json", nil)
	if err != nil {
		return nil, err
	}
	if err := ws.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": u.token, "intents": benchIntents, "properties": map[string]string{}}}); err != nil {
		ws.Close()
		return nil, err
	}
	s := &session{ws: ws}
	ready := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		gotReady := false
		var buf bytes.Buffer // reused: frames are handled before the next read
		for {
			_, r, err := ws.NextReader()
			if err == nil {
				buf.Reset()
				_, err = buf.ReadFrom(r)
			}
			msg := buf.Bytes()
			if err != nil {
				if !gotReady {
					close(ready)
				} else if !s.closing.Load() {
					// The node ended the session (4000 means this client fell behind).
					fmt.Fprintln(os.Stderr, "bench: a gateway session ended early:", err)
				}
				return
			}
			t := loadwire.DispatchType(msg)
			if t == "READY" && !gotReady {
				gotReady = true
				close(ready)
			}
			if onDispatch != nil && t != "" {
				onDispatch(t, msg)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		ws.Close()
		return nil, fmt.Errorf("no READY within 30s")
	}
	return s, nil
}

func (s *session) close() {
	s.closing.Store(true)
	s.ws.Close()
	s.wg.Wait()
}
