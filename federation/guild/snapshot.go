package guild

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/fxamacker/cbor/v2"
	"github.com/hearth-chat/hearth/federation/event"
)

// SnapshotVersion is the version of the snapshot encoding (spec/federation.md §6.2).
const SnapshotVersion = 1

// The wire form of a snapshot [FED-100]: every list sorted by its key, strictly
// ascending, so that one state has exactly one encoding.
type snapshot struct {
	V        uint64        `cbor:"0,keyasint"`
	Info     snapInfo      `cbor:"1,keyasint"`
	Channels []snapChannel `cbor:"2,keyasint,omitempty"`
	Roles    []snapRole    `cbor:"3,keyasint"`
	Members  []snapUsers   `cbor:"4,keyasint"`
	Bans     []snapBan     `cbor:"5,keyasint,omitempty"`
	Invites  []snapInvite  `cbor:"6,keyasint,omitempty"`
	Nodes    []snapNode    `cbor:"7,keyasint"`
	Former   []event.Node  `cbor:"8,keyasint,omitempty"`
}

type snapInfo struct {
	Guild    event.ID   `cbor:"0,keyasint"`
	Name     string     `cbor:"1,keyasint"`
	Home     event.Node `cbor:"2,keyasint"`
	HomeName string     `cbor:"3,keyasint,omitempty"`
	Owner    event.User `cbor:"4,keyasint"`
	DM       bool       `cbor:"5,keyasint,omitempty"`
	Deleted  event.HLC  `cbor:"6,keyasint,omitempty"`
	SN       uint64     `cbor:"7,keyasint"`
	Head     event.ID   `cbor:"8,keyasint"`
}

type snapChannel struct {
	ID         event.ID        `cbor:"0,keyasint"`
	Name       string          `cbor:"1,keyasint"`
	Type       uint8           `cbor:"2,keyasint,omitempty"`
	Topic      string          `cbor:"3,keyasint,omitempty"`
	Position   uint32          `cbor:"4,keyasint,omitempty"`
	Parent     event.ID        `cbor:"5,keyasint,omitzero"`
	Overwrites []snapOverwrite `cbor:"6,keyasint,omitempty"`
}

type snapOverwrite struct {
	Target []byte `cbor:"0,keyasint"`
	Type   uint8  `cbor:"1,keyasint,omitempty"`
	Allow  uint64 `cbor:"2,keyasint,omitempty"`
	Deny   uint64 `cbor:"3,keyasint,omitempty"`
}

type snapRole struct {
	ID          event.ID `cbor:"0,keyasint"`
	Name        string   `cbor:"1,keyasint"`
	Permissions uint64   `cbor:"2,keyasint,omitempty"`
	Position    uint32   `cbor:"3,keyasint,omitempty"`
	Color       uint32   `cbor:"4,keyasint,omitempty"`
	Hoist       bool     `cbor:"5,keyasint,omitempty"`
	Mentionable bool     `cbor:"6,keyasint,omitempty"`
}

// snapUsers are the members of one node: the node's peer ID is written once,
// not with every member (a third of a member's bytes).
type snapUsers struct {
	Node    event.Node   `cbor:"0,keyasint"`
	Members []snapMember `cbor:"1,keyasint"`
}

type snapMember struct {
	Name     string       `cbor:"0,keyasint"`
	Roles    []event.ID   `cbor:"1,keyasint,omitempty"`
	NodeName string       `cbor:"2,keyasint,omitempty"`
	Joined   event.HLC    `cbor:"3,keyasint"`
	Left     event.HLC    `cbor:"4,keyasint,omitempty"`
	Profile  *snapProfile `cbor:"5,keyasint,omitempty"`
}

type snapProfile struct {
	Nick       string          `cbor:"1,keyasint,omitempty"`
	GlobalName string          `cbor:"2,keyasint,omitempty"`
	Avatar     *event.ImageRef `cbor:"3,keyasint,omitempty"`
}

type snapBan struct {
	User event.User `cbor:"0,keyasint"`
	TS   event.HLC  `cbor:"1,keyasint"`
}

type snapInvite struct {
	Code    string     `cbor:"0,keyasint"`
	MaxUses uint32     `cbor:"1,keyasint,omitempty"`
	Expires uint64     `cbor:"2,keyasint,omitempty"`
	Uses    uint32     `cbor:"3,keyasint,omitempty"`
	Creator event.User `cbor:"4,keyasint"`
}

type snapNode struct {
	ID    event.Node `cbor:"0,keyasint"`
	Name  string     `cbor:"1,keyasint,omitempty"`
	Addrs [][]byte   `cbor:"2,keyasint,omitempty"`
}

// Snapshot encodes the folded state at the current head in deterministic CBOR
// [FED-100]: what a node needs to validate the events that follow the head
// without the state events before it. Members who left stay in it, so that their
// earlier messages still validate.
func (g *Guild) Snapshot() ([]byte, error) {
	g.mu.RLock()
	i := g.info
	sn := snapshot{V: SnapshotVersion, Info: snapInfo{Guild: i.ID, Name: i.Name, Home: i.Home, HomeName: i.HomeName,
		Owner: i.Owner, DM: i.DM, Deleted: i.Deleted, SN: i.SN, Head: i.Head}}
	for _, c := range g.channels {
		sc := snapChannel{ID: c.ID, Name: c.Name, Type: c.Type, Topic: c.Topic, Position: c.Position, Parent: c.Parent}
		for _, o := range c.Overwrites {
			sc.Overwrites = append(sc.Overwrites, snapOverwrite{Target: []byte(o.Target), Type: o.Type, Allow: o.Allow, Deny: o.Deny})
		}
		slices.SortFunc(sc.Overwrites, compareOverwrite)
		sn.Channels = append(sn.Channels, sc)
	}
	for _, r := range g.roles {
		sn.Roles = append(sn.Roles, snapRole{ID: r.ID, Name: r.Name, Permissions: r.Permissions, Position: r.Position,
			Color: r.Color, Hoist: r.Hoist, Mentionable: r.Mentionable})
	}
	members := make([]*Member, 0, len(g.members))
	for _, m := range g.members {
		members = append(members, m)
	}
	slices.SortFunc(members, func(a, b *Member) int { return compareUser(a.User, b.User) })
	for _, m := range members {
		if k := len(sn.Members); k == 0 || sn.Members[k-1].Node != m.User.Node {
			sn.Members = append(sn.Members, snapUsers{Node: m.User.Node})
		}
		sm := snapMember{Name: m.User.Name, Roles: slices.Clone(m.Roles), NodeName: m.NodeName, Joined: m.Joined, Left: m.Left}
		if p := m.Profile; p != nil {
			sm.Profile = &snapProfile{Nick: p.Nick, GlobalName: p.GlobalName, Avatar: p.Avatar}
		}
		last := &sn.Members[len(sn.Members)-1]
		last.Members = append(last.Members, sm)
	}
	for u, ts := range g.bans {
		sn.Bans = append(sn.Bans, snapBan{User: u, TS: ts})
	}
	for _, inv := range g.invites {
		sn.Invites = append(sn.Invites, snapInvite{Code: inv.Code, MaxUses: inv.MaxUses, Expires: inv.Expires, Uses: inv.Uses, Creator: inv.Creator})
	}
	for _, n := range g.nodes {
		sn.Nodes = append(sn.Nodes, snapNode{ID: n.ID, Name: n.Name, Addrs: n.Addrs})
	}
	for n := range g.former {
		if g.nodes[n] == nil {
			sn.Former = append(sn.Former, n)
		}
	}
	g.mu.RUnlock()
	slices.SortFunc(sn.Channels, func(a, b snapChannel) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(sn.Roles, func(a, b snapRole) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(sn.Bans, func(a, b snapBan) int { return compareUser(a.User, b.User) })
	slices.SortFunc(sn.Invites, func(a, b snapInvite) int { return cmp.Compare(a.Code, b.Code) })
	slices.SortFunc(sn.Nodes, func(a, b snapNode) int { return cmp.Compare(a.ID, b.ID) })
	slices.Sort(sn.Former)
	b, err := event.Marshal(&sn)
	if err != nil {
		return nil, fmt.Errorf("guild: snapshot: %w", err)
	}
	return b, nil
}

func compareUser(a, b event.User) int {
	return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Name, b.Name))
}

func compareOverwrite(a, b snapOverwrite) int {
	return cmp.Or(cmp.Compare(a.Type, b.Type), bytes.Compare(a.Target, b.Target))
}

// snapDec decodes snapshots: as strict as events, with room for the member
// list of a large guild.
var snapDec = func() cbor.DecMode {
	dm, err := event.StrictDecOptions(1 << 20).DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// FromSnapshot starts a guild from its genesis event (decoded and verified)
// and a snapshot whose home signature the caller has checked [FED-103]. It
// refuses a snapshot that is not in its one canonical encoding, does not
// belong to genesis, or is inconsistent in itself (unknown roles or parents,
// member nodes that do not match the members). The guild then applies the
// state events above the snapshot's sn, and Historical tells the ones below it.
func FromSnapshot(genesis *event.Event, data []byte) (*Guild, error) {
	gc, ok := genesis.Body.(*event.GuildCreate)
	if !ok || genesis.Kind != event.KindGuildCreate {
		return nil, fmt.Errorf("%w: not a genesis event", ErrInvalid)
	}
	var sn snapshot
	if err := snapDec.Unmarshal(data, &sn); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrInvalid, err)
	}
	if again, err := event.Marshal(&sn); err != nil || !bytes.Equal(again, data) {
		return nil, fmt.Errorf("%w: snapshot not in its canonical encoding", ErrInvalid)
	}
	bad := func(why string) (*Guild, error) { return nil, fmt.Errorf("%w: snapshot: %s", ErrInvalid, why) }
	i := sn.Info
	switch {
	case sn.V != SnapshotVersion:
		return bad("unknown version")
	case i.Guild != genesis.ID || i.Home != genesis.Origin || i.Owner != gc.Owner || i.DM != gc.DM || i.HomeName != gc.NodeName:
		return bad("does not match the genesis event")
	case i.SN == 0, i.SN == 1 && i.Head != genesis.ID, i.SN > 1 && i.Head == genesis.ID:
		return bad("head")
	case !sized(i.Name, 1, event.MaxNameLen):
		return bad("guild name")
	}
	g := &Guild{
		info: Info{ID: i.Guild, Name: i.Name, Home: i.Home, HomeName: i.HomeName, Owner: i.Owner, DM: i.DM,
			Deleted: i.Deleted, SN: i.SN, Head: i.Head},
		channels: make(map[event.ID]*Channel, len(sn.Channels)),
		roles:    make(map[event.ID]*Role, len(sn.Roles)),
		members:  make(map[event.User]*Member, len(sn.Members)),
		bans:     make(map[event.User]event.HLC, len(sn.Bans)),
		invites:  make(map[string]*Invite, len(sn.Invites)),
		nodes:    make(map[event.Node]*Node, len(sn.Nodes)),
		former:   make(map[event.Node]bool, len(sn.Former)),
		baseSN:   i.SN,
		baseHead: i.Head,
	}
	// Strictly ascending keys: no duplicates, and the order Snapshot writes.
	ascending := func(n int, cmpAt func(i int) int) bool {
		for k := 1; k < n; k++ {
			if cmpAt(k) >= 0 {
				return false
			}
		}
		return true
	}
	if !ascending(len(sn.Roles), func(k int) int { return cmp.Compare(sn.Roles[k-1].ID, sn.Roles[k].ID) }) {
		return bad("roles out of order")
	}
	for _, r := range sn.Roles {
		if !sized(r.Name, 1, event.MaxNameLen) {
			return bad("role name")
		}
		g.roles[r.ID] = &Role{ID: r.ID, Name: r.Name, Permissions: r.Permissions, Position: r.Position, Color: r.Color,
			Hoist: r.Hoist, Mentionable: r.Mentionable}
	}
	if g.roles[i.Guild] == nil {
		return bad("no @everyone role")
	}
	if !ascending(len(sn.Channels), func(k int) int { return cmp.Compare(sn.Channels[k-1].ID, sn.Channels[k].ID) }) {
		return bad("channels out of order")
	}
	for _, c := range sn.Channels {
		known := c.Type == event.ChannelText || c.Type == event.ChannelVoice || c.Type == event.ChannelCategory
		if !known || !sized(c.Name, 1, event.MaxNameLen) || !sized(c.Topic, 0, event.MaxTopicLen) {
			return bad("channel")
		}
		ch := &Channel{ID: c.ID, Name: c.Name, Type: c.Type, Topic: c.Topic, Position: c.Position, Parent: c.Parent}
		if !ascending(len(c.Overwrites), func(k int) int { return compareOverwrite(c.Overwrites[k-1], c.Overwrites[k]) }) {
			return bad("overwrites out of order")
		}
		for _, o := range c.Overwrites {
			if o.Type == event.OverwriteRole && g.roles[event.ID(o.Target)] == nil {
				return bad("overwrite of an unknown role")
			}
			ch.Overwrites = append(ch.Overwrites, Overwrite{Target: string(o.Target), Type: o.Type, Allow: o.Allow, Deny: o.Deny})
		}
		g.channels[c.ID] = ch
	}
	for _, c := range g.channels {
		if c.Parent != "" && (c.Type == event.ChannelCategory || g.checkParent(c.Parent) != nil) {
			return bad("channel parent") // [EVT-063]
		}
	}
	if !ascending(len(sn.Members), func(k int) int { return cmp.Compare(sn.Members[k-1].Node, sn.Members[k].Node) }) {
		return bad("member nodes out of order")
	}
	current := map[event.Node]int{}
	for _, users := range sn.Members {
		ms := users.Members
		if len(ms) == 0 || !ascending(len(ms), func(k int) int { return cmp.Compare(ms[k-1].Name, ms[k].Name) }) {
			return bad("members of a node empty or out of order")
		}
		for _, m := range ms {
			if !event.ValidName(m.Name) || !sized(m.NodeName, 0, event.MaxNodeNameLen) || m.Left != 0 && m.Left < m.Joined {
				return bad("member")
			}
			for _, r := range m.Roles {
				if g.roles[r] == nil {
					return bad("member role")
				}
			}
			u := event.User{Node: users.Node, Name: m.Name}
			mm := &Member{User: u, Roles: m.Roles, NodeName: m.NodeName, Joined: m.Joined, Left: m.Left}
			if p := m.Profile; p != nil {
				mm.Profile = &event.MemberProfile{User: u, Nick: p.Nick, GlobalName: p.GlobalName, Avatar: p.Avatar}
				if len(p.Nick) > event.MaxNickLen || len(p.GlobalName) > event.MaxNickLen || p.Avatar != nil && len(p.Avatar.Hash) != 32 {
					return bad("member profile") // as member.profile allows
				}
			}
			g.members[u] = mm
			if m.Left == 0 {
				current[u.Node]++
			}
		}
	}
	if !g.IsMember(i.Owner) {
		return bad("the owner is not a member")
	}
	if !ascending(len(sn.Nodes), func(k int) int { return cmp.Compare(sn.Nodes[k-1].ID, sn.Nodes[k].ID) }) || len(sn.Nodes) != len(current) {
		return bad("member nodes do not match the members")
	}
	for _, n := range sn.Nodes {
		if current[n.ID] == 0 || len(n.Addrs) > event.MaxAddrs || !sized(n.Name, 0, event.MaxNodeNameLen) {
			return bad("member nodes do not match the members")
		}
		g.nodes[n.ID] = &Node{ID: n.ID, Name: n.Name, Addrs: n.Addrs, Members: current[n.ID]}
	}
	if !ascending(len(sn.Former), func(k int) int { return cmp.Compare(sn.Former[k-1], sn.Former[k]) }) {
		return bad("former nodes out of order")
	}
	for _, n := range sn.Former {
		if current[n] != 0 {
			return bad("a former node with members")
		}
		g.former[n] = true
	}
	if !ascending(len(sn.Bans), func(k int) int { return compareUser(sn.Bans[k-1].User, sn.Bans[k].User) }) {
		return bad("bans out of order")
	}
	for _, b := range sn.Bans {
		if g.IsMember(b.User) {
			return bad("a banned member")
		}
		g.bans[b.User] = b.TS
	}
	if !ascending(len(sn.Invites), func(k int) int { return cmp.Compare(sn.Invites[k-1].Code, sn.Invites[k].Code) }) {
		return bad("invites out of order")
	}
	for _, inv := range sn.Invites {
		g.invites[inv.Code] = &Invite{Code: inv.Code, MaxUses: inv.MaxUses, Expires: inv.Expires, Uses: inv.Uses, Creator: inv.Creator}
	}
	return g, nil
}

// sized reports whether s has min..max bytes, as the event that set it had to
// (spec/events.md §6).
func sized(s string, min, max int) bool { return len(s) >= min && len(s) <= max }

// Historical reports whether ev is one of the state events at or below the
// snapshot the guild started from (FromSnapshot): signed by the home node for
// this guild, and, at the snapshot's own sn, the event it names as head. A
// node stores such events when catch-up brings them, so that its version
// vector closes, but does not apply them: the snapshot holds their effect
// [FED-104]. A guild started from its genesis has none.
func (g *Guild) Historical(ev *event.Event) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if ev.Kind.Class() != event.ClassState || ev.GuildID() != g.info.ID || ev.Origin != g.info.Home || ev.SN > g.baseSN {
		return false
	}
	return ev.SN < g.baseSN || ev.ID == g.baseHead
}

// Base is the sn of the snapshot the guild started from; 0 for a guild
// started from its genesis event.
func (g *Guild) Base() uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.baseSN
}
