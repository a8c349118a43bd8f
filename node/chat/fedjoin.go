package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// joinRemote handles an invite code this node does not hold: a federation invite is joined
// through the home node and the guild is materialised locally.
func (s *Service) joinRemote(ctx context.Context, actor ID, code string) (InviteOut, error) {
	s.mu.RLock()
	username := s.user(actor).Username
	s.mu.RUnlock()
	rg, err := s.fed.Join(ctx, code, username)
	if err != nil {
		s.log.Info("joining a guild of another node failed", "user", username, "err", err)
		return InviteOut{}, ErrUnknownInvite
	}
	s.lock()
	defer s.mu.Unlock()
	if gs := s.guildByFedID(rg.FedID); gs != nil { // joined before: just add the member
		if _, err := s.addMember(gs, actor); err != nil {
			return InviteOut{}, err
		}
		return InviteOut{Code: code, GuildID: gs.g.ID, Guild: &PartialGuild{ID: gs.g.ID, Name: gs.g.Name, Features: []string{}}, NewMember: true}, nil
	}
	now := s.now().UTC()
	gid := s.ids.Next()
	gs := &guildState{
		g:        model.Guild{ID: gid, Name: rg.Name, CreatedAt: now, FedID: rg.FedID},
		roles:    map[ID]*model.Role{gid: {ID: gid, GuildID: gid, Name: "@everyone", Permissions: perm.DefaultEveryone}},
		channels: map[ID]struct{}{}, members: map[ID]*model.Member{}, bans: map[ID]*model.Ban{},
	}
	var chans []*model.Channel
	local := map[string]ID{} // federation ID → local ID of the channels made here
	for _, rc := range rg.Channels {
		local[rc.FedID] = s.ids.Next()
	}
	for _, rc := range rg.Channels {
		c := remoteChannel(gid, rc, local)
		c.ID = local[rc.FedID]
		chans = append(chans, c)
	}
	// The members (a guild may have tens of thousands) go in a batch first: nothing refers to
	// them until the guild record, written after them, makes them reachable.
	members := make([]*model.Member, 0, 1+len(rg.Members))
	newUsers := map[string]*model.User{}
	var known []string // members this node knew before, with a profile to apply
	err = s.db.Batch(func(b *store.Batch) error {
		for _, name := range append([]string{rg.Owner}, rg.Members...) {
			p, hasProfile := rg.Profiles[name]
			uid, ok := s.remotes[name]
			if u := newUsers[name]; u != nil {
				uid, ok = u.ID, true
			}
			if !ok {
				u := &model.User{ID: s.ids.Next(), Username: name, Discriminator: "0"}
				if hasProfile {
					u.GlobalName, u.Avatar = optString(p.GlobalName), optString(p.Avatar)
				}
				if err := errors.Join(b.Put(store.Key(store.PrefixUser, uint64(u.ID)), u), moveImageRef(b, imageUser, u.ID, nil, u.Avatar)); err != nil {
					return err
				}
				newUsers[name], uid = u, u.ID
			} else if hasProfile {
				known = append(known, name)
			}
			m := &model.Member{GuildID: gid, UserID: uid, Roles: []ID{}, JoinedAt: now}
			if hasProfile {
				m.Nick = optString(p.Nick)
			}
			if err := b.Put(store.Key(store.PrefixMember, uint64(gid), uint64(uid)), m); err != nil {
				return err
			}
			members = append(members, m)
		}
		return nil
	})
	if err == nil {
		for name, u := range newUsers {
			s.users[u.ID], s.remotes[name] = u, u.ID
		}
		gs.g.OwnerID = members[0].UserID
		err = s.db.Update(func(tx *store.Tx) error {
			errs := []error{tx.Put(store.Key(store.PrefixGuild, uint64(gid)), &gs.g), tx.Put(store.Key(store.PrefixRole, uint64(gid), uint64(gid)), gs.roles[gid])}
			for _, c := range chans {
				errs = append(errs, tx.Put(store.Key(store.PrefixChannel, uint64(c.ID)), c))
			}
			return errors.Join(errs...)
		})
	}
	if err != nil {
		return InviteOut{}, fmt.Errorf("chat: materialise remote guild: %w", err)
	}
	s.guilds[gid] = gs
	for _, c := range chans {
		s.channels[c.ID] = c
		gs.channels[c.ID] = struct{}{}
	}
	for _, m := range members {
		if gs.members[m.UserID] == nil {
			gs.members[m.UserID] = m
			addTo(s.userGuilds, m.UserID, gid)
		}
	}
	s.mu.Unlock()
	for i := range rg.Messages {
		rg.Messages[i].Snapshot = true
	}
	if err := s.ApplyRemoteMessages(rg.Messages); err != nil {
		s.log.Warn("storing the messages of the join snapshot", "count", len(rg.Messages), "err", err)
	}
	if rg.Perms != nil {
		if err := s.ApplyRemotePerms(rg.FedID, rg.Perms); err != nil {
			s.log.Warn("applying the permissions of a joined guild", "guild", gid, "err", err)
		}
	}
	for _, display := range known { // the profiles of the others were stored with them
		if err := s.ApplyRemoteProfile(rg.FedID, display, rg.Profiles[display]); err != nil {
			s.log.Warn("applying a member's profile of a joined guild", "guild", gid, "member", display, "err", err)
		}
	}
	s.lock()
	if _, err := s.addMember(gs, actor); err != nil {
		return InviteOut{}, err
	}
	return InviteOut{Code: code, GuildID: gid, Guild: &PartialGuild{ID: gid, Name: gs.g.Name, Features: []string{}}, NewMember: true}, nil
}

// needsFedJoin reports whether joining with a local invite must first be admitted by
// federation: the code is a federation invite of a federated guild that the actor may join
// and is not in yet. Callers hold s.mu.
func (s *Service) needsFedJoin(inv *model.Invite, actor ID, code string) bool {
	if s.fed == nil || inv == nil || !inv.Usable(s.now()) || !s.fed.IsInvite(code) {
		return false
	}
	gs := s.guilds[inv.GuildID]
	return gs != nil && gs.g.FedID != "" && gs.members[actor] == nil && gs.bans[actor] == nil
}

// ApplyRemoteMember records that a remote user joined a federated guild (a member.join the
// home node issued) and dispatches GUILD_MEMBER_ADD; joining twice changes nothing.
func (s *Service) ApplyRemoteMember(guildFedID, display string) error {
	s.lock()
	defer s.mu.Unlock()
	gs := s.guildByFedID(guildFedID)
	if gs == nil {
		return nil // a guild this node does not show
	}
	uid, err := s.storeRemoteUser(display)
	if err != nil {
		return fmt.Errorf("chat: remote member: %w", err)
	}
	if _, err := s.addMember(gs, uid); err != nil && !errors.Is(err, ErrBanned) {
		return fmt.Errorf("chat: remote member: %w", err)
	}
	return nil
}
