package capi

import (
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// CAPI-099: "A message that a node answered with success MUST survive an
// immediate crash of the node (kill -9)."
func surviveKill(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	var ids []string
	for _, c := range []string{"durable one", "durable two", "durable three"} {
		ids = append(ids, str(t.Send(u, g.Text, c)["id"]))
	}
	if err := t.Node.Kill(); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("restart after kill -9: %v", err)
	}
	for i, id := range ids {
		var m Obj
		r := t.Call(u.Client, "GET", "/channels/"+g.Text+"/messages/"+id, nil)
		if r.Status != 200 || r.JSON(&m) != nil {
			t.Errorf("message %d after kill -9: expected 200, got %s", i, r)
		}
	}
}

// CAPI-100: "A node MUST keep, per user and channel, the last acknowledged message
// ID and the number of mentions of the user since then." CAPI-101: "READY MUST
// contain read_state {"entries":[{"id", "last_message_id", "mention_count"}],
// "partial": false, "version"}"; a mention increments the count, an ack sets it to
// zero and dispatches MESSAGE_ACK to the user's other sessions.
func readStates(t *T) {
	o, m := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m)
	t.Send(o, g.Text, "no mention")
	t.Send(o, g.Text, "hey <@"+m.ID+">")
	last := str(t.Send(o, g.Text, "again <@"+m.ID+">")["id"])

	entry := func(s *harness.Session) Obj {
		t.Conform("read_state", harness.Raw(s.Ready["read_state"]))
		list, _ := get(s.Ready, "read_state.entries").([]any)
		for _, e := range list {
			if str(get(e, "id")) == g.Text {
				return e.(Obj)
			}
		}
		return nil
	}
	s1 := t.Connect(m, harness.AllIntents)
	if e := entry(s1); e == nil || num(e["mention_count"]) != 2 {
		t.Errorf("READY read_state for the channel after two mentions: %s, expected mention_count 2", harness.JSON(e))
	}
	s2 := t.Connect(m, harness.AllIntents)
	var ack Obj
	r := t.Must(m.Client, 200, "POST", "/channels/"+g.Text+"/messages/"+last+"/ack", Obj{}, &ack)
	if v, ok := ack["token"]; !ok || v != nil {
		t.Errorf("ack answer: expected {\"token\":null}, got %s", r)
	}
	for _, s := range []*harness.Session{s1, s2} {
		t.Expect(s.Gateway, "MESSAGE_ACK", harness.Field("message_id", last))
	}
	s3 := t.Connect(m, harness.AllIntents)
	if e := entry(s3); e == nil || num(e["mention_count"]) != 0 || str(e["last_message_id"]) != last {
		t.Errorf("READY read_state after ack: %s, expected last_message_id %s and mention_count 0", harness.JSON(e), last)
	}
}
