package fed

import (
	"net/url"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// FED-082: a federation invite deleted through the client API is revoked with
// invite.revoke before the node answers; FED-051: the home node then refuses
// joins with it (status 2).
func revokedInvite(t *T) {
	w := newWorld(t)
	if r := t.Call(w.Owner.Client, "DELETE", "/invites/"+url.PathEscape(w.Code), nil); r.Status != 200 {
		t.Fatalf("DELETE /invites/{code}: %s", r)
	}
	inv, err := fedpeer.ParseInvite(w.Code)
	if err != nil {
		t.Fatalf("%v", err)
	}
	c, cancel := ctx(t)
	defer cancel()
	if _, err := w.M.WaitEvent(c, false, func(ev *fedpeer.Event) bool {
		if ev.Env.Kind != "invite.revoke" {
			return false
		}
		var b struct {
			Code string `cbor:"0,keyasint"`
		}
		return fedpeer.Unmarshal(ev.Env.Body, &b) == nil && b.Code == inv.Code
	}); err != nil {
		t.Fatalf("FED-082: no invite.revoke for the deleted invite reached the guild: %v", err)
	}
	name := harness.RandName()
	frame, err := w.M.Request(c, w.M.Home, fedpeer.ProtoJoin, fedpeer.JoinRequest{Guild: inv.Guild, Code: inv.Code, Name: name, NodeName: w.M.NodeName, Addrs: w.M.AddrBytes()})
	if err != nil {
		t.Fatalf("join with the revoked code: %v", err)
	}
	var resp fedpeer.JoinResponse
	if err := fedpeer.Unmarshal(frame, &resp); err != nil {
		t.Fatalf("%v", err)
	}
	if resp.Status != fedpeer.StatusForbidden {
		t.Errorf("FED-051: a join with a revoked code: status %d (%q), expected 2", resp.Status, resp.Error)
	}
}
