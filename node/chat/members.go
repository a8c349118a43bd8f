package chat

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// Members lists members ordered by user ID after the given ID (limit 1–1000).
func (s *Service) Members(actor, guildID ID, limit int, after ID) ([]MemberOut, error) {
	if limit < 1 || limit > 1000 {
		return nil, invalid("limit", "NUMBER_TYPE_MAX", "Must be between 1 and 1000.")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs, _, err := s.guild(actor, guildID)
	if err != nil {
		return nil, err
	}
	ids := make([]ID, 0, len(gs.members))
	for uid := range gs.members {
		if uid > after {
			ids = append(ids, uid)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	if len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]MemberOut, len(ids))
	for i, uid := range ids {
		out[i] = s.memberOut(gs.members[uid], true)
	}
	return out, nil
}

// SearchMembers returns up to limit members whose username or nick starts with query
// (case-insensitive), or the given user IDs; it serves Request Guild Members.
func (s *Service) SearchMembers(actor, guildID ID, query string, userIDs []ID, limit int) ([]MemberOut, []PresenceOut, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs, _, err := s.guild(actor, guildID)
	if err != nil {
		return nil, nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	query = strings.ToLower(query)
	var out []MemberOut
	var pres []PresenceOut
	add := func(m *model.Member) {
		out = append(out, s.memberOut(m, true))
		if p, ok := s.visiblePresence(m.UserID); ok {
			pres = append(pres, PresenceOut{User: PresenceUser{ID: m.UserID}, Status: p.Status, Activities: p.Activities, ClientStatus: map[string]string{"web": p.Status}})
		}
	}
	if len(userIDs) > 0 {
		for _, uid := range userIDs {
			if m := gs.members[uid]; m != nil && len(out) < 100 {
				add(m)
			}
		}
		return out, pres, nil
	}
	ids := make([]ID, 0, len(gs.members))
	for uid := range gs.members {
		ids = append(ids, uid)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, uid := range ids {
		if len(out) >= limit {
			break
		}
		m := gs.members[uid]
		name := s.user(uid).Username
		if query == "" || strings.HasPrefix(name, query) || (m.Nick != nil && strings.HasPrefix(strings.ToLower(*m.Nick), query)) {
			add(m)
		}
	}
	return out, pres, nil
}

// Member returns one member of a guild the actor is in.
func (s *Service) Member(actor, guildID, userID ID) (MemberOut, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs, _, err := s.guild(actor, guildID)
	if err != nil {
		return MemberOut{}, err
	}
	m := gs.members[userID]
	if m == nil {
		return MemberOut{}, ErrUnknownMember
	}
	return s.memberOut(m, true), nil
}

// MemberPatch is the body of PATCH /guilds/{id}/members/{user}. Nil fields are unchanged.
type MemberPatch struct {
	Nick  *string `json:"nick"`
	Roles *[]ID   `json:"roles"`
	Mute  *bool   `json:"mute"`
	Deaf  *bool   `json:"deaf"`
	// ChannelID moves the member to another voice channel, or with null disconnects them
	// from voice (MOVE_MEMBERS).
	ChannelID Optional[ID] `json:"channel_id"`
}

// ModifyMember changes a member's nick (own: CHANGE_NICKNAME; others: MANAGE_NICKNAMES),
// roles (MANAGE_ROLES, only roles below the actor's highest), server mute and deafen
// (MUTE_MEMBERS, DEAFEN_MEMBERS; applied at once if the member is in voice) or voice channel
// (MOVE_MEMBERS). The SFU carries the voice changes out after the call returns.
func (s *Service) ModifyMember(ctx context.Context, actor, guildID, userID ID, p MemberPatch) (_ MemberOut, err error) {
	if p.Roles != nil {
		defer s.beginPermChange(ctx, guildID, actor)(&err)
	}
	s.lock()
	defer s.mu.Unlock()
	gs, am, err := s.guild(actor, guildID)
	if err != nil {
		return MemberOut{}, err
	}
	target := gs.members[userID]
	if target == nil {
		return MemberOut{}, ErrUnknownMember
	}
	perms := gs.basePerms(am)
	top := gs.highestRole(am)
	m := *target
	if p.Nick != nil {
		need := perm.ManageNicknames
		if userID == actor {
			need = perm.ChangeNickname
		}
		if !perms.Has(need) && !perms.Has(perm.ManageNicknames) {
			return MemberOut{}, ErrMissingPerms
		}
		if userID != actor && !s.outranks(gs, am, target) {
			return MemberOut{}, ErrMissingPerms
		}
		nick := strings.TrimSpace(*p.Nick)
		if utf8.RuneCountInString(nick) > 32 {
			return MemberOut{}, invalid("nick", "BASE_TYPE_MAX_LENGTH", "Must be 32 or fewer in length.")
		}
		m.Nick = &nick
		if nick == "" {
			m.Nick = nil
		}
	}
	if p.Roles != nil {
		if !perms.Has(perm.ManageRoles) {
			return MemberOut{}, ErrMissingPerms
		}
		var roles []ID
		seen := map[ID]bool{}
		for _, rid := range *p.Roles {
			r := gs.roles[rid]
			if r == nil || rid == guildID {
				return MemberOut{}, ErrUnknownRole
			}
			if seen[rid] {
				continue
			}
			seen[rid] = true
			roles = append(roles, rid)
		}
		// Roles the actor cannot manage must stay as they are.
		for _, rid := range symmetricDiff(target.Roles, roles) {
			if gs.roles[rid] != nil && gs.roles[rid].Position >= top {
				return MemberOut{}, ErrMissingPerms
			}
		}
		if roles == nil {
			roles = []ID{}
		}
		m.Roles = roles
	}
	if p.Mute != nil {
		if !perms.Has(perm.MuteMembers) {
			return MemberOut{}, ErrMissingPerms
		}
		m.Mute = *p.Mute
	}
	if p.Deaf != nil {
		if !perms.Has(perm.DeafenMembers) {
			return MemberOut{}, ErrMissingPerms
		}
		m.Deaf = *p.Deaf
	}
	if p.ChannelID.Set {
		if err := s.checkVoiceMove(gs, am, userID, p.ChannelID.Val); err != nil {
			return MemberOut{}, err
		}
	}
	var out MemberOut
	if p.Nick == nil && p.Roles == nil && p.Mute == nil && p.Deaf == nil {
		out = s.memberOut(target, true)
	} else if out, err = s.saveMember(&m); err != nil {
		return MemberOut{}, err
	}
	if p.Nick != nil {
		s.federateProfile(gs, actor, userID, false)
	}
	if ctl := s.voiceControl(); ctl != nil {
		if p.Mute != nil {
			ctl.SetServerMute(guildID, userID, m.Mute)
		}
		if p.Deaf != nil {
			ctl.SetServerDeaf(guildID, userID, m.Deaf)
		}
		switch {
		case p.ChannelID.Set && p.ChannelID.Val == nil:
			ctl.Disconnect(guildID, userID)
		case p.ChannelID.Set:
			ctl.Move(guildID, userID, *p.ChannelID.Val)
		}
	}
	return out, nil
}

// saveMember stores a changed member and dispatches GUILD_MEMBER_UPDATE. Callers hold s.mu.
func (s *Service) saveMember(m *model.Member) (MemberOut, error) {
	if err := s.db.Update(func(tx *store.Tx) error {
		return tx.Put(store.Key(store.PrefixMember, uint64(m.GuildID), uint64(m.UserID)), m)
	}); err != nil {
		return MemberOut{}, fmt.Errorf("chat: update member: %w", err)
	}
	s.guilds[m.GuildID].members[m.UserID] = m
	out := s.memberOut(m, true)
	gid := m.GuildID
	out.GuildID = &gid
	s.publishGuild(m.GuildID, "GUILD_MEMBER_UPDATE", IntentGuildMembers, out)
	out.GuildID = nil
	return out, nil
}

// SetMemberRole adds or removes one role of a member (MANAGE_ROLES).
func (s *Service) SetMemberRole(ctx context.Context, actor, guildID, userID, roleID ID, add bool) (err error) {
	defer s.beginPermChange(ctx, guildID, actor)(&err)
	s.lock()
	defer s.mu.Unlock()
	gs, am, err := s.guild(actor, guildID)
	if err != nil {
		return err
	}
	target := gs.members[userID]
	if target == nil {
		return ErrUnknownMember
	}
	r := gs.roles[roleID]
	if r == nil || roleID == guildID {
		return ErrUnknownRole
	}
	if !gs.basePerms(am).Has(perm.ManageRoles) || r.Position >= gs.highestRole(am) {
		return ErrMissingPerms
	}
	idx := indexOf(target.Roles, roleID)
	if (idx >= 0) == add {
		return nil
	}
	m := *target
	if add {
		m.Roles = append(append([]ID{}, target.Roles...), roleID)
	} else {
		m.Roles = append(append([]ID{}, target.Roles[:idx]...), target.Roles[idx+1:]...)
	}
	_, err = s.saveMember(&m)
	return err
}

// outranks reports whether actor may moderate target: the owner may moderate anyone but
// themselves; others only members whose highest role is below their own.
func (s *Service) outranks(gs *guildState, actor, target *model.Member) bool {
	if target.UserID == gs.g.OwnerID {
		return false
	}
	return gs.highestRole(actor) > gs.highestRole(target)
}

// Kick removes a member (KICK_MEMBERS).
func (s *Service) Kick(ctx context.Context, actor, guildID, userID ID) error {
	if done, err := s.forwardModeration(ctx, actor, guildID, userID, ModKick, nil); done {
		return err
	}
	var published <-chan struct{}
	defer func() { awaitFederated(ctx, published) }() // after the unlock
	s.lock()
	defer s.mu.Unlock()
	gs, am, err := s.guild(actor, guildID)
	if err != nil {
		return err
	}
	target := gs.members[userID]
	if target == nil {
		return ErrUnknownMember
	}
	if !gs.basePerms(am).Has(perm.KickMembers) || !s.outranks(gs, am, target) {
		return ErrMissingPerms
	}
	if err := s.removeMember(gs, userID, nil); err != nil {
		return err
	}
	published = s.federateModeration(gs, actor, ModKick, userID, nil)
	return nil
}

// LeaveGuild removes the actor from a guild; the owner cannot leave.
func (s *Service) LeaveGuild(ctx context.Context, actor, guildID ID) error {
	var published <-chan struct{}
	defer func() { awaitFederated(ctx, published) }() // after the unlock
	s.lock()
	defer s.mu.Unlock()
	gs, _, err := s.guild(actor, guildID)
	if err != nil {
		return err
	}
	if gs.g.OwnerID == actor {
		return ErrOwnerCannotLeave
	}
	if err := s.removeMember(gs, actor, nil); err != nil {
		return err
	}
	published = s.federateModeration(gs, actor, ModLeave, actor, nil)
	return nil
}

// removeMember deletes the member record (and writes ban if set) in one transaction, and
// dispatches GUILD_MEMBER_REMOVE to the guild and GUILD_DELETE to the removed user. Callers
// hold s.mu.
func (s *Service) removeMember(gs *guildState, userID ID, ban *model.Ban) error {
	gid := gs.g.ID
	_, wasMember := gs.members[userID]
	if err := s.db.Update(func(tx *store.Tx) error {
		errs := []error{tx.Delete(store.Key(store.PrefixMember, uint64(gid), uint64(userID)))}
		if ban != nil {
			errs = append(errs, tx.Put(store.Key(store.PrefixBan, uint64(gid), uint64(userID)), ban))
		}
		return errors.Join(errs...)
	}); err != nil {
		return fmt.Errorf("chat: remove member: %w", err)
	}
	if ban != nil {
		gs.bans[userID] = ban
		s.publishGuild(gid, "GUILD_BAN_ADD", IntentGuildModeration, map[string]any{"guild_id": gid, "user": s.user(userID)})
	}
	if !wasMember {
		return nil
	}
	delete(gs.members, userID)
	delete(s.userGuilds[userID], gid)
	if ctl := s.voiceControl(); ctl != nil {
		if _, ok := s.inVoice(gid, userID); ok {
			ctl.Disconnect(gid, userID)
		}
	}
	s.pub.Leave(uint64(gid), uint64(userID))
	s.publishUsers([]ID{userID}, "GUILD_DELETE", IntentGuilds, map[string]any{"id": gid})
	s.publishGuild(gid, "GUILD_MEMBER_REMOVE", IntentGuildMembers, map[string]any{"guild_id": gid, "user": s.user(userID)})
	return nil
}

// BanOut is an element of GET /guilds/{id}/bans.
type BanOut struct {
	User   model.User `json:"user"`
	Reason *string    `json:"reason"`
}

// Bans lists a guild's bans (BAN_MEMBERS).
func (s *Service) Bans(actor, guildID ID) ([]BanOut, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs, am, err := s.guild(actor, guildID)
	if err != nil {
		return nil, err
	}
	if !gs.basePerms(am).Has(perm.BanMembers) {
		return nil, ErrMissingPerms
	}
	out := []BanOut{}
	for uid, b := range gs.bans {
		out = append(out, BanOut{User: s.user(uid), Reason: b.Reason})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User.ID < out[j].User.ID })
	return out, nil
}

// Ban bans a user (member or not) from the guild (BAN_MEMBERS), removing them if a member.
// deleteSeconds > 0 also deletes their messages of that many past seconds (at most 7 days).
func (s *Service) Ban(ctx context.Context, actor, guildID, userID ID, reason *string, deleteSeconds int) error {
	if deleteSeconds < 0 || deleteSeconds > 604800 {
		return invalid("delete_message_seconds", "NUMBER_TYPE_MAX", "Must be between 0 and 604800.")
	}
	if done, err := s.forwardModeration(ctx, actor, guildID, userID, ModBan, reason); done {
		return err
	}
	s.lock()
	gs, am, err := s.guild(actor, guildID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if _, ok := s.users[userID]; !ok {
		s.mu.Unlock()
		return ErrUnknownUser
	}
	if !gs.basePerms(am).Has(perm.BanMembers) || userID == actor {
		s.mu.Unlock()
		return ErrMissingPerms
	}
	if target := gs.members[userID]; target != nil && !s.outranks(gs, am, target) {
		s.mu.Unlock()
		return ErrMissingPerms
	}
	var channels []ID
	for cid := range gs.channels {
		if s.channels[cid].IsTextual() {
			channels = append(channels, cid)
		}
	}
	err = s.removeMember(gs, userID, &model.Ban{GuildID: guildID, UserID: userID, Reason: reason})
	var published <-chan struct{}
	if err == nil {
		published = s.federateModeration(gs, actor, ModBan, userID, reason)
	}
	s.mu.Unlock()
	awaitFederated(ctx, published)
	if err != nil || deleteSeconds == 0 {
		return err
	}
	return s.deleteRecentBy(ctx, channels, userID, deleteSeconds)
}

// Unban lifts a ban (BAN_MEMBERS).
func (s *Service) Unban(ctx context.Context, actor, guildID, userID ID) error {
	if done, err := s.forwardModeration(ctx, actor, guildID, userID, ModUnban, nil); done {
		return err
	}
	var published <-chan struct{}
	defer func() { awaitFederated(ctx, published) }() // after the unlock
	s.lock()
	defer s.mu.Unlock()
	gs, am, err := s.guild(actor, guildID)
	if err != nil {
		return err
	}
	if !gs.basePerms(am).Has(perm.BanMembers) {
		return ErrMissingPerms
	}
	if gs.bans[userID] == nil {
		return ErrUnknownBan
	}
	if err := s.liftBan(gs, userID); err != nil {
		return err
	}
	published = s.federateModeration(gs, actor, ModUnban, userID, nil)
	return nil
}

// liftBan deletes a ban and dispatches GUILD_BAN_REMOVE. Callers hold s.mu.
func (s *Service) liftBan(gs *guildState, userID ID) error {
	gid := gs.g.ID
	if err := s.db.Update(func(tx *store.Tx) error {
		return tx.Delete(store.Key(store.PrefixBan, uint64(gid), uint64(userID)))
	}); err != nil {
		return fmt.Errorf("chat: unban: %w", err)
	}
	delete(gs.bans, userID)
	s.publishGuild(gid, "GUILD_BAN_REMOVE", IntentGuildModeration, map[string]any{"guild_id": gid, "user": s.user(userID)})
	return nil
}

// addMember adds a user to a guild and dispatches GUILD_MEMBER_ADD and GUILD_CREATE. It
// reports false if the user was already a member. Callers hold s.mu.
func (s *Service) addMember(gs *guildState, userID ID) (bool, error) {
	if gs.bans[userID] != nil {
		return false, ErrBanned
	}
	if gs.members[userID] != nil {
		return false, nil
	}
	m := &model.Member{GuildID: gs.g.ID, UserID: userID, Roles: []ID{}, JoinedAt: s.now().UTC()}
	if err := s.db.Update(func(tx *store.Tx) error {
		return tx.Put(store.Key(store.PrefixMember, uint64(gs.g.ID), uint64(userID)), m)
	}); err != nil {
		return false, fmt.Errorf("chat: add member: %w", err)
	}
	gs.members[userID] = m
	addTo(s.userGuilds, userID, gs.g.ID)
	out := s.memberOut(m, true)
	gid := gs.g.ID
	out.GuildID = &gid
	s.publishGuild(gid, "GUILD_MEMBER_ADD", IntentGuildMembers, out)
	s.pub.Join(uint64(gid), uint64(userID))
	s.publishUsers([]ID{userID}, "GUILD_CREATE", IntentGuilds, s.GuildCreatePayload(gs, userID))
	s.federateProfile(gs, userID, userID, true)
	// The members already there learn the newcomer's presence, as on Discord.
	if p, ok := s.visiblePresence(userID); ok {
		s.publishGuild(gid, "PRESENCE_UPDATE", IntentGuildPresences, PresenceOut{User: PresenceUser{ID: userID}, GuildID: gid,
			Status: p.Status, Activities: p.Activities, ClientStatus: map[string]string{"web": p.Status}})
	}
	return true, nil
}

func symmetricDiff(a, b []ID) []ID {
	in := func(s []ID, v ID) bool { return indexOf(s, v) >= 0 }
	var out []ID
	for _, v := range a {
		if !in(b, v) {
			out = append(out, v)
		}
	}
	for _, v := range b {
		if !in(a, v) {
			out = append(out, v)
		}
	}
	return out
}
