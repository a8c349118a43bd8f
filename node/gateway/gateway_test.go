package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/snowflake"
)

// fakeDomain accepts the token "t<user ID>" and puts every user in guild 1.
type fakeDomain struct{}

func (fakeDomain) Authenticate(token string) (snowflake.ID, error) {
	var id uint64
	if _, err := fmt.Sscanf(token, "t%d", &id); err != nil {
		return 0, errors.New("bad token")
	}
	return snowflake.ID(id), nil
}
func (fakeDomain) Ready(user snowflake.ID) chat.ReadyState        { return chat.ReadyState{} }
func (fakeDomain) UserGuilds(user snowflake.ID) []uint64          { return []uint64{1} }
func (fakeDomain) SetPresence(user snowflake.ID, p chat.Presence) {}
func (fakeDomain) SearchMembers(actor, guildID snowflake.ID, query string, userIDs []snowflake.ID, limit int) ([]chat.MemberOut, []chat.PresenceOut, error) {
	return nil, nil, nil
}

type testGateway struct {
	gw  *Gateway
	hub *fanout.Hub
	srv *httptest.Server
	url string
}

func startGateway(t testing.TB, opts Options) *testGateway {
	t.Helper()
	hub := fanout.NewHub()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := New(fakeDomain{}, hub, opts)
	srv := httptest.NewServer(gw)
	tg := &testGateway{gw: gw, hub: hub, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/?v=10"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	return tg
}

type frame struct {
	Op int             `json:"op"`
	T  string          `json:"t"`
	S  uint64          `json:"s"`
	D  json.RawMessage `json:"d"`
}

// identify dials and identifies as user, and reads up to READY.
func (tg *testGateway) identify(t *testing.T, user int) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(tg.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if f := recvFrame(t, ws); f.Op != OpHello {
		t.Fatalf("first frame op %d, want Hello", f.Op)
	}
	if err := ws.WriteJSON(map[string]any{"op": OpIdentify, "d": map[string]any{"token": fmt.Sprintf("t%d", user)}}); err != nil {
		t.Fatal(err)
	}
	if f := recvFrame(t, ws); f.T != "READY" || f.S != 1 {
		t.Fatalf("after Identify: %+v, want READY with s 1", f)
	}
	return ws
}

func recvFrame(t *testing.T, ws *websocket.Conn) frame {
	t.Helper()
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %q: %v", b, err)
	}
	return f
}

// waitParked polls until every connection of the gateway is parked (has no reader
// goroutine), or fails after a generous deadline.
func (tg *testGateway) waitParked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		parked := 0
		tg.gw.mu.Lock()
		for c := range tg.gw.conns {
			c.mu.Lock()
			if c.parked {
				parked++
			}
			c.mu.Unlock()
		}
		tg.gw.mu.Unlock()
		if parked == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections parked", parked, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestBurstInOrder publishes many dispatches at once: they arrive complete, in order, with
// consecutive sequence numbers, however the writer batches them.
func TestBurstInOrder(t *testing.T) {
	tg := startGateway(t, Options{MaxQueue: 5000, ResumeBuffer: 5000})
	ws := tg.identify(t, 7)
	const n = 2000
	for i := range n {
		// Sizes across the 7-bit, 16-bit and 64-bit length encodings.
		pad := strings.Repeat("x", []int{1, 200}[i%2])
		if i%100 == 99 {
			pad = strings.Repeat("x", 70000)
		}
		tg.hub.Publish(&fanout.Event{Type: "TEST", GuildID: 1, Data: []byte(fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad))})
	}
	for i := range n {
		f := recvFrame(t, ws)
		var d struct{ I int }
		if err := json.Unmarshal(f.D, &d); err != nil || f.T != "TEST" || d.I != i || f.S != uint64(i+2) {
			t.Fatalf("dispatch %d: t %q s %d i %d (%v) %.100s", i, f.T, f.S, d.I, err, f.D)
		}
	}
}

// TestParkedConnection checks a connection with no reader goroutine: it answers pings,
// takes commands, times out without heartbeats, and is closed at shutdown.
func TestParkedConnection(t *testing.T) {
	tg := startGateway(t, Options{HeartbeatInterval: time.Hour})
	ws := tg.identify(t, 7)
	if tg.gw.poll == nil {
		t.Skip("no epoll on this system: connections keep reader goroutines")
	}
	tg.waitParked(t, 1)

	pong := make(chan string, 1)
	ws.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteJSON(map[string]any{"op": OpHeartbeat, "d": 1}); err != nil {
		t.Fatal(err)
	}
	// The pong is handled inside ReadMessage, before the ACK frame is returned.
	if f := recvFrame(t, ws); f.Op != OpHeartbeatACK {
		t.Fatalf("after heartbeat: op %d, want %d", f.Op, OpHeartbeatACK)
	}
	if got := <-pong; got != "hi" {
		t.Fatalf("pong %q", got)
	}
	tg.waitParked(t, 1)

	// A dispatch reaches a parked connection.
	tg.hub.Publish(&fanout.Event{Type: "TEST", GuildID: 1, Data: []byte(`{}`)})
	if f := recvFrame(t, ws); f.T != "TEST" {
		t.Fatalf("dispatch %+v", f)
	}

	// Shutdown sends Reconnect and closes a parked connection with 1012.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tg.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if f := recvFrame(t, ws); f.Op != OpReconnect {
		t.Fatalf("at shutdown: op %d, want Reconnect", f.Op)
	}
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, 1012) {
		t.Fatalf("at shutdown: %v, want close 1012", err)
	}
}

// TestParkedTimeout checks that a silent parked connection is closed with 4009.
func TestParkedTimeout(t *testing.T) {
	tg := startGateway(t, Options{HeartbeatInterval: 200 * time.Millisecond})
	ws := tg.identify(t, 7)
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue // GUILD_CREATE or the like
		}
		if !websocket.IsCloseError(err, CloseSessionTimedOut) {
			t.Fatalf("silent client: %v, want close 4009", err)
		}
		break
	}
	// The connection is gone from the gateway.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, conns, _ := tg.gw.Stats()
		if conns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections after the timeout", conns)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestManyParked opens connections that all go idle, then closes them from the client
// side: every one is noticed and forgotten.
func TestManyParked(t *testing.T) {
	tg := startGateway(t, Options{HeartbeatInterval: time.Hour})
	var wss []*websocket.Conn
	for i := range 50 {
		wss = append(wss, tg.identify(t, 100+i))
	}
	if tg.gw.poll == nil {
		t.Skip("no epoll on this system")
	}
	tg.waitParked(t, 50)
	var wg sync.WaitGroup
	for _, ws := range wss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(10*time.Second))
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sessions, conns, _ := tg.gw.Stats()
		if sessions == 0 && conns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, %d connections after every client closed", sessions, conns)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
