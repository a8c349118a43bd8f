package capi

import (
	"fmt"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var longpoll = []Test{
	{IDs: []string{"CAPI-160"}, Name: "longpoll/identify", Run: pollIdentify},
	{IDs: []string{"CAPI-161", "CAPI-162"}, Name: "longpoll/poll-and-replay", Run: pollEvents},
	{IDs: []string{"CAPI-163"}, Name: "longpoll/send-command", Run: pollCommand},
	{IDs: []string{"CAPI-164"}, Name: "longpoll/unknown-and-expired-session", Run: pollExpiry},
}

// pollFrame is a frame inside a long-poll answer.
type pollFrame struct {
	Op int    `json:"op"`
	D  Obj    `json:"d"`
	S  *int64 `json:"s"`
	T  string `json:"t"`
}

type pollAnswer struct {
	SessionID string      `json:"session_id"`
	Events    []pollFrame `json:"events"`
}

func pollStart(t *T, u *harness.User) pollAnswer {
	var a pollAnswer
	r := t.Must(t.Anon(), 200, "POST", "/gateway/poll",
		Obj{"op": 2, "d": Obj{"token": u.Token, "intents": harness.AllIntents, "properties": Obj{}}}, &a)
	t.Conform("poll_response", r.Body)
	if a.SessionID == "" {
		t.Fatalf("poll Identify answered no session_id: %s", r)
	}
	return a
}

func poll(t *T, u *harness.User, sid string, seq int64, timeout int) (pollAnswer, *harness.Response) {
	var a pollAnswer
	r := t.Must(u.Client, 200, "GET", fmt.Sprintf("/gateway/poll?session_id=%s&seq=%d&timeout=%d", sid, seq, timeout), nil, &a)
	t.Conform("poll_response", r.Body)
	return a, r
}

// pollUntil polls until a frame matches, returning every frame received.
func pollUntil(t *T, u *harness.User, sid string, seq int64, match func(pollFrame) bool) []pollFrame {
	var all []pollFrame
	deadline := time.Now().Add(t.Timeout())
	for time.Now().Before(deadline) {
		a, _ := poll(t, u, sid, seq, 2)
		for _, f := range a.Events {
			all = append(all, f)
			if f.S != nil && *f.S > seq {
				seq = *f.S
			}
			if match(f) {
				return all
			}
		}
	}
	t.Fatalf("long poll: no matching frame within %v (got %d frames)", t.Timeout(), len(all))
	return nil
}

// CAPI-160: "POST /api/v10/gateway/poll with body {"op":2,"d":{...Identify...}} ...
// answers 200 {"session_id", "events":[frames]}; the frames are the same as on the
// WebSocket (READY, GUILD_CREATE...) with the same sequence numbers."
func pollIdentify(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	a := pollStart(t, u)
	frames := a.Events
	if len(frames) == 0 || frames[0].T != "READY" {
		// READY may come with the first poll instead.
		frames = append(frames, pollUntil(t, u, a.SessionID, 0, func(f pollFrame) bool { return f.T == "READY" })...)
	}
	var ready *pollFrame
	for i, f := range frames {
		if f.S == nil || *f.S != int64(i+1) {
			t.Errorf("frame %d (%s) has s=%s, expected %d", i+1, f.T, seqString(f.S), i+1)
		}
		if f.T == "READY" && ready == nil {
			ready = &frames[i]
		}
	}
	if ready == nil {
		t.Fatalf("no READY among %d frames", len(frames))
	}
	t.Conform("ready", harness.Raw(ready.D))
	if str(ready.D["session_id"]) != a.SessionID {
		t.Errorf("READY session_id %v differs from the poll session_id %s", ready.D["session_id"], a.SessionID)
	}
	var last int64
	if n := len(frames); n > 0 && frames[n-1].S != nil {
		last = *frames[n-1].S
	}
	found := false
	for _, f := range frames {
		found = found || (f.T == "GUILD_CREATE" && str(f.D["id"]) == g.ID)
	}
	if !found {
		pollUntil(t, u, a.SessionID, last, func(f pollFrame) bool { return f.T == "GUILD_CREATE" && str(f.D["id"]) == g.ID })
	}
}

// CAPI-161: "GET /api/v10/gateway/poll?session_id=S&seq=N waits up to timeout
// seconds and answers 200 {"events":[frames with s > N]} as soon as there is at
// least one, or an empty list when the time is up." CAPI-162: "Sequence numbers are
// continuous across polls; asking with an older seq replays from the resume buffer."
func pollEvents(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	a := pollStart(t, u)
	var seq int64
	for _, f := range a.Events {
		if f.S != nil {
			seq = max(seq, *f.S)
		}
	}
	// Drain whatever start-up frames remain, then an idle poll must come back empty.
	for i := 0; i < 5; i++ {
		start := time.Now()
		b, r := poll(t, u, a.SessionID, seq, 1)
		if len(b.Events) == 0 {
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("idle poll with timeout=1 answered after %v", el.Round(time.Second))
			}
			break
		}
		for _, f := range b.Events {
			if f.S == nil || *f.S != seq+1 {
				t.Errorf("poll after seq %d returned s=%s (%s)", seq, seqString(f.S), r)
			}
			if f.S != nil {
				seq = *f.S
			}
		}
	}
	before := seq
	m := t.Send(u, g.Text, "polled")
	got := pollUntil(t, u, a.SessionID, seq, func(f pollFrame) bool { return f.T == "MESSAGE_CREATE" && str(f.D["id"]) == str(m["id"]) })
	for i, f := range got {
		if f.S == nil || *f.S != before+int64(i)+1 {
			t.Errorf("frame %d after seq %d has s=%s, expected %d", i, before, seqString(f.S), before+int64(i)+1)
		}
	}
	// Replay: asking again with the older seq returns the same frames.
	again, _ := poll(t, u, a.SessionID, before, 1)
	if len(again.Events) == 0 || again.Events[0].S == nil || *again.Events[0].S != before+1 {
		t.Errorf("poll with an older seq %d did not replay from %d: %s", before, before+1, harness.JSON(again))
	}
}

// CAPI-163: "POST /api/v10/gateway/poll/{session_id} with a frame (op 1, 3, 4 or 8)
// sends a command on the session."
func pollCommand(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	a := pollStart(t, u)
	r := t.Call(u.Client, "POST", "/gateway/poll/"+a.SessionID, Obj{"op": 8, "d": Obj{"guild_id": g.ID, "query": "", "limit": 0, "nonce": "lp"}})
	if r.Status/100 != 2 {
		t.Fatalf("POST command: expected 2xx, got %s", r)
	}
	pollUntil(t, u, a.SessionID, 0, func(f pollFrame) bool { return f.T == "GUILD_MEMBERS_CHUNK" && str(f.D["nonce"]) == "lp" })
	if r := t.Call(u.Client, "POST", "/gateway/poll/"+a.SessionID, Obj{"op": 1, "d": nil}); r.Status/100 != 2 {
		t.Errorf("POST heartbeat: expected 2xx, got %s", r)
	}
}

// CAPI-164: "A long-poll session with no poll for 60 seconds is closed, and an
// unknown or expired session answers 404."
func pollExpiry(t *T) {
	u := t.NewUser()
	if r := t.Call(u.Client, "GET", "/gateway/poll?session_id=unknown-"+harness.RandName()+"&seq=0&timeout=1", nil); r.Status != 404 {
		t.Errorf("unknown session: expected 404, got %s", r)
	}
	a := pollStart(t, u)
	// The rule is about 60 s of silence, so the test must stay silent that long;
	// any probe earlier would itself count as a poll.
	select {
	case <-time.After(65 * time.Second):
	case <-t.Ctx.Done():
		t.Fatalf("%v", t.Ctx.Err())
	}
	if r := t.Call(u.Client, "GET", "/gateway/poll?session_id="+a.SessionID+"&seq=0&timeout=1", nil); r.Status != 404 {
		t.Errorf("session after 65 s without a poll: expected 404, got %s", r)
	}
}
