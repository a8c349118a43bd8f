package chat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// OpenDMRequest is the body of POST /users/@me/channels: one of RecipientID,
// RecipientUsername (a Hearth extension [CAPI-033]) or Recipients.
type OpenDMRequest struct {
	RecipientID ID `json:"recipient_id"`
	// RecipientUsername is a username as this node shows it: a local user's, or name@node
	// for a user of another node, where node may also be a peer ID or a multiaddr.
	RecipientUsername string `json:"recipient_username"`
	Recipients        []ID   `json:"recipients"`
}

// Errors of a DM with a user of another node.
var (
	// ErrDMRefused: the user's node takes no conversation from the actor [FED-090].
	ErrDMRefused = newErr(http.StatusForbidden, 50007, "Cannot send messages to this user")
	// ErrNodeUnreachable: the user's node could not be reached, or is busy [FED-091].
	ErrNodeUnreachable = newErr(http.StatusServiceUnavailable, 0, "The user's node could not be reached; try again later.")
)

// UnknownNodeError is what the Federator returns when the node part of name@node names
// no node it can reach, or several; Reason tells the user which and what to give instead.
type UnknownNodeError struct{ Reason string }

func (e *UnknownNodeError) Error() string { return "chat: unknown node: " + e.Reason }

// OpenDM returns the DM channel with one recipient (creating it once), or creates a group DM.
// The recipients must share a guild with the actor, except a user of another node named by
// RecipientUsername, whose node decides.
func (s *Service) OpenDM(ctx context.Context, actor ID, req OpenDMRequest) (ChannelOut, error) {
	s.lock()
	defer s.mu.Unlock()
	if req.RecipientID != 0 {
		return s.openDM(ctx, actor, req.RecipientID)
	}
	if name := req.RecipientUsername; name != "" {
		if !isRemoteName(name) {
			return s.openDM(ctx, actor, s.usernames[name])
		}
		if id, ok := s.remotes[name]; ok && s.sharesSomething(actor, id) {
			return s.openDM(ctx, actor, id)
		}
		if s.fed == nil {
			return ChannelOut{}, ErrUnknownUser
		}
		return s.openRemoteDM(ctx, actor, name)
	}
	members := []ID{actor}
	for _, u := range req.Recipients {
		if s.users[u] == nil || !s.sharesSomething(actor, u) {
			return ChannelOut{}, ErrUnknownUser
		}
		if indexOf(members, u) < 0 {
			members = append(members, u)
		}
	}
	if len(members) > 10 {
		return ChannelOut{}, ErrMaxGroupDM
	}
	if len(members) < 2 {
		return ChannelOut{}, invalid("recipients", "BASE_TYPE_MIN_LENGTH", "Must have at least 1 recipient.")
	}
	return s.createPrivate(&model.Channel{ID: s.ids.Next(), Type: model.ChannelGroupDM, RecipientIDs: members, OwnerID: actor})
}

// openDM returns the DM channel between actor and a user they share a guild or DM with,
// creating it once. Callers hold s.mu for writing.
func (s *Service) openDM(ctx context.Context, actor, to ID) (ChannelOut, error) {
	if to == actor {
		return ChannelOut{}, ErrCannotDMSelf
	}
	if s.users[to] == nil || !s.sharesSomething(actor, to) {
		return ChannelOut{}, ErrUnknownUser
	}
	if id, ok := s.dms[pair(actor, to)]; ok {
		return s.channelOut(s.channels[id]), nil
	}
	if name := s.user(to).Username; isRemoteName(name) {
		if s.fed == nil {
			return ChannelOut{}, ErrUnknownUser
		}
		return s.openRemoteDM(ctx, actor, name)
	}
	return s.createPrivate(&model.Channel{ID: s.ids.Next(), Type: model.ChannelDM, RecipientIDs: []ID{actor, to}})
}

// openRemoteDM opens a DM with the user of another node that name (name@node) names. The
// conversation lives in federation: it is opened there first, with s.mu (held for writing
// by the caller) released, since the other node answers only once it has joined.
func (s *Service) openRemoteDM(ctx context.Context, actor ID, name string) (ChannelOut, error) {
	from := s.user(actor).Username
	s.mu.Unlock()
	fg, fc, display, err := s.fed.OpenDM(ctx, from, name)
	s.lock()
	var unknownNode *UnknownNodeError
	switch {
	case errors.As(err, &unknownNode):
		return ChannelOut{}, invalid("recipient_username", "UNKNOWN_NODE", unknownNode.Reason)
	case errors.Is(err, ErrNodeUnreachable):
		s.log.Info("opening a DM with a user of another node failed", "user", name, "err", err)
		return ChannelOut{}, ErrNodeUnreachable
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrDMRefused):
		return ChannelOut{}, err
	case err != nil:
		return ChannelOut{}, fmt.Errorf("chat: open a DM with %s: %w", name, err)
	}
	to, err := s.storeRemoteUser(display)
	if err != nil {
		return ChannelOut{}, fmt.Errorf("chat: open a DM with %s: %w", name, err)
	}
	if id, ok := s.dms[pair(actor, to)]; ok { // opened meanwhile, or by another name of the user
		return s.channelOut(s.channels[id]), nil
	}
	return s.createPrivate(&model.Channel{ID: s.ids.Next(), Type: model.ChannelDM, RecipientIDs: []ID{actor, to},
		FedID: fc, FedGuild: fg})
}

// HasUser reports whether a local user (not a remote one) has this username.
func (s *Service) HasUser(username string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.usernames[username]
	return ok && !isRemoteName(username)
}

// ApplyRemoteDM shows a direct conversation that the remote user from (name@node) opened
// with the local user to, carried by the federated conversation guildFedID and its channel
// channelFedID: it creates the DM channel and dispatches CHANNEL_CREATE to to. A DM the two
// have already is kept (the newer conversation is not shown).
func (s *Service) ApplyRemoteDM(guildFedID, channelFedID, to, from string) error {
	s.lock()
	defer s.mu.Unlock()
	local, ok := s.usernames[to]
	if !ok {
		return ErrUnknownUser
	}
	if s.channelByFedID(channelFedID) != nil {
		return nil
	}
	remote, err := s.storeRemoteUser(from)
	if err != nil {
		return fmt.Errorf("chat: remote DM: %w", err)
	}
	if _, ok := s.dms[pair(local, remote)]; ok {
		return nil
	}
	_, err = s.createPrivate(&model.Channel{ID: s.ids.Next(), Type: model.ChannelDM, RecipientIDs: []ID{remote, local},
		FedID: channelFedID, FedGuild: guildFedID})
	return err
}

// createPrivate stores a new private channel and dispatches CHANNEL_CREATE to its members.
// Callers hold s.mu.
func (s *Service) createPrivate(c *model.Channel) (ChannelOut, error) {
	err := s.db.Update(func(tx *store.Tx) error {
		errs := []error{tx.Put(store.Key(store.PrefixChannel, uint64(c.ID)), c)}
		for _, u := range c.RecipientIDs {
			errs = append(errs, tx.Put(store.Key(store.PrefixPrivateChan, uint64(u), uint64(c.ID)), true))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return ChannelOut{}, fmt.Errorf("chat: create private channel: %w", err)
	}
	s.channels[c.ID] = c
	for _, u := range c.RecipientIDs {
		addTo(s.private, u, c.ID)
	}
	if c.Type == model.ChannelDM {
		s.dms[pair(c.RecipientIDs[0], c.RecipientIDs[1])] = c.ID
	}
	out := s.channelOut(c)
	s.publishUsers(c.RecipientIDs, "CHANNEL_CREATE", IntentDirectMessages, out)
	return out, nil
}

// PrivateChannels lists the actor's DMs and group DMs.
func (s *Service) PrivateChannels(actor ID) []ChannelOut {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.privateChannelsLocked(actor)
}

func (s *Service) privateChannelsLocked(actor ID) []ChannelOut {
	out := []ChannelOut{}
	for cid := range s.private[actor] {
		out = append(out, s.channelOut(s.channels[cid]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// readState returns the actor's read state of a channel, creating it. Callers hold s.mu
// for writing.
func (s *Service) readState(uid, channelID ID) *model.ReadState {
	m := s.reads[uid]
	if m == nil {
		m = map[ID]*model.ReadState{}
		s.reads[uid] = m
	}
	rs := m[channelID]
	if rs == nil {
		rs = &model.ReadState{ChannelID: channelID}
		m[channelID] = rs
	}
	return rs
}

// Ack marks a channel read up to a message, resets the mention count, and dispatches
// MESSAGE_ACK to the actor's sessions.
func (s *Service) Ack(ctx context.Context, actor, channelID, messageID ID) error {
	s.mu.RLock()
	_, _, _, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	rs := model.ReadState{ChannelID: channelID, LastMessageID: messageID}
	if err := s.db.Update(func(tx *store.Tx) error {
		return tx.Put(store.Key(store.PrefixReadState, uint64(actor), uint64(channelID)), &rs)
	}); err != nil {
		return fmt.Errorf("chat: ack: %w", err)
	}
	s.lockKeepViews()
	*s.readState(actor, channelID) = rs
	s.mu.Unlock()
	s.publishUsers([]ID{actor}, "MESSAGE_ACK", 0, map[string]any{"channel_id": channelID, "message_id": messageID, "version": 1})
	return nil
}

// ReadyState is what READY needs from the domain.
type ReadyState struct {
	User            model.User
	Guilds          []GuildOut
	PrivateChannels []ChannelOut
	ReadStates      []model.ReadState
}

// Ready gathers the READY and GUILD_CREATE payloads for a user.
func (s *Service) Ready(actor ID) ReadyState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rs := ReadyState{User: s.user(actor), PrivateChannels: s.privateChannelsLocked(actor), ReadStates: []model.ReadState{}}
	for gid := range s.userGuilds[actor] {
		rs.Guilds = append(rs.Guilds, s.GuildCreatePayload(s.guilds[gid], actor))
	}
	sort.Slice(rs.Guilds, func(i, j int) bool { return rs.Guilds[i].ID < rs.Guilds[j].ID })
	for _, r := range s.reads[actor] {
		rs.ReadStates = append(rs.ReadStates, *r)
	}
	sort.Slice(rs.ReadStates, func(i, j int) bool { return rs.ReadStates[i].ChannelID < rs.ReadStates[j].ChannelID })
	return rs
}

// viewersCached returns a fanout filter for a guild channel: the set of users who can view
// it, computed once per version of the guild state. Callers hold s.mu.
func (s *Service) viewersCached(channelID ID) func(uint64) bool {
	gen := s.gen.Load()
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if e, ok := s.viewCache[channelID]; ok && e.gen == gen {
		return e.fn
	}
	c := s.channels[channelID]
	gs := s.guilds[c.GuildID]
	allowed := make(map[uint64]struct{}, len(gs.members))
	for uid, m := range gs.members {
		if gs.channelPerms(m, c).Has(perm.ViewChannel) {
			allowed[uint64(uid)] = struct{}{}
		}
	}
	fn := func(u uint64) bool { _, ok := allowed[u]; return ok }
	if s.viewCache == nil || len(s.viewCache) > 10_000 {
		s.viewCache = map[ID]viewEntry{}
	}
	s.viewCache[channelID] = viewEntry{gen: gen, fn: fn}
	return fn
}

type viewEntry struct {
	gen uint64
	fn  func(uint64) bool
}
