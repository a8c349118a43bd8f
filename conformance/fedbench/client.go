package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-chat/hearth/conformance/loadwire"
)

// The client side is a small copy of conformance/bench's (a main package, so it cannot be
// imported): REST calls with a token, and gateway sessions that hand every dispatch to a
// callback.

var httpClient = &http.Client{
	Transport: &http.Transport{MaxIdleConns: 2000, MaxIdleConnsPerHost: 1000, IdleConnTimeout: time.Minute},
	Timeout:   60 * time.Second,
}

// user is an account on one node.
type user struct {
	node            *node
	name, token, id string
}

func randomName(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// register creates an account on n.
func register(n *node, prefix string) (*user, error) {
	var out struct {
		Token  string `json:"token"`
		UserID string `json:"user_id"`
	}
	u := &user{node: n, name: randomName(prefix)}
	if err := u.call("POST", "/auth/register", map[string]string{"username": u.name, "password": "federation benchmark"}, &out); err != nil {
		return nil, err
	}
	u.token, u.id = out.Token, out.UserID
	return u, nil
}

// call sends a REST request as u and decodes a 2xx answer into out.
func (u *user) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.node.base+"/api/v10"+path, rd)
	if err != nil {
		return err
	}
	if u.token != "" {
		req.Header.Set("Authorization", u.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", method, path, u.node.name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s on %s: %d %s", method, path, u.node.name, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// send posts a message and returns its ID on the writer's node.
func (u *user) send(channel, content string) (string, error) {
	var m struct {
		ID string `json:"id"`
	}
	err := u.call("POST", "/channels/"+channel+"/messages", map[string]string{"content": content}, &m)
	return m.ID, err
}

// storedMessage is a message as history returns it, with the author as the node shows it.
type storedMessage struct {
	ID      string `json:"id"`
	Content string `json:"content"`
	Author  struct {
		Username string `json:"username"`
	} `json:"author"`
}

// history reads a channel's whole history, oldest first, through GET
// /channels/{id}/messages paging.
func (u *user) history(channel string) ([]storedMessage, error) {
	var all []storedMessage
	before := ""
	for {
		q := "?limit=100"
		if before != "" {
			q += "&before=" + before
		}
		var page []storedMessage
		if err := u.call("GET", "/channels/"+channel+"/messages"+q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 100 {
			break
		}
		before = page[len(page)-1].ID
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all, nil
}

// Gateway intents.
const (
	intentGuilds         = 1 << 0
	intentGuildMembers   = 1 << 1
	intentGuildPresences = 1 << 8
	intentGuildMessages  = 1 << 9
	intentMessageContent = 1 << 15
)

// session is a gateway connection that calls onDispatch for every dispatch.
type session struct {
	ws  *websocket.Conn
	wmu sync.Mutex
	wg  sync.WaitGroup
}

// connect identifies u with intents and returns once READY arrived; onDispatch (if not nil)
// is called from the reader goroutine with the dispatch type, the time the frame was read,
// and the raw frame.
func connect(u *user, intents int, onDispatch func(t string, at time.Time, frame []byte)) (*session, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 512}
	ws, _, err := d.Dial(strings.Replace(u.node.base, "http", "ws", 1)+"/gateway?v=10&encoding=json", nil)
	if err != nil {
		return nil, fmt.Errorf("gateway of %s: %w", u.node.name, err)
	}
	if err := ws.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": u.token, "intents": intents, "properties": map[string]string{}}}); err != nil {
		ws.Close()
		return nil, err
	}
	s := &session{ws: ws}
	ready := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		gotReady := false
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				if !gotReady {
					close(ready)
				}
				return
			}
			at := time.Now()
			t := loadwire.DispatchType(msg)
			if t == "READY" && !gotReady {
				gotReady = true
				close(ready)
			}
			if onDispatch != nil && t != "" {
				onDispatch(t, at, msg)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		ws.Close()
		s.wg.Wait()
		return nil, fmt.Errorf("no READY from %s within 60s", u.node.name)
	}
	return s, nil
}

// sendPresence sends a Presence Update (op 3).
func (s *session) sendPresence(status string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.ws.WriteJSON(map[string]any{"op": 3, "d": map[string]any{"since": nil, "activities": []any{}, "status": status, "afk": false}})
}

func (s *session) close() {
	s.ws.Close()
	s.wg.Wait()
}
