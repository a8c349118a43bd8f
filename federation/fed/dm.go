package fed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/proto"
	fsync "github.com/hearth-chat/hearth/federation/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// Errors of direct conversations. Config.OnDM returns the first three to answer a
// request with a status (3, 2 and 4); CreateDM reports the other node's answer with them.
var (
	// ErrUnknownUser: the user a conversation is opened with does not exist on their node.
	ErrUnknownUser = errors.New("fed: unknown user")
	// ErrRefused: the other node takes no conversation from this user [FED-090].
	ErrRefused = errors.New("fed: conversation refused")
	// ErrBusy: the other node takes no more conversations from this node for now
	// [FED-091], or could not join the conversation; a later request may succeed.
	ErrBusy = errors.New("fed: the other node is busy")
	// ErrUnreachable: the other node could not be reached.
	ErrUnreachable = errors.New("fed: node unreachable")
	// ErrUnknownNode: ResolveNode found no node, or several, for a reference.
	ErrUnknownNode = errors.New("fed: unknown node")
)

// ResolveNode returns the node that ref names, so that a conversation can be opened with
// one of its users without a guild in common: a multiaddr ending in /p2p/<peer ID>, whose
// addresses it keeps for the dial; a peer ID, which needs an address this node knows (from
// a guild, the bootstrap list or a connection); or the node name of a node in one of this
// node's guilds (a member node's member.join, a home node's guild.create), which must name
// one node only. It may return this node itself.
func (s *Service) ResolveNode(ref string) (event.Node, error) {
	if strings.HasPrefix(ref, "/") {
		info, err := peer.AddrInfoFromString(ref)
		if err != nil {
			return "", fmt.Errorf("%w: %q is not a multiaddr ending in /p2p/<peer ID>: %v", ErrUnknownNode, ref, err)
		}
		s.h.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.TempAddrTTL)
		return event.Node(info.ID), nil
	}
	id, err := peer.Decode(ref)
	byID := err == nil
	found := map[peer.ID][]ma.Multiaddr{}
	for _, gid := range s.Guilds() {
		st := s.guild(gid).st
		info := st.Info()
		if home := peer.ID(info.Home); home == id || info.HomeName == ref {
			addrs, _ := s.store.HomeAddrs(gid)
			found[home] = append(found[home], fsync.ParseAddrBytes(addrs)...)
		}
		for _, n := range st.Nodes() {
			if p := peer.ID(n.ID); p == id || n.Name == ref {
				found[p] = append(found[p], fsync.ParseAddrBytes(n.Addrs)...)
			}
		}
	}
	if byID {
		found[id] = append(found[id], s.h.Peerstore().Addrs(id)...)
		if id != s.h.ID() && len(found[id]) == 0 {
			return "", fmt.Errorf("%w: no address of node %s is known here; give a multiaddr ending in /p2p/%s", ErrUnknownNode, id, id)
		}
	}
	ids := slices.Collect(maps.Keys(found))
	switch {
	case len(ids) == 0:
		return "", fmt.Errorf("%w: no node called %q is in a guild of this node; give its peer ID or a multiaddr ending in /p2p/<peer ID>", ErrUnknownNode, ref)
	case len(ids) > 1:
		return "", fmt.Errorf("%w: %d nodes are called %q; give the peer ID of the one you mean", ErrUnknownNode, len(ids), ref)
	}
	s.h.Peerstore().AddAddrs(ids[0], found[ids[0]], peerstore.TempAddrTTL)
	return event.Node(ids[0]), nil
}

// CreateDM opens a direct conversation between the local user owner and user
// to of another node: a guild homed here, marked as a DM in its genesis, with
// one text channel, which to's node joins on to's behalf when it accepts the
// request sent over /hearth/dm/1.0.0 [FED-063]. It returns the guild ID once
// to has joined. to's node must be reachable: a member node of a guild the
// two share is, another one once ResolveNode has found it. The other node's
// refusals are ErrUnknownUser, ErrRefused and ErrBusy, after which the
// conversation is deleted (guild.delete); a failed dial or stream is
// ErrUnreachable, and the conversation is kept.
func (s *Service) CreateDM(ctx context.Context, owner string, to event.User) (event.ID, error) {
	if to.Node == s.self {
		return "", errors.New("fed: create dm: the user is local")
	}
	gid, err := s.createGuild(ctx, owner, "Direct message", true)
	if err != nil {
		return "", err
	}
	code, err := s.CreateInvite(ctx, gid, owner, 1, 0)
	if err != nil {
		return "", fmt.Errorf("fed: create dm: %w", err)
	}
	var resp proto.DMResponse
	err = proto.Call(ctx, s.h, peer.ID(to.Node), proto.DM, &proto.DMRequest{Invite: code, To: to.Name, From: owner}, &resp)
	var perr *proto.Error
	switch {
	case err == nil:
		return gid, nil
	case !errors.As(err, &perr):
		// Kept: the other node may have joined before the answer was lost, and the
		// next attempt finds the conversation.
		return "", fmt.Errorf("%w: create dm: %v", ErrUnreachable, err)
	}
	// A refusal comes before the other node joins: the conversation is deleted, so that
	// refused attempts leave no guilds behind.
	if _, derr := s.Issue(ctx, gid, owner, event.KindGuildDelete, "", &event.Empty{}); derr != nil {
		s.log.Warn("fed: deleting a refused conversation", "guild", gid.String(), "err", derr)
	}
	switch perr.Status {
	case proto.NotFound:
		return "", fmt.Errorf("%w: %s", ErrUnknownUser, perr.Msg)
	case proto.Forbidden:
		return "", fmt.Errorf("%w: %s", ErrRefused, perr.Msg)
	case proto.Unavailable:
		return "", fmt.Errorf("%w: %s", ErrBusy, perr.Msg)
	}
	return "", fmt.Errorf("fed: create dm: %w", err)
}

// serveDM answers /hearth/dm/1.0.0 through Config.OnDM. The invite must lead
// to a DM guild homed on the requesting node [FED-064].
func (s *Service) serveDM() {
	fail := func(e *proto.Error) *proto.DMResponse { return &proto.DMResponse{Status: e.Status, Error: e.Msg} }
	proto.Handle(s.ctx, s.h, proto.DM, s.log, func(ctx context.Context, from peer.ID, req *proto.DMRequest) *proto.DMResponse {
		inv, err := ParseInvite(req.Invite)
		switch {
		case err != nil:
			return fail(proto.Fail(proto.BadRequest, "invite: %v", err))
		case inv.Home != event.Node(from):
			return fail(proto.Fail(proto.Forbidden, "the conversation must be homed on the requesting node"))
		case !event.ValidName(req.To) || !event.ValidName(req.From):
			return fail(proto.Fail(proto.BadRequest, "user names"))
		case s.cfg.OnDM == nil:
			return fail(proto.Fail(proto.Forbidden, "this node takes no direct messages"))
		}
		err = s.cfg.OnDM(ctx, event.User{Node: event.Node(from), Name: req.From}, req.To, req.Invite)
		switch {
		case errors.Is(err, ErrUnknownUser):
			return fail(proto.Fail(proto.NotFound, "no user %q here", req.To))
		case errors.Is(err, ErrRefused):
			return fail(proto.Fail(proto.Forbidden, "%v", err))
		case errors.Is(err, ErrBusy):
			return fail(proto.Fail(proto.Unavailable, "%v", err))
		case err != nil:
			s.log.Warn("fed: accepting a direct conversation", "from", req.From, "peer", from.String(), "err", err)
			return fail(proto.Fail(proto.Unavailable, "could not join the conversation"))
		}
		return &proto.DMResponse{}
	}, fail)
}
