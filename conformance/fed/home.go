package fed

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// Tests where the node under test is a member node of a guild homed on a fake
// home node (conformance/fedpeer.Home): a user of the node joins with the fake's
// invite, and the fake signs the guild's state events as it likes.

// newHome starts a fake home node.
func newHome(t *T) *fedpeer.Home {
	c, cancel := ctx(t)
	defer cancel()
	h, err := fedpeer.NewHome(c)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// joinHome makes a new user of the node join the fake home's guild and returns
// the user and the guild's ID on the node; it waits until the node is on the
// guild's topic.
func joinHome(t *T, h *fedpeer.Home) (*harness.User, string) {
	u := t.NewUser()
	r := t.Call(u.Client, "POST", "/invites/"+inviteCode(h.Invite()), harness.Obj{})
	if r.Status != 200 {
		t.Fatalf("a user of the node joining the fake home's guild: %s", r)
	}
	var out harness.Obj
	_ = r.JSON(&out)
	gid := harness.Str(out["guild_id"])
	if gid == "" {
		t.Fatalf("the join answered no guild_id: %s", r)
	}
	id := nodeID(t)
	t.Eventually("the node on the fake home's guild topic", func() error {
		if !slices.Contains(h.Gossip.Peers(fedpeer.Topic(h.Guild)), id) {
			return errors.New("not subscribed yet")
		}
		return nil
	})
	return u, gid
}

// nodeID is the peer ID of the node under test.
func nodeID(t *T) peer.ID {
	info, err := peer.AddrInfoFromString(t.Node.P2P)
	if err != nil {
		t.Fatalf("node address %q: %v", t.Node.P2P, err)
	}
	return info.ID
}

// channelNames lists the channel names of a guild as u sees them.
func channelNames(t *T, u *harness.User, gid string) []string {
	var chans []harness.Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+gid+"/channels", nil, &chans)
	var out []string
	for _, c := range chans {
		out = append(out, harness.Str(c["name"]))
	}
	return out
}

// FED-054: "A joining node MUST verify every event in the response as in
// events.md; the response grants no trust beyond the signatures." The fake home
// answers a join with a state chain whose channel.create has a broken signature.
//
// The hook is installed once, before the join, and switched off through an atomic
// flag: the fake reads h.TamperJoin on the goroutine that answers the join, and
// nothing in this process orders that read before a later write (the order runs
// through the node, another process), so assigning the field again is a data race.
func tamperedJoin(t *T) {
	h := newHome(t)
	var tamper atomic.Bool
	tamper.Store(true)
	h.TamperJoin = func(r *fedpeer.JoinResponse) {
		if !tamper.Load() {
			return
		}
		broken := slices.Clone(r.State[1])
		broken[len(broken)-1] ^= 1
		r.State[1] = broken
	}
	u := t.NewUser()
	r := t.Call(u.Client, "POST", "/invites/"+inviteCode(h.Invite()), harness.Obj{})
	if r.Status == 200 {
		var out harness.Obj
		_ = r.JSON(&out)
		if gid := harness.Str(out["guild_id"]); gid != "" && slices.Contains(channelNames(t, u, gid), "general") {
			t.Errorf("the node adopted a channel whose state event carries a broken signature")
		}
	}
	// The same join with an intact chain works, so the refusal above was about
	// the signature.
	tamper.Store(false)
	u2, gid := joinHome(t, h)
	t.Eventually("the intact join shows the channel", func() error {
		if names := channelNames(t, u2, gid); !slices.Contains(names, "general") {
			return fmt.Errorf("channels %v", names)
		}
		return nil
	})
}

// EVT-042: "A receiver MUST apply state events strictly in sn order and MUST NOT
// apply a state event whose prev differs from the ID of the state event it holds
// at sn - 1." FED-017: a state event arriving before its predecessor is held and
// applied once the predecessor arrives.
func stateOrder(t *T) {
	h := newHome(t)
	u, gid := joinHome(t, h)
	c, cancel := ctx(t)
	defer cancel()
	first, second := "first-"+harness.RandName()[3:], "second-"+harness.RandName()[3:]
	var raws [][]byte
	for _, name := range []string{first, second} {
		env := h.StateEnvelope("channel.create", nil)
		raw, id, err := h.Signer.Sign(env, fedpeer.Body(0, name, 1, 0, 2, "", 3, 1))
		if err != nil {
			t.Fatalf("%v", err)
		}
		h.Record(env.Seq, raw, id)
		raws = append(raws, raw)
	}
	for _, raw := range []([]byte){raws[1], raws[0]} { // the successor first
		if err := h.Gossip.Publish(c, fedpeer.Topic(h.Guild), raw); err != nil {
			t.Fatalf("%v", err)
		}
	}
	t.Eventually("both channels shown, whatever order their events arrived in", func() error {
		names := channelNames(t, u, gid)
		if !slices.Contains(names, first) || !slices.Contains(names, second) {
			return fmt.Errorf("channels %v", names)
		}
		return nil
	})

	// A state event at the next sn whose prev is not the held event, then the
	// right one (same origin, seq and sn).
	bad, good := "badprev-"+harness.RandName()[3:], "goodprev-"+harness.RandName()[3:]
	env := h.StateEnvelope("channel.create", nil)
	env.Prev = make([]byte, 34)
	env.Prev[0], env.Prev[1] = 0x12, 0x20
	_, _ = rand.Read(env.Prev[2:])
	raw, _, err := h.Signer.Sign(env, fedpeer.Body(0, bad, 1, 0, 2, "", 3, 2))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := h.Gossip.Publish(c, fedpeer.Topic(h.Guild), raw); err != nil {
		t.Fatalf("%v", err)
	}
	if _, err := h.Issue(c, "channel.create", nil, fedpeer.Body(0, good, 1, 0, 2, "", 3, 2)); err != nil {
		t.Fatalf("%v", err)
	}
	t.Eventually("the channel of the state event with the right prev shown", func() error {
		if names := channelNames(t, u, gid); !slices.Contains(names, good) {
			return fmt.Errorf("channels %v", names)
		}
		return nil
	})
	if slices.Contains(channelNames(t, u, gid), bad) {
		t.Errorf("the node applied a state event whose prev is not the state event it holds at sn-1")
	}
}

// FED-040: "Only the home node MUST issue state events; a remote node MUST send a
// change it wants as a mod-request to the home node." A user of the node leaves
// the fake home's guild. EVT-013: the node's first event in the guild has seq 1.
func memberAsksHome(t *T) {
	h := newHome(t)
	u, gid := joinHome(t, h)
	var chans []harness.Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+gid+"/channels", nil, &chans)
	text := ""
	for _, ch := range chans {
		if harness.Str(ch["name"]) == "general" {
			text = harness.Str(ch["id"])
		}
	}
	if text == "" {
		t.Fatalf("the fake home's channel is not shown: %v", channelNames(t, u, gid))
	}
	content := "to the fake home " + harness.RandName()
	t.Send(u, text, content)
	id := nodeID(t)
	var msg *fedpeer.Event
	t.Eventually("the node's message on the fake home's topic", func() error {
		for _, r := range h.Gossip.Received() {
			if ev, err := fedpeer.DecodeEvent(r.Msg.Data); err == nil && ev.Env.Kind == "message.create" && bodyContent(ev) == content {
				msg = ev
				return nil
			}
		}
		return errors.New("not yet")
	})
	if !bytes.Equal(msg.Env.Origin, []byte(id)) || msg.Env.Seq != 1 {
		t.Errorf("EVT-013: the node's first event in the guild has seq %d (origin %x)", msg.Env.Seq, msg.Env.Origin)
	}
	if r := t.Call(u.Client, "DELETE", "/users/@me/guilds/"+gid, nil); r.Status/100 != 2 {
		t.Fatalf("leave: %s", r)
	}
	t.Eventually("a mod-request for the leave at the fake home", func() error {
		for _, m := range h.Mods() {
			if m.Kind == "member.leave" && m.Actor == u.Name {
				return nil
			}
		}
		return fmt.Errorf("mod-requests so far: %v", h.Mods())
	})
	for _, r := range h.Gossip.Received() {
		if ev, err := fedpeer.DecodeEvent(r.Msg.Data); err == nil && bytes.Equal(ev.Env.Origin, []byte(id)) && ev.Env.SN > 0 && ev.Env.Kind != "message.create" {
			switch ev.Env.Kind {
			case "message.edit", "message.delete", "reaction.add", "reaction.remove":
			default:
				t.Errorf("the member node signed a %s itself", ev.Env.Kind)
			}
		}
	}
}

// EVT-060: "A receiver MUST reject channel.update, channel.delete and
// channel.overwrite that name a channel not created by an earlier state event."
// The fake home sends a channel.delete of an unknown channel at the next sn,
// then a valid state event at the same sn: only the latter may be applied.
//
// Each kind comes from a home node of its own: a peer whose second event is
// rejected is graylisted [FED-014].
func unknownChannelState(t *T) {
	c, cancel := ctx(t)
	defer cancel()
	unknown := make([]byte, 34)
	unknown[0], unknown[1] = 0x12, 0x20
	_, _ = rand.Read(unknown[2:])
	for _, kind := range []string{"channel.delete", "channel.update"} {
		h := newHome(t)
		u, gid := joinHome(t, h)
		env := h.StateEnvelope(kind, unknown)
		var body any = fedpeer.Body()
		if kind == "channel.update" {
			body = fedpeer.Body(0, "renamed", 1, "", 2, 0)
		}
		raw, _, err := h.Signer.Sign(env, body)
		if err != nil {
			t.Fatalf("%v", err)
		}
		if err := h.Gossip.Publish(c, fedpeer.Topic(h.Guild), raw); err != nil {
			t.Fatalf("%v", err)
		}
		name := "after-" + harness.RandName()[3:]
		if _, err := h.Issue(c, "channel.create", nil, fedpeer.Body(0, name, 1, 0, 2, "", 3, 3)); err != nil {
			t.Fatalf("%v", err)
		}
		t.Eventually("the valid state event after a "+kind+" of an unknown channel", func() error {
			if names := channelNames(t, u, gid); !slices.Contains(names, name) {
				return fmt.Errorf("channels %v (was the %s applied at its sn?)", names, kind)
			}
			return nil
		})
	}
}

// FED-064: "A receiving node MUST refuse (status 2) an invite whose home node is
// not the requesting peer." A fake peer asks the node to join, for one of its
// users, a conversation homed on another (fake) node.
func dmForeignHome(t *T) {
	h := newHome(t)
	u := t.NewUser()
	p, id := dial(t)
	c, cancel := ctx(t)
	defer cancel()
	frame, err := p.Request(c, id, "/hearth/dm/1.0.0", map[uint64]any{0: h.Invite(), 1: u.Name, 2: "mallory"})
	if err != nil {
		t.Fatalf("dm request: %v", err)
	}
	r, _, err := fedpeer.DecodeResponse(frame)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if r.Status != fedpeer.StatusForbidden {
		t.Errorf("a DM request carrying another node's invite: status %d (%q), expected 2", r.Status, r.Error)
	}
	var chans []harness.Obj
	t.Must(u.Client, 200, "GET", "/users/@me/channels", nil, &chans)
	if len(chans) > 0 {
		t.Errorf("the user got a DM channel from a refused request: %s", harness.JSON(chans))
	}
}

// JoinHome makes a new user of the node join a fake home's guild; it returns
// the user and the guild's ID on the node.
func JoinHome(t *T, h *fedpeer.Home) (*harness.User, string) { return joinHome(t, h) }

// NodeID is the peer ID of the node under test.
func NodeID(t *T) peer.ID { return nodeID(t) }

// Dial starts a fake peer connected to the node (closed after the test).
func Dial(t *T) (*fedpeer.Peer, peer.ID) { return dial(t) }
