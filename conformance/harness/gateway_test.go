package harness

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeGateway sends Hello, answers heartbeats, sends two dispatches after
// Identify and closes with 4005 on a second Identify.
func fakeGateway(t *testing.T) *httptest.Server {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"op":10,"d":{"heartbeat_interval":40000},"s":null,"t":null}`))
		identified := false
		for {
			var f Frame
			if err := c.ReadJSON(&f); err != nil {
				return
			}
			switch f.Op {
			case OpHeartbeat:
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"op":11,"d":null}`))
			case OpIdentify:
				if identified {
					_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4005, "already"))
					return
				}
				identified = true
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"op":0,"s":1,"t":"READY","d":{"session_id":"abc"}}`))
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"op":0,"s":2,"t":"GUILD_CREATE","d":{"id":"7"}}`))
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGatewayClient(t *testing.T) {
	srv := fakeGateway(t)
	g, _, err := DialGateway(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/gateway")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	f, err := g.Next(time.Second)
	if err != nil || f.Op != OpHello || Num(f.Obj()["heartbeat_interval"]) != 40000 {
		t.Fatalf("Hello = %v, %v", f, err)
	}
	if err := g.Send(OpHeartbeat, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := g.WaitOp(time.Second, OpHeartbeatACK); err != nil {
		t.Fatal(err)
	}
	_ = g.Send(OpIdentify, Obj{"token": "x"})
	gc, err := g.WaitDispatch(time.Second, "GUILD_CREATE", nil)
	if err != nil || Str(gc.Obj()["id"]) != "7" {
		t.Fatalf("GUILD_CREATE = %v, %v", gc, err)
	}
	if s := g.LastSeq(); s == nil || *s != 2 {
		t.Fatalf("LastSeq = %v", s)
	}
	if _, ok := g.Seen(func(f Frame) bool { return f.T == "READY" }); !ok {
		t.Fatal("READY not recorded")
	}
	if _, err := g.Next(50 * time.Millisecond); err != ErrTimeout {
		t.Fatalf("Next on an idle connection = %v, want ErrTimeout", err)
	}
	_ = g.Send(OpIdentify, Obj{"token": "x"})
	code, err := g.WaitClose(time.Second)
	if err != nil || code != 4005 {
		t.Fatalf("close = %d, %v", code, err)
	}
	if _, err := g.Next(time.Second); err == nil {
		t.Fatal("Next after close returned a frame")
	}
}

func TestGatewayHeartbeatStops(t *testing.T) {
	srv := fakeGateway(t)
	g, _, err := DialGateway(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatal(err)
	}
	g.Heartbeat(5 * time.Millisecond)
	if _, err := g.WaitOp(time.Second, OpHeartbeatACK); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { g.Close(); close(done) }()
	select {
	case <-done: // reader and heartbeat goroutines ended
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the client's goroutines")
	}
}
