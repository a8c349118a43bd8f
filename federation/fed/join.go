package fed

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/guild"
	"github.com/hearth-chat/hearth/federation/proto"
	fsync "github.com/hearth-chat/hearth/federation/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// InvitePrefix starts every invite code [FED-050].
const InvitePrefix = "hearth:"

// Invite is a decoded invite code: what a node needs to reach the home node
// and join the guild.
type Invite struct {
	Guild event.ID       `cbor:"0,keyasint"`
	Code  string         `cbor:"1,keyasint"`
	Home  event.Node     `cbor:"2,keyasint"`
	Addrs [][]byte       `cbor:"3,keyasint"`
	addrs []ma.Multiaddr `cbor:"-"`
}

// String encodes the invite as "hearth:" + base64url(CBOR).
func (inv Invite) String() string {
	b, err := event.Marshal(&inv)
	if err != nil {
		return ""
	}
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HomeAddrs are the home node's addresses carried by the invite.
func (inv Invite) HomeAddrs() []ma.Multiaddr { return inv.addrs }

// ParseInvite decodes an invite code.
func ParseInvite(s string) (Invite, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), InvitePrefix)
	if !ok {
		return Invite{}, fmt.Errorf("fed: invite: missing %q prefix", InvitePrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return Invite{}, fmt.Errorf("fed: invite: %w", err)
	}
	var inv Invite
	if err := event.UnmarshalCanonical(b, &inv); err != nil {
		return Invite{}, fmt.Errorf("fed: invite: %w", err)
	}
	inv.addrs = fsync.ParseAddrBytes(inv.Addrs)
	if len(inv.addrs) == 0 || inv.Code == "" {
		return Invite{}, errors.New("fed: invite: no home address or code")
	}
	return inv, nil
}

// CreateInvite creates an invite code on behalf of the local user actor.
// maxUses 0 is unlimited; expiresMs 0 (unix ms) never expires.
func (s *Service) CreateInvite(ctx context.Context, guildID event.ID, actor string, maxUses uint32, expiresMs uint64) (string, error) {
	rt := s.guild(guildID)
	if rt == nil {
		return "", ErrUnknownGuild
	}
	var rnd [10]byte
	_, _ = rand.Read(rnd[:])
	code := strings.ToLower(strings.TrimRight(b32(rnd[:]), "="))
	if _, err := s.Moderate(ctx, guildID, actor, event.KindInviteCreate, "", &event.InviteCreate{Code: code, MaxUses: maxUses, Expires: expiresMs}); err != nil {
		return "", err
	}
	home := rt.st.Info().Home
	var addrs []ma.Multiaddr
	if home == s.self {
		addrs = s.h.Addrs()
	} else {
		addrs = s.h.Peerstore().Addrs(peer.ID(home))
	}
	if len(addrs) == 0 {
		return "", errors.New("fed: create invite: no known address for the home node") // [FED-050]
	}
	return Invite{Guild: guildID, Code: code, Home: home, Addrs: fsync.AddrBytes(addrs)}.String(), nil
}

func b32(b []byte) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var sb strings.Builder
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			sb.WriteByte(alphabet[(acc>>(bits-5))&31])
			bits -= 5
		}
	}
	if bits > 0 {
		sb.WriteByte(alphabet[(acc<<(5-bits))&31])
	}
	return sb.String()
}

// Snapshot is what Join returns: enough to show the guild at once
// (spec/federation.md §6). Members holds the first page only; read more from
// the Guild state. When the home node answered with a state snapshot
// [FED-102], Members holds every current member: no member.join before the
// snapshot reaches OnEvent.
type Snapshot struct {
	Info     guild.Info
	Channels []guild.Channel
	Roles    []guild.Role
	Members  []guild.Member
	// Recent are recent message events of the guild's channels, oldest
	// first per channel.
	Recent []*event.Event
}

// SnapshotMembers is the size of the first page of members in a Snapshot.
const SnapshotMembers = 100

// Join joins the guild of an invite for the local user name: it asks the
// home node to admit the user, verifies and stores the state chain and
// recent messages it returns, connects to the member nodes and subscribes
// to the guild's topics [FED-052]..[FED-055]. On the home node itself the
// user is admitted directly, under the same checks, and the Snapshot has no
// Recent (this node holds the history already).
func (s *Service) Join(ctx context.Context, invite, name string) (*Snapshot, error) {
	inv, err := ParseInvite(invite)
	if err != nil {
		return nil, err
	}
	if inv.Home == s.self {
		return s.joinHere(ctx, inv, name)
	}
	home := peer.ID(inv.Home)
	s.h.Peerstore().AddAddrs(home, inv.addrs, peerstore.PermanentAddrTTL)
	if err := s.h.Connect(ctx, peer.AddrInfo{ID: home}); err != nil {
		return nil, fmt.Errorf("fed: join: reach home node: %w", err)
	}
	var resp proto.JoinResponse
	req := &proto.JoinRequest{Guild: inv.Guild, Code: inv.Code, Name: name, NodeName: s.cfg.NodeName, Addrs: fsync.AddrBytes(s.h.Addrs())}
	if rt := s.guild(inv.Guild); rt != nil {
		req.Have = rt.st.Info().SN // only the state above it, not every join so far [FED-068]
	}
	if err := proto.Call(ctx, s.h, home, proto.Join, req, &resp); err != nil {
		var pe *proto.Error
		if errors.As(err, &pe) && pe.Status == proto.Forbidden {
			return nil, fmt.Errorf("%w: %s", ErrForbidden, pe.Msg)
		}
		return nil, fmt.Errorf("fed: join: %w", err)
	}
	if err := s.adoptState(inv.Guild, inv.Home, resp.State, resp.Snapshot); err != nil {
		return nil, err
	}
	if err := s.store.SetHomeAddrs(inv.Guild, fsync.AddrBytes(inv.addrs)); err != nil {
		return nil, fmt.Errorf("fed: join: %w", err)
	}
	rt := s.guild(inv.Guild)
	if _, err := (*applier)(s).Apply(ctx, inv.Guild, home, resp.Recent); err != nil {
		return nil, fmt.Errorf("fed: join: recent messages: %w", err)
	}
	// Sync may have queued some of them first: make those durable too, then
	// return everything that is now held.
	s.flush(rt)
	if err := s.store.Sync(); err != nil {
		return nil, fmt.Errorf("fed: join: %w", err)
	}
	var recent []*event.Event
	for _, raw := range resp.Recent {
		if id, ok := event.PeekID(raw); ok {
			if ev, err := s.store.Get(id); err == nil {
				recent = append(recent, ev)
			}
		}
	}
	for _, p := range resp.Peers {
		if pid := peer.ID(p.ID); pid != s.h.ID() {
			s.h.Peerstore().AddAddrs(pid, fsync.ParseAddrBytes(p.Addrs), peerstore.PermanentAddrTTL)
		}
	}
	s.goOwned(func() { s.connectMembers(s.ctx) })
	s.syncer.Trigger(inv.Guild, home)
	members := SnapshotMembers
	if resp.Snapshot != nil {
		members = 0 // all
	}
	return &Snapshot{Info: rt.st.Info(), Channels: rt.st.Channels(), Roles: rt.st.Roles(),
		Members: rt.st.Members(event.User{}, members), Recent: recent}, nil
}

// joinHere admits a local user to a guild homed on this node [FED-056].
func (s *Service) joinHere(ctx context.Context, inv Invite, name string) (*Snapshot, error) {
	rt := s.guild(inv.Guild)
	if rt == nil {
		return nil, fmt.Errorf("%w: unknown invite", ErrForbidden)
	}
	if !event.ValidName(name) {
		return nil, fmt.Errorf("fed: join: invalid name %q", name)
	}
	user := event.User{Node: s.self, Name: name}
	if !rt.st.IsMember(user) {
		req := &proto.JoinRequest{Guild: inv.Guild, Code: inv.Code, Name: name, NodeName: s.cfg.NodeName, Addrs: fsync.AddrBytes(s.h.Addrs())}
		if e := s.admit(ctx, rt, user, req); e != nil {
			if e.Status == proto.Forbidden {
				return nil, fmt.Errorf("%w: %s", ErrForbidden, e.Msg)
			}
			return nil, fmt.Errorf("fed: join: %s", e.Msg)
		}
	}
	return &Snapshot{Info: rt.st.Info(), Channels: rt.st.Channels(), Roles: rt.st.Roles(),
		Members: rt.st.Members(event.User{}, SnapshotMembers)}, nil
}

// adoptState verifies a state chain from the home node and applies what is
// new: all of it for a guild we did not hold, starting from snap when the home
// node sent one [FED-103]; for one we hold, the chain may be the tail above our
// state head [FED-068] (and a snapshot is not needed).
func (s *Service) adoptState(guildID event.ID, home event.Node, chain [][]byte, snap *proto.SignedSnapshot) error {
	if s.guild(guildID) == nil {
		if len(chain) == 0 {
			return errors.New("fed: join: empty state chain")
		}
		if err := s.startGuild(guildID, home, chain[0], snap); err != nil {
			return err
		}
		chain = chain[1:]
	}
	for _, raw := range chain {
		if _, err := s.ingest(guildID, peer.ID(home), raw, false); err != nil && !errors.Is(err, errIgnore) {
			return fmt.Errorf("fed: join: state: %w", err)
		}
	}
	return nil
}

// serveJoin admits users with valid invites on the home node [FED-051]..[FED-053].
func (s *Service) serveJoin() {
	fail := func(e *proto.Error) *proto.JoinResponse { return &proto.JoinResponse{Status: e.Status, Error: e.Msg} }
	proto.Handle(s.ctx, s.h, proto.Join, s.log, func(ctx context.Context, from peer.ID, req *proto.JoinRequest) *proto.JoinResponse {
		rt := s.guild(req.Guild)
		if rt == nil {
			// No such guild here means no such invite either [FED-051].
			return fail(proto.Fail(proto.Forbidden, "unknown invite"))
		}
		if rt.st.Info().Home != s.self {
			return fail(proto.Fail(proto.NotFound, "not the home node of this guild"))
		}
		user := event.User{Node: event.Node(from), Name: req.Name}
		if !event.ValidName(req.Name) {
			return fail(proto.Fail(proto.BadRequest, "invalid name"))
		}
		if len(req.Addrs) > event.MaxAddrs {
			req.Addrs = req.Addrs[:event.MaxAddrs]
		}
		if !rt.st.IsMember(user) {
			if err := s.admit(ctx, rt, user, req); err != nil {
				return fail(err)
			}
		}
		return s.joinResponse(rt, from, req.Have)
	}, fail)
}

func (s *Service) admit(ctx context.Context, rt *guildRT, user event.User, req *proto.JoinRequest) *proto.Error {
	inv, ok := rt.st.Invite(req.Code)
	switch {
	case !ok, rt.st.Info().Deleted != 0:
		return proto.Fail(proto.Forbidden, "unknown or revoked invite")
	case inv.Expires != 0 && uint64(s.now().UnixMilli()) >= inv.Expires:
		return proto.Fail(proto.Forbidden, "invite expired")
	case inv.MaxUses != 0 && inv.Uses >= inv.MaxUses:
		return proto.Fail(proto.Forbidden, "invite used up")
	case rt.st.Banned(user):
		return proto.Fail(proto.Forbidden, "banned")
	}
	body := &event.MemberJoin{User: user, NodeName: req.NodeName, Addrs: req.Addrs, Invite: req.Code}
	if len(body.NodeName) > event.MaxNodeNameLen {
		body.NodeName = body.NodeName[:event.MaxNodeNameLen]
	}
	if _, err := s.issue(ctx, rt, user, event.KindMemberJoin, "", body); err != nil {
		return proto.Fail(proto.BadRequest, "%v", err)
	}
	return nil
}

// RecentPerChannel is how many recent messages per channel a join carries.
const RecentPerChannel = 50

// joinResponse answers a join of a node that holds the state up to sn have (0: none): the
// state events above it [FED-053] [FED-068], or for a node new to a guild with a long chain
// the genesis event and a signed snapshot [FED-102]; recent messages and the member nodes.
func (s *Service) joinResponse(rt *guildRT, to peer.ID, have uint64) *proto.JoinResponse {
	resp := &proto.JoinResponse{}
	var err error
	if have == 0 && rt.st.Info().SN > snapshotAbove {
		var gen []byte
		if gen, err = s.store.Raw(rt.id); err == nil {
			resp.State = [][]byte{gen}
			resp.Snapshot, err = s.signedSnapshot(rt)
		}
	} else {
		resp.State, err = s.store.StateChain(rt.id, have+1)
	}
	if err != nil {
		return &proto.JoinResponse{Status: proto.Unavailable, Error: "state unavailable"}
	}
	for _, c := range rt.st.Channels() {
		evs, err := s.store.History(rt.id, c.ID, 0, RecentPerChannel)
		if err != nil {
			continue
		}
		for i := len(evs) - 1; i >= 0; i-- { // oldest first
			resp.Recent = append(resp.Recent, evs[i])
		}
	}
	for _, n := range rt.st.Nodes() {
		p := peer.ID(n.ID)
		if p == to || p == s.h.ID() {
			continue
		}
		addrs := n.Addrs
		if known := s.h.Peerstore().Addrs(p); len(known) > 0 {
			addrs = fsync.AddrBytes(known)
		}
		resp.Peers = append(resp.Peers, proto.PeerAddrs{ID: n.ID, Addrs: addrs})
	}
	return resp
}

// History returns up to limit message events of a channel older than
// before (0: the newest), newest first. It reads the local store and, when
// that has fewer than limit, asks connected member nodes for older history,
// validating and storing what they return (backfill on demand).
func (s *Service) History(ctx context.Context, guildID, channel event.ID, before event.HLC, limit int) ([]*event.Event, error) {
	if limit <= 0 || limit > fsync.MaxHistory {
		limit = fsync.MaxHistory
	}
	rt := s.guild(guildID)
	if rt == nil {
		return nil, ErrUnknownGuild
	}
	raws, err := s.store.History(guildID, channel, before, limit)
	if err != nil {
		return nil, fmt.Errorf("fed: history: %w", err)
	}
	if len(raws) < limit {
		for _, p := range s.syncPeers(guildID) {
			remote, err := fsync.History(ctx, s.h, p, guildID, channel, before, limit)
			if err != nil {
				continue
			}
			if _, err := (*applier)(s).Apply(ctx, guildID, p, remote); err != nil {
				return nil, fmt.Errorf("fed: history: %w", err)
			}
			if raws, err = s.store.History(guildID, channel, before, limit); err != nil {
				return nil, fmt.Errorf("fed: history: %w", err)
			}
			if len(raws) >= limit {
				break
			}
		}
	}
	return decodeAll(raws, "history")
}
