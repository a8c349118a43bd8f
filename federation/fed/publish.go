package fed

import (
	"context"
	"errors"
	"fmt"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/guild"
	"github.com/hearth-chat/hearth/federation/proto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrForbidden is returned when the acting user may not do what was asked.
var ErrForbidden = errors.New("fed: forbidden")

// CreateGuild creates a guild homed on this node, owned by the local user
// owner, with a text channel "general". It returns the guild ID.
func (s *Service) CreateGuild(ctx context.Context, owner, name string) (event.ID, error) {
	return s.createGuild(ctx, owner, name, false)
}

func (s *Service) createGuild(ctx context.Context, owner, name string, dm bool) (event.ID, error) {
	u := event.User{Node: s.self, Name: owner}
	gen, err := s.signer.Sign(event.Envelope{Kind: event.KindGuildCreate, Author: u, Seq: 1, TS: s.clock.Tick(), SN: 1},
		&event.GuildCreate{Name: name, Owner: u, NodeName: s.cfg.NodeName, DM: dm})
	if err != nil {
		return "", fmt.Errorf("fed: create guild: %w", err)
	}
	st, err := guild.New(gen)
	if err != nil {
		return "", fmt.Errorf("fed: create guild: %w", err)
	}
	if _, err := s.store.Put(gen); err != nil {
		return "", fmt.Errorf("fed: create guild: %w", err)
	}
	if err := s.addGuild(st); err != nil {
		return "", err
	}
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(gen)
	}
	if _, err := s.Moderate(ctx, gen.ID, owner, event.KindChannelCreate, "", &event.ChannelCreate{Name: "general"}); err != nil {
		return "", err
	}
	return gen.ID, nil
}

// Publish signs, stores and gossips a message-class event (message.create,
// message.edit, message.delete, reaction.add, reaction.remove) authored by
// the local user author. body is a pointer to the kind's body type. The
// event is validated as any receiver would validate it, so a call that
// would be rejected elsewhere fails here with ErrForbidden.
func (s *Service) Publish(ctx context.Context, guildID, channel event.ID, author string, kind event.Kind, body any) (*event.Event, error) {
	if kind.Class() != event.ClassMessage {
		return nil, fmt.Errorf("fed: publish: %s is not a message kind", kind)
	}
	rt := s.guild(guildID)
	if rt == nil {
		return nil, ErrUnknownGuild
	}
	// Refused before a sequence number is spent: one spent on an event that is never stored
	// would leave peers a gap that nothing fills.
	if err := s.space(); err != nil {
		return nil, fmt.Errorf("fed: publish: %w", err)
	}
	var p *pending
	rt.mu.Lock()
	ev, err := s.signer.Sign(event.Envelope{Kind: kind, Guild: guildID, Channel: channel,
		Author: event.User{Node: s.self, Name: author}, Seq: rt.localSeq + 1, TS: s.clock.Tick(), SN: rt.st.Info().SN}, body)
	if err == nil {
		if err = s.checkMessage(rt, ev); err != nil {
			err = fmt.Errorf("%w: %v", ErrForbidden, err)
		}
	}
	if err == nil {
		rt.localSeq++
		p = rt.enqueue(ev)
	}
	rt.mu.Unlock()
	if err == nil {
		err = s.await(rt, p)
	}
	if err != nil {
		return nil, fmt.Errorf("fed: publish: %w", err)
	}
	s.broadcast(ctx, guildID, ev)
	return ev, nil
}

// broadcast gossips a stored event. A failure is only logged: the event is
// stored and peers fetch it through sync.
func (s *Service) broadcast(ctx context.Context, guildID event.ID, ev *event.Event) {
	if err := s.gossip.Publish(ctx, guildID, ev.Raw, false); err != nil {
		s.log.Warn("fed: gossip publish", "guild", guildID, "event", ev.ID, "err", err)
	}
}

// Moderate makes a guild state change on behalf of the local user actor:
// on the home node it checks the actor's permission and issues the state
// event; elsewhere it sends a moderation request to the home node, which
// does the same [FED-040]. It returns the state event's ID. body is a
// pointer to the kind's body type.
func (s *Service) Moderate(ctx context.Context, guildID event.ID, actor string, kind event.Kind, channel event.ID, body any) (event.ID, error) {
	rt := s.guild(guildID)
	if rt == nil {
		return "", ErrUnknownGuild
	}
	home := rt.st.Info().Home
	if home == s.self {
		ev, err := s.authorizeAndIssue(ctx, rt, event.User{Node: s.self, Name: actor}, kind, channel, body)
		if err != nil {
			return "", err
		}
		return ev.ID, nil
	}
	raw, err := event.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("fed: moderate: %w", err)
	}
	var resp proto.ModResponse
	req := &proto.ModRequest{Guild: guildID, Kind: kind, Channel: channel, Body: raw, ActorName: actor}
	if err := proto.Call(ctx, s.h, peer.ID(home), proto.Mod, req, &resp); err != nil {
		var pe *proto.Error
		if errors.As(err, &pe) && pe.Status == proto.Forbidden {
			return "", fmt.Errorf("%w: %s", ErrForbidden, pe.Msg)
		}
		return "", fmt.Errorf("fed: moderate: %w", err)
	}
	return resp.Event, nil
}

// Issue makes a guild state change on the home node on behalf of the local
// user actor without checking actor's permissions in the federated state:
// the node has already authorised it against its own permission model,
// which may know roles that the federated state does not carry yet. It
// returns ErrForbidden on any node but the home node, and an error for
// guild.create and member.join (use CreateGuild and Join).
func (s *Service) Issue(ctx context.Context, guildID event.ID, actor string, kind event.Kind, channel event.ID, body any) (event.ID, error) {
	rt := s.guild(guildID)
	if rt == nil {
		return "", ErrUnknownGuild
	}
	if rt.st.Info().Home != s.self {
		return "", fmt.Errorf("%w: not the home node", ErrForbidden)
	}
	if kind == event.KindMemberJoin {
		return "", errors.New("fed: issue: member.join comes from Join")
	}
	ev, err := s.issue(ctx, rt, event.User{Node: s.self, Name: actor}, kind, channel, body)
	if err != nil {
		return "", err
	}
	return ev.ID, nil
}

func (s *Service) authorizeAndIssue(ctx context.Context, rt *guildRT, actor event.User, kind event.Kind, channel event.ID, body any) (*event.Event, error) {
	if err := rt.st.Authorize(actor, kind, channel, body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	return s.issue(ctx, rt, actor, kind, channel, body)
}

// issue signs, applies, stores and gossips the next state event. Only the
// home node calls it; authorisation is the caller's.
func (s *Service) issue(ctx context.Context, rt *guildRT, actor event.User, kind event.Kind, channel event.ID, body any) (*event.Event, error) {
	if kind.Class() != event.ClassState || kind == event.KindGuildCreate {
		return nil, fmt.Errorf("fed: issue: %s is not a state change", kind)
	}
	// Refused before the state or the sequence moves (as Publish).
	if err := s.space(); err != nil {
		return nil, fmt.Errorf("fed: issue %s: %w", kind, err)
	}
	var p *pending
	rt.mu.Lock()
	info := rt.st.Info()
	ev, err := s.signer.Sign(event.Envelope{Kind: kind, Guild: rt.id, Channel: channel, Author: actor,
		Seq: rt.localSeq + 1, TS: s.clock.Tick(), SN: info.SN + 1, Prev: info.Head}, body)
	if err == nil {
		if err = rt.st.Apply(ev); err != nil {
			err = fmt.Errorf("%w: %v", ErrForbidden, err)
		}
	}
	if err == nil {
		rt.localSeq++
		p = rt.enqueue(ev)
	}
	rt.mu.Unlock()
	if err == nil {
		err = s.await(rt, p)
	}
	if err != nil {
		return nil, fmt.Errorf("fed: issue %s: %w", kind, err)
	}
	s.broadcast(ctx, rt.id, ev)
	return ev, nil
}

// serveMod answers moderation requests on the home node [FED-041] [FED-042].
func (s *Service) serveMod() {
	fail := func(e *proto.Error) *proto.ModResponse { return &proto.ModResponse{Status: e.Status, Error: e.Msg} }
	proto.Handle(s.ctx, s.h, proto.Mod, s.log, func(ctx context.Context, from peer.ID, req *proto.ModRequest) *proto.ModResponse {
		rt := s.guild(req.Guild)
		if rt == nil || rt.st.Info().Home != s.self {
			return fail(proto.Fail(proto.NotFound, "not the home node of this guild"))
		}
		body := req.Kind.NewBody()
		if body == nil || req.Kind.Class() != event.ClassState {
			return fail(proto.Fail(proto.BadRequest, "kind %q cannot be requested", req.Kind))
		}
		if err := event.UnmarshalCanonical(req.Body, body); err != nil {
			return fail(proto.Fail(proto.BadRequest, "body: %v", err))
		}
		actor := event.User{Node: event.Node(from), Name: req.ActorName}
		ev, err := s.authorizeAndIssue(ctx, rt, actor, req.Kind, req.Channel, body)
		if err != nil {
			if errors.Is(err, ErrForbidden) {
				return fail(proto.Fail(proto.Forbidden, "%v", err))
			}
			return fail(proto.Fail(proto.BadRequest, "%v", err))
		}
		return &proto.ModResponse{Event: ev.ID}
	}, fail)
}
