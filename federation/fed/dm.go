package fed

import (
	"context"
	"errors"
	"fmt"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/proto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrUnknownUser is what Config.OnDM returns, and CreateDM reports, when the
// user a conversation is opened with does not exist on their node.
var ErrUnknownUser = errors.New("fed: unknown user")

// CreateDM opens a direct conversation between the local user owner and user
// to of another node: a guild homed here, marked as a DM in its genesis, with
// one text channel, which to's node joins on to's behalf when it accepts the
// request sent over /hearth/dm/1.0.0 [FED-063]. It returns the guild ID once
// to has joined. to's node must be reachable (a member node of a guild the
// two share is).
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
	if errors.As(err, &perr) && perr.Status == proto.NotFound {
		return "", fmt.Errorf("%w: %s", ErrUnknownUser, perr.Msg)
	}
	if err != nil {
		return "", fmt.Errorf("fed: create dm: %w", err)
	}
	return gid, nil
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
		case err != nil:
			s.log.Warn("fed: accepting a direct conversation", "from", req.From, "peer", from.String(), "err", err)
			return fail(proto.Fail(proto.Unavailable, "could not join the conversation"))
		}
		return &proto.DMResponse{}
	}, fail)
}
