package fed

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// Event validation tests: a fake member node publishes crafted events on the
// guild's topic, then a valid sentinel; the node must show the sentinel and
// never the crafted event. A fake node that sends two events the node rejects
// is graylisted [FED-014], so each refused event comes from a member node of
// its own.

// refuseVariant joins a fresh member, lets build craft an event with it around
// content, and checks the node refuses it.
func refuseVariant(t *T, w *world, why string, build func(m *fedpeer.Member, content string) []byte) {
	m := w.join(t, "")
	content := "refused " + harness.RandName()
	raw := build(m, content)
	w.refused(t, m, raw, content, why)
}

// sign signs env with body as m; it fails the test on an encoding error.
func sign(t *T, m *fedpeer.Member, env fedpeer.Envelope, body any) []byte {
	raw, _, err := m.Signer.Sign(env, body)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return raw
}

// resign re-signs a payload as it is, however it is encoded.
func resign(m *fedpeer.Member, payload []byte) []byte {
	return fedpeer.Seal(payload, fedpeer.Signature{Alg: fedpeer.AlgEd25519, Sig: m.Signer.SignPayload(payload)})
}

// payload encodes a valid message.create payload of content and returns it
// with the encoded body.
func payload(t *T, w *world, m *fedpeer.Member, content string) (env fedpeer.Envelope, p, body []byte) {
	env = m.Envelope("message.create", w.Chan)
	body, err := fedpeer.Marshal(fedpeer.Body(0, content, 1, ""))
	if err != nil {
		t.Fatalf("%v", err)
	}
	env.Body = body
	p, err = fedpeer.Marshal(env)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if p[0] < 0xa0 || p[0] > 0xb7 {
		t.Fatalf("unexpected payload head %#x", p[0])
	}
	return env, p, body
}

// EVT-001: a signed event MUST be in core deterministic encoding. EVT-025: no
// public key in events. EVT-041: state events numbered from 1 with prev chain.
// EVT-013: seq from 1, +1 per persistent event of an origin. EVT-020/021: IDs are
// sha2-256 multihashes of the payload; the guild ID is the genesis's ID. EVT-022:
// Ed25519ctx with context hearth-event-v1. FED-050: the invite carries the guild,
// home peer and addresses. FED-052/053: the join response holds the member.join
// of the joiner and all state events in sn order.
func joinResponse(t *T) {
	w := newWorld(t)
	m := w.M
	inv, err := fedpeer.ParseInvite(w.Code)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if addrs, err := inv.HomeAddrs(); err != nil || len(addrs) == 0 {
		t.Errorf("FED-050: the invite carries no home address (%v)", err)
	}
	if home, _ := inv.HomeID(); home != m.Home {
		t.Errorf("FED-050: invite names home %s", home)
	}
	if len(m.State) == 0 {
		t.Fatalf("FED-053: the join response carries no state events")
	}
	if !bytes.Equal(m.State[0].ID, inv.Guild) || m.State[0].Env.Kind != "guild.create" {
		t.Errorf("EVT-021: the guild ID of the invite is not the ID of the first state event (a %s)", m.State[0].Env.Kind)
	}
	var prev []byte
	joined := false
	for i, ev := range append(slices.Clone(m.State), m.Recent...) {
		checkNodeEvent(t, ev)
		if i >= len(m.State) {
			continue
		}
		if ev.Env.SN != uint64(i+1) {
			t.Errorf("EVT-041/FED-053: state event %d (%s) has sn %d", i, ev.Env.Kind, ev.Env.SN)
		}
		if i > 0 && !bytes.Equal(ev.Env.Prev, prev) {
			t.Errorf("EVT-041: state event sn %d does not carry prev = the ID of sn %d", ev.Env.SN, i)
		}
		if i == 0 && (ev.Env.Prev != nil || ev.Env.Guild != nil) {
			t.Errorf("EVT-041: genesis carries prev or guild")
		}
		if ev.Env.Seq != uint64(i+1) {
			t.Errorf("EVT-013: the home node's state event %d has seq %d", i+1, ev.Env.Seq)
		}
		prev = ev.ID
		if ev.Env.Kind == "member.join" {
			var b struct {
				User fedpeer.User `cbor:"0,keyasint"`
			}
			if fedpeer.Unmarshal(ev.Env.Body, &b) == nil && bytes.Equal(b.User.Node, m.Signer.Origin) && b.User.Name == m.Name {
				joined = true
			}
		}
	}
	if !joined {
		t.Errorf("FED-052: the join response lacks a member.join for (the joining peer, %s)", m.Name)
	}
}

// envelopeKeys are the keys an envelope may carry.
var envelopeKeys = map[uint64]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true, 10: true}

// checkNodeEvent checks an event the node signed: canonical, verifiable,
// content-addressed, no keys beyond the envelope's.
func checkNodeEvent(t *T, ev *fedpeer.Event) {
	for what, b := range map[string][]byte{"signed event": ev.Raw, "payload": ev.Payload, "body": ev.Env.Body} {
		if err := fedpeer.Canonical(b); err != nil {
			t.Errorf("EVT-001: %s of a %s is not canonical: %v", what, ev.Env.Kind, err)
		}
	}
	if err := ev.Verify(); err != nil {
		t.Errorf("EVT-022: the node's %s does not verify as Ed25519ctx(%q): %v", ev.Env.Kind, fedpeer.SigContext, err)
	}
	var keys map[uint64]cbor.RawMessage
	if err := fedpeer.Unmarshal(ev.Payload, &keys); err == nil {
		for k := range keys {
			if !envelopeKeys[k] {
				t.Errorf("EVT-025: the node's %s carries envelope key %d", ev.Env.Kind, k)
			}
		}
	}
	if len(ev.Raw) > fedpeer.MaxEvent {
		t.Errorf("EVT-003: the node's %s is %d bytes", ev.Env.Kind, len(ev.Raw))
	}
	if _, err := peer.IDFromBytes(ev.Env.Origin); err != nil {
		t.Errorf("EVT-011: origin is not a peer ID: %v", err)
	}
}

// EVT-002: "A receiver MUST reject a signed event or payload that is not in core
// deterministic form, that has duplicate map keys, indefinite lengths, unknown map
// keys, or invalid UTF-8 in text strings."
func nonCanonical(t *T) {
	w := newWorld(t)
	variants := map[string]func(m *fedpeer.Member, content string) []byte{
		"a payload map header in a longer form than needed": func(m *fedpeer.Member, content string) []byte {
			_, p, _ := payload(t, w, m, content)
			return resign(m, append([]byte{0xb8, p[0] - 0xa0}, p[1:]...))
		},
		"a duplicate map key": func(m *fedpeer.Member, content string) []byte {
			_, p, body := payload(t, w, m, content)
			q := append([]byte{p[0] + 1}, p[1:]...)
			q = append(q, 0x0a)
			return resign(m, append(q, body...))
		},
		"an unknown envelope key": func(m *fedpeer.Member, content string) []byte {
			_, p, _ := payload(t, w, m, content)
			q := append([]byte{p[0] + 1}, p[1:]...)
			return resign(m, append(q, 0x0b, 0x00))
		},
		"an indefinite-length text string": func(m *fedpeer.Member, content string) []byte {
			_, p, _ := payload(t, w, m, content)
			kind, _ := fedpeer.Marshal("message.create")
			i := bytes.Index(p, kind)
			if i < 0 {
				t.Fatalf("kind not found in payload")
			}
			q := slices.Concat(p[:i], []byte{0x7f}, kind, []byte{0xff}, p[i+len(kind):])
			return resign(m, q)
		},
		"invalid UTF-8 in the content": func(m *fedpeer.Member, content string) []byte {
			env := m.Envelope("message.create", w.Chan)
			c := []byte(content + "\xff")
			body := slices.Concat([]byte{0xa2, 0x00, 0x78, byte(len(c))}, c, []byte{0x01, 0x60})
			env.Body = body
			p, err := fedpeer.Marshal(env)
			if err != nil {
				t.Fatalf("%v", err)
			}
			return resign(m, p)
		},
		"a signed-event map header in a longer form than needed": func(m *fedpeer.Member, content string) []byte {
			raw, _, _ := m.Unkept(w.Chan, content)
			return append([]byte{0xb8, 0x02}, raw[1:]...)
		},
	}
	for why, build := range variants {
		refuseVariant(t, w, "an event with "+why, build)
	}
}

// EVT-003: "A signed event MUST NOT exceed 65,536 bytes in total." A valid
// message padded past the limit with a signature of an unknown algorithm.
func oversizeEvent(t *T) {
	w := newWorld(t)
	refuseVariant(t, w, "an event of over 65,536 bytes", func(m *fedpeer.Member, content string) []byte {
		_, p, _ := payload(t, w, m, content)
		return fedpeer.Seal(p, fedpeer.Signature{Alg: fedpeer.AlgEd25519, Sig: m.Signer.SignPayload(p)},
			fedpeer.Signature{Alg: "x-conformance-padding", Sig: make([]byte, fedpeer.MaxEvent)})
	})
}

// EVT-004: "A receiver MUST verify signatures over the exact payload bytes it
// received and MUST store and forward those exact bytes." EVT-024: unknown
// signature algorithms are ignored when a known one verifies. FED-032: fetch
// returns the held events of the range.
func exactBytes(t *T) {
	w := newWorld(t)
	m := w.M
	content := "exact " + harness.RandName()
	env, p, _ := payload(t, w, m, content)
	raw := fedpeer.Seal(p, fedpeer.Signature{Alg: fedpeer.AlgEd25519, Sig: m.Signer.SignPayload(p)},
		fedpeer.Signature{Alg: "x-conformance-unknown", Sig: []byte("not a signature")})
	publish(t, m, raw)
	w.shows(t, content)
	c, cancel := ctx(t)
	defer cancel()
	resp, err := m.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpFetch, Ranges: []fedpeer.Range{{Origin: m.Signer.Origin, From: env.Seq, To: env.Seq}}})
	if err != nil || resp.Status != fedpeer.StatusOK {
		t.Fatalf("FED-032: fetch of the event: %v (status %d %q)", err, resp.Status, resp.Error)
	}
	if len(resp.Events) != 1 || !bytes.Equal(resp.Events[0], raw) {
		t.Errorf("EVT-004: the node serves %d events for the range, not the exact %d bytes it accepted", len(resp.Events), len(raw))
	}
}

// EVT-005: "Optional fields whose value is zero, empty or absent MUST be omitted
// ...; a payload that spells out such a field is not canonical."
func spelledOut(t *T) {
	w := newWorld(t)
	refuseVariant(t, w, "a payload spelling out an empty prev (key 9)", func(m *fedpeer.Member, content string) []byte {
		_, p, body := payload(t, w, m, content)
		at := len(p) - len(body) - 1 // key 10, the last
		q := slices.Concat([]byte{p[0] + 1}, p[1:at], []byte{0x09, 0x40}, p[at:])
		return resign(m, q)
	})
}

// EVT-010: "v MUST be 1; a receiver MUST reject other versions." EVT-011: origin
// MUST be an Ed25519 peer ID. EVT-012: a non-state event's author.node MUST equal
// origin. EVT-015: persistent kinds carry seq >= 1. EVT-016: names are 1..32 bytes
// of [a-z0-9_.-]. EVT-050: unknown kinds are rejected. EVT-051: bodies have exactly
// their fields. EVT-052: text limits.
func badEnvelopes(t *T) {
	w := newWorld(t)
	msg := func(mod func(*fedpeer.Envelope), body func(string) any) func(m *fedpeer.Member, content string) []byte {
		return func(m *fedpeer.Member, content string) []byte {
			env := m.Envelope("message.create", w.Chan)
			mod(&env)
			var b any = fedpeer.Body(0, content, 1, "")
			if body != nil {
				b = body(content)
			}
			return sign(t, m, env, b)
		}
	}
	none := func(*fedpeer.Envelope) {}
	secp, _, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	secpID, _ := peer.IDFromPrivateKey(secp)
	homeUser := fedpeer.User{Node: []byte(w.M.Home), Name: w.Owner.Name}
	cases := []struct {
		id, why string
		build   func(m *fedpeer.Member, content string) []byte
	}{
		{"EVT-010", "envelope version 2", msg(func(e *fedpeer.Envelope) { e.V = 2 }, nil)},
		{"EVT-011", "an origin whose key is secp256k1", msg(func(e *fedpeer.Envelope) {
			e.Origin, e.Author.Node = []byte(secpID), []byte(secpID)
		}, nil)},
		{"EVT-012", "a message whose author is a user of the home node", msg(func(e *fedpeer.Envelope) { e.Author = homeUser }, nil)},
		{"EVT-015", "a persistent event with seq 0", msg(func(e *fedpeer.Envelope) { e.Seq = 0 }, nil)},
		{"EVT-016", "an author name with upper case and a space", msg(func(e *fedpeer.Envelope) { e.Author.Name = "Not Valid" }, nil)},
		{"EVT-050", "an unknown kind", msg(func(e *fedpeer.Envelope) { e.Kind = "message.shout" }, nil)},
		{"EVT-051", "a body with an extra field", msg(none, func(c string) any { return fedpeer.Body(0, c, 1, "", 7, "extra") })},
		{"EVT-051", "a body without its nonce", msg(none, func(c string) any { return fedpeer.Body(0, c) })},
		{"EVT-052", "content of 4,001 bytes", msg(none, func(c string) any { return fedpeer.Body(0, c+strings.Repeat("x", 4001-len(c)), 1, "") })},
		{"EVT-052", "a nonce of 65 bytes", msg(none, func(c string) any { return fedpeer.Body(0, c, 1, strings.Repeat("n", 65)) })},
	}
	for _, c := range cases {
		refuseVariant(t, w, c.id+": "+c.why, c.build)
	}
}

// EVT-022: Ed25519ctx over the payload with the origin's key. EVT-023: "A
// receiver MUST reject an event that carries no signature it can verify, and
// MUST reject an event in which any signature with a known algorithm fails."
func badSignatures(t *T) {
	w := newWorld(t)
	other, _ := fedpeer.New()
	if other != nil {
		defer other.Close()
	}
	cases := map[string]func(m *fedpeer.Member, content string) []byte{
		"a signature over other bytes": func(m *fedpeer.Member, content string) []byte {
			_, p, _ := payload(t, w, m, content)
			return fedpeer.Seal(p, fedpeer.Signature{Alg: fedpeer.AlgEd25519, Sig: m.Signer.SignPayload(append(slices.Clone(p), 0))})
		},
		"a plain Ed25519 signature (no context)": func(m *fedpeer.Member, content string) []byte {
			_, p, _ := payload(t, w, m, content)
			sig, _ := m.Key.Sign(p)
			return fedpeer.Seal(p, fedpeer.Signature{Alg: fedpeer.AlgEd25519, Sig: sig})
		},
		"no signature": func(m *fedpeer.Member, content string) []byte {
			_, p, _ := payload(t, w, m, content)
			return fedpeer.Seal(p)
		},
		"only a signature of an unknown algorithm": func(m *fedpeer.Member, content string) []byte {
			_, p, _ := payload(t, w, m, content)
			return fedpeer.Seal(p, fedpeer.Signature{Alg: "x-unknown", Sig: m.Signer.SignPayload(p)})
		},
		"a valid signature and a failing one": func(m *fedpeer.Member, content string) []byte {
			_, p, _ := payload(t, w, m, content)
			good := m.Signer.SignPayload(p)
			bad := slices.Clone(good)
			bad[0] ^= 1
			return fedpeer.Seal(p, fedpeer.Signature{Alg: fedpeer.AlgEd25519, Sig: good}, fedpeer.Signature{Alg: fedpeer.AlgEd25519, Sig: bad})
		},
	}
	for why, build := range cases {
		refuseVariant(t, w, "an event with "+why, build)
	}
}

// EVT-031: "A receiver MUST reject an event whose physical part is more than
// 30,000 ms ahead of its own clock." EVT-032: on the live path, events more than
// 600,000 ms old are not accepted. EVT-030: the node's next ts exceeds every ts
// it accepted.
func clockWindow(t *T) {
	w := newWorld(t)
	refuseVariant(t, w, "EVT-031: an event 60 s in the future", func(m *fedpeer.Member, content string) []byte {
		env := m.Envelope("message.create", w.Chan)
		env.TS = fedpeer.TS(time.Now().Add(60*time.Second), 0)
		return sign(t, m, env, fedpeer.Body(0, content, 1, ""))
	})
	refuseVariant(t, w, "EVT-032: an event 15 minutes old on the live path", func(m *fedpeer.Member, content string) []byte {
		env := m.Envelope("message.create", w.Chan)
		env.TS = fedpeer.TS(time.Now().Add(-15*time.Minute), 0)
		return sign(t, m, env, fedpeer.Body(0, content, 1, ""))
	})
	// A message 5 s ahead is inside the window: accepted, and the node's
	// clock moves past it.
	m := w.M
	content := "ahead " + harness.RandName()
	env := m.Envelope("message.create", w.Chan)
	env.TS = fedpeer.TS(time.Now().Add(5*time.Second), 0)
	publish(t, m, sign(t, m, env, fedpeer.Body(0, content, 1, "")))
	w.shows(t, content)
	reply := "after " + harness.RandName()
	t.Send(w.Owner, w.G.Text, reply)
	c, cancel := ctx(t)
	defer cancel()
	ev, err := m.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "message.create" && bodyContent(ev) == reply })
	if err != nil {
		t.Fatalf("FED-010: the node's message never reached the fake member: %v", err)
	}
	if ev.Env.TS <= env.TS {
		t.Errorf("EVT-030: the node signed ts %d after accepting ts %d", ev.Env.TS, env.TS)
	}
}

// bodyContent is field 0 of a message body as text.
func bodyContent(ev *fedpeer.Event) string {
	var b map[uint64]any
	if fedpeer.Unmarshal(ev.Env.Body, &b) != nil {
		return ""
	}
	s, _ := b[0].(string)
	return s
}

// EVT-014: "a receiver that holds an event for (guild, origin, seq) MUST reject a
// different event with the same triple."
func equivocation(t *T) {
	w := newWorld(t)
	m := w.M
	first := "first " + harness.RandName()
	env := m.Envelope("message.create", w.Chan)
	publish(t, m, sign(t, m, env, fedpeer.Body(0, first, 1, "")))
	w.shows(t, first)
	second := "second " + harness.RandName()
	env.TS++
	w.refused(t, m, sign(t, m, env, fedpeer.Body(0, second, 1, "")), second, "a second event with the same seq")
}

// EVT-040/EVT-043: "A receiver MUST reject a state event signed by any node other
// than the home node." A member node signs a channel.create.
func stateFromMember(t *T) {
	w := newWorld(t)
	m := w.M
	name := "forged-" + harness.RandName()[3:]
	env := m.Envelope("channel.create", nil)
	env.SN = m.StateHead() + 1
	env.Prev = m.State[len(m.State)-1].ID
	publish(t, m, sign(t, m, env, fedpeer.Body(0, name, 1, 0, 2, "", 3, 9)))
	w.sentinel(t, m)
	var chans []harness.Obj
	t.Must(w.Owner.Client, 200, "GET", "/guilds/"+w.G.ID+"/channels", nil, &chans)
	for _, c := range chans {
		if harness.Str(c["name"]) == name {
			t.Errorf("a channel.create signed by a member node created channel %s", name)
		}
	}
}

// EVT-072: "message.edit MUST target a message.create by the same author."
// EVT-020: the node's edit names its message by the sha2-256 multihash of its
// payload. EVT-074: the node's message events carry its state head in sn.
// FED-010/FED-011: the node publishes its events on the guild topic, unsigned
// at the pubsub level, one signed event per message. FED-003: users cross as
// (node, name).
func editOthers(t *T) {
	w := newWorld(t)
	m := w.M
	original := "original " + harness.RandName()
	msg := t.Send(w.Owner, w.G.Text, original)
	c, cancel := ctx(t)
	defer cancel()
	create, err := m.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "message.create" && bodyContent(ev) == original })
	if err != nil {
		t.Fatalf("FED-010: the node's message.create never reached the member: %v", err)
	}
	checkNodeEvent(t, create)
	// A busy node may sign state events after it answered the join (the guild's own setup
	// can still be on its way into federation), so a message's sn lies between the join
	// answer's head and the node's head asked for after the message arrived.
	if sn := create.Env.SN; sn != m.StateHead() {
		heads, err := m.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpHeads})
		switch {
		case err != nil:
			t.Fatalf("heads: %v", err)
		case sn < m.StateHead() || sn > heads.StateHead:
			t.Errorf("EVT-074: the node's message carries sn %d; its state head was %d at the join and is %d now", sn, m.StateHead(), heads.StateHead)
		}
	}
	if !bytes.Equal(create.Env.Author.Node, []byte(m.Home)) || create.Env.Author.Name != w.Owner.Name {
		t.Errorf("FED-003: the node's message names its author %x/%q, expected (home peer, %q)", create.Env.Author.Node, create.Env.Author.Name, w.Owner.Name)
	}
	for _, r := range m.Gossip.Received() {
		if r.Topic == fedpeer.Topic(m.Guild) && r.From == m.Home {
			if r.Msg.From != nil || r.Msg.Signature != nil || r.Msg.Seqno != nil || r.Msg.Key != nil {
				t.Errorf("FED-011: the node's pubsub message carries from, signature, seqno or key")
			}
			if _, err := fedpeer.DecodeEvent(r.Msg.Data); err != nil {
				t.Errorf("FED-011: the node's pubsub message data is not exactly one signed event: %v", err)
			}
		}
	}
	edited := "edited " + harness.RandName()
	t.OK(w.Owner.Client, "PATCH", "/channels/"+w.G.Text+"/messages/"+harness.Str(msg["id"]), harness.Obj{"content": edited}, nil)
	edit, err := m.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "message.edit" })
	if err != nil {
		t.Fatalf("the node's message.edit never reached the member: %v", err)
	}
	var eb struct {
		Target []byte `cbor:"0,keyasint"`
	}
	if err := fedpeer.Unmarshal(edit.Env.Body, &eb); err != nil || !bytes.Equal(eb.Target, fedpeer.HashID(create.Payload)) {
		t.Errorf("EVT-020: the edit targets %x, the sha2-256 multihash of the message's payload is %x", eb.Target, fedpeer.HashID(create.Payload))
	}
	hacked := "hacked " + harness.RandName()
	env := m.Envelope("message.edit", w.Chan)
	publish(t, m, sign(t, m, env, fedpeer.Body(0, create.ID, 1, hacked)))
	w.sentinel(t, m)
	if w.count(t, hacked) > 0 {
		t.Errorf("EVT-072: a member node edited another author's message")
	}
}

// heardAfter publishes events from m, lets a second member's sentinel prove they
// were processed, then m publishes a probe. It reports whether the node still
// hears m (the probe shows). When wantHeard, it waits for the probe within the
// test's bound; otherwise it checks the probe is absent once a further
// sentinel of the second member shows.
func heardAfter(t *T, w *world, m *fedpeer.Member, wantHeard bool, events ...[]byte) bool {
	other := w.join(t, "")
	for _, raw := range events {
		publish(t, m, raw)
	}
	w.sentinel(t, other)
	content := "probe " + harness.RandName()
	raw, _ := m.Message(w.Chan, content)
	publish(t, m, raw)
	if wantHeard {
		return harness.Eventually(t.Ctx, t.Timeout(), func() error {
			if w.count(t, content) == 0 {
				return errors.New("not shown")
			}
			return nil
		}) == nil
	}
	w.sentinel(t, other)
	return w.count(t, content) > 0
}

// EVT-075: "A receiver whose state head is at or above an event's sn MUST treat a
// failed membership ... check as provably bad (reject); a receiver whose state
// head is below sn MUST ignore the event instead." EVT-070: a non-member author is
// refused. EVT-073: an event whose target is not held is ignored, not rejected.
// FED-013: reject versus ignore, seen through the penalty: two rejected events
// graylist their sender, two ignored ones do not.
func rejectOrIgnore(t *T) {
	w := newWorld(t)
	stranger := func(m *fedpeer.Member, sn uint64) []byte {
		env := m.Envelope("message.create", w.Chan)
		env.Author.Name = "stranger" + harness.RandName()[3:]
		env.SN = sn
		return sign(t, m, env, fedpeer.Body(0, "stranger "+harness.RandName(), 1, ""))
	}
	m1 := w.join(t, "")
	if heardAfter(t, w, m1, false, stranger(m1, m1.StateHead()), stranger(m1, m1.StateHead())) {
		t.Errorf("EVT-075/EVT-070/FED-013: two messages by a non-member at the node's state head did not cost their sender (expected reject, and graylisting after two)")
	}
	m2 := w.join(t, "")
	if !heardAfter(t, w, m2, true, stranger(m2, m2.StateHead()+50), stranger(m2, m2.StateHead()+50)) {
		t.Errorf("EVT-075: messages by a non-member with sn above the node's state head were penalised (expected ignore)")
	}
	m3 := w.join(t, "")
	edit := func() []byte {
		unknown := make([]byte, 34)
		unknown[0], unknown[1] = 0x12, 0x20
		_, _ = rand.Read(unknown[2:])
		return sign(t, m3, m3.Envelope("message.edit", w.Chan), fedpeer.Body(0, unknown, 1, "x"))
	}
	if !heardAfter(t, w, m3, true, edit(), edit()) {
		t.Errorf("EVT-073: edits of messages the node does not hold were penalised (expected ignore)")
	}
}

// FED-014: "A node MUST score peers so that peers delivering rejected messages
// fall below the graylist threshold and are ignored."
func graylist(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	bad := func() []byte {
		env := m.Envelope("message.create", w.Chan)
		env.V = 9
		return sign(t, m, env, fedpeer.Body(0, "bad", 1, ""))
	}
	if heardAfter(t, w, m, false, bad(), bad(), bad()) {
		t.Errorf("a peer that delivered three invalid events is still heard")
	}
}

// EVT-070: "The author of a message kind MUST be a member of the guild at ts and
// MUST NOT be banned." The owner bans the fake member's user; its next message is
// refused.
func bannedAuthor(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	uid := remoteUser(t, w, m)
	r := t.Call(w.Owner.Client, "PUT", "/guilds/"+w.G.ID+"/bans/"+uid, harness.Obj{})
	if r.Status != 204 && r.Status != 200 {
		t.Fatalf("ban: %s", r)
	}
	c, cancel := ctx(t)
	defer cancel()
	if _, err := m.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "ban.add" }); err != nil {
		t.Fatalf("the ban never reached the member node: %v", err)
	}
	content := "banned " + harness.RandName()
	raw, _ := m.Message(w.Chan, content)
	publish(t, m, raw)
	w.sentinel(t, w.join(t, ""))
	if w.count(t, content) > 0 {
		t.Errorf("a banned user's message was accepted")
	}
}

// remoteUser finds the snowflake the node gave m's user (shown as name@node).
func remoteUser(t *T, w *world, m *fedpeer.Member) string {
	id := ""
	t.Eventually("the fake member's user among the guild's members", func() error {
		var members []harness.Obj
		t.Must(w.Owner.Client, 200, "GET", "/guilds/"+w.G.ID+"/members?limit=1000", nil, &members)
		for _, mm := range members {
			if strings.HasPrefix(harness.Str(harness.Get(mm, "user.username")), m.Name) {
				id = harness.Str(harness.Get(mm, "user.id"))
				return nil
			}
		}
		return fmt.Errorf("%s not among %d members", m.Name, len(members))
	})
	return id
}

// EVT-071: the author MUST hold VIEW_CHANNEL and SEND_MESSAGES in the channel. The
// owner denies SEND_MESSAGES to the fake member's user with a member overwrite
// (FED-058 carries it as channel.overwrite); its next message is refused.
func noSendPermission(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	uid := remoteUser(t, w, m)
	if r := t.Call(w.Owner.Client, "PUT", "/channels/"+w.G.Text+"/permissions/"+uid, harness.Obj{"allow": "0", "deny": "2048", "type": 1}); r.Status/100 != 2 {
		t.Fatalf("overwrite: %s", r)
	}
	c, cancel := ctx(t)
	defer cancel()
	if _, err := m.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "channel.overwrite" }); err != nil {
		t.Fatalf("the overwrite never reached the member node as channel.overwrite: %v", err)
	}
	content := "denied " + harness.RandName()
	raw, _, _ := m.Unkept(w.Chan, content)
	publish(t, m, raw)
	w.sentinel(t, w.join(t, ""))
	if w.count(t, content) > 0 {
		t.Errorf("a message from a user denied SEND_MESSAGES in the channel was accepted")
	}
}

// FED-015: replays inside the live window are dropped. FED-016: nothing is
// delivered twice. A second member node republishes the first one's accepted
// event, byte for byte.
func replay(t *T) {
	w := newWorld(t)
	content := "replayed " + harness.RandName()
	raw, _ := w.M.Message(w.Chan, content)
	publish(t, w.M, raw)
	w.shows(t, content)
	other := w.join(t, "")
	publish(t, other, raw)
	w.sentinel(t, other)
	if n := w.count(t, content); n != 1 {
		t.Errorf("an event replayed by another member node shows %d times", n)
	}
}

// EVT-062: guild.delete is a state event of the home node with an empty body;
// after it, events from before the deletion still validate, so that catch-up
// stays complete: the home node keeps serving them.
func guildDeleted(t *T) {
	w := newWorld(t)
	m := w.M
	before := "before deletion " + harness.RandName()
	raw, id := m.Message(w.Chan, before)
	publish(t, m, raw)
	w.shows(t, before)
	if r := t.Call(w.Owner.Client, "DELETE", "/guilds/"+w.G.ID, nil); r.Status/100 != 2 {
		t.Fatalf("delete the guild: %s", r)
	}
	c, cancel := ctx(t)
	defer cancel()
	del, err := m.WaitEvent(c, false, func(ev *fedpeer.Event) bool { return ev.Env.Kind == "guild.delete" })
	if err != nil {
		t.Fatalf("the deletion never reached the member node as guild.delete: %v", err)
	}
	checkNodeEvent(t, del)
	if !bytes.Equal(del.Env.Origin, []byte(m.Home)) || del.Env.SN == 0 || del.Env.Prev == nil {
		t.Errorf("guild.delete is not a state event of the home node (origin %x, sn %d)", del.Env.Origin, del.Env.SN)
	}
	if string(del.Env.Body) != "\xa0" {
		t.Errorf("guild.delete body %x, expected an empty map", del.Env.Body)
	}
	resp, err := m.Sync(c, fedpeer.SyncRequest{Op: fedpeer.OpFetch, Ranges: []fedpeer.Range{{Origin: m.Signer.Origin, From: 1, To: m.Seq()}}})
	if err != nil || resp.Status != fedpeer.StatusOK {
		t.Fatalf("fetch after the deletion: %v (status %d %q)", err, resp.Status, resp.Error)
	}
	found := false
	for _, raw := range resp.Events {
		if ev, err := fedpeer.DecodeEvent(raw); err == nil && bytes.Equal(ev.ID, id) {
			found = true
		}
	}
	if !found {
		t.Errorf("after the deletion the home node no longer serves a message from before it")
	}
}
