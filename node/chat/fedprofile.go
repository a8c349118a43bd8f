package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/store"
)

// RemoteProfile is how a member of a federated guild is shown: their nickname there, their
// display name, and the hex hash of their avatar ("" for none).
type RemoteProfile struct {
	Nick, GlobalName, Avatar string
}

// profileOf is a member's profile in a guild. Callers hold s.mu.
func (s *Service) profileOf(m *model.Member) RemoteProfile {
	var p RemoteProfile
	if m.Nick != nil {
		p.Nick = *m.Nick
	}
	if u := s.users[m.UserID]; u != nil {
		if u.GlobalName != nil {
			p.GlobalName = *u.GlobalName
		}
		if u.Avatar != nil {
			p.Avatar = *u.Avatar
		}
	}
	return p
}

// federateProfile publishes the profile of the local user target in a federated guild, as
// actor (target, or a moderator changing target's nickname), in the background. An empty
// profile of a newcomer is not published. Callers hold s.mu.
func (s *Service) federateProfile(gs *guildState, actor, target ID, joined bool) {
	m := gs.members[target]
	if s.fed == nil || gs.g.FedID == "" || m == nil {
		return
	}
	actorName, targetName := s.user(actor).Username, s.user(target).Username
	p := s.profileOf(m)
	if isRemoteName(actorName) || isRemoteName(targetName) || (joined && p == RemoteProfile{}) {
		return
	}
	fg, gid := gs.g.FedID, gs.g.ID
	// In order, so that a nickname and a display name set in quick succession do not reach
	// the home node the other way round, and the older profile win.
	s.publishInOrder("profile "+fg+" "+targetName, func(ctx context.Context) {
		if err := s.fed.PublishProfile(ctx, fg, actorName, targetName, p); err != nil {
			s.log.Warn("publishing a member's profile to other nodes", "guild", gid, "user", targetName, "err", err)
		}
	})
}

// ApplyRemoteProfile shows a remote member (name@node) of a federated guild as the federated
// state says: their nickname there, their display name and avatar (whose bytes the node
// fetches on first request), and dispatches GUILD_MEMBER_UPDATE.
func (s *Service) ApplyRemoteProfile(guildFedID, display string, p RemoteProfile) error {
	s.lock()
	defer s.mu.Unlock()
	gs := s.guildByFedID(guildFedID)
	uid, ok := s.remotes[display]
	if gs == nil || !ok || gs.members[uid] == nil {
		return nil // not shown here (yet): the profile is applied again when it changes
	}
	u, m := *s.users[uid], *gs.members[uid]
	old := u.Avatar
	u.GlobalName, u.Avatar, m.Nick = optString(p.GlobalName), optString(p.Avatar), optString(p.Nick)
	if s.profileOf(gs.members[uid]) == p {
		return nil
	}
	if err := s.db.Update(func(tx *store.Tx) error {
		return errors.Join(tx.Put(store.Key(store.PrefixUser, uint64(uid)), &u), moveImageRef(tx, imageUser, uid, old, u.Avatar))
	}); err != nil {
		return fmt.Errorf("chat: remote profile: %w", err)
	}
	s.users[uid] = &u
	_, err := s.saveMember(&m) // GUILD_MEMBER_UPDATE, with the user as changed
	return err
}

// optString is v, or nil for "" (a profile field that is not set).
func optString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}
