package server_test

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/testnode"
)

func TestGatewayCloseCodes(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register(t, "alice")
	identify := map[string]any{"op": 2, "d": map[string]any{"token": alice.Token, "intents": 513}}
	tests := []struct {
		name  string
		query string
		send  []any
		code  int
	}{
		{"unknown opcode", "", []any{identify, map[string]any{"op": 99}}, 4001},
		{"server-only opcode", "", []any{identify, map[string]any{"op": 10}}, 4001},
		{"not json", "", []any{"{nope"}, 4002},
		{"not an object", "", []any{"[1,2]"}, 4002},
		{"too large", "", []any{`{"op":1,"d":"` + strings.Repeat("x", 5000) + `"}`}, 4002},
		{"not authenticated", "", []any{map[string]any{"op": 3, "d": map[string]any{"status": "idle"}}}, 4003},
		{"bad token", "", []any{map[string]any{"op": 2, "d": map[string]any{"token": "bad"}}}, 4004},
		{"already authenticated", "", []any{identify, identify}, 4005},
		{"bad intents", "", []any{map[string]any{"op": 2, "d": map[string]any{"token": alice.Token, "intents": -1}}}, 4013},
		{"bad version", "v=3", nil, 4012},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testnode.Dial(t, n, tt.query)
			for _, f := range tt.send {
				var err error
				if s, ok := f.(string); ok {
					err = g.WS.WriteMessage(websocket.TextMessage, []byte(s))
				} else {
					err = g.WS.WriteJSON(f)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if code := g.CloseCode(); code != tt.code {
				t.Fatalf("close code %d, want %d", code, tt.code)
			}
		})
	}
}

func TestGatewayRateLimitAndHeartbeat(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Heartbeat: 200 * time.Millisecond})
	alice := n.Register(t, "alice")
	g := testnode.Dial(t, n, "")
	// Hello first, with the interval.
	g.WaitFor("hello", func(_ []testnode.Dispatch, other []map[string]any, _ error) bool { return len(other) > 0 })
	hello := g.Frames()[0]
	if hello["op"].(float64) != 10 || hello["d"].(map[string]any)["heartbeat_interval"].(float64) != 200 {
		t.Fatalf("hello = %v", hello)
	}
	g.Send(map[string]any{"op": 1, "d": nil})
	g.WaitFor("heartbeat ACK", func(_ []testnode.Dispatch, other []map[string]any, _ error) bool {
		return len(other) > 1 && other[1]["op"].(float64) == 11
	})
	// No more heartbeats: zombie detection closes with 4009 after 1.5 intervals.
	if code := g.CloseCode(); code != 4009 {
		t.Fatalf("close code %d, want 4009", code)
	}

	flood := testnode.Dial(t, n, "")
	flood.Send(map[string]any{"op": 2, "d": map[string]any{"token": alice.Token}})
	for i := 0; i < 130; i++ {
		if err := flood.WS.WriteJSON(map[string]any{"op": 1}); err != nil {
			break
		}
	}
	if code := flood.CloseCode(); code != 4008 {
		t.Fatalf("flood close code %d, want 4008", code)
	}
}

func TestGatewayReadyAndSequence(t *testing.T) {
	_, alice, bob, g, ag, _ := setup(t)
	for i := 0; i < 5; i++ {
		bob.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "x"}, nil)
	}
	// A fresh session: READY is s=1, GUILD_CREATE s=2, and every dispatch after counts up by
	// exactly one.
	seqs := alice.Connect(-1)
	for i := 0; i < 5; i++ {
		bob.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "y"}, nil)
	}
	var all []testnode.Dispatch
	seqs.WaitFor("messages", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		all = append([]testnode.Dispatch(nil), events...)
		n := 0
		for _, e := range events {
			if e.T == "MESSAGE_CREATE" {
				n++
			}
		}
		return n == 5
	})
	// READY was consumed by Connect; the rest start at 2.
	for i, e := range all {
		if e.S != int64(i+2) {
			t.Fatalf("dispatch %d (%s) has s=%d, want %d", i, e.T, e.S, i+2)
		}
	}
	_ = ag

	// READY carries the guild stubs, the session and read states.
	var ready struct {
		V         int    `json:"v"`
		SessionID string `json:"session_id"`
		User      struct{ ID string }
		Guilds    []struct {
			ID          string `json:"id"`
			Unavailable bool   `json:"unavailable"`
		}
		ReadState struct {
			Entries []any `json:"entries"`
		} `json:"read_state"`
	}
	c := testnode.Dial(t, alice.Node, "")
	c.Send(map[string]any{"op": 2, "d": map[string]any{"token": "Bot " + alice.Token}})
	c.Wait("READY").Decode(t, &ready)
	if ready.V != 10 || ready.SessionID == "" || ready.User.ID != alice.UserID || len(ready.Guilds) != 1 || !ready.Guilds[0].Unavailable {
		t.Fatalf("READY = %+v", ready)
	}
	c.Wait("GUILD_CREATE")
}

func TestGatewayIntents(t *testing.T) {
	_, alice, bob, g, _, _ := setup(t)
	// GUILDS only: no message or typing dispatches. GUILDS|GUILD_MESSAGES without
	// MESSAGE_CONTENT: messages arrive with empty content.
	guildsOnly := bob.Connect(1)
	noContent := bob.Connect(1 | 1<<9)
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "secret words"}, nil)
	var m message
	noContent.Wait("MESSAGE_CREATE").Decode(t, &m)
	if m.Content != "" {
		t.Fatalf("content %q delivered without MESSAGE_CONTENT intent", m.Content)
	}
	alice.Must("PATCH", "/guilds/"+g.ID, map[string]string{"name": "Renamed"}, nil)
	guildsOnly.Wait("GUILD_UPDATE")
	if guildsOnly.Has("MESSAGE_CREATE") {
		t.Fatal("MESSAGE_CREATE delivered without GUILD_MESSAGES intent")
	}
}

func TestGatewayResume(t *testing.T) {
	_, alice, bob, g, _, bg := setup(t)
	var last int64
	bg.WaitFor("settled", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		if len(events) > 0 {
			last = events[len(events)-1].S
		}
		return true
	})
	bg.WS.Close()
	for i := 0; i < 3; i++ {
		alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "while away"}, nil)
	}
	r := testnode.Dial(t, bob.Node, "")
	r.Send(map[string]any{"op": 6, "d": map[string]any{"token": bob.Token, "session_id": bg.SessionID, "seq": last}})
	r.Wait("RESUMED")
	r.WaitFor("replay", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		n := 0
		for _, e := range events {
			if e.T == "MESSAGE_CREATE" {
				n++
			}
		}
		return n == 3
	})
	// Unknown session: op 9 with d=false.
	bad := testnode.Dial(t, bob.Node, "")
	bad.Send(map[string]any{"op": 6, "d": map[string]any{"token": bob.Token, "session_id": "nope", "seq": 1}})
	bad.WaitFor("invalid session", func(_ []testnode.Dispatch, other []map[string]any, _ error) bool {
		for _, f := range other {
			if f["op"].(float64) == 9 && f["d"] == false {
				return true
			}
		}
		return false
	})
}

func TestPresence(t *testing.T) {
	_, _, bob, _, ag, bg := setup(t)
	bg.Send(map[string]any{"op": 3, "d": map[string]any{"status": "dnd", "since": nil, "activities": []any{}, "afk": false}})
	var p struct {
		User   struct{ ID string }
		Status string
	}
	for {
		ag.Wait("PRESENCE_UPDATE").Decode(t, &p)
		if p.User.ID == bob.UserID && p.Status == "dnd" {
			break
		}
	}
	bg.Send(map[string]any{"op": 3, "d": map[string]any{"status": "invisible", "activities": []any{}}})
	for {
		ag.Wait("PRESENCE_UPDATE").Decode(t, &p)
		if p.User.ID == bob.UserID && p.Status == "offline" {
			break
		}
	}
	bg.Send(map[string]any{"op": 8, "d": map[string]any{"guild_id": "0", "query": "", "limit": 0}})
	bg.Wait("GUILD_MEMBERS_CHUNK")
}

func TestLongPolling(t *testing.T) {
	_, alice, bob, g, _, _ := setup(t)
	post := func(path string, body any, out any) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", bob.Node.URL+"/api/v10/gateway/poll"+path, bytes.NewReader(b))
		req.Header.Set("Authorization", bob.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	type frames struct {
		SessionID string              `json:"session_id"`
		Events    []testnode.Dispatch `json:"events"`
	}
	var start frames
	if st := post("", map[string]any{"op": 2, "d": map[string]any{"token": bob.Token}}, &start); st != 200 || len(start.Events) < 2 || start.Events[0].T != "READY" {
		t.Fatalf("poll identify: %d %+v", st, start)
	}
	seq := start.Events[len(start.Events)-1].S
	got := make(chan frames, 1)
	go func() {
		req, _ := http.NewRequest("GET", bob.Node.URL+"/api/v10/gateway/poll?timeout=10&session_id="+start.SessionID+"&seq="+itoa(seq), nil)
		req.Header.Set("Authorization", bob.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- frames{}
			return
		}
		defer resp.Body.Close()
		var f frames
		_ = json.NewDecoder(resp.Body).Decode(&f)
		got <- f
	}()
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "via poll"}, nil)
	f := <-got
	if len(f.Events) == 0 || f.Events[0].S != seq+1 {
		t.Fatalf("poll = %+v, want next seq %d", f, seq+1)
	}
	if st := post("/"+start.SessionID, map[string]any{"op": 3, "d": map[string]any{"status": "idle"}}, nil); st != 204 {
		t.Fatalf("poll command: %d", st)
	}
	req, _ := http.NewRequest("GET", bob.Node.URL+"/api/v10/gateway/poll?session_id=nope&seq=0", nil)
	req.Header.Set("Authorization", bob.Token)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown poll session: %d", resp.StatusCode)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestZlibStream(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register(t, "alice")
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(n.URL, "http", "ws", 1)+"/gateway?v=10&encoding=json&compress=zlib-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": alice.Token}})
	// One zlib stream across messages: feed all binary messages into one reader.
	pr, pw := io.Pipe()
	go func() {
		for {
			typ, msg, err := ws.ReadMessage()
			if err != nil || typ != websocket.BinaryMessage || !bytes.HasSuffix(msg, []byte{0, 0, 0xff, 0xff}) {
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(msg); err != nil {
				return
			}
		}
	}()
	zr, err := zlib.NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(zr)
	var hello, ready map[string]any
	if err := dec.Decode(&hello); err != nil || hello["op"].(float64) != 10 {
		t.Fatalf("hello: %v %v", hello, err)
	}
	if err := dec.Decode(&ready); err != nil || ready["t"] != "READY" {
		t.Fatalf("ready: %v %v", ready, err)
	}
}

// TestSlowSessionIsClosedNotWaitedFor: a client that stops reading is closed with 4000 once
// it is more than the queue bound behind, while another session of the same guild receives
// everything.
func TestSlowSessionIsClosedNotWaitedFor(t *testing.T) {
	// A queue of 200 dispatches (400 KB here) is far less than the 6 MB the slow client leaves
	// unread, and enough that the fast client's reader, descheduled for a moment on a busy
	// machine, is not cut off too.
	n := testnode.Start(t, testnode.Options{Heartbeat: time.Minute, Config: func(c *config.Config) { c.GatewayMaxQueue = 200 }})
	alice, bob := n.Register(t, "alice"), n.Register(t, "bob")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Slow"}, &g)
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
	bob.Must("POST", "/invites/"+inv.Code, nil, nil)

	// The slow client identifies and then never reads again.
	slow, _, err := websocket.DefaultDialer.Dial(strings.Replace(n.URL, "http", "ws", 1)+"/gateway?v=10", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	_ = slow.WriteJSON(map[string]any{"op": 2, "d": map[string]any{"token": bob.Token}})
	fast := alice.Connect(-1)

	big := strings.Repeat("x", 1900)
	const total = 3000 // ~6 MB: more than the kernel's socket buffers hold
	for i := 0; i < total; i++ {
		alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": big}, nil)
	}
	fast.WaitFor("all messages", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		n := 0
		for _, e := range events {
			if e.T == "MESSAGE_CREATE" {
				n++
			}
		}
		return n == total
	})
	// Drain what the slow client's socket held: the server must have cut the stream short.
	// (The close frame with 4000 is sent but can arrive only if the client's buffers have
	// room; a client that stopped reading typically sees the TCP close.)
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	received := 0
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("slow client's connection was not closed")
			}
			break
		}
		received++
	}
	if received >= total {
		t.Fatalf("slow client received all %d frames; it was never behind", received)
	}
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "hearth_gateway_slow_closed_total 1") {
		t.Fatalf("metrics do not count the slow close:\n%s", grepLines(string(body), "slow_closed"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCleanCloseEndsSession: closing with 1000 ends the session (CAPI-132): it cannot be
// resumed and the user goes offline for the others at once.
func TestCleanCloseEndsSession(t *testing.T) {
	_, alice, bob, _, ag, bg := setup(t)
	_ = alice
	var last int64
	bg.WaitFor("settled", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		if len(events) > 0 {
			last = events[len(events)-1].S
		}
		return true
	})
	_ = bg.WS.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	for {
		var p struct {
			User   struct{ ID string }
			Status string
		}
		ag.Wait("PRESENCE_UPDATE").Decode(t, &p)
		if p.User.ID == bob.UserID && p.Status == "offline" {
			break
		}
	}
	r := testnode.Dial(t, bob.Node, "")
	r.Send(map[string]any{"op": 6, "d": map[string]any{"token": bob.Token, "session_id": bg.SessionID, "seq": last}})
	r.WaitFor("invalid session", func(_ []testnode.Dispatch, other []map[string]any, _ error) bool {
		for _, f := range other {
			if f["op"].(float64) == 9 {
				return true
			}
		}
		return false
	})
}
