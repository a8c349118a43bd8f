package fed

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// world is a fresh guild on the node under test with a fake member node in it.
type world struct {
	Owner *harness.User
	G     *harness.Guild
	Code  string          // the federated invite code
	M     *fedpeer.Member // the first fake member
	Chan  []byte          // federation ID of the text channel g.Text
	name  string          // the text channel's name
}

// newWorld creates a user and a guild on the node, a federated invite, and a
// fake member node that joins through it.
func newWorld(t *T) *world {
	o := t.NewUser()
	g := t.NewGuild(o)
	w := &world{Owner: o, G: g}
	w.Code = fedInvite(t, o, g)
	for _, c := range g.Channel {
		if harness.Str(c["id"]) == g.Text {
			w.name = harness.Str(c["name"])
		}
	}
	w.M = w.join(t, "")
	ch, err := w.M.Channel(w.name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	w.Chan = ch
	w.sentinel(t, w.M)
	return w
}

// join adds another fake member node with a user called name ("" for a random
// one).
func (w *world) join(t *T, name string) *fedpeer.Member {
	if name == "" {
		name = harness.RandName()
	}
	c, cancel := ctx(t)
	defer cancel()
	m, err := fedpeer.JoinGuild(c, w.Code, fedpeer.JoinOptions{Name: name, NodeName: "fake-" + name[len(name)-4:]})
	if err != nil {
		t.Fatalf("a fake node joining with the node's invite: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	// A node forwards other members' events only to its mesh peers, so a member
	// that is merely subscribed can miss one sent right after it joined.
	if err := m.WaitMesh(c, m.Home); err != nil {
		t.Fatalf("the node and a fake member node joined to its guild: %v", err)
	}
	if w.Chan != nil {
		// The node handles one peer's gossipsub messages in order, so once it
		// shows a message the member sent after the graft, the mesh link
		// stands on both sides.
		w.sentinel(t, m)
	}
	return m
}

// messages lists the contents in the text channel as the owner reads them. A
// 429 is waited out as the node asks (the polls of a long test may hit the
// owner's rate limit).
func (w *world) messages(t *T) []string {
	var msgs []harness.Obj
	t.Eventually("the channel's messages", func() error {
		r := t.Call(w.Owner.Client, "GET", "/channels/"+w.G.Text+"/messages?limit=100", nil)
		switch r.Status {
		case 200:
			if err := r.JSON(&msgs); err != nil {
				return harness.Permanent(err)
			}
			return nil
		case 429:
			return fmt.Errorf("rate limited: %s", r)
		}
		return harness.Permanent(fmt.Errorf("expected 200, got %s", r))
	})
	var out []string
	for _, m := range msgs {
		out = append(out, harness.Str(m["content"]))
	}
	return out
}

// count is how many messages of the channel have content.
func (w *world) count(t *T, content string) int {
	n := 0
	for _, c := range w.messages(t) {
		if c == content {
			n++
		}
	}
	return n
}

// publish sends raw on the guild's event topic from m.
func publish(t *T, m *fedpeer.Member, raw []byte) {
	c, cancel := ctx(t)
	defer cancel()
	if err := m.Publish(c, raw); err != nil {
		t.Fatalf("%v", err)
	}
}

// shows waits until content appears in the channel on the node.
func (w *world) shows(t *T, content string) {
	t.Eventually(fmt.Sprintf("message %q from the fake node shown by the node", content), func() error {
		if w.count(t, content) == 0 {
			return fmt.Errorf("not among %d messages", len(w.messages(t)))
		}
		return nil
	})
}

// sentinel publishes a valid message from m and waits until the node shows it:
// everything m published before has then been processed (one publisher's
// messages reach the node over one stream, in order).
func (w *world) sentinel(t *T, m *fedpeer.Member) {
	content := "sentinel " + harness.RandName()
	raw, _ := m.Message(w.Chan, content)
	publish(t, m, raw)
	w.shows(t, content)
}

// refused publishes raw (an event that must not be accepted, with content
// inside), then a sentinel, and fails if content is shown.
func (w *world) refused(t *T, m *fedpeer.Member, raw []byte, content, why string) {
	publish(t, m, raw)
	w.sentinel(t, m)
	if n := w.count(t, content); n > 0 {
		t.Errorf("%s: the node accepted and shows it", why)
	}
}

// inviteCode escapes a code for a REST path.
func inviteCode(code string) string { return url.PathEscape(code) }

// fedInvite creates invites to g until the node answers a federated one: a
// node may federate a new guild in the background.
func fedInvite(t *T, o *harness.User, g *harness.Guild) string {
	code := ""
	t.Eventually("a federated (hearth:) invite code for a new guild", func() error {
		code = t.Invite(o, g.Text, harness.Obj{"max_uses": 0})
		if !strings.HasPrefix(code, fedpeer.InvitePrefix) {
			return fmt.Errorf("the invite %q is not a %q federation invite (CAPI-083)", code, fedpeer.InvitePrefix)
		}
		return nil
	})
	return code
}

// ctxFor is a context bounded by d within the test's.
func ctxFor(t *T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Ctx, d)
}
