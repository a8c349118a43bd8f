package fed

import (
	"bytes"
	"time"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// names lists the names in a presence or typing batch's entries.
func names(ev *fedpeer.Event) map[string]uint64 {
	var b struct {
		Entries []struct {
			Name   string `cbor:"0,keyasint"`
			Status any    `cbor:"1,keyasint"`
		} `cbor:"0,keyasint"`
	}
	out := map[string]uint64{}
	if fedpeer.Unmarshal(ev.Env.Body, &b) == nil {
		for _, e := range b.Entries {
			st, _ := e.Status.(uint64)
			out[e.Name] = st
		}
	}
	return out
}

// ttl is field 1 of a presence batch.
func ttl(ev *fedpeer.Event) uint64 {
	var b struct {
		TTL uint64 `cbor:"1,keyasint"`
	}
	_ = fedpeer.Unmarshal(ev.Env.Body, &b)
	return b.TTL
}

// FED-061: "A node MUST republish the full presence of its online users in a guild
// at least every 10 s with ttl-ms of 30,000." EVT-015: ephemeral kinds carry seq 0.
// EVT-085: the author of a batch names the origin node. FED-060: at most one
// presence.batch and one typing.batch per guild per 500 ms.
func nodePresence(t *T) {
	w := newWorld(t)
	m := w.M
	_ = t.Connect(w.Owner, harness.AllIntents) // the owner comes online
	c, cancel := ctxFor(t, 25*time.Second)
	defer cancel()
	// Typing: five notices within a fraction of a second, counted over the
	// seconds the presence checks below take.
	start := time.Now()
	for range 5 {
		if r := t.Call(w.Owner.Client, "POST", "/channels/"+w.G.Text+"/typing", nil); r.Status/100 != 2 {
			t.Fatalf("typing: %s", r)
		}
	}
	online := func(ev *fedpeer.Event) bool { st, ok := names(ev)[w.Owner.Name]; return ok && st != 0 }
	first, err := m.WaitEvent(c, true, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "presence.batch" && online(ev) })
	if err != nil {
		t.Fatalf("no presence.batch naming the online owner reached the member node: %v", err)
	}
	checkNodeEvent(t, first)
	if first.Env.Seq != 0 {
		t.Errorf("EVT-015: the node's presence.batch carries seq %d", first.Env.Seq)
	}
	if !bytes.Equal(first.Env.Author.Node, first.Env.Origin) || !bytes.Equal(first.Env.Origin, []byte(m.Home)) {
		t.Errorf("EVT-085: the batch's author node is not its origin, the home node")
	}
	if got := ttl(first); got != 30000 {
		t.Errorf("FED-061: presence ttl-ms %d, expected 30,000", got)
	}
	seen := time.Now()
	if _, err := m.WaitEvent(c, true, func(ev *fedpeer.Event) bool {
		return ev.Env.Kind == "presence.batch" && ev.Env.TS > first.Env.TS && online(ev)
	}); err != nil {
		t.Errorf("FED-061: the owner's presence was not republished within %v of the first batch: %v", time.Since(seen).Round(time.Second), err)
	}

	typing, err := m.WaitEvent(c, true, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "typing.batch" })
	if err != nil {
		t.Fatalf("no typing.batch reached the member node: %v", err)
	}
	if typing.Env.Seq != 0 {
		t.Errorf("EVT-015: the node's typing.batch carries seq %d", typing.Env.Seq)
	}
	window := time.Since(start)
	batches := map[string]int{}
	for _, ev := range m.Events(true) {
		if bytes.Equal(ev.Env.Origin, []byte(m.Home)) {
			batches[ev.Env.Kind]++
		}
	}
	for kind, n := range batches {
		if limit := int(window/(500*time.Millisecond)) + 2; n > limit {
			t.Errorf("FED-060: %d %s events in %v (at most one per 500 ms)", n, kind, window.Round(time.Millisecond))
		}
	}
}

// EVT-082: "a receiver MUST treat a presence entry as offline when ttl-ms has
// passed since it received the batch without a newer batch naming the user."
func presenceExpires(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	uid := remoteUser(t, w, m)
	s := t.Connect(w.Owner, harness.AllIntents)
	c, cancel := ctx(t)
	defer cancel()
	batch := sign(t, m, m.Envelope("presence.batch", nil), fedpeer.Body(0, []any{fedpeer.Body(0, m.Name, 1, 1)}, 1, 1500))
	if err := m.PublishEphemeral(c, batch); err != nil {
		t.Fatalf("%v", err)
	}
	isUser := func(d harness.Obj) bool { return harness.Str(harness.Get(d, "user.id")) == uid }
	t.Expect(s.Gateway, "PRESENCE_UPDATE", func(d harness.Obj) bool { return isUser(d) && harness.Str(d["status"]) == "online" })
	t.Expect(s.Gateway, "PRESENCE_UPDATE", func(d harness.Obj) bool { return isUser(d) && harness.Str(d["status"]) == "offline" })
}

// EVT-081/FED-062: every entry of a batch MUST name a member whose home node is
// the origin; a receiver MUST reject a batch naming others. EVT-084: a receiver
// MUST ignore batches more than 60,000 ms old. A second member's fresh typing
// notice is the barrier: the refused batches must have left no trace before it.
func ephemeralRefused(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	old := w.join(t, "")
	barrier := w.join(t, "")
	mid, oldID, barrierID := remoteUser(t, w, m), remoteUser(t, w, old), remoteUser(t, w, barrier)
	s := t.Connect(w.Owner, harness.AllIntents)
	c, cancel := ctx(t)
	defer cancel()
	typing := func(mm *fedpeer.Member, name string, at time.Time) []byte {
		env := mm.Envelope("typing.batch", nil)
		if !at.IsZero() {
			env.TS = fedpeer.TS(at, 0)
		}
		return sign(t, mm, env, fedpeer.Body(0, []any{fedpeer.Body(0, name, 1, w.Chan)}))
	}
	for _, p := range []struct {
		m   *fedpeer.Member
		raw []byte
	}{
		{m, typing(m, m.Name+"x", time.Time{})},                      // not a member of the guild
		{m, typing(m, w.Owner.Name, time.Time{})},                    // a user of another node
		{old, typing(old, old.Name, time.Now().Add(-2*time.Minute))}, // too old
		{barrier, typing(barrier, barrier.Name, time.Time{})},
	} {
		if err := p.m.PublishEphemeral(c, p.raw); err != nil {
			t.Fatalf("%v", err)
		}
	}
	t.Expect(s.Gateway, "TYPING_START", func(d harness.Obj) bool { return harness.Str(d["user_id"]) == barrierID })
	if f, ok := s.Seen(func(f harness.Frame) bool {
		if f.T != "TYPING_START" {
			return false
		}
		u := harness.Str(f.Obj()["user_id"])
		return u != barrierID && u != ""
	}); ok {
		who := map[string]string{mid: "the member node's user", oldID: "a batch 2 minutes old", w.Owner.ID: "the owner (a user of another node)"}[harness.Str(f.Obj()["user_id"])]
		t.Errorf("a refused typing batch was relayed (%s): %s", who, f)
	}
}

// FED-019: "A node MUST NOT accept (and so forward) a persistent event before it is
// durably stored." Once another member node receives an event forwarded by the
// node, the node is killed (SIGKILL) and restarted: the event must be there.
func durableBeforeForward(t *T) {
	w := newWorld(t)
	sender := w.M
	watcher := w.join(t, "")
	content := "durable " + harness.RandName()
	// Not served by sync: an event the node fetched first would not be
	// forwarded by gossip.
	raw, id, _ := sender.Unkept(w.Chan, content)
	publish(t, sender, raw)
	c, cancel := ctx(t)
	defer cancel()
	w.shows(t, content)
	if _, err := watcher.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return bytes.Equal(ev.ID, id) }); err != nil {
		t.Fatalf("the node never forwarded the event to another member node: %v (the watcher got %d messages; control: %s)", err, len(watcher.Gossip.Received()), watcher.Gossip.Control())
	}
	if err := t.Node.Kill(); err != nil {
		t.Fatalf("%v", err)
	}
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	w.shows(t, content)
}

// FED-070: "Pubsub messages MUST NOT exceed 131,072 bytes." A larger one from a
// member node must not be taken in (a receiver may drop the stream that carried
// it), and the node keeps working for the other members; every pubsub message
// the node sent stays within the limit.
func oversizePubsub(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	content := "oversize " + harness.RandName()
	raw, _, _ := m.Unkept(w.Chan, content)
	padded := append(raw, make([]byte, fedpeer.MaxPubsub+1024-len(raw))...)
	publish(t, m, padded)
	w.sentinel(t, w.join(t, ""))
	if w.count(t, content) > 0 {
		t.Errorf("a pubsub message of %d bytes was taken in", len(padded))
	}
	for _, r := range w.M.Gossip.Received() {
		if len(r.Msg.Data) > fedpeer.MaxPubsub {
			t.Errorf("the node sent a pubsub message of %d bytes", len(r.Msg.Data))
		}
	}
}
