package chat

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// InviteSpec is the body of POST /channels/{id}/invites. Nil means the default.
type InviteSpec struct {
	MaxAge  *int `json:"max_age"`
	MaxUses *int `json:"max_uses"`
}

const inviteAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func newInviteCode() (string, error) {
	b := make([]byte, 10)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(inviteAlphabet))))
		if err != nil {
			return "", fmt.Errorf("chat: invite code: %w", err)
		}
		b[i] = inviteAlphabet[n.Int64()]
	}
	return string(b), nil
}

// inviteOut builds the wire form. Callers hold s.mu.
func (s *Service) inviteOut(inv *model.Invite) InviteOut {
	out := InviteOut{Code: inv.Code, Uses: inv.Uses, MaxUses: inv.MaxUses, MaxAge: inv.MaxAge,
		CreatedAt: Timestamp(inv.CreatedAt), ExpiresAt: tsPtr(inv.ExpiresAt), GuildID: inv.GuildID}
	if gs := s.guilds[inv.GuildID]; gs != nil {
		out.Guild = &PartialGuild{ID: gs.g.ID, Name: gs.g.Name, Icon: gs.g.Icon, Features: []string{}}
	}
	if c := s.channels[inv.ChannelID]; c != nil {
		out.Channel = &InviteChannel{ID: c.ID, Name: c.Name, Type: c.Type}
	}
	u := s.user(inv.InviterID)
	out.Inviter = &u
	return out
}

// CreateInvite creates an invite to a guild channel (CREATE_INSTANT_INVITE).
func (s *Service) CreateInvite(ctx context.Context, actor, channelID ID, spec InviteSpec) (InviteOut, error) {
	maxAge, maxUses := 86400, 0
	if spec.MaxAge != nil {
		maxAge = *spec.MaxAge
	}
	if spec.MaxUses != nil {
		maxUses = *spec.MaxUses
	}
	if maxAge < 0 || maxAge > 604800 {
		return InviteOut{}, invalid("max_age", "NUMBER_TYPE_MAX", "Must be between 0 and 604800.")
	}
	if maxUses < 0 || maxUses > 100 {
		return InviteOut{}, invalid("max_uses", "NUMBER_TYPE_MAX", "Must be between 0 and 100.")
	}
	code, err := newInviteCode()
	if err != nil {
		return InviteOut{}, err
	}
	// A federated guild gets a federation invite, which other nodes can resolve; on this node
	// it works like any other code.
	var expires time.Time
	if maxAge > 0 {
		expires = s.now().Add(time.Duration(maxAge) * time.Second)
	}
	if fedCode := s.fedInviteCode(ctx, actor, channelID, maxUses, expires); fedCode != "" {
		code = fedCode
	}
	s.lock()
	defer s.mu.Unlock()
	c, _, p, err := s.channelAccess(actor, channelID)
	if err != nil {
		return InviteOut{}, err
	}
	if c.IsPrivate() || c.Type == model.ChannelCategory {
		return InviteOut{}, invalid("channel_id", "CHANNEL_INVALID", "Invites are for guild text and voice channels.")
	}
	if !p.Has(perm.CreateInstantInvite) {
		return InviteOut{}, ErrMissingPerms
	}
	now := s.now().UTC()
	inv := &model.Invite{Code: code, GuildID: c.GuildID, ChannelID: c.ID, InviterID: actor, MaxUses: maxUses, MaxAge: maxAge, CreatedAt: now}
	if maxAge > 0 {
		exp := now.Add(time.Duration(maxAge) * time.Second)
		inv.ExpiresAt = &exp
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(store.KeyString(store.PrefixInvite, code), inv) }); err != nil {
		return InviteOut{}, fmt.Errorf("chat: create invite: %w", err)
	}
	s.invites[code] = inv
	out := s.inviteOut(inv)
	s.pub.Publish(&fanout.Event{Type: "INVITE_CREATE", Data: encode(map[string]any{
		"channel_id": c.ID, "guild_id": c.GuildID, "code": code, "created_at": out.CreatedAt, "inviter": out.Inviter,
		"max_age": maxAge, "max_uses": maxUses, "temporary": false, "uses": 0,
	}), Intent: IntentGuildInvites, GuildID: uint64(c.GuildID), Visible: s.managers(c.GuildID, perm.ManageChannels)})
	return out, nil
}

// managers returns a filter for users with a guild permission. Callers hold s.mu.
func (s *Service) managers(guildID ID, want perm.Bits) func(uint64) bool {
	gs := s.guilds[guildID]
	ok := map[uint64]bool{}
	for uid, m := range gs.members {
		if gs.basePerms(m).Has(want) {
			ok[uint64(uid)] = true
		}
	}
	return func(u uint64) bool { return ok[u] }
}

// Invite resolves a usable invite code; it needs no account.
func (s *Service) Invite(code string) (InviteOut, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	inv := s.invites[code]
	if inv == nil || !inv.Usable(s.now()) {
		return InviteOut{}, ErrUnknownInvite
	}
	return s.inviteOut(inv), nil
}

// Invites lists the invites of a channel (channelID set; MANAGE_CHANNELS) or of a guild
// (MANAGE_GUILD).
func (s *Service) Invites(actor, guildID, channelID ID) ([]InviteOut, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if channelID != 0 {
		c, _, p, err := s.channelAccess(actor, channelID)
		if err != nil {
			return nil, err
		}
		if c.IsPrivate() || !p.Has(perm.ManageChannels) {
			return nil, ErrMissingPerms
		}
		guildID = c.GuildID
	} else {
		gs, m, err := s.guild(actor, guildID)
		if err != nil {
			return nil, err
		}
		if !gs.basePerms(m).Has(perm.ManageGuild) {
			return nil, ErrMissingPerms
		}
	}
	out := []InviteOut{}
	for _, inv := range s.invites {
		if inv.GuildID == guildID && (channelID == 0 || inv.ChannelID == channelID) && inv.Usable(s.now()) {
			out = append(out, s.inviteOut(inv))
		}
	}
	sort.Slice(out, func(i, j int) bool { return time.Time(out[i].CreatedAt).Before(time.Time(out[j].CreatedAt)) })
	return out, nil
}

// JoinInvite makes the actor a member of the invite's guild. Joining a guild one is in
// already succeeds without counting a use.
func (s *Service) JoinInvite(ctx context.Context, actor ID, code string) (InviteOut, error) {
	s.lock()
	inv := s.invites[code]
	if inv == nil && s.fed != nil && s.fed.IsInvite(code) {
		s.mu.Unlock()
		return s.joinRemote(ctx, actor, code)
	}
	if s.needsFedJoin(inv, actor, code) {
		// The guild is federated: the home node admits the user first (whether that is this
		// node or another), so that the user's messages are accepted on every node.
		name := s.user(actor).Username
		s.mu.Unlock()
		if _, err := s.fed.Join(ctx, code, name); err != nil {
			s.log.Info("federation refused a join", "user", name, "err", err)
			return InviteOut{}, ErrUnknownInvite
		}
		s.lock()
		inv = s.invites[code]
	}
	defer s.mu.Unlock()
	if inv == nil || !inv.Usable(s.now()) {
		return InviteOut{}, ErrUnknownInvite
	}
	gs := s.guilds[inv.GuildID]
	if gs == nil {
		return InviteOut{}, ErrUnknownInvite
	}
	if gs.bans[actor] != nil {
		return InviteOut{}, ErrBanned
	}
	if gs.members[actor] != nil {
		return s.inviteOut(inv), nil
	}
	updated := *inv
	updated.Uses++
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(store.KeyString(store.PrefixInvite, code), &updated) }); err != nil {
		return InviteOut{}, fmt.Errorf("chat: use invite: %w", err)
	}
	s.invites[code] = &updated
	if _, err := s.addMember(gs, actor); err != nil {
		return InviteOut{}, err
	}
	out := s.inviteOut(&updated)
	out.NewMember = true
	return out, nil
}

// DeleteInvite revokes an invite (MANAGE_CHANNELS, or the inviter). A federation invite is
// revoked in the guild's federated state first (by its home node, or asked of it), so that
// no node admits anyone with it any more; when that fails nothing is deleted.
func (s *Service) DeleteInvite(ctx context.Context, actor ID, code string) (InviteOut, error) {
	s.mu.RLock()
	inv, fedGuild, err := s.deletableInvite(actor, code)
	name := s.user(actor).Username
	s.mu.RUnlock()
	if err != nil {
		return InviteOut{}, err
	}
	if fedGuild != "" && s.fed.IsInvite(code) {
		if err := s.fed.RevokeInvite(ctx, fedGuild, name, code); err != nil {
			return InviteOut{}, err
		}
	}
	s.lock()
	defer s.mu.Unlock()
	if s.invites[code] != inv {
		return InviteOut{}, ErrUnknownInvite // deleted (or used) meanwhile
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Delete(store.KeyString(store.PrefixInvite, code)) }); err != nil {
		return InviteOut{}, fmt.Errorf("chat: delete invite: %w", err)
	}
	out := s.inviteOut(inv)
	delete(s.invites, code)
	s.pub.Publish(&fanout.Event{Type: "INVITE_DELETE", Data: encode(map[string]any{"channel_id": inv.ChannelID, "guild_id": inv.GuildID, "code": code}),
		Intent: IntentGuildInvites, GuildID: uint64(inv.GuildID), Visible: s.managers(inv.GuildID, perm.ManageChannels)})
	return out, nil
}

// deletableInvite returns the invite code names if actor may delete it, and the federation
// ID of its guild ("" when not federated). Callers hold s.mu.
func (s *Service) deletableInvite(actor ID, code string) (*model.Invite, string, error) {
	inv := s.invites[code]
	if inv == nil {
		return nil, "", ErrUnknownInvite
	}
	_, _, p, err := s.channelAccess(actor, inv.ChannelID)
	if err != nil {
		return nil, "", ErrUnknownInvite
	}
	if !p.Has(perm.ManageChannels) && inv.InviterID != actor {
		return nil, "", ErrMissingPerms
	}
	var fedGuild string
	if gs := s.guilds[inv.GuildID]; gs != nil && s.fed != nil {
		fedGuild = gs.g.FedID
	}
	return inv, fedGuild, nil
}

// fedInviteCode returns a federation invite for the guild of a channel, or "" when the
// guild is not federated (or federation fails, which the log records).
func (s *Service) fedInviteCode(ctx context.Context, actor, channelID ID, maxUses int, expires time.Time) string {
	if s.fed == nil {
		return ""
	}
	s.mu.RLock()
	c := s.channels[channelID]
	var fg string
	if c != nil && s.guilds[c.GuildID] != nil {
		fg = s.guilds[c.GuildID].g.FedID
	}
	name := s.user(actor).Username
	s.mu.RUnlock()
	if fg == "" {
		return ""
	}
	code, err := s.fed.CreateInvite(ctx, fg, name, maxUses, expires)
	if err != nil {
		s.log.Warn("federation invite; the invite works on this node only", "guild", c.GuildID, "err", err)
		return ""
	}
	return code
}
