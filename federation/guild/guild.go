// Package guild folds a guild's home-signed state events (spec/events.md
// §6.1) into the state every receiver validates against: channels, roles,
// overwrites, members, bans, invites and the member nodes. It also computes
// Discord-style permissions. It does no I/O; callers feed it decoded,
// signature-checked events.
package guild

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hearth-chat/hearth/federation/event"
)

// Errors from Apply and the Check methods. ErrNotYet means the decision needs
// state the caller does not hold yet (ignore and sync) [EVT-073]; ErrInvalid
// and ErrForbidden mean the event is provably bad (reject).
var (
	ErrNotYet    = errors.New("guild: state not yet known")
	ErrStale     = errors.New("guild: state event already applied")
	ErrInvalid   = errors.New("guild: invalid state event")
	ErrForbidden = errors.New("guild: forbidden")
)

// Permission bits (Discord values, spec/events.md §6).
const (
	PermCreateInvite    uint64 = 1 << 0
	PermKickMembers     uint64 = 1 << 1
	PermBanMembers      uint64 = 1 << 2
	PermAdministrator   uint64 = 1 << 3
	PermManageChannels  uint64 = 1 << 4
	PermManageGuild     uint64 = 1 << 5
	PermAddReactions    uint64 = 1 << 6
	PermViewChannel     uint64 = 1 << 10
	PermSendMessages    uint64 = 1 << 11
	PermManageMessages  uint64 = 1 << 13
	PermReadHistory     uint64 = 1 << 16
	PermManageNicknames uint64 = 1 << 27
	PermManageRoles     uint64 = 1 << 28

	// PermAll is what owners and administrators hold.
	PermAll = ^uint64(0)
	// DefaultEveryone is the @everyone role's permissions at genesis.
	DefaultEveryone = PermCreateInvite | PermAddReactions | PermViewChannel | PermSendMessages | PermReadHistory
)

// Channel is a channel's current state.
type Channel struct {
	ID         event.ID
	Name       string
	Type       uint8
	Topic      string
	Position   uint32
	Parent     event.ID // the category, or ""
	Overwrites []Overwrite
}

// Overwrite is a channel permission overwrite; Target is a role ID or the
// CBOR of an event.User (Type event.OverwriteMember).
type Overwrite struct {
	Target string
	Type   uint8
	Allow  uint64
	Deny   uint64
}

// Role is a role; the @everyone role's ID is the guild ID.
type Role struct {
	ID          event.ID
	Name        string
	Permissions uint64
	Position    uint32
	Color       uint32
	Hoist       bool
	Mentionable bool
}

// Member is a membership. Left is zero while the user is a member; after a
// leave, kick or ban the record stays so that earlier messages still validate.
type Member struct {
	User     event.User
	Roles    []event.ID
	NodeName string
	Joined   event.HLC
	Left     event.HLC
	// Profile is how the member is shown (member.profile); nil until one is set.
	Profile *event.MemberProfile
}

// Invite is an invite code; MaxUses 0 is unlimited, Expires 0 (unix ms) never.
type Invite struct {
	Code    string
	MaxUses uint32
	Expires uint64
	Uses    uint32
	Creator event.User
}

// Node is a member node: one that has at least one current member.
type Node struct {
	ID      event.Node
	Name    string
	Addrs   [][]byte
	Members int
}

// Info is the guild's identity and chain head.
type Info struct {
	ID       event.ID
	Name     string
	Home     event.Node
	HomeName string
	Owner    event.User
	// DM is set for a direct conversation (event.GuildCreate.DM).
	DM bool
	// Deleted is the time of the guild.delete event; zero while the guild exists.
	Deleted event.HLC
	// SN and Head are the number and ID of the last applied state event.
	SN   uint64
	Head event.ID
}

// Guild is the folded state of one guild. It is safe for concurrent use:
// validators read it while one writer applies state events.
type Guild struct {
	mu       sync.RWMutex
	info     Info
	channels map[event.ID]*Channel
	roles    map[event.ID]*Role
	members  map[event.User]*Member
	bans     map[event.User]event.HLC
	invites  map[string]*Invite
	nodes    map[event.Node]*Node
	// former holds nodes that had members once but have none now.
	former map[event.Node]bool
	// baseSN and baseHead name the snapshot the guild started from
	// (FromSnapshot); baseSN is 0 for a guild started from its genesis.
	baseSN   uint64
	baseHead event.ID
}

// New starts a guild from its genesis event, which must be a decoded,
// verified guild.create.
func New(genesis *event.Event) (*Guild, error) {
	b, ok := genesis.Body.(*event.GuildCreate)
	if !ok || genesis.Kind != event.KindGuildCreate {
		return nil, fmt.Errorf("%w: not a genesis event", ErrInvalid)
	}
	g := &Guild{
		info: Info{ID: genesis.ID, Name: b.Name, Home: genesis.Origin, HomeName: b.NodeName,
			Owner: b.Owner, DM: b.DM, SN: 1, Head: genesis.ID},
		channels: map[event.ID]*Channel{},
		roles:    map[event.ID]*Role{genesis.ID: {ID: genesis.ID, Name: "@everyone", Permissions: DefaultEveryone}},
		members:  map[event.User]*Member{},
		bans:     map[event.User]event.HLC{},
		invites:  map[string]*Invite{},
		nodes:    map[event.Node]*Node{},
		former:   map[event.Node]bool{},
	}
	g.join(b.Owner, b.NodeName, nil, genesis.TS)
	return g, nil
}

// Info returns the guild's identity and state head.
func (g *Guild) Info() Info {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.info
}

// Apply folds the next state event into the guild [EVT-042]. It returns
// ErrStale for sn at or below the head, ErrNotYet for a gap, ErrInvalid for
// events that can never apply (wrong signer, broken chain, unknown targets).
func (g *Guild) Apply(ev *event.Event) error {
	if ev.Kind.Class() != event.ClassState || ev.Kind == event.KindGuildCreate {
		return fmt.Errorf("%w: %s is not a state change", ErrInvalid, ev.Kind)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if ev.Guild != g.info.ID {
		return fmt.Errorf("%w: other guild", ErrInvalid)
	}
	if ev.Origin != g.info.Home {
		return fmt.Errorf("%w: state event not signed by the home node", ErrForbidden) // [EVT-043]
	}
	switch {
	case ev.SN <= g.info.SN:
		return ErrStale
	case g.info.Deleted != 0:
		return fmt.Errorf("%w: the guild is deleted", ErrInvalid) // [EVT-062]
	case ev.SN > g.info.SN+1:
		return fmt.Errorf("%w: state %d, have %d", ErrNotYet, ev.SN, g.info.SN)
	case ev.Prev != g.info.Head:
		return fmt.Errorf("%w: prev does not match the chain", ErrInvalid)
	}
	if err := g.fold(ev); err != nil {
		return err
	}
	g.info.SN, g.info.Head = ev.SN, ev.ID
	return nil
}

// checkParent accepts no parent or a category of the guild [EVT-063].
func (g *Guild) checkParent(parent event.ID) error {
	if parent == "" {
		return nil
	}
	if p := g.channels[parent]; p == nil || p.Type != event.ChannelCategory {
		return fmt.Errorf("%w: the parent is not a category of the guild", ErrInvalid)
	}
	return nil
}

func (g *Guild) fold(ev *event.Event) error {
	switch b := ev.Body.(type) {
	case *event.GuildUpdate:
		g.info.Name = b.Name
	case *event.ChannelCreate:
		if err := g.checkParent(b.Parent); err != nil {
			return err
		}
		g.channels[ev.ID] = &Channel{ID: ev.ID, Name: b.Name, Type: b.Type, Topic: b.Topic, Position: b.Position, Parent: b.Parent}
	case *event.ChannelUpdate:
		c, ok := g.channels[ev.Channel]
		if !ok {
			return fmt.Errorf("%w: unknown channel", ErrInvalid) // [EVT-060]
		}
		if b.Parent != "" && c.Type == event.ChannelCategory {
			return fmt.Errorf("%w: a category in a category", ErrInvalid) // [EVT-063]
		}
		if err := g.checkParent(b.Parent); err != nil {
			return err
		}
		c.Name, c.Topic, c.Position, c.Parent = b.Name, b.Topic, b.Position, b.Parent
	case *event.Empty:
		if ev.Kind == event.KindGuildDelete {
			g.info.Deleted = ev.TS
			return nil
		}
		// channel.delete
		if _, ok := g.channels[ev.Channel]; !ok {
			return fmt.Errorf("%w: unknown channel", ErrInvalid)
		}
		delete(g.channels, ev.Channel)
		for _, c := range g.channels {
			if c.Parent == ev.Channel {
				c.Parent = "" // a deleted category's channels stay, outside any category
			}
		}
	case *event.ChannelOverwrite:
		c, ok := g.channels[ev.Channel]
		if !ok {
			return fmt.Errorf("%w: unknown channel", ErrInvalid)
		}
		if b.Type == event.OverwriteRole && g.roles[event.ID(b.Target)] == nil {
			return fmt.Errorf("%w: unknown role", ErrInvalid)
		}
		ow := Overwrite{Target: string(b.Target), Type: b.Type, Allow: b.Allow, Deny: b.Deny}
		i := slices.IndexFunc(c.Overwrites, func(o Overwrite) bool { return o.Target == ow.Target && o.Type == ow.Type })
		if i >= 0 {
			c.Overwrites[i] = ow
		} else {
			c.Overwrites = append(c.Overwrites, ow)
		}
	case *event.RoleCreate:
		g.roles[ev.ID] = &Role{ID: ev.ID, Name: b.Name, Permissions: b.Permissions, Position: b.Position, Color: b.Color, Hoist: b.Hoist, Mentionable: b.Mentionable}
	case *event.RoleUpdate:
		r, ok := g.roles[b.Role]
		if !ok {
			return fmt.Errorf("%w: unknown role", ErrInvalid)
		}
		r.Name, r.Permissions, r.Position = b.Name, b.Permissions, b.Position
		r.Color, r.Hoist, r.Mentionable = b.Color, b.Hoist, b.Mentionable
	case *event.RoleRef: // role.delete
		if _, ok := g.roles[b.Role]; !ok || b.Role == g.info.ID {
			return fmt.Errorf("%w: unknown or undeletable role", ErrInvalid)
		}
		delete(g.roles, b.Role)
		for _, m := range g.members {
			m.Roles = slices.DeleteFunc(m.Roles, func(r event.ID) bool { return r == b.Role })
		}
	case *event.MemberJoin:
		if _, banned := g.bans[b.User]; banned {
			return fmt.Errorf("%w: banned user", ErrInvalid) // [EVT-061]
		}
		if inv := g.invites[b.Invite]; inv != nil {
			inv.Uses++
		}
		g.join(b.User, b.NodeName, b.Addrs, ev.TS)
	case *event.MemberRef:
		switch ev.Kind {
		case event.KindMemberLeave:
			g.leave(b.User, ev.TS)
		case event.KindBanRemove:
			delete(g.bans, b.User)
		}
	case *event.MemberRoles:
		m := g.members[b.User]
		if m == nil || m.Left != 0 {
			return fmt.Errorf("%w: not a member", ErrInvalid)
		}
		for _, r := range b.Roles {
			if g.roles[r] == nil {
				return fmt.Errorf("%w: unknown role", ErrInvalid)
			}
		}
		m.Roles = slices.Clone(b.Roles)
	case *event.MemberProfile:
		m := g.members[b.User]
		if m == nil || m.Left != 0 {
			return fmt.Errorf("%w: not a member", ErrInvalid)
		}
		p := *b
		m.Profile = &p
	case *event.BanAdd:
		g.bans[b.User] = ev.TS
		g.leave(b.User, ev.TS)
	case *event.InviteCreate:
		g.invites[b.Code] = &Invite{Code: b.Code, MaxUses: b.MaxUses, Expires: b.Expires, Creator: ev.Author}
	case *event.InviteRevoke:
		delete(g.invites, b.Code)
	default:
		return fmt.Errorf("%w: body %T", ErrInvalid, ev.Body)
	}
	return nil
}

func (g *Guild) join(u event.User, nodeName string, addrs [][]byte, ts event.HLC) {
	if m := g.members[u]; m != nil && m.Left == 0 {
		return
	}
	g.members[u] = &Member{User: u, NodeName: nodeName, Joined: ts}
	n := g.nodes[u.Node]
	if n == nil {
		n = &Node{ID: u.Node}
		g.nodes[u.Node] = n
	}
	n.Members++
	if nodeName != "" {
		n.Name = nodeName
	}
	if len(addrs) > 0 {
		n.Addrs = addrs
	}
}

func (g *Guild) leave(u event.User, ts event.HLC) {
	m := g.members[u]
	if m == nil || m.Left != 0 {
		return
	}
	m.Left = ts
	if n := g.nodes[u.Node]; n != nil {
		if n.Members--; n.Members <= 0 {
			delete(g.nodes, u.Node)
			g.former[u.Node] = true
		}
	}
}

// Member returns u's membership record, current or past.
func (g *Guild) Member(u event.User) (Member, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	m, ok := g.members[u]
	if !ok {
		return Member{}, false
	}
	c := *m
	c.Roles = slices.Clone(m.Roles)
	return c, true
}

// MembersNamed returns the membership records, current or past, of the users called name
// on any node (how a node resolves a remote user it knows only as name@node-name).
func (g *Guild) MembersNamed(name string) []Member {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []Member
	for u, m := range g.members {
		if u.Name == name {
			c := *m
			c.Roles = slices.Clone(m.Roles)
			out = append(out, c)
		}
	}
	return out
}

// IsMember reports whether u is a current member.
func (g *Guild) IsMember(u event.User) bool {
	m, ok := g.Member(u)
	return ok && m.Left == 0
}

// Banned reports whether u is banned.
func (g *Guild) Banned(u event.User) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.bans[u]
	return ok
}

// Members returns up to limit current members ordered by (node, name),
// starting after the given user (zero User: from the start). limit <= 0
// means all.
func (g *Guild) Members(after event.User, limit int) []Member {
	g.mu.RLock()
	var out []Member
	for _, m := range g.members {
		if m.Left == 0 && (after == event.User{} || userLess(after, m.User)) {
			c := *m
			c.Roles = slices.Clone(m.Roles)
			out = append(out, c)
		}
	}
	g.mu.RUnlock()
	slices.SortFunc(out, func(a, b Member) int {
		if userLess(a.User, b.User) {
			return -1
		}
		return 1
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

func userLess(a, b event.User) bool {
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	return a.Name < b.Name
}

// Channels returns the channels ordered by position then ID.
func (g *Guild) Channels() []Channel {
	g.mu.RLock()
	out := make([]Channel, 0, len(g.channels))
	for _, c := range g.channels {
		cc := *c
		cc.Overwrites = slices.Clone(c.Overwrites)
		out = append(out, cc)
	}
	g.mu.RUnlock()
	slices.SortFunc(out, func(a, b Channel) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Channel returns one channel.
func (g *Guild) Channel(id event.ID) (Channel, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	c, ok := g.channels[id]
	if !ok {
		return Channel{}, false
	}
	cc := *c
	cc.Overwrites = slices.Clone(c.Overwrites)
	return cc, true
}

// Roles returns the roles ordered by position then ID.
func (g *Guild) Roles() []Role {
	g.mu.RLock()
	out := make([]Role, 0, len(g.roles))
	for _, r := range g.roles {
		out = append(out, *r)
	}
	g.mu.RUnlock()
	slices.SortFunc(out, func(a, b Role) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Nodes returns the member nodes (the home node included while it has members).
func (g *Guild) Nodes() []Node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]Node, 0, len(g.nodes))
	for _, n := range g.nodes {
		out = append(out, *n)
	}
	return out
}

// HasNode reports whether n is the home node or has a current member.
func (g *Guild) HasNode(n event.Node) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.nodes[n]
	return ok || n == g.info.Home
}

// FormerNode reports whether n had members in the guild but has none now
// (its users left or were banned). Such nodes may still fetch state events,
// so that they learn of their own removal.
func (g *Guild) FormerNode(n event.Node) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, current := g.nodes[n]
	return !current && g.former[n]
}

// Invite returns an invite by code.
func (g *Guild) Invite(code string) (Invite, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	inv, ok := g.invites[code]
	if !ok {
		return Invite{}, false
	}
	return *inv, true
}

// Permissions computes u's permissions in channel (zero ID: guild-level) the
// way Discord does: @everyone and role permissions, owner and ADMINISTRATOR
// get everything, then @everyone, role and member overwrites. Non-members get 0.
func (g *Guild) Permissions(u event.User, channel event.ID) uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.permissions(u, channel)
}

func (g *Guild) permissions(u event.User, channel event.ID) uint64 {
	m := g.members[u]
	if m == nil || m.Left != 0 {
		return 0
	}
	return g.permissionsOf(m, channel)
}

// permissionsOf computes m's permissions whether or not m is still a member,
// so that messages from a departed member's time in the guild validate.
func (g *Guild) permissionsOf(m *Member, channel event.ID) uint64 {
	u := m.User
	if u == g.info.Owner {
		return PermAll
	}
	perms := g.roles[g.info.ID].Permissions
	for _, r := range m.Roles {
		if role := g.roles[r]; role != nil {
			perms |= role.Permissions
		}
	}
	if perms&PermAdministrator != 0 {
		return PermAll
	}
	if channel == "" {
		return perms
	}
	c := g.channels[channel]
	if c == nil {
		return 0
	}
	var allow, deny uint64
	for _, o := range c.Overwrites { // @everyone first
		if o.Type == event.OverwriteRole && event.ID(o.Target) == g.info.ID {
			perms = perms&^o.Deny | o.Allow
		}
	}
	for _, o := range c.Overwrites {
		if o.Type == event.OverwriteRole && slices.Contains(m.Roles, event.ID(o.Target)) {
			allow |= o.Allow
			deny |= o.Deny
		}
	}
	perms = perms&^deny | allow
	if raw, err := event.Marshal(u); err == nil {
		for _, o := range c.Overwrites {
			if o.Type == event.OverwriteMember && o.Target == string(raw) {
				perms = perms&^o.Deny | o.Allow
			}
		}
	}
	return perms
}
