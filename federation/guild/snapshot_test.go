package guild

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
)

// richChain builds a guild that uses every part of the state: a category and
// a channel in it, roles with member roles, role and member overwrites, members
// of two further nodes, a profile, a member who left, a ban, and used invites.
// It returns the chain, its state events after genesis and the text channel.
func richChain(t testing.TB) (*chain, []*event.Event, event.ID) {
	c := newChain(t)
	beta, gamma := signer(t), signer(t)
	bob := event.User{Node: beta.Origin(), Name: "bob"}
	carol := event.User{Node: gamma.Origin(), Name: "carol"}
	dave := event.User{Node: gamma.Origin(), Name: "dave"}
	var evs []*event.Event
	add := func(kind event.Kind, channel event.ID, body any) event.ID {
		ev := c.state(kind, channel, body)
		evs = append(evs, ev)
		return ev.ID
	}
	cat := add(event.KindChannelCreate, "", &event.ChannelCreate{Name: "Text", Type: event.ChannelCategory})
	general := add(event.KindChannelCreate, "", &event.ChannelCreate{Name: "general", Topic: "hi", Position: 2, Parent: cat})
	add(event.KindChannelCreate, "", &event.ChannelCreate{Name: "voice", Type: event.ChannelVoice})
	mod := add(event.KindRoleCreate, "", &event.RoleCreate{Name: "mod", Permissions: PermKickMembers, Position: 1, Hoist: true})
	add(event.KindInviteCreate, "", &event.InviteCreate{Code: "abcdefgh", MaxUses: 5})
	add(event.KindMemberJoin, "", &event.MemberJoin{User: bob, NodeName: "beta", Addrs: [][]byte{{4, 127, 0, 0, 1}}, Invite: "abcdefgh"})
	add(event.KindMemberJoin, "", &event.MemberJoin{User: carol, NodeName: "gamma", Invite: "abcdefgh"})
	add(event.KindMemberJoin, "", &event.MemberJoin{User: dave, NodeName: "gamma"})
	add(event.KindMemberRoles, "", &event.MemberRoles{User: bob, Roles: []event.ID{mod}})
	add(event.KindMemberProfile, "", &event.MemberProfile{User: carol, Nick: "C"})
	add(event.KindChannelOverwrite, general, &event.ChannelOverwrite{Target: []byte(mod), Type: event.OverwriteRole, Allow: PermManageMessages})
	target, _ := event.Marshal(carol)
	add(event.KindChannelOverwrite, general, &event.ChannelOverwrite{Target: target, Type: event.OverwriteMember, Deny: PermAddReactions})
	add(event.KindMemberLeave, "", &event.MemberRef{User: dave})
	add(event.KindBanAdd, "", &event.BanAdd{User: carol})
	add(event.KindGuildUpdate, "", &event.GuildUpdate{Name: "renamed"})
	return c, evs, general
}

// view is everything a guild shows, for comparing two guilds.
func view(g *Guild) []any {
	return []any{g.Info(), g.Channels(), g.Roles(), g.Members(event.User{}, 0), len(g.Nodes()), g.former, g.bans, g.invites}
}

func TestSnapshotRoundTrip(t *testing.T) {
	c, evs, general := richChain(t)
	snap, err := c.g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g, err := FromSnapshot(c.gen, snap)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := g.Snapshot(); !bytes.Equal(again, snap) {
		t.Fatal("the snapshot of a guild started from a snapshot differs")
	}
	orig := view(c.g)
	orig[0] = c.g.Info()
	if got := view(g); !reflect.DeepEqual(got, orig) {
		t.Fatalf("state differs:\n got %+v\nwant %+v", got, orig)
	}
	// A departed member's message from their time in the guild validates
	// against the snapshot as against the chain; a banned one's after the ban does not.
	dave := event.User{Node: evs[7].Body.(*event.MemberJoin).User.Node, Name: "dave"}
	carol := evs[6].Body.(*event.MemberJoin).User
	for _, tc := range []struct {
		author event.User
		ts     event.HLC
	}{{dave, evs[7].TS + 1}, {dave, evs[12].TS + 1}, {carol, evs[6].TS + 1}, {carol, evs[13].TS + 1}} {
		ev := &event.Event{Envelope: event.Envelope{Kind: event.KindMessageCreate, Guild: c.gid, Channel: general,
			Author: tc.author, TS: tc.ts, SN: c.g.Info().SN}}
		if want, got := c.g.CheckMessage(ev), g.CheckMessage(ev); (want == nil) != (got == nil) {
			t.Errorf("message of %s at %d: chain says %v, snapshot %v", tc.author.Name, tc.ts, want, got)
		}
	}
	// The events the snapshot replaces are historical; what follows applies.
	for _, ev := range append([]*event.Event{c.gen}, evs...) {
		if !g.Historical(ev) || c.g.Historical(ev) {
			t.Fatalf("sn %d: historical %v on the snapshot, %v on the chain", ev.SN, g.Historical(ev), c.g.Historical(ev))
		}
	}
	if g.Base() != c.g.Info().SN || c.g.Base() != 0 {
		t.Fatalf("base %d, %d", g.Base(), c.g.Base())
	}
	next := c.state(event.KindChannelUpdate, general, &event.ChannelUpdate{Name: "lobby"})
	if g.Historical(next) {
		t.Fatal("an event above the snapshot is historical")
	}
	if err := g.Apply(next); err != nil {
		t.Fatalf("apply above the snapshot: %v", err)
	}
	if err := g.Apply(evs[3]); !errors.Is(err, ErrStale) {
		t.Fatalf("apply below the snapshot: %v", err)
	}
	if ch, _ := g.Channel(general); ch.Name != "lobby" {
		t.Fatalf("channel %+v", ch)
	}
}

func TestSnapshotHistoricalNeedsTheHead(t *testing.T) {
	c, evs, _ := richChain(t)
	snap, _ := c.g.Snapshot()
	g, err := FromSnapshot(c.gen, snap)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	// Another event at the snapshot's sn (the home node equivocating): not the head.
	other, err := c.home.Sign(event.Envelope{Kind: event.KindGuildUpdate, Guild: c.gid, Author: c.owner, Seq: 99,
		TS: last.TS, SN: last.SN, Prev: last.Prev}, &event.GuildUpdate{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	stranger := signer(t)
	forged, err := stranger.Sign(event.Envelope{Kind: event.KindGuildUpdate, Guild: c.gid, Author: c.owner, Seq: 2,
		TS: 200, SN: 2, Prev: c.gid}, &event.GuildUpdate{Name: "forged"})
	if err != nil {
		t.Fatal(err)
	}
	for name, ev := range map[string]*event.Event{"other head": other, "other origin": forged} {
		if g.Historical(ev) {
			t.Errorf("%s is historical", name)
		}
	}
}

func TestSnapshotRefused(t *testing.T) {
	c, _, _ := richChain(t)
	snap, _ := c.g.Snapshot()
	var good snapshot
	if err := snapDec.Unmarshal(snap, &good); err != nil {
		t.Fatal(err)
	}
	other := newChain(t)
	cases := map[string]func(s *snapshot){
		"version":            func(s *snapshot) { s.V = 2 },
		"other guild":        func(s *snapshot) { s.Info.Guild = other.gid },
		"other owner":        func(s *snapshot) { s.Info.Owner = other.owner },
		"zero sn":            func(s *snapshot) { s.Info.SN = 0 },
		"genesis head":       func(s *snapshot) { s.Info.Head = c.gid },
		"no everyone":        func(s *snapshot) { s.Roles = s.Roles[1:] },
		"roles out of order": func(s *snapshot) { s.Roles[0], s.Roles[1] = s.Roles[1], s.Roles[0] },
		"unknown member role": func(s *snapshot) {
			member(s, func(m *snapMember, _ event.User) {
				if len(m.Roles) > 0 {
					m.Roles[0] = other.gid
				}
			})
		},
		"owner left": func(s *snapshot) {
			member(s, func(m *snapMember, u event.User) {
				if u == c.owner {
					m.Left = m.Joined + 1
				}
			})
		},
		"members of a node out of order": func(s *snapshot) {
			for i := range s.Members {
				if ms := s.Members[i].Members; len(ms) > 1 {
					ms[0], ms[1] = ms[1], ms[0]
				}
			}
		},
		"node without members": func(s *snapshot) { s.Members[0].Members = nil },
		"unknown channel type": func(s *snapshot) { s.Channels[0].Type = 1 },
		"empty role name":      func(s *snapshot) { s.Roles[0].Name = "" },
		"long node name":       func(s *snapshot) { s.Nodes[0].Name = strings.Repeat("n", event.MaxNodeNameLen+1) },
		"short avatar hash": func(s *snapshot) {
			member(s, func(m *snapMember, _ event.User) {
				if m.Profile != nil {
					m.Profile.Avatar = &event.ImageRef{Hash: []byte{1, 2, 3}, Size: 3}
				}
			})
		},
		"member nodes out of order": func(s *snapshot) {
			s.Members[0], s.Members[1] = s.Members[1], s.Members[0]
		},
		"duplicate node":  func(s *snapshot) { s.Nodes = append(s.Nodes, s.Nodes[0]) },
		"missing node":    func(s *snapshot) { s.Nodes = s.Nodes[1:] },
		"banned member":   func(s *snapshot) { s.Bans = append(s.Bans, snapBan{User: c.owner}) },
		"category parent": func(s *snapshot) { s.Channels[0].Parent, s.Channels[1].Parent = s.Channels[1].ID, s.Channels[0].ID },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			var s snapshot
			_ = snapDec.Unmarshal(snap, &s)
			mutate(&s)
			b, err := event.Marshal(&s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := FromSnapshot(c.gen, b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
	t.Run("non-canonical", func(t *testing.T) {
		// The same state with the V field encoded in two bytes.
		b := bytes.Clone(snap)
		i := bytes.Index(b, []byte{0x00, 0x01})
		b = append(b[:i+1], append([]byte{0x18, 0x01}, b[i+2:]...)...)
		if _, err := FromSnapshot(c.gen, b); !errors.Is(err, ErrInvalid) {
			t.Fatalf("accepted: %v", err)
		}
	})
	t.Run("other genesis", func(t *testing.T) {
		if _, err := FromSnapshot(other.gen, snap); !errors.Is(err, ErrInvalid) {
			t.Fatalf("accepted: %v", err)
		}
	})
}

// member calls fn with every member of a decoded snapshot.
func member(s *snapshot, fn func(m *snapMember, u event.User)) {
	for i := range s.Members {
		for j := range s.Members[i].Members {
			m := &s.Members[i].Members[j]
			fn(m, event.User{Node: s.Members[i].Node, Name: m.Name})
		}
	}
}

// FuzzFromSnapshot: snapshots come from the network; decoding must never
// panic, and an accepted one is its own canonical encoding.
func FuzzFromSnapshot(f *testing.F) {
	c, _, _ := richChain(f)
	snap, err := c.g.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(snap)
	small, _ := newChain(f).g.Snapshot()
	f.Add(small)
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := FromSnapshot(c.gen, b)
		if err != nil {
			return
		}
		if again, err := g.Snapshot(); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted snapshot re-encodes differently: %v", err)
		}
	})
}
