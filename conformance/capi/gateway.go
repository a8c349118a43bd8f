package capi

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var gateway = []Test{
	{IDs: []string{"CAPI-110"}, Name: "gateway/url", Run: gatewayURL},
	{IDs: []string{"CAPI-120"}, Name: "gateway/hello", Run: gatewayHello},
	{IDs: []string{"CAPI-121"}, Name: "gateway/heartbeat-ack", Run: heartbeatACK},
	{IDs: []string{"CAPI-122"}, Name: "gateway/zombie-closed-4009", Run: zombie},
	{IDs: []string{"CAPI-123", "CAPI-124"}, Name: "gateway/ready-and-guild-create", Run: readyAndGuildCreate},
	{IDs: []string{"CAPI-125"}, Name: "gateway/sequence-numbers", Run: sequenceNumbers},
	{IDs: []string{"CAPI-126"}, Name: "gateway/intents", Run: intents},
	{IDs: []string{"CAPI-127"}, Name: "gateway/resume-replays", Run: resume},
	{IDs: []string{"CAPI-132"}, Name: "gateway/clean-close-ends-session", Run: cleanCloseEndsSession},
	{IDs: []string{"CAPI-128"}, Name: "gateway/resume-invalid-session", Run: resumeInvalid},
	{IDs: []string{"CAPI-129"}, Name: "gateway/presence", Run: presence},
	{IDs: []string{"CAPI-130"}, Name: "gateway/request-guild-members", Run: requestMembers},
	{IDs: []string{"CAPI-131"}, Name: "gateway/shutdown-reconnect", Needs: harness.Needs{OwnNode: true, Managed: true}, Run: shutdownReconnect},
	{IDs: []string{"CAPI-141"}, Name: "gateway/close-4001-unknown-opcode", Run: closeUnknownOp},
	{IDs: []string{"CAPI-142"}, Name: "gateway/close-4002-decode-error", Run: closeDecode},
	{IDs: []string{"CAPI-143"}, Name: "gateway/close-4003-not-authenticated", Run: closeNotAuthenticated},
	{IDs: []string{"CAPI-144"}, Name: "gateway/close-4004-bad-token", Run: closeBadToken},
	{IDs: []string{"CAPI-145"}, Name: "gateway/close-4005-already-authenticated", Run: closeAlreadyAuthenticated},
	{IDs: []string{"CAPI-146"}, Name: "gateway/close-4008-rate-limited", Run: closeRateLimited},
	{IDs: []string{"CAPI-147"}, Name: "gateway/close-4012-api-version", Run: closeAPIVersion},
	{IDs: []string{"CAPI-148"}, Name: "gateway/close-4013-intents", Run: closeIntents},
	{IDs: []string{"CAPI-151"}, Name: "gateway/channel-order", Run: channelOrder},
	{IDs: []string{"CAPI-140", "CAPI-155"}, Name: "gateway/slow-session-closed-4000", Needs: harness.Needs{OwnNode: true}, Run: slowSession},
}

// CAPI-110: "GET /gateway and GET /gateway/bot answer {"url": "ws://HOST"}, and
// /gateway/bot also shards: 1 and session_start_limit."
func gatewayURL(t *T) {
	u := t.NewUser()
	var plain, bot Obj
	r := t.Must(t.Anon(), 200, "GET", "/gateway", nil, &plain)
	t.Conform("gateway_url", r.Body)
	r = t.Must(u.Client, 200, "GET", "/gateway/bot", nil, &bot)
	t.Conform("gateway_url", r.Body)
	if num(bot["shards"]) != 1 || bot["session_start_limit"] == nil {
		t.Errorf("/gateway/bot: expected shards 1 and session_start_limit, got %s", r)
	}
	// The URL works with the query Discord libraries append.
	url := strings.TrimRight(str(plain["url"]), "/")
	if !strings.HasPrefix(url, "ws") {
		t.Fatalf("/gateway url %q is not a WebSocket URL", url)
	}
	g := t.DialURL(url + "/?v=10&encoding=json")
	t.Hello(g)
}

// CAPI-120: "On connect the node MUST send Hello with heartbeat_interval in
// milliseconds."
func gatewayHello(t *T) {
	for _, q := range []string{"v=10&encoding=json", "v=9&encoding=json", ""} {
		g := t.DialURL(harness.GatewayURL(t.Node, q))
		f, err := g.Next(t.Timeout())
		if err != nil || f.Op != harness.OpHello {
			t.Errorf("query %q: expected Hello first, got %s (%v)", q, f, err)
			continue
		}
		t.Conform("gateway_frame", f.Raw)
		if iv := num(f.Obj()["heartbeat_interval"]); iv < 1000 || iv > 120000 {
			t.Errorf("heartbeat_interval %v ms is not a plausible number of milliseconds", iv)
		}
	}
}

// CAPI-121: "The node MUST answer Heartbeat (op 1) with Heartbeat ACK (op 11), at
// any time after Hello, including before Identify."
func heartbeatACK(t *T) {
	u := t.NewUser()
	g := t.Dial()
	t.Hello(g)
	_ = g.Send(harness.OpHeartbeat, nil)
	f, err := g.WaitOp(t.Timeout(), harness.OpHeartbeatACK)
	if err != nil {
		t.Fatalf("Heartbeat before Identify: %v", err)
	}
	t.Conform("gateway_frame", f.Raw)
	_ = g.Send(harness.OpIdentify, Obj{"token": u.Token, "intents": harness.AllIntents, "properties": Obj{}})
	if _, err := g.WaitDispatch(t.Timeout(), "READY", nil); err != nil {
		t.Fatalf("%v", err)
	}
	_ = g.Send(harness.OpHeartbeat, g.LastSeq())
	if _, err := g.WaitOp(t.Timeout(), harness.OpHeartbeatACK); err != nil {
		t.Errorf("Heartbeat after Identify: %v", err)
	}
}

// CAPI-122: "A connection with no heartbeat for 1.5 heartbeat intervals MUST be
// closed with 4009."
func zombie(t *T) {
	u := t.NewUser()
	g := t.Dial()
	iv := t.Hello(g)
	if iv > 100*time.Second {
		t.Fatalf("heartbeat_interval %v: too long to test zombie detection in bounded time", iv)
	}
	_ = g.Send(harness.OpIdentify, Obj{"token": u.Token, "intents": harness.AllIntents, "properties": Obj{}})
	start := time.Now()
	code, err := g.WaitClose(iv*3/2 + 15*time.Second)
	if err != nil {
		t.Fatalf("no heartbeat for %v: connection still open (%v)", time.Since(start).Round(time.Second), err)
	}
	if code != 4009 {
		t.Errorf("no heartbeat: expected close 4009, got %d after %v", code, time.Since(start).Round(time.Second))
	}
}

// CAPI-123: "Identify with a valid token MUST be answered with a READY dispatch
// containing v (10), user, guilds (unavailable stubs), session_id,
// resume_gateway_url, private_channels, read_state, relationships ([]), followed by
// one GUILD_CREATE per guild with the full guild [CAPI-124]."
func readyAndGuildCreate(t *T) {
	u := t.NewUser()
	g1, g2 := t.NewGuild(u), t.NewGuild(u)
	s := t.Connect(u, harness.AllIntents)
	t.Conform("gateway_frame", s.ReadyFrame.Raw)
	t.Conform("ready", s.ReadyFrame.D)
	if str(get(s.Ready, "user.id")) != u.ID {
		t.Errorf("READY user = %v, expected %s", get(s.Ready, "user.id"), u.ID)
	}
	stubs := map[string]bool{}
	for _, id := range harness.IDs(s.Ready["guilds"]) {
		stubs[id] = true
	}
	for _, g := range []*harness.Guild{g1, g2} {
		if !stubs[g.ID] {
			t.Errorf("READY guilds lacks %s", g.ID)
		}
		gc := t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
		t.Conform("gateway_guild", harness.Raw(gc))
		if len(harness.IDs(gc["channels"])) < 2 || gc["unavailable"] != false {
			t.Errorf("GUILD_CREATE %s is not the full guild: %s", g.ID, harness.JSON(gc))
		}
	}
}

// dispatches returns the dispatch frames received so far.
func dispatches(g *harness.Gateway) []harness.Frame {
	var out []harness.Frame
	for _, f := range g.Frames() {
		if f.Op == harness.OpDispatch {
			out = append(out, f)
		}
	}
	return out
}

// CAPI-125: "Every dispatch carries s, a sequence number that starts at 1 for each
// session and increases by exactly 1 with every dispatch of that session."
func sequenceNumbers(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	s1 := t.Connect(u, harness.AllIntents)
	s2 := t.Connect(u, harness.AllIntents)
	var last string
	for i := range 5 {
		last = str(t.Send(u, g.Text, fmt.Sprint("seq ", i))["id"])
	}
	t.Call(u.Client, "POST", "/channels/"+g.Text+"/typing", nil)
	for _, s := range []*harness.Session{s1, s2} {
		t.Expect(s.Gateway, "MESSAGE_CREATE", harness.Field("id", last))
		for i, f := range dispatches(s.Gateway) {
			if f.S == nil || *f.S != int64(i+1) {
				t.Errorf("dispatch %d (%s) has s=%s, expected %d", i+1, f.T, seqString(f.S), i+1)
				break
			}
		}
		for _, f := range s.Frames() {
			if f.Op != harness.OpDispatch && f.S != nil {
				t.Errorf("non-dispatch frame carries s: %s", f)
				break
			}
		}
	}
}

// CAPI-126: "A session MUST NOT receive dispatches of an intent group it did not
// ask for." Without MESSAGE_CONTENT, message objects come with empty content.
func intents(t *T) {
	o, m := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m)
	guildsOnly := t.Connect(m, intentGuilds)
	noContent := t.Connect(m, intentGuilds|intentMessages)
	for _, s := range []*harness.Session{guildsOnly, noContent} {
		t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	}
	msg := t.Send(o, g.Text, "secret content")
	t.Call(o.Client, "POST", "/channels/"+g.Text+"/typing", nil)
	t.Call(o.Client, "PUT", "/channels/"+g.Text+"/messages/"+str(msg["id"])+"/reactions/"+thumbsUp+"/@me", nil)
	sentinel := createChannel(t, o, g, Obj{"name": "sentinel", "type": 0})
	for _, s := range []*harness.Session{guildsOnly, noContent} {
		t.Expect(s.Gateway, "CHANNEL_CREATE", harness.Field("id", str(sentinel["id"])))
	}
	groups := map[string]bool{"MESSAGE_CREATE": true, "TYPING_START": true, "MESSAGE_REACTION_ADD": true}
	if f, ok := guildsOnly.Seen(func(f harness.Frame) bool { return groups[f.T] }); ok {
		t.Errorf("a session with intents GUILDS only received %s", f)
	}
	if f, ok := noContent.Seen(func(f harness.Frame) bool { return f.T == "TYPING_START" || f.T == "MESSAGE_REACTION_ADD" }); ok {
		t.Errorf("a session without GUILD_MESSAGE_TYPING/REACTIONS received %s", f)
	}
	f, ok := noContent.Seen(func(f harness.Frame) bool { return f.T == "MESSAGE_CREATE" })
	if !ok {
		t.Errorf("a session with GUILD_MESSAGES did not receive MESSAGE_CREATE")
	} else if c := str(f.Obj()["content"]); c != "" {
		t.Errorf("a session without MESSAGE_CONTENT received content %q", c)
	}
}

// CAPI-127: "Resume within 5 minutes of the disconnect and with at most 1000
// dispatches missed MUST replay every dispatch after seq in order with their
// original sequence numbers, then dispatch RESUMED."
func resume(t *T) {
	o, m := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m)
	s := t.Connect(m, harness.AllIntents)
	t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	seq := s.LastSeq()
	s.Close()
	var missed []string
	for i := range 3 {
		missed = append(missed, str(t.Send(o, g.Text, fmt.Sprint("missed ", i))["id"]))
	}
	url := str(s.Ready["resume_gateway_url"])
	if url == "" {
		url = t.Node.WSURL()
	}
	g2 := t.DialURL(strings.TrimRight(url, "/") + "/gateway?v=10&encoding=json")
	iv := t.Hello(g2)
	g2.Heartbeat(iv / 2)
	_ = g2.Send(harness.OpResume, Obj{"token": m.Token, "session_id": s.SessionID(), "seq": *seq})
	if _, err := g2.WaitDispatch(t.Timeout(), "RESUMED", nil); err != nil {
		t.Fatalf("Resume: %v (frames: %v)", err, g2.Frames())
	}
	var got []string
	want := *seq + 1
	for _, f := range dispatches(g2) {
		if f.T == "RESUMED" {
			break
		}
		if f.S == nil || *f.S != want {
			t.Errorf("replayed %s with s=%s, expected %d", f.T, seqString(f.S), want)
		}
		want++
		if f.T == "MESSAGE_CREATE" {
			got = append(got, str(f.Obj()["id"]))
		}
	}
	if strings.Join(got, ",") != strings.Join(missed, ",") {
		t.Errorf("replayed messages %v, expected %v in order", got, missed)
	}
	// The session goes on: every later dispatch continues the numbering.
	next := t.Send(o, g.Text, "after resume")
	if _, err := g2.WaitDispatch(t.Timeout(), "MESSAGE_CREATE", func(f harness.Frame) bool { return str(f.Obj()["id"]) == str(next["id"]) }); err != nil {
		t.Fatalf("after RESUMED: %v", err)
	}
	want = *seq + 1
	for _, f := range dispatches(g2) {
		if f.S == nil || *f.S != want {
			t.Errorf("after resuming from seq %d: %s has s=%s, expected %d", *seq, f.T, seqString(f.S), want)
			break
		}
		want++
	}
}

func seqString(s *int64) string {
	if s == nil {
		return "null"
	}
	return fmt.Sprint(*s)
}

// CAPI-128: "A resume that cannot be served MUST be answered with Invalid Session
// (op 9, d: false)."
func resumeInvalid(t *T) {
	u := t.NewUser()
	g := t.Dial()
	t.Hello(g)
	_ = g.Send(harness.OpResume, Obj{"token": u.Token, "session_id": "no-such-session-" + harness.RandName(), "seq": 5})
	f, err := g.WaitOp(t.Timeout(), harness.OpInvalidSession)
	if err != nil {
		t.Fatalf("Resume of an unknown session: expected op 9, got %v (frames %v)", err, g.Frames())
	}
	t.Conform("gateway_frame", f.Raw)
	if string(f.D) != "false" {
		t.Errorf("Invalid Session d = %s, expected false", f.D)
	}
}

// CAPI-132: "A client that closes the connection with 1000 or 1001 ends its session: the
// node MUST NOT resume it, and the user goes offline if it was their last session."
func cleanCloseEndsSession(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	sa := t.Connect(a, harness.AllIntents)
	t.Expect(sa.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	sb := t.Connect(b, harness.AllIntents)
	t.Expect(sb.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	seq := sb.LastSeq()
	sb.CloseWith(1000)
	t.Expect(sa.Gateway, "PRESENCE_UPDATE", func(o Obj) bool {
		return str(get(o, "user.id")) == b.ID && str(o["status"]) == "offline"
	})
	g2 := t.DialURL(t.Node.WSURL() + "/gateway?v=10&encoding=json")
	iv := t.Hello(g2)
	g2.Heartbeat(iv / 2)
	var last int64
	if seq != nil {
		last = *seq
	}
	_ = g2.Send(harness.OpResume, Obj{"token": b.Token, "session_id": sb.SessionID(), "seq": last})
	f, err := g2.WaitOp(t.Timeout(), harness.OpInvalidSession)
	if err != nil {
		t.Fatalf("Resume of a session closed with 1000: expected Invalid Session (9), got %v (frames: %v)", err, g2.Frames())
	}
	if string(f.D) != "false" {
		t.Errorf("Invalid Session d = %s, expected false", f.D)
	}
}

// CAPI-129: "Presence Update (op 3) with status online, idle, dnd or invisible MUST
// dispatch PRESENCE_UPDATE to the guilds the user is in; invisible appears to
// others as offline."
func presence(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	sb := t.Connect(b, harness.AllIntents)
	t.Expect(sb.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	sa := t.Connect(a, harness.AllIntents)
	for _, c := range []struct{ sent, seen string }{{"dnd", "dnd"}, {"idle", "idle"}, {"invisible", "offline"}, {"online", "online"}} {
		_ = sa.Send(harness.OpPresenceUpdate, Obj{"status": c.sent, "since": nil, "activities": []any{}, "afk": false})
		d := t.Expect(sb.Gateway, "PRESENCE_UPDATE", func(o Obj) bool {
			return str(get(o, "user.id")) == a.ID && str(o["status"]) == c.seen
		})
		if str(d["guild_id"]) != g.ID {
			t.Errorf("PRESENCE_UPDATE guild_id = %v, expected %s", d["guild_id"], g.ID)
		}
	}
}

// CAPI-130: "Request Guild Members (op 8) MUST be answered with GUILD_MEMBERS_CHUNK
// dispatches."
func requestMembers(t *T) {
	o, m := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m)
	s := t.Connect(o, harness.AllIntents)
	_ = s.Send(harness.OpRequestMembers, Obj{"guild_id": g.ID, "query": "", "limit": 0, "nonce": "chunk-1"})
	c := t.Expect(s.Gateway, "GUILD_MEMBERS_CHUNK", harness.Field("nonce", "chunk-1"))
	got := map[string]bool{}
	list, _ := c["members"].([]any)
	for _, x := range list {
		got[str(get(x, "user.id"))] = true
		t.Conform("member", harness.Raw(x))
	}
	if !got[o.ID] || !got[m.ID] || str(c["guild_id"]) != g.ID {
		t.Errorf("GUILD_MEMBERS_CHUNK = %s, expected both members of %s", harness.JSON(c), g.ID)
	}
	_ = s.Send(harness.OpRequestMembers, Obj{"guild_id": g.ID, "user_ids": []string{m.ID}, "limit": 0, "nonce": "chunk-2"})
	c = t.Expect(s.Gateway, "GUILD_MEMBERS_CHUNK", harness.Field("nonce", "chunk-2"))
	list, _ = c["members"].([]any)
	if len(list) != 1 || str(get(list[0], "user.id")) != m.ID {
		t.Errorf("GUILD_MEMBERS_CHUNK for user_ids [%s] = %s", m.ID, harness.JSON(c))
	}
}

// CAPI-131: "When the node shuts down it MUST send Reconnect (op 7) and close
// sessions with a resumable code (4000 or 1012)."
func shutdownReconnect(t *T) {
	u := t.NewUser()
	s := t.Connect(u, harness.AllIntents)
	if err := t.Node.Terminate(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if _, err := s.WaitOp(30*time.Second, harness.OpReconnect); err != nil {
		t.Errorf("on shutdown: expected Reconnect (op 7), got %v", err)
	}
	code, err := s.WaitClose(30 * time.Second)
	if err != nil || (code != 4000 && code != 1012) {
		t.Errorf("on shutdown: expected close 4000 or 1012, got %d (%v)", code, err)
	}
}

// expectClose sends frames on a fresh connection (after Hello, and after Identify
// if identify is set) and checks the close code.
func expectClose(t *T, what string, want int, identify *harness.User, frames ...[]byte) {
	g := t.Dial()
	iv := t.Hello(g)
	if identify != nil {
		g.Heartbeat(iv / 2)
		_ = g.Send(harness.OpIdentify, Obj{"token": identify.Token, "intents": harness.AllIntents, "properties": Obj{}})
		if _, err := g.WaitDispatch(t.Timeout(), "READY", nil); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for _, f := range frames {
		if err := g.SendRaw(f); err != nil {
			break // the node may close while we still write
		}
	}
	code, err := g.WaitClose(t.Timeout())
	if err != nil || code != want {
		t.Errorf("%s: expected close %d, got %d (%v)", what, want, code, err)
	}
}

func frame(op int, d any) []byte {
	b, _ := json.Marshal(Obj{"op": op, "d": d})
	return b
}

// CAPI-141: "[4001 when] a frame has an op the client must not send."
func closeUnknownOp(t *T) {
	u := t.NewUser()
	expectClose(t, "op 99", 4001, u, frame(99, nil))
	expectClose(t, "op 10 (server only)", 4001, u, frame(10, Obj{"heartbeat_interval": 1}))
}

// CAPI-142: "[4002 when] a frame is not valid JSON, not an object, or over 4096 bytes."
func closeDecode(t *T) {
	u := t.NewUser()
	expectClose(t, "invalid JSON", 4002, nil, []byte("{not json"))
	expectClose(t, "a JSON array", 4002, nil, []byte("[1,2,3]"))
	big := []byte(`{"op":1,"d":null,"pad":"` + strings.Repeat("x", 4200) + `"}`)
	expectClose(t, "a 4.2 KB frame", 4002, u, big)
}

// CAPI-143: "[4003 when] a payload other than Heartbeat, Identify or Resume arrives
// before Identify."
func closeNotAuthenticated(t *T) {
	expectClose(t, "Presence Update before Identify", 4003, nil,
		frame(harness.OpPresenceUpdate, Obj{"status": "online", "since": nil, "activities": []any{}, "afk": false}))
	expectClose(t, "Request Guild Members before Identify", 4003, nil,
		frame(harness.OpRequestMembers, Obj{"guild_id": "1", "query": "", "limit": 0}))
}

// CAPI-144: "[4004 when] Identify or Resume has a bad token."
func closeBadToken(t *T) {
	expectClose(t, "Identify with a bad token", 4004, nil,
		frame(harness.OpIdentify, Obj{"token": "bad-" + harness.RandName(), "intents": 0, "properties": Obj{}}))
	u := t.NewUser()
	s := t.Connect(u, harness.AllIntents)
	expectClose(t, "Resume of a real session with a bad token", 4004, nil,
		frame(harness.OpResume, Obj{"token": "bad-" + harness.RandName(), "session_id": s.SessionID(), "seq": 1}))
}

// CAPI-145: "[4005 when] a second Identify arrives."
func closeAlreadyAuthenticated(t *T) {
	u := t.NewUser()
	expectClose(t, "second Identify", 4005, u,
		frame(harness.OpIdentify, Obj{"token": u.Token, "intents": harness.AllIntents, "properties": Obj{}}))
}

// CAPI-146: "[4008 when] a client sends more than 120 frames in 60 seconds."
func closeRateLimited(t *T) {
	u := t.NewUser()
	var frames [][]byte
	for range 130 {
		frames = append(frames, frame(harness.OpHeartbeat, nil))
	}
	expectClose(t, "130 heartbeats at once", 4008, u, frames...)
}

// CAPI-147: "[4012 when] v other than 9 or 10."
func closeAPIVersion(t *T) {
	for _, v := range []string{"8", "11", "abc"} {
		g := t.DialURL(harness.GatewayURL(t.Node, "v="+v+"&encoding=json"))
		code, err := g.WaitClose(t.Timeout())
		if err != nil || code != 4012 {
			t.Errorf("v=%s: expected close 4012, got %d (%v)", v, code, err)
		}
	}
}

// CAPI-148: "[4013 when] intents not a non-negative integer."
func closeIntents(t *T) {
	u := t.NewUser()
	expectClose(t, "intents -1", 4013, nil,
		frame(harness.OpIdentify, Obj{"token": u.Token, "intents": -1, "properties": Obj{}}))
}

// CAPI-151: "A session MUST see dispatches of one channel in the order the node
// committed them."
func channelOrder(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	s := t.Connect(b, harness.AllIntents)
	var sent []string
	for i := range 8 {
		sent = append(sent, str(t.Send(a, g.Text, fmt.Sprint("order ", i))["id"]))
	}
	first := sent[0]
	t.OK(a.Client, "PATCH", "/channels/"+g.Text+"/messages/"+first, Obj{"content": "edited"}, nil)
	t.Call(a.Client, "DELETE", "/channels/"+g.Text+"/messages/"+first, nil)
	t.Expect(s.Gateway, "MESSAGE_DELETE", harness.Field("id", first))
	var seen []string
	for _, f := range dispatches(s.Gateway) {
		if str(f.Obj()["channel_id"]) != g.Text {
			continue
		}
		switch f.T {
		case "MESSAGE_CREATE":
			seen = append(seen, "c"+str(f.Obj()["id"]))
		case "MESSAGE_UPDATE":
			seen = append(seen, "u"+str(f.Obj()["id"]))
		case "MESSAGE_DELETE":
			seen = append(seen, "d"+str(f.Obj()["id"]))
		}
	}
	var want []string
	for _, id := range sent {
		want = append(want, "c"+id)
	}
	want = append(want, "u"+first, "d"+first)
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("dispatch order %v, expected %v", seen, want)
	}
}
