package chat

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
)

// passes is a Publisher over a fanout.Hub that numbers its Publish calls: one
// call delivers an event to every entitled session in one synchronous pass.
type passes struct {
	*fanout.Hub
	mu  sync.Mutex
	n   int
	log []delivery
}

type delivery struct {
	session string
	typ     string
	pass    int
}

func (p *passes) Publish(ev *fanout.Event) {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	p.Hub.Publish(ev)
}

// session records what the hub delivers to it, with the pass it came in.
type session struct {
	name string
	uid  ID
	p    *passes
}

func (s *session) UserID() uint64 { return uint64(s.uid) }
func (s *session) Deliver(ev *fanout.Event) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.log = append(s.p.log, delivery{s.name, ev.Type, s.p.n})
}

// TestCallerDispatchNotLater checks CAPI-150: "Each REST action in section 2 MUST
// produce its dispatch to the caller's own sessions before or at the same time as
// to others." The caller has two sessions and another member one; for each action,
// every dispatch type the other member receives must reach both of the caller's
// sessions in an earlier or the same Publish (one synchronous pass over the
// sessions' queues, which the gateway then writes each on its own).
func TestCallerDispatchNotLater(t *testing.T) {
	ctx := context.Background()
	p := &passes{Hub: fanout.NewHub()}
	s, g, text, owner, other := guildOfTwo(t, p)
	_, third, err := s.Register(ctx, "third", "third password")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := s.CreateInvite(ctx, owner, text, InviteSpec{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range []*session{{"caller 1", owner, p}, {"caller 2", owner, p}, {"other", other, p}} {
		p.Add(ss, []uint64{uint64(g.ID)})
	}
	str := func(v string) *string { return &v }
	var msg, role ID
	var chanID ID
	var code string
	// The other member is not entitled to these actions' dispatches (INVITE_*
	// need MANAGE_CHANNELS): only the caller gets them.
	onlyCaller := map[string]bool{"create invite": true, "delete invite": true}
	tests := []struct {
		name string
		do   func() error
	}{
		{"create message", func() error {
			m, err := s.CreateMessage(ctx, owner, text, MessageCreate{Content: "hello"})
			msg = m.ID
			return err
		}},
		{"edit message", func() error { _, err := s.EditMessage(ctx, owner, text, msg, str("edited")); return err }},
		{"add reaction", func() error { return s.React(ctx, owner, text, msg, "👍", owner, true) }},
		{"remove reaction", func() error { return s.React(ctx, owner, text, msg, "👍", owner, false) }},
		{"remove all reactions", func() error {
			if err := s.React(ctx, owner, text, msg, "👍", owner, true); err != nil {
				return err
			}
			return s.ClearReactions(ctx, owner, text, msg)
		}},
		{"pin", func() error { return s.SetPin(ctx, owner, text, msg, true) }},
		{"typing", func() error { return s.Typing(ctx, owner, text) }},
		{"delete message", func() error { return s.DeleteMessage(ctx, owner, text, msg) }},
		{"bulk delete", func() error {
			var ids []ID
			for range 2 {
				m, err := s.CreateMessage(ctx, owner, text, MessageCreate{Content: "bulk"})
				if err != nil {
					return err
				}
				ids = append(ids, m.ID)
			}
			return s.BulkDelete(ctx, owner, text, ids)
		}},
		{"create channel", func() error {
			c, err := s.CreateChannel(ctx, owner, g.ID, ChannelSpec{Name: str("second")})
			chanID = c.ID
			return err
		}},
		{"modify channel", func() error {
			_, err := s.ModifyChannel(ctx, owner, chanID, ChannelSpec{Topic: str("a topic")})
			return err
		}},
		{"delete channel", func() error { _, err := s.DeleteChannel(ctx, owner, chanID); return err }},
		{"modify guild", func() error { _, err := s.ModifyGuild(ctx, owner, g.ID, GuildPatch{Name: str("renamed")}); return err }},
		{"create role", func() error {
			r, err := s.CreateRole(ctx, owner, g.ID, RoleSpec{Name: str("role")})
			if r != nil {
				role = r.ID
			}
			return err
		}},
		{"modify role", func() error {
			_, err := s.ModifyRole(ctx, owner, g.ID, role, RoleSpec{Name: str("renamed role")})
			return err
		}},
		{"give a role", func() error { return s.SetMemberRole(ctx, owner, g.ID, other, role, true) }},
		{"delete role", func() error { return s.DeleteRole(ctx, owner, g.ID, role) }},
		{"nickname another member", func() error {
			_, err := s.ModifyMember(ctx, owner, g.ID, other, MemberPatch{Nick: str("nick")})
			return err
		}},
		{"create invite", func() error {
			i, err := s.CreateInvite(ctx, owner, text, InviteSpec{})
			code = i.Code
			return err
		}},
		{"delete invite", func() error { _, err := s.DeleteInvite(ctx, owner, code); return err }},
		{"ban", func() error {
			if _, err := s.JoinInvite(ctx, third, inv.Code); err != nil {
				return err
			}
			return s.Ban(ctx, owner, g.ID, third, nil, 0)
		}},
		{"unban", func() error { return s.Unban(ctx, owner, g.ID, third) }},
		{"kick", func() error {
			if _, err := s.JoinInvite(ctx, third, inv.Code); err != nil {
				return err
			}
			return s.Kick(ctx, owner, g.ID, third)
		}},
		{"update own user", func() error { _, err := s.UpdateMe(ctx, owner, UserPatch{GlobalName: str("Owner")}); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.mu.Lock()
			p.log = nil
			p.mu.Unlock()
			if err := tc.do(); err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			log := p.log
			p.mu.Unlock()
			first := map[[2]string]int{} // session, type → first pass
			for _, d := range log {
				k := [2]string{d.session, d.typ}
				if _, ok := first[k]; !ok {
					first[k] = d.pass
				}
			}
			checked := 0
			for k, pass := range first {
				if k[0] != "other" {
					continue
				}
				for _, c := range []string{"caller 1", "caller 2"} {
					cp, ok := first[[2]string{c, k[1]}]
					switch {
					case !ok:
						t.Errorf("%s reached the other member (pass %d) but not the caller's session %q", k[1], pass, c)
					case cp > pass:
						t.Errorf("%s reached the caller's session %q in pass %d, after the other member's (pass %d)", k[1], c, cp, pass)
					}
				}
				checked++
			}
			switch {
			case onlyCaller[tc.name] && (checked > 0 || len(log) == 0):
				t.Errorf("want dispatches to the caller's sessions only, got %v", fmt.Sprint(log))
			case !onlyCaller[tc.name] && checked == 0:
				t.Errorf("the action dispatched nothing to the other member: %v", fmt.Sprint(log))
			}
		})
	}
}

// TestViewersCacheFollowsAudience checks that a channel's cached audience survives the
// writes that happen once per message (a message, an ack, a presence) and is rebuilt when
// who may view the channel changes: an overwrite that hides the channel from a member stops
// the next MESSAGE_CREATE reaching them, and removing it lets the one after through.
func TestViewersCacheFollowsAudience(t *testing.T) {
	ctx := context.Background()
	p := &passes{Hub: fanout.NewHub()}
	s, g, text, owner, other := guildOfTwo(t, p)
	for _, ss := range []*session{{"owner", owner, p}, {"other", other, p}} {
		p.Add(ss, []uint64{uint64(g.ID)})
	}
	// received sends a message and reports who got its MESSAGE_CREATE.
	received := func() map[string]bool {
		t.Helper()
		p.mu.Lock()
		p.log = nil
		p.mu.Unlock()
		if _, err := s.CreateMessage(ctx, owner, text, MessageCreate{Content: "hello"}); err != nil {
			t.Fatal(err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		got := map[string]bool{}
		for _, d := range p.log {
			if d.typ == "MESSAGE_CREATE" {
				got[d.session] = true
			}
		}
		return got
	}
	if got := received(); !got["owner"] || !got["other"] {
		t.Fatalf("before the overwrite: MESSAGE_CREATE reached %v, want owner and other", got)
	}
	gen := s.gen.Load()
	m, err := s.CreateMessage(ctx, other, text, MessageCreate{Content: "a reply"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, owner, text, m.ID); err != nil {
		t.Fatal(err)
	}
	s.SetPresence(other, Presence{Status: "idle"})
	if s.gen.Load() != gen {
		t.Errorf("a message, an ack and a presence invalidated the viewers cache (generation %d → %d)", gen, s.gen.Load())
	}

	hide := model.Overwrite{ID: other, Type: 1, Deny: perm.ViewChannel}
	if err := s.PutOverwrite(ctx, owner, text, hide); err != nil {
		t.Fatal(err)
	}
	if got := received(); !got["owner"] || got["other"] {
		t.Fatalf("with ViewChannel denied to other: MESSAGE_CREATE reached %v, want owner only", got)
	}
	if err := s.DeleteOverwrite(ctx, owner, text, other); err != nil {
		t.Fatal(err)
	}
	if got := received(); !got["owner"] || !got["other"] {
		t.Fatalf("after the overwrite was removed: MESSAGE_CREATE reached %v, want owner and other", got)
	}
}

// guildOfTwo returns a service that publishes through p, with a guild of two members,
// "owner" and "other", and the guild's text channel.
func guildOfTwo(t *testing.T, p *passes) (s *Service, g GuildOut, text, owner, other ID) {
	t.Helper()
	ctx := context.Background()
	s = newTestService(t, p)
	_, owner, err := s.Register(ctx, "owner", "owner password")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err = s.Register(ctx, "other", "other password")
	if err != nil {
		t.Fatal(err)
	}
	g, text = newTestGuild(t, s, owner)
	inv, err := s.CreateInvite(ctx, owner, text, InviteSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.JoinInvite(ctx, other, inv.Code); err != nil {
		t.Fatal(err)
	}
	return s, g, text, owner, other
}
