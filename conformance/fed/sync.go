package fed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// store is what a fake member node serves over /hearth/sync/1.0.0: its own
// events by seq. It records the requests it gets.
type store struct {
	m *fedpeer.Member

	mu     sync.Mutex
	events map[uint64][]byte
	reqs   []fedpeer.SyncRequest
}

// serve makes m answer sync requests from its store.
func serve(m *fedpeer.Member) *store {
	s := &store{m: m, events: map[uint64][]byte{}}
	m.Handle(fedpeer.ProtoSync, func(_ peer.ID, frame []byte) any {
		var req fedpeer.SyncRequest
		if err := fedpeer.Unmarshal(frame, &req); err != nil {
			return fedpeer.SyncResponse{Status: fedpeer.StatusBadRequest, Error: err.Error()}
		}
		if !bytes.Equal(req.Guild, m.Guild) {
			return fedpeer.SyncResponse{Status: fedpeer.StatusForbidden, Error: "not a guild of this node"}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.reqs = append(s.reqs, req)
		switch req.Op {
		case fedpeer.OpHeads:
			var top uint64
			for seq := range s.events {
				top = max(top, seq)
			}
			resp := fedpeer.SyncResponse{StateHead: m.StateHead()}
			if top > 0 {
				resp.Vector = []fedpeer.Head{{Origin: m.Signer.Origin, Seq: top}}
			}
			return resp
		case fedpeer.OpFetch:
			var resp fedpeer.SyncResponse
			for _, r := range req.Ranges {
				if !bytes.Equal(r.Origin, m.Signer.Origin) {
					continue
				}
				for seq := r.From; seq <= r.To && seq < r.From+1000; seq++ {
					if raw, ok := s.events[seq]; ok {
						resp.Events = append(resp.Events, raw)
					}
				}
			}
			return resp
		}
		return fedpeer.SyncResponse{Status: fedpeer.StatusNotFound, Error: "no history here"}
	})
	return s
}

func (s *store) put(seq uint64, raw []byte) {
	s.mu.Lock()
	s.events[seq] = raw
	s.mu.Unlock()
}

// fetched reports whether the node asked for seq of the fake's origin.
func (s *store) fetched(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.reqs {
		for _, rg := range r.Ranges {
			if bytes.Equal(rg.Origin, s.m.Signer.Origin) && rg.From <= seq && seq <= rg.To {
				return true
			}
		}
	}
	return false
}

// fetchBound bounds the wait for a fetch the spec requires without a deadline:
// a node may queue sync work behind slow peers, and exchanges heads at least
// every 30 s [FED-035].
const fetchBound = 90 * time.Second

func waitFetch(t *T, what string, cond func() bool) {
	if err := harness.Eventually(t.Ctx, fetchBound, func() error {
		if !cond() {
			return errors.New("no such fetch yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// FED-036: "A node that accepts a persistent event with seq greater than its
// vector entry plus one MUST fetch the missing range from the delivering peer."
// FED-037: fetched events go through the same validation. FED-016: an event
// delivered by gossip and by sync is shown once.
func gapFetch(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	st := serve(m)
	c1, c2, c3 := "gap one "+harness.RandName(), "gap two "+harness.RandName(), "gap three "+harness.RandName()
	r1, _, s1 := m.Unkept(w.Chan, c1)
	r2, _, s2 := m.Unkept(w.Chan, c2)
	r3, _, s3 := m.Unkept(w.Chan, c3)
	// The next seq is served with a broken signature: fetched events are
	// validated.
	bad := "gap forged " + harness.RandName()
	env := m.Envelope("message.create", w.Chan)
	forged := sign(t, m, env, fedpeer.Body(0, bad, 1, ""))
	forged[len(forged)-1] ^= 1
	r5, _, s5 := m.Unkept(w.Chan, "gap five "+harness.RandName())
	for seq, raw := range map[uint64][]byte{s1: r1, s2: r2, s3: r3, env.Seq: forged, s5: r5} {
		st.put(seq, raw)
	}
	publish(t, m, r1)
	publish(t, m, r3)
	w.shows(t, c3)
	waitFetch(t, "the node fetches the missing seq from the delivering member node", func() bool { return st.fetched(s2) })
	w.shows(t, c2)
	if n := w.count(t, c1); n != 1 {
		t.Errorf("FED-016: a message delivered by gossip and offered again by sync shows %d times", n)
	}
	if w.count(t, bad) > 0 {
		t.Errorf("FED-037: a fetched event with a broken signature was accepted")
	}
}

// FED-024: "A node that receives, in a sync or history response, an event that is
// invalid regardless of guild state ... MUST lower the serving peer's score." The
// member node serves four events with broken signatures for a gap; it must then
// be heard less (graylisted).
func badSyncPenalised(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	st := serve(m)
	var forged [][]byte
	first := m.Seq() + 1
	for range 6 {
		env := m.Envelope("message.create", w.Chan)
		raw := sign(t, m, env, fedpeer.Body(0, "forged "+harness.RandName(), 1, ""))
		raw[len(raw)-1] ^= 1
		st.put(env.Seq, raw)
		forged = append(forged, raw)
	}
	live := "live " + harness.RandName()
	raw, _ := m.Message(w.Chan, live)
	publish(t, m, raw)
	w.shows(t, live)
	waitFetch(t, "the node fetches the gap from the member node", func() bool { return st.fetched(first) })
	if heardAfter(t, w, m, false) {
		t.Errorf("a peer that served %d events with broken signatures is still heard", len(forged))
	}
}

// FED-030: per guild and origin, the highest contiguous seq held. FED-031: heads
// returns the vector and the state head. EVT-080: ephemeral events are not
// stored or served by sync.
func heads(t *T) {
	w := newWorld(t)
	m := w.M
	for i := range 2 {
		c := fmt.Sprintf("heads %d %s", i, harness.RandName())
		raw, _ := m.Message(w.Chan, c)
		publish(t, m, raw)
		w.shows(t, c)
	}
	typing := sign(t, m, m.Envelope("typing.batch", nil), fedpeer.Body(0, []any{fedpeer.Body(0, m.Name, 1, w.Chan)}))
	c, cancel := ctx(t)
	defer cancel()
	if err := m.PublishEphemeral(c, typing); err != nil {
		t.Fatalf("%v", err)
	}
	w.sentinel(t, m) // seq 3
	resp, err := m.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpHeads})
	if err != nil || resp.Status != fedpeer.StatusOK {
		t.Fatalf("heads: %v (status %d %q)", err, resp.Status, resp.Error)
	}
	vec := map[string]uint64{}
	for _, h := range resp.Vector {
		vec[string(h.Origin)] = h.Seq
	}
	if got := vec[string(m.Signer.Origin)]; got != m.Seq() {
		t.Errorf("FED-030/FED-031/EVT-080: the vector holds seq %d for the member node, which sent %d persistent events (and one typing batch)", got, m.Seq())
	}
	if vec[string(m.Home)] < uint64(len(m.State)) {
		t.Errorf("FED-030: the vector holds seq %d for the home node, which signed at least %d events", vec[string(m.Home)], len(m.State))
	}
	if resp.StateHead < m.StateHead() {
		t.Errorf("FED-031: heads answers state head %d, the join showed %d", resp.StateHead, m.StateHead())
	}
	f, err := m.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpFetch, Ranges: []fedpeer.Range{{Origin: m.Signer.Origin, From: 1, To: 3}, {Origin: []byte(m.Home), From: 1, To: 2}}})
	if err != nil || f.Status != fedpeer.StatusOK {
		t.Fatalf("fetch: %v (status %d)", err, f.Status)
	}
	var order []string
	for _, raw := range f.Events {
		ev, err := fedpeer.DecodeEvent(raw)
		if err != nil {
			t.Fatalf("fetch returned an undecodable event: %v", err)
		}
		if ev.Env.Kind == "typing.batch" || ev.Env.Kind == "presence.batch" {
			t.Errorf("EVT-080: fetch served an ephemeral event")
		}
		order = append(order, fmt.Sprintf("%x/%d", ev.Env.Origin, ev.Env.Seq))
	}
	if len(f.Events) != 5 {
		t.Errorf("FED-032: fetch of 3 member events and 2 home events returned %d: %v", len(f.Events), order)
	}
	// Ordered by origin, then seq: each origin's events contiguous and rising.
	lastSeq := map[string]uint64{}
	prevOrigin := ""
	for _, raw := range f.Events {
		ev, _ := fedpeer.DecodeEvent(raw)
		o := string(ev.Env.Origin)
		if last, seen := lastSeq[o]; seen && (o != prevOrigin || ev.Env.Seq <= last) {
			t.Errorf("FED-032: fetch returned events out of (origin, seq) order: %v", order)
			break
		}
		lastSeq[o], prevOrigin = ev.Env.Seq, o
	}
}

// FED-033: "history MUST return up to limit (at most 100) events of the channel
// with ts below before-ts, newest first." EVT-033: events in a channel are ordered
// by (ts, event ID).
func history(t *T) {
	w := newWorld(t)
	m := w.M
	base := time.Now() // after the join: membership is checked at ts [EVT-076]
	var ts []uint64
	var contents []string
	for i := range 3 {
		env := m.Envelope("message.create", w.Chan)
		env.TS = max(env.TS, fedpeer.TS(base, 0)) + uint64(i)<<16 // i ms apart
		c := fmt.Sprintf("history %d %s", i, harness.RandName())
		publish(t, m, sign(t, m, env, fedpeer.Body(0, c, 1, "")))
		ts = append(ts, env.TS)
		contents = append(contents, c)
	}
	for _, c := range contents {
		w.shows(t, c)
	}
	c, cancel := ctx(t)
	defer cancel()
	get := func(before, limit uint64) []string {
		resp, err := m.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpHistory, Channel: w.Chan, Before: before, Limit: limit})
		if err != nil || resp.Status != fedpeer.StatusOK {
			t.Fatalf("history: %v (status %d %q)", err, resp.Status, resp.Error)
		}
		var out []string
		for _, raw := range resp.Events {
			ev, err := fedpeer.DecodeEvent(raw)
			if err != nil {
				t.Fatalf("history returned an undecodable event: %v", err)
			}
			out = append(out, bodyContent(ev))
		}
		return out
	}
	if got := get(ts[2]+1, 2); fmt.Sprint(got) != fmt.Sprint([]string{contents[2], contents[1]}) {
		t.Errorf("history before the third message's ts+1, limit 2: got %q, expected the third then the second", got)
	}
	if got := get(ts[2], 10); len(got) < 2 || got[0] != contents[1] || got[1] != contents[0] {
		t.Errorf("history before the third message's ts: got %q, expected the second then the first (newest first, ts strictly below)", got)
	}
}

// FED-039: a node whose members have all left MAY fetch the home's state events
// but MUST NOT be served other events or history. FED-043: the home node answers
// a mod-request with the ID of the state event it issued, after publishing it.
// FED-041/FED-042: the actor is (stream peer, actor-name), and a user may always
// leave. EVT-076: membership is checked at the event's ts.
func leaveAndAfter(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	observer := w.join(t, "")
	c, cancel := ctx(t)
	defer cancel()
	resp, err := m.Mod(c, fedpeer.ModRequest{Kind: "member.leave", Body: fedpeer.Body(0, fedpeer.User{Node: m.Signer.Origin, Name: m.Name}), Actor: m.Name})
	if err != nil || resp.Status != fedpeer.StatusOK || len(resp.Event) != 34 {
		t.Fatalf("FED-042/FED-043: a member's own leave: %v (status %d %q, event %x)", err, resp.Status, resp.Error, resp.Event)
	}
	leave, err := observer.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return bytes.Equal(ev.ID, resp.Event) })
	if err != nil {
		t.Fatalf("FED-043: the issued member.leave %x never reached another member node: %v", resp.Event, err)
	}
	// EVT-076: an event whose ts falls within the membership passes: one
	// signed now, dated just before the leave.
	early := m.Envelope("message.create", w.Chan)
	early.TS = leave.Env.TS - 1
	if joined := m.State[len(m.State)-1].Env.TS; early.TS <= joined {
		t.Fatalf("the leave (ts %d) follows the join (ts %d) too closely to date an event between them", leave.Env.TS, joined)
	}
	earlyContent := "before leaving " + harness.RandName()
	publish(t, m, sign(t, m, early, fedpeer.Body(0, earlyContent, 1, "")))
	w.sentinel(t, observer)
	w.shows(t, earlyContent)

	h, err := m.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpHistory, Channel: w.Chan, Limit: 10})
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	if h.Status != fedpeer.StatusForbidden || len(h.Events) > 0 {
		t.Errorf("FED-039: a former member node asked for history: status %d with %d events, expected status 2", h.Status, len(h.Events))
	}
	f, err := m.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpFetch, Ranges: []fedpeer.Range{{Origin: []byte(m.Home), From: 1, To: 1000}, {Origin: observer.Signer.Origin, From: 1, To: 10}}})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	for _, raw := range f.Events {
		ev, err := fedpeer.DecodeEvent(raw)
		if err != nil {
			continue
		}
		if !bytes.Equal(ev.Env.Origin, []byte(m.Home)) || ev.Env.Kind == "message.create" || ev.Env.Kind == "message.edit" {
			t.Errorf("FED-039: a former member node was served a %s", ev.Env.Kind)
		}
	}
}

// FED-042: the home node checks the actor's permission. FED-044: it refuses
// mod-requests for guild.create, member.join and non-state kinds.
func modChecks(t *T) {
	w := newWorld(t)
	m := w.M
	c, cancel := ctx(t)
	defer cancel()
	owner := fedpeer.User{Node: []byte(m.Home), Name: w.Owner.Name}
	cases := []struct {
		id, why string
		req     fedpeer.ModRequest
		ok      func(uint64) bool
	}{
		{"FED-042", "channel.create by a member without MANAGE_CHANNELS", fedpeer.ModRequest{Kind: "channel.create", Body: fedpeer.Body(0, "nope", 1, 0, 2, "", 3, 5), Actor: m.Name}, is(2)},
		{"FED-042", "member.leave of the owner (a kick) without KICK_MEMBERS", fedpeer.ModRequest{Kind: "member.leave", Body: fedpeer.Body(0, owner), Actor: m.Name}, is(2)},
		{"FED-042", "ban.add of the owner without BAN_MEMBERS", fedpeer.ModRequest{Kind: "ban.add", Body: fedpeer.Body(0, owner, 1, ""), Actor: m.Name}, is(2)},
		{"FED-041", "guild.update by a user of the fake node named like the owner", fedpeer.ModRequest{Kind: "guild.update", Body: fedpeer.Body(0, "renamed"), Actor: w.Owner.Name}, is(2)},
		{"FED-044", "guild.create", fedpeer.ModRequest{Kind: "guild.create", Body: fedpeer.Body(0, "g", 1, owner, 2, ""), Actor: m.Name}, is(1, 2)},
		{"FED-044", "member.join", fedpeer.ModRequest{Kind: "member.join", Body: fedpeer.Body(0, fedpeer.User{Node: m.Signer.Origin, Name: "other"}, 1, "", 2, [][]byte{}, 3, "x"), Actor: m.Name}, is(1, 2)},
		{"FED-044", "message.create", fedpeer.ModRequest{Kind: "message.create", Channel: w.Chan, Body: fedpeer.Body(0, "hi", 1, ""), Actor: m.Name}, is(1, 2)},
	}
	for _, tc := range cases {
		resp, err := m.Mod(c, tc.req)
		if err != nil {
			t.Errorf("%s: %s: %v", tc.id, tc.why, err)
			continue
		}
		if !tc.ok(resp.Status) {
			t.Errorf("%s: %s: status %d (%q)", tc.id, tc.why, resp.Status, resp.Error)
		}
	}
	var raw harness.Obj
	t.Must(w.Owner.Client, 200, "GET", "/guilds/"+w.G.ID, nil, &raw)
	if harness.Str(raw["name"]) == "renamed" {
		t.Errorf("FED-041: a remote actor named like the owner renamed the guild")
	}
}

func is(want ...uint64) func(uint64) bool {
	return func(s uint64) bool {
		for _, w := range want {
			if s == w {
				return true
			}
		}
		return false
	}
}

// FED-051: the home node refuses a join for a banned user with status 2.
// EVT-061: member.join never names a banned user.
func bannedJoin(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	uid := remoteUser(t, w, m)
	if r := t.Call(w.Owner.Client, "PUT", "/guilds/"+w.G.ID+"/bans/"+uid, harness.Obj{}); r.Status != 204 && r.Status != 200 {
		t.Fatalf("ban: %s", r)
	}
	inv, _ := fedpeer.ParseInvite(w.Code)
	c, cancel := ctx(t)
	defer cancel()
	if _, err := m.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "ban.add" }); err != nil {
		t.Fatalf("the ban was never issued as ban.add: %v", err)
	}
	frame, err := m.Request(c, m.Home, fedpeer.ProtoJoin, fedpeer.JoinRequest{Guild: inv.Guild, Code: inv.Code, Name: m.Name, NodeName: m.NodeName, Addrs: m.AddrBytes()})
	if err != nil {
		t.Fatalf("join again: %v", err)
	}
	var resp fedpeer.JoinResponse
	if err := fedpeer.Unmarshal(frame, &resp); err != nil {
		t.Fatalf("%v", err)
	}
	if resp.Status != fedpeer.StatusForbidden {
		t.Errorf("FED-051: a banned user joining again: status %d (%q), expected 2", resp.Status, resp.Error)
	}
	h, err := w.M.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpFetch, Ranges: []fedpeer.Range{{Origin: []byte(m.Home), From: 1, To: 1000}}})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	banned := false
	for _, raw := range h.Events {
		ev, err := fedpeer.DecodeEvent(raw)
		if err != nil {
			continue
		}
		var b struct {
			User fedpeer.User `cbor:"0,keyasint"`
		}
		_ = fedpeer.Unmarshal(ev.Env.Body, &b)
		mine := bytes.Equal(b.User.Node, m.Signer.Origin) && b.User.Name == m.Name
		if mine && ev.Env.Kind == "ban.add" {
			banned = true
		}
		if mine && banned && ev.Env.Kind == "member.join" {
			t.Errorf("EVT-061: the home node issued a member.join for a banned user")
		}
	}
	if !banned {
		t.Errorf("the ban of the remote user was not issued as ban.add")
	}
}

// FED-018: "A node MUST limit the rate of live events per author (the reference
// node allows 10 per second with a burst of 50) and MUST reject events beyond it."
// A member node sends 150 messages as fast as it can; the node may keep at most
// a burst plus what the rate allows over the time they took.
func authorRate(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	c, cancel := ctx(t)
	defer cancel()
	prefix := "flood " + harness.RandName() + " "
	start := time.Now()
	for i := range 150 {
		// Not served by sync: the limit is on the live path.
		raw, _, _ := m.Unkept(w.Chan, fmt.Sprintf("%s%d", prefix, i))
		if err := m.Publish(c, raw); err != nil {
			t.Fatalf("%v", err)
		}
	}
	elapsed := time.Since(start)
	w.sentinel(t, w.join(t, ""))
	var n int
	t.Eventually("the flood settles", func() error {
		var msgs []harness.Obj
		r := t.Call(w.Owner.Client, "GET", "/channels/"+w.G.Text+"/messages?limit=100", nil)
		if r.Status != 200 {
			return fmt.Errorf("%s", r) // a 429 is waited out
		}
		if err := r.JSON(&msgs); err != nil {
			return err
		}
		n = 0
		for _, mm := range msgs {
			if s := harness.Str(mm["content"]); len(s) > len(prefix) && s[:len(prefix)] == prefix {
				n++
			}
		}
		return nil
	})
	// Rate limiting starts from a full bucket: burst 50 plus 10/s of elapsed
	// time (and the second it took to validate), with one of slack.
	limit := 50 + int(10*(elapsed.Seconds()+1)) + 1
	if n >= 100 || n > limit {
		t.Errorf("the node accepted %d of 150 messages one author sent in %v (at most %d allowed by 10/s with a burst of 50)", n, elapsed.Round(time.Millisecond), limit)
	}
}

// FED-022: "A node SHOULD bound each stream with a deadline of 30 s." A stream
// opened and left silent must be reset by the node within a bound.
func streamDeadline(t *T) {
	p, id := dial(t)
	c, cancel := ctx(t)
	defer cancel()
	s, err := p.Host.NewStream(c, id, fedpeer.ProtoSync)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(45 * time.Second))
	_, rerr := s.Read(make([]byte, 1)) // the request is never written
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Errorf("a stream left silent was still open after 45 s")
	}
}

// FED-071: a node SHOULD limit concurrent inbound streams per protocol and peer
// to 8, resetting streams beyond the limit. Twelve silent sync streams from one
// peer: at least four must end long before the 30 s stream deadline.
func streamLimit(t *T) {
	p, id := dial(t)
	c, cancel := ctx(t)
	defer cancel()
	ended := make(chan bool, 12)
	for range 12 {
		s, err := p.Host.NewStream(c, id, fedpeer.ProtoSync)
		if err != nil {
			ended <- true // refused outright
			continue
		}
		defer s.Close()
		go func() { // ends by the read deadline at the latest
			_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := s.Read(make([]byte, 1))
			ended <- !errors.Is(err, os.ErrDeadlineExceeded)
		}()
	}
	n := 0
	for range 12 {
		if <-ended {
			n++
		}
	}
	if n < 4 {
		t.Errorf("%d of 12 concurrent silent sync streams from one peer were reset within 10 s, expected at least 4", n)
	}
}
