package signal

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hearth-chat/hearth/voice/sfu"
	"github.com/hearth-chat/hearth/voice/token"
	"github.com/hearth-chat/hearth/voice/voiceclient"
	"github.com/pion/webrtc/v4"
)

type recorder struct {
	mu     sync.Mutex
	states []sfu.State
}

func (r *recorder) VoiceState(s sfu.State) {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.mu.Unlock()
}
func (r *recorder) Speaking(_, _, _ string, _ bool) {}

func (r *recorder) last(userID string) (sfu.State, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.states) - 1; i >= 0; i-- {
		if r.states[i].UserID == userID {
			return r.states[i], true
		}
	}
	return sfu.State{}, false
}

type env struct {
	t      testing.TB
	sfu    *sfu.SFU
	tokens *token.Issuer
	srv    *httptest.Server
	events *recorder
	api    *webrtc.API
}

func opusPackets(t testing.TB) [][]byte {
	t.Helper()
	p, err := voiceclient.OpusPackets("testdata/speech.ogg")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) url() string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/voice" }

func (e *env) connect(user, guild, tok string) *voiceclient.Client {
	e.t.Helper()
	return e.connectOpts(user, guild, tok, voiceclient.Options{})
}

func (e *env) connectOpts(user, guild, tok string, opts voiceclient.Options) *voiceclient.Client {
	e.t.Helper()
	c, err := voiceclient.Dial(context.Background(), e.url(), e.api, user, guild, tok, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func dialVoice(t testing.TB, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/voice", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// newEnv starts an SFU and the voice WebSocket on 127.0.0.1 and, at
// cleanup, checks that every goroutine they started has ended.
func newEnv(t testing.TB, cfg sfu.Config) *env {
	t.Helper()
	before := runtime.NumGoroutine()
	rec := &recorder{}
	cfg.Events = rec
	cfg.Loopback = true
	s, err := sfu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	is, err := token.New(bytes.Repeat([]byte{1}, 32), 0)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/voice", &Handler{SFU: s, Tokens: is, HeartbeatInterval: time.Second, IdentifyTimeout: 2 * time.Second})
	srv := httptest.NewServer(mux)
	api, err := voiceclient.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sfu: s, tokens: is, srv: srv, events: rec, api: api}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sfu close: %v", err)
		}
		srv.Close()
		waitFor(t, 10*time.Second, func() string {
			if n := runtime.NumGoroutine(); n > before {
				return fmt.Sprintf("%d goroutines, %d before the test", n, before)
			}
			return ""
		})
	})
	return e
}

func (e *env) token(user, guild, channel string) string {
	tok, err := e.tokens.Mint(token.Claims{UserID: user, GuildID: guild, ChannelID: channel, SessionID: "gw-" + user})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) join(user, channel string) *voiceclient.Client {
	c := e.connect(user, "g1", e.token(user, "g1", channel))
	e.t.Cleanup(c.Close)
	return c
}

// waitFor polls cond until it returns "" or the timeout passes; the
// returned text says why the condition is not yet true.
func waitFor(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// growing reports whether n keeps increasing over a short window.
func growing(n func() int64) bool {
	a := n()
	time.Sleep(300 * time.Millisecond)
	return n() > a
}

func TestAudioFlowsBothWaysAndSpeaking(t *testing.T) {
	e := newEnv(t, sfu.Config{SpeakingHangover: 300 * time.Millisecond})
	pkts := opusPackets(t)
	a := e.join("1", "c1")
	b := e.join("2", "c1")
	stop := make(chan struct{})
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range []*voiceclient.Client{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); c.Publish(pkts, stop, false) }()
	}
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 10*time.Second, func() string {
		if n, m := b.ReceivedFrom("1"), a.ReceivedFrom("2"); n < 50 || m < 50 {
			return fmt.Sprintf("B got %d packets from A, A got %d from B", n, m)
		}
		return ""
	})
	// The file is 1 s tone, 1 s silence, 1 s tone: A must be seen to start
	// and stop speaking, without flicker inside the tone.
	waitFor(t, 10*time.Second, func() string {
		sp := b.Speaking("1")
		if len(sp) < 2 {
			return fmt.Sprintf("speaking changes of A seen by B: %v", sp)
		}
		return ""
	})
	time.Sleep(2 * time.Second)
	sp := b.Speaking("1")
	for i, v := range sp {
		if v != (i%2 == 0) {
			t.Fatalf("speaking changes %v do not alternate from true", sp)
		}
	}
	// At most 2 changes per loop of the 3 s file, plus the current loop's.
	if max := 2*int(time.Since(start)/(3*time.Second)) + 2; len(sp) > max {
		t.Fatalf("speaking flickered: %d changes %v", len(sp), sp)
	}
	if st, ok := e.events.last("2"); !ok || st.ChannelID != "c1" {
		t.Fatalf("node saw state %+v for user 2, want channel c1", st)
	}
	if got := len(e.sfu.Participants("g1", "c1")); got != 2 {
		t.Fatalf("participants = %d, want 2", got)
	}
}

func TestServerMuteAndDeafen(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	pkts := opusPackets(t)
	a := e.join("1", "c1")
	b := e.join("2", "c1")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); a.Publish(pkts, stop, true) }()
	defer func() { close(stop); <-done }()
	fromA := func() int64 { return b.ReceivedFrom("1") }
	waitFor(t, 10*time.Second, func() string {
		if fromA() < 20 {
			return "B receives nothing from A"
		}
		return ""
	})

	if err := e.sfu.SetServerMute("g1", "1", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() string {
		if growing(fromA) {
			return "B still receives A after server mute"
		}
		return ""
	})
	if st, _ := e.events.last("1"); !st.Mute {
		t.Fatalf("state after mute = %+v", st)
	}
	if sp := b.Speaking("1"); len(sp) > 0 && sp[len(sp)-1] {
		t.Fatalf("muted member still speaking: %v", sp)
	}
	if err := e.sfu.SetServerMute("g1", "1", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() string {
		if !growing(fromA) {
			return "B does not receive A after unmute"
		}
		return ""
	})

	if err := e.sfu.SetServerDeaf("g1", "2", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() string {
		if growing(fromA) {
			return "deafened B still receives A"
		}
		return ""
	})
	if err := e.sfu.SetSelfState("g1", "2", false, false); err != nil {
		t.Fatal(err)
	}
	if growing(fromA) {
		t.Fatal("server deaf lifted by clearing self deaf")
	}
	if err := e.sfu.SetServerDeaf("g1", "2", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() string {
		if !growing(fromA) {
			return "B does not receive A after undeafen"
		}
		return ""
	})
	if err := e.sfu.SetServerMute("g1", "404", true); err == nil {
		t.Fatal("mute of a user not in voice succeeded")
	}
}

func TestChannelSwitchKeepsPeerConnection(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	pkts := opusPackets(t)
	a := e.join("1", "c1")
	b := e.join("2", "c1")
	c := e.join("3", "c2")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, x := range []*voiceclient.Client{a, b, c} {
		wg.Add(1)
		go func() { defer wg.Done(); x.Publish(pkts, stop, true) }()
	}
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 10*time.Second, func() string {
		if a.ReceivedFrom("2") < 20 || b.ReceivedFrom("1") < 20 {
			return "A and B do not hear each other"
		}
		return ""
	})
	if a.ReceivedFrom("3") != 0 {
		t.Fatal("A hears C across channels")
	}
	var states []webrtc.PeerConnectionState
	var mu sync.Mutex
	a.PC().OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		mu.Lock()
		states = append(states, s)
		mu.Unlock()
	})
	a.Send(OpChannelSwitch, channelSwitch{Token: e.token("1", "g1", "c2")})
	waitFor(t, 10*time.Second, func() string {
		sw := a.Switched()
		if len(sw) != 1 || sw[0] != "c2" {
			return fmt.Sprintf("switched = %v", sw)
		}
		if a.ReceivedFrom("3") < 20 {
			return "A does not hear C after the switch"
		}
		return ""
	})
	if growing(func() int64 { return b.ReceivedFrom("1") }) {
		t.Fatal("B still hears A after A left c1")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range states {
		if s != webrtc.PeerConnectionStateConnected {
			t.Fatalf("A's PeerConnection went through %v during the switch", states)
		}
	}
	if a.PC().ConnectionState() != webrtc.PeerConnectionStateConnected {
		t.Fatalf("A's PeerConnection is %v", a.PC().ConnectionState())
	}
	// A moderator moves A back and then disconnects it.
	if err := e.sfu.Move("g1", "1", "c1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() string {
		if !growing(func() int64 { return b.ReceivedFrom("1") }) {
			return "B does not hear A after the move back"
		}
		return ""
	})
	if err := e.sfu.Disconnect("g1", "1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("voice WebSocket not closed after disconnect")
	}
	if code := a.CloseCode(); code != 4014 {
		t.Fatalf("close code %d, want 4014", code)
	}
	if st, _ := e.events.last("1"); st.ChannelID != "" {
		t.Fatalf("state after disconnect %+v, want no channel", st)
	}
}

// expectClose sends frames on a fresh connection and checks the close code.
func expectClose(t *testing.T, e *env, want int, frames ...any) {
	t.Helper()
	ws := dialVoice(t, e.srv)
	defer ws.Close()
	for _, f := range frames {
		var err error
		if s, ok := f.(string); ok {
			err = ws.WriteMessage(websocket.TextMessage, []byte(s))
		} else {
			err = ws.WriteJSON(f)
		}
		if err != nil {
			break
		}
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok || ce.Code != want {
			t.Fatalf("closed with %v, want code %d", err, want)
		}
		return
	}
}

func op(o int, d any) map[string]any { return map[string]any{"op": o, "d": d} }

func TestBadInputCloses(t *testing.T) {
	e := newEnv(t, sfu.Config{ICEConnectTimeout: time.Second})
	id := func(user, guild, tok string) map[string]any {
		return op(OpIdentify, identify{ServerID: guild, UserID: user, SessionID: "gw-" + user, Token: tok})
	}
	good := func(u string) map[string]any { return id(u, "g1", e.token(u, "g1", "c1")) }
	offerWith := func(sdpText string) map[string]any {
		return op(OpSelectProtocol, selectProtocol{Protocol: "webrtc", Data: sessionDesc{Type: "offer", SDP: sdpText}})
	}
	expired, _ := token.New(bytes.Repeat([]byte{1}, 32), time.Nanosecond)
	expTok, _ := expired.Mint(token.Claims{UserID: "9", GuildID: "g1", ChannelID: "c1"})
	time.Sleep(time.Millisecond)

	tests := []struct {
		name   string
		want   int
		frames []any
	}{
		{"not json", 4002, []any{"{op:"}},
		{"no op", 4002, []any{`{"d":{}}`}},
		{"unknown op", 4001, []any{op(77, nil)}},
		{"select before identify", 4003, []any{offerWith("v=0")}},
		{"bad token", 4004, []any{id("1", "g1", "hv1.x.y")}},
		{"token of another user", 4004, []any{id("2", "g1", e.token("1", "g1", "c1"))}},
		{"token of another guild", 4004, []any{id("1", "g2", e.token("1", "g1", "c1"))}},
		{"expired token", 4004, []any{id("9", "g1", expTok)}},
		{"identify twice", 4005, []any{good("10"), good("10")}},
		{"unknown protocol", 4012, []any{good("11"), op(OpSelectProtocol, selectProtocol{Protocol: "udp"})}},
		{"malformed sdp", 4100, []any{good("12"), offerWith("this is not sdp")}},
		{"unsupported codec", 4101, []any{good("13"), offerWith(sdpWith(1, "PCMU/8000"))}},
		{"too many tracks", 4102, []any{good("14"), offerWith(sdpWith(5, "opus/48000/2"))}},
		{"a source named twice", 4102, []any{good("17"), op(OpSelectProtocol, selectProtocol{Protocol: "webrtc", Data: sessionDesc{Type: "offer",
			SDP: sdpWith(2, "opus/48000/2"), Sources: map[string]string{"0": "microphone", "1": "microphone"}}})}},
		{"frame too large", 4002, []any{good("15"), strings.Repeat(" ", MaxFrame+1)}},
		{"ice never completes", 4104, []any{good("16"), offerWith(sdpWith(1, "opus/48000/2"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectClose(t, e, tt.want, tt.frames...) })
	}
}

func TestRenegotiationFloodCloses(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	a := e.join("1", "c1")
	for i := 0; i < 15; i++ {
		a.Send(OpClientOffer, sessionDesc{Type: "offer", SDP: a.PC().LocalDescription().SDP})
	}
	select {
	case <-a.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("flood did not close the connection")
	}
	if code := a.CloseCode(); code != 4103 {
		t.Fatalf("close code %d, want 4103", code)
	}
}

func TestResume(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	pkts := opusPackets(t)
	tok := e.token("1", "g1", "c1")
	a := e.connect("1", "g1", tok)
	t.Cleanup(a.Close)
	b := e.join("2", "c1")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); a.Publish(pkts, stop, true) }()
	defer func() { close(stop); <-done }()
	a.DropSocket()
	ws := dialVoice(t, e.srv)
	defer ws.Close()
	_ = ws.WriteJSON(op(OpResume, identify{ServerID: "g1", SessionID: "gw-1", Token: tok}))
	var got []int
	for len(got) < 2 {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after resume: %v (ops %v)", err, got)
		}
		f, _ := decodeFrame(m)
		got = append(got, f.Op)
	}
	if got[0] != OpHello || got[1] != OpResumed {
		t.Fatalf("ops %v, want Hello then Resumed", got)
	}
	waitFor(t, 5*time.Second, func() string {
		if !growing(func() int64 { return b.ReceivedFrom("1") }) {
			return "media stopped across resume"
		}
		return ""
	})
}

// sdpWith builds a client offer with n sendonly audio sections of codec.
func sdpWith(n int, codec string) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " %d", i)
	}
	b.WriteString("\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:%d\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=rtcp-mux\r\na=sendonly\r\na=rtpmap:111 %s\r\na=ssrc:%d cname:x\r\n", i, codec, 1000+i)
	}
	return b.String()
}

// TestSpeakingSnapshotOnJoin checks VOICE-073: a session entering a room learns who is
// speaking at that moment, not only later changes.
func TestSpeakingSnapshotOnJoin(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	pkts := opusPackets(t)
	a := e.join("1", "c1")
	b := e.join("2", "c1")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.Publish(pkts, stop, true) }() // loud all along: one change only
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 10*time.Second, func() string {
		if sp := b.Speaking("1"); len(sp) == 0 || !sp[0] {
			return fmt.Sprintf("B's speaking events of A: %v", sp)
		}
		return ""
	})
	c := e.join("3", "c1")
	waitFor(t, 10*time.Second, func() string {
		if sp := c.Speaking("1"); len(sp) == 0 || !sp[len(sp)-1] {
			return fmt.Sprintf("C, joining while A speaks, got speaking events %v", sp)
		}
		return ""
	})
}
