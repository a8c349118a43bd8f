package guild

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/libp2p/go-libp2p/core/crypto"
)

type chain struct {
	t     testing.TB
	home  *event.Signer
	g     *Guild
	gen   *event.Event
	gid   event.ID
	seq   uint64
	owner event.User
}

func signer(t testing.TB) *event.Signer {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := event.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newChain(t testing.TB) *chain {
	c := &chain{t: t, home: signer(t)}
	c.owner = event.User{Node: c.home.Origin(), Name: "alice"}
	gen, err := c.home.Sign(event.Envelope{Kind: event.KindGuildCreate, Author: c.owner, Seq: 1, TS: 100, SN: 1},
		&event.GuildCreate{Name: "g", Owner: c.owner})
	if err != nil {
		t.Fatal(err)
	}
	c.g, err = New(gen)
	if err != nil {
		t.Fatal(err)
	}
	c.gen, c.gid, c.seq = gen, gen.ID, 1
	return c
}

// state signs the next state event and applies it.
func (c *chain) state(kind event.Kind, channel event.ID, body any) *event.Event {
	c.t.Helper()
	c.seq++
	info := c.g.Info()
	ev, err := c.home.Sign(event.Envelope{Kind: kind, Guild: c.gid, Channel: channel, Author: c.owner,
		Seq: c.seq, TS: event.HLC(c.seq * 100), SN: info.SN + 1, Prev: info.Head}, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.g.Apply(ev); err != nil {
		c.t.Fatalf("apply %s: %v", kind, err)
	}
	return ev
}

func (c *chain) msg(s *event.Signer, name string, kind event.Kind, channel event.ID, ts event.HLC, sn uint64, body any) *event.Event {
	c.t.Helper()
	ev, err := s.Sign(event.Envelope{Kind: kind, Guild: c.gid, Channel: channel,
		Author: event.User{Node: s.Origin(), Name: name}, Seq: 1, TS: ts, SN: sn}, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return ev
}

func TestApplyOrder(t *testing.T) {
	c := newChain(t)
	ch := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "general"})
	info := c.g.Info()
	if info.SN != 2 || info.Head != ch.ID {
		t.Fatalf("head %+v", info)
	}
	// A gap, a replay, a broken chain and a foreign signer.
	mk := func(s *event.Signer, sn uint64, prev event.ID) *event.Event {
		ev, err := s.Sign(event.Envelope{Kind: event.KindGuildUpdate, Guild: c.gid, Author: c.owner, Seq: 9, TS: 1, SN: sn, Prev: prev},
			&event.GuildUpdate{Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	for _, tc := range []struct {
		name string
		ev   *event.Event
		want error
	}{
		{"gap", mk(c.home, 4, ch.ID), ErrNotYet},
		{"stale", mk(c.home, 2, ch.ID), ErrStale},
		{"bad prev", mk(c.home, 3, c.gid), ErrInvalid},
		{"not home", mk(signer(t), 3, ch.ID), ErrForbidden},
	} {
		if err := c.g.Apply(tc.ev); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestCheckMessage(t *testing.T) {
	c := newChain(t)
	bobNode, eveNode := signer(t), signer(t)
	bob := event.User{Node: bobNode.Origin(), Name: "bob"}
	general := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "general"}).ID
	locked := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "announcements"}).ID
	voice := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "voice", Type: event.ChannelVoice}).ID
	c.state(event.KindChannelOverwrite, locked, &event.ChannelOverwrite{Target: []byte(c.gid), Type: event.OverwriteRole, Deny: PermSendMessages})
	c.state(event.KindMemberJoin, "", &event.MemberJoin{User: bob})
	joinedAt := event.HLC(c.seq * 100)
	sn := c.g.Info().SN
	hi := &event.MessageCreate{Content: "hi"}

	cases := []struct {
		name string
		ev   *event.Event
		want error
	}{
		{"ok", c.msg(bobNode, "bob", event.KindMessageCreate, general, joinedAt+1, sn, hi), nil},
		{"owner in locked", c.msg(c.home, "alice", event.KindMessageCreate, locked, joinedAt+1, sn, hi), nil},
		{"locked channel", c.msg(bobNode, "bob", event.KindMessageCreate, locked, joinedAt+1, sn, hi), ErrForbidden},
		{"voice channel", c.msg(bobNode, "bob", event.KindMessageCreate, voice, joinedAt+1, sn, hi), ErrForbidden},
		{"non-member", c.msg(eveNode, "eve", event.KindMessageCreate, general, joinedAt+1, sn, hi), ErrForbidden},
		{"non-member, origin ahead", c.msg(eveNode, "eve", event.KindMessageCreate, general, joinedAt+1, sn+1, hi), ErrNotYet},
		{"before join", c.msg(bobNode, "bob", event.KindMessageCreate, general, joinedAt-1, sn, hi), ErrForbidden},
		{"unknown channel", c.msg(bobNode, "bob", event.KindMessageCreate, c.gid, joinedAt+1, sn, hi), ErrForbidden},
	}
	for _, tc := range cases {
		if err := c.g.CheckMessage(tc.ev); !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	c.state(event.KindBanAdd, "", &event.BanAdd{User: bob})
	bannedAt := event.HLC(c.seq * 100)
	sn = c.g.Info().SN
	if err := c.g.CheckMessage(c.msg(bobNode, "bob", event.KindMessageCreate, general, bannedAt+1, sn, hi)); !errors.Is(err, ErrForbidden) {
		t.Errorf("banned author: %v", err)
	}
	if err := c.g.CheckMessage(c.msg(bobNode, "bob", event.KindMessageCreate, general, bannedAt-1, sn, hi)); err != nil {
		t.Errorf("message from before the ban must still validate: %v", err)
	}
	if c.g.IsMember(bob) || !c.g.Banned(bob) {
		t.Error("ban did not end membership")
	}
}

func TestPermissions(t *testing.T) {
	c := newChain(t)
	mod := c.state(event.KindRoleCreate, "", &event.RoleCreate{Name: "mod", Permissions: PermBanMembers | PermKickMembers}).ID
	general := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "general"}).ID
	n := signer(t).Origin()
	bob, carol := event.User{Node: n, Name: "bob"}, event.User{Node: n, Name: "carol"}
	c.state(event.KindMemberJoin, "", &event.MemberJoin{User: bob})
	c.state(event.KindMemberJoin, "", &event.MemberJoin{User: carol})
	c.state(event.KindMemberRoles, "", &event.MemberRoles{User: bob, Roles: []event.ID{mod}})
	target, _ := event.Marshal(carol)
	c.state(event.KindChannelOverwrite, general, &event.ChannelOverwrite{Target: target, Type: event.OverwriteMember, Deny: PermViewChannel})

	for _, tc := range []struct {
		user    event.User
		channel event.ID
		has     uint64
		hasNot  uint64
	}{
		{c.owner, general, PermAll, 0},
		{bob, "", PermBanMembers | DefaultEveryone, PermManageGuild},
		{carol, general, PermSendMessages, PermViewChannel},
		{event.User{Node: n, Name: "nobody"}, general, 0, PermViewChannel},
	} {
		p := c.g.Permissions(tc.user, tc.channel)
		if p&tc.has != tc.has || p&tc.hasNot != 0 {
			t.Errorf("%s in %s: %b", tc.user.Name, tc.channel, p)
		}
	}
	if err := c.g.Authorize(bob, event.KindBanAdd, "", &event.BanAdd{User: carol}); err != nil {
		t.Errorf("mod ban: %v", err)
	}
	if err := c.g.Authorize(carol, event.KindBanAdd, "", &event.BanAdd{User: bob}); !errors.Is(err, ErrForbidden) {
		t.Errorf("member ban: %v", err)
	}
	if err := c.g.Authorize(carol, event.KindMemberLeave, "", &event.MemberRef{User: carol}); err != nil {
		t.Errorf("self leave: %v", err)
	}
	if err := c.g.Authorize(bob, event.KindBanAdd, "", &event.BanAdd{User: c.owner}); !errors.Is(err, ErrForbidden) {
		t.Errorf("ban owner: %v", err)
	}
	if got := len(c.g.Members(event.User{}, 0)); got != 3 {
		t.Errorf("members %d", got)
	}
}

// TestMembersNamed: users of one name on any node, members now or before.
func TestMembersNamed(t *testing.T) {
	c := newChain(t)
	b1, b2 := event.User{Node: signer(t).Origin(), Name: "bob"}, event.User{Node: signer(t).Origin(), Name: "bob"}
	c.state(event.KindMemberJoin, "", &event.MemberJoin{User: b1, NodeName: "beta"})
	c.state(event.KindMemberJoin, "", &event.MemberJoin{User: b2, NodeName: "gamma"})
	c.state(event.KindBanAdd, "", &event.BanAdd{User: b2})
	got := c.g.MembersNamed("bob")
	if len(got) != 2 {
		t.Fatalf("MembersNamed(bob) = %+v, want both bobs", got)
	}
	for _, m := range got {
		if left := m.Left != 0; left != (m.User == b2) || (m.User == b1) != (m.NodeName == "beta") {
			t.Errorf("member %+v", m)
		}
	}
	if got := c.g.MembersNamed("carol"); len(got) != 0 {
		t.Fatalf("MembersNamed(carol) = %+v", got)
	}
}

// TestGuildDelete checks [EVT-062]: after guild.delete, messages written before it still
// validate (catch-up), later ones and further state events do not, and nothing is authorised.
func TestGuildDelete(t *testing.T) {
	c := newChain(t)
	bobNode := signer(t)
	bob := event.User{Node: bobNode.Origin(), Name: "bob"}
	general := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "general"}).ID
	c.state(event.KindMemberJoin, "", &event.MemberJoin{User: bob})
	before := event.HLC(c.seq * 100)
	c.state(event.KindGuildDelete, "", &event.Empty{})
	deletedAt := c.g.Info().Deleted
	if deletedAt == 0 {
		t.Fatal("guild.delete did not mark the guild deleted")
	}
	sn := c.g.Info().SN
	hi := &event.MessageCreate{Content: "hi"}
	if err := c.g.CheckMessage(c.msg(bobNode, "bob", event.KindMessageCreate, general, before+1, sn, hi)); err != nil {
		t.Fatalf("a message from before the deletion: %v", err)
	}
	if err := c.g.CheckMessage(c.msg(bobNode, "bob", event.KindMessageCreate, general, deletedAt+1, sn, hi)); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a message after the deletion: %v, want ErrForbidden", err)
	}
	info := c.g.Info()
	late, err := c.home.Sign(event.Envelope{Kind: event.KindGuildUpdate, Guild: c.gid, Author: c.owner,
		Seq: c.seq + 1, TS: deletedAt + 100, SN: info.SN + 1, Prev: info.Head}, &event.GuildUpdate{Name: "again"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.g.Apply(late); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a state event after the deletion: %v, want ErrInvalid", err)
	}
	if err := c.g.Authorize(c.owner, event.KindChannelCreate, "", &event.ChannelCreate{Name: "x"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("authorised in a deleted guild: %v", err)
	}
}
