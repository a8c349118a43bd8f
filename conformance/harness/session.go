package harness

import (
	"encoding/json"
	"strings"
	"time"
)

// GatewayURL is the WebSocket URL a test dials on node, with query (e.g.
// "v=10&encoding=json").
func GatewayURL(node *Node, query string) string {
	u := node.WSURL() + "/gateway"
	if query != "" {
		u += "?" + query
	}
	return u
}

// Dial opens a gateway connection to the primary node with the default query
// and registers its Close as a cleanup.
func (t *T) Dial() *Gateway { return t.DialURL(GatewayURL(t.Node, "v=10&encoding=json")) }

// DialURL opens a gateway connection to url and registers its Close.
func (t *T) DialURL(url string) *Gateway {
	g, _, err := DialGateway(t.Ctx, url)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(g.Close)
	return g
}

// Hello reads the Hello frame and returns heartbeat_interval.
func (t *T) Hello(g *Gateway) time.Duration {
	f, err := g.Next(t.Timeout())
	if err != nil {
		t.Fatalf("expected Hello (op 10), got %v", err)
	}
	if f.Op != OpHello {
		t.Fatalf("expected Hello (op 10) first, got %s", f)
	}
	ms := Num(f.Obj()["heartbeat_interval"])
	if ms <= 0 {
		t.Fatalf("Hello has no positive heartbeat_interval: %s", f)
	}
	return time.Duration(ms) * time.Millisecond
}

// Session is an identified gateway connection.
type Session struct {
	*Gateway
	User  *User
	Ready Obj
	// ReadyFrame is the READY dispatch as received.
	ReadyFrame Frame
	Interval   time.Duration
}

// SessionID is READY's session_id.
func (s *Session) SessionID() string { return Str(s.Ready["session_id"]) }

// Connect dials the gateway as u with intents, heartbeats, identifies and
// waits for READY.
func (t *T) Connect(u *User, intents int) *Session {
	g := t.DialURL(GatewayURL(u.Node, "v=10&encoding=json"))
	iv := t.Hello(g)
	g.Heartbeat(iv / 2)
	if err := g.Send(OpIdentify, Obj{"token": u.Token, "intents": intents,
		"properties": Obj{"os": "linux", "browser": "hearth-conformance", "device": "hearth-conformance"}}); err != nil {
		t.Fatalf("%v", err)
	}
	f, err := g.WaitDispatch(t.Timeout(), "READY", nil)
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	return &Session{Gateway: g, User: u, Ready: f.Obj(), ReadyFrame: f, Interval: iv}
}

// Expect waits for dispatch name matching (nil: any) and fails the test if it
// does not come.
func (t *T) Expect(s *Gateway, name string, match func(Obj) bool) Obj {
	f, err := s.WaitDispatch(t.Timeout(), name, func(f Frame) bool { return match == nil || match(f.Obj()) })
	if err != nil {
		last := ""
		for _, f := range s.Frames() {
			if f.T == name {
				last = "; last " + name + ": " + f.String()
			}
		}
		t.Fatalf("%v (received: %s%s)", err, summary(s.Frames()), last)
	}
	return f.Obj()
}

// Field returns a matcher for dispatches whose key equals want.
func Field(key, want string) func(Obj) bool {
	return func(o Obj) bool { return Str(Get(o, key)) == want }
}

func summary(fs []Frame) string {
	var parts []string
	for _, f := range fs {
		if f.Op == OpDispatch {
			parts = append(parts, f.T)
		} else if f.Op != OpHeartbeatACK {
			parts = append(parts, "op"+jsonInt(f.Op))
		}
	}
	if len(parts) > 40 {
		parts = append(parts[:40], "…")
	}
	return strings.Join(parts, ",")
}

func jsonInt(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
