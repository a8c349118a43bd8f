package fed

import (
	"github.com/fxamacker/cbor/v2"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// FED-053: "when the request carries have-sn (field 5), field 2 MUST carry the state
// events with sn above it instead of all." FED-068: a member node joining a further user
// gets only what it lacks. A member node joins a second user with have-sn set to the
// state head it was given, and again without it.
func joinTail(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	inv, _ := fedpeer.ParseInvite(w.Code)
	join := func(name string, have uint64) fedpeer.JoinResponse {
		resp, _ := joinAs(t, m, inv, name, have)
		return resp
	}
	sn := func(raw []byte) uint64 {
		ev, err := fedpeer.DecodeEvent(raw)
		if err != nil {
			t.Fatalf("a state event of the join response: %v", err)
		}
		return ev.Env.SN
	}
	full := join(harness.RandName(), 0)
	if len(full.State) == 0 || sn(full.State[0]) != 1 {
		t.Fatalf("FED-053: a join without have-sn does not start the state chain at sn 1")
	}
	head := sn(full.State[len(full.State)-1])
	tail := join(harness.RandName(), head)
	if len(tail.State) == 0 {
		t.Fatalf("FED-053: the join with have-sn %d carries no state event (its own member.join is above it)", head)
	}
	for i, raw := range tail.State {
		if got := sn(raw); got != head+1+uint64(i) {
			t.Errorf("FED-053: state event %d of the join with have-sn %d has sn %d, want %d", i, head, got, head+1+uint64(i))
		}
	}
}

// joinAs makes member node m join a further user name with have-sn have, and returns the
// response and its fields by key.
func joinAs(t *T, m *fedpeer.Member, inv fedpeer.Invite, name string, have uint64) (fedpeer.JoinResponse, map[uint64]cbor.RawMessage) {
	c, cancel := ctx(t)
	defer cancel()
	frame, err := m.Request(c, m.Home, fedpeer.ProtoJoin, fedpeer.JoinRequest{Guild: inv.Guild, Code: inv.Code, Name: name,
		NodeName: m.NodeName, Addrs: m.AddrBytes(), Have: have})
	if err != nil {
		t.Fatalf("join of %s: %v", name, err)
	}
	var resp fedpeer.JoinResponse
	if err := fedpeer.Unmarshal(frame, &resp); err != nil {
		t.Fatalf("join of %s: %v", name, err)
	}
	if resp.Status != 0 {
		t.Fatalf("join of %s: status %d (%q)", name, resp.Status, resp.Error)
	}
	_, fields, err := fedpeer.DecodeResponse(frame)
	if err != nil {
		t.Fatalf("join of %s: %v", name, err)
	}
	return resp, fields
}
