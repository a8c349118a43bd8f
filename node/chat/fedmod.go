package chat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/node/model"
)

// fedElsewhere returns the federation ID of a federated guild homed on another node, and ""
// for local guilds and guilds homed here. Callers hold s.mu.
func (s *Service) fedElsewhere(gs *guildState) string {
	if s.fed == nil || gs.g.FedID == "" || !isRemoteName(s.user(gs.g.OwnerID).Username) {
		return ""
	}
	return gs.g.FedID
}

// forwardModeration sends a ban, unban or kick in a guild homed on another node to that
// node, which decides with the permissions it holds (this node's copy of the guild does not
// carry roles). done is false for every other guild: the caller handles those locally,
// errors included.
func (s *Service) forwardModeration(ctx context.Context, actor, guildID, target ID, action ModAction, reason *string) (done bool, err error) {
	s.mu.RLock()
	gs, _, err := s.guild(actor, guildID)
	fg := ""
	if err == nil {
		fg = s.fedElsewhere(gs)
	}
	_, known := s.users[target]
	s.mu.RUnlock()
	switch {
	case fg == "":
		return false, nil
	case !known:
		return true, ErrUnknownUser
	case target == actor:
		return true, ErrMissingPerms
	}
	return true, s.moderateHome(ctx, fg, actor, action, target, reason)
}

// moderateHome asks the home node of a guild homed elsewhere for a membership change; the
// change shows here when its state event arrives (ApplyRemoteModeration).
func (s *Service) moderateHome(ctx context.Context, guildFedID string, actor ID, action ModAction, target ID, reason *string) error {
	s.mu.RLock()
	actorName, targetName := s.user(actor).Username, s.user(target).Username
	s.mu.RUnlock()
	why := ""
	if reason != nil {
		why = *reason
	}
	if err := s.fed.Moderate(ctx, guildFedID, actorName, action, targetName, why); err != nil {
		if errors.Is(err, ErrMissingPerms) {
			return err
		}
		return fmt.Errorf("chat: ask the home node: %w", err)
	}
	return nil
}

// federateModeration publishes a membership change made here to the other nodes, in the
// background and in order: for a guild homed here every change, and for a guild homed
// elsewhere a user's own leave (which needs no permission). For a guild homed here, the
// channel it returns closes once the change is published (nil otherwise); callers hold s.mu
// and wait for it with awaitFederated once they have released it.
func (s *Service) federateModeration(gs *guildState, actor ID, action ModAction, target ID, reason *string) <-chan struct{} {
	if s.fed == nil || gs.g.FedID == "" {
		return nil
	}
	elsewhere := s.fedElsewhere(gs) != ""
	actorName, targetName := s.user(actor).Username, s.user(target).Username
	if (elsewhere && action != ModLeave) || isRemoteName(actorName) {
		return nil
	}
	fg, gid, why := gs.g.FedID, gs.g.ID, ""
	if reason != nil {
		why = *reason
	}
	done := make(chan struct{})
	// In order: a ban and an unban published the other way round would leave the user banned.
	s.publishInOrder("moderation "+fg, func(ctx context.Context) {
		defer close(done)
		if err := s.fed.Moderate(ctx, fg, actorName, action, targetName, why); err != nil {
			s.log.Warn("publishing a membership change to other nodes", "guild", gid, "action", action, "err", err)
		}
	})
	if elsewhere {
		return nil // a leave asked of another node: the user need not wait for it
	}
	return done
}

// awaitFederated waits, without s.mu, until a change federateModeration queued is published
// (or ctx ends), so that the caller's next request sees it on every node: a user unbanned on
// the home node can join from another at once.
func awaitFederated(ctx context.Context, published <-chan struct{}) {
	if published == nil {
		return
	}
	select {
	case <-published:
	case <-ctx.Done():
	}
}

// fedQueue runs the federation publications of each key (a guild, a member of a guild) one at
// a time, in the order they were queued, on a goroutine that lasts while the key has work.
type fedQueue struct {
	mu sync.Mutex
	// pending has a key while its goroutine runs, with the work waiting behind it.
	pending map[string][]func(context.Context)
	// ctx is the parent of every publication's context; Close cancels it, with
	// errShuttingDown, shutdownGrace after it starts waiting for the queues.
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// publishTimeout bounds one publication to federation.
const publishTimeout = 10 * time.Second

// shutdownGrace is how long Close lets queued publications run before it gives them up. A
// variable so that tests need not wait for it.
var shutdownGrace = publishTimeout

// errShuttingDown is the cause of the context of publications that Close gave up.
var errShuttingDown = errors.New("chat: shutting down")

// publishInOrder queues f, a publication to federation, behind those queued before under the
// same key. f runs with a timeout of publishTimeout; Close waits for the queues to drain.
func (s *Service) publishInOrder(key string, f func(context.Context)) {
	q := &s.fedQueue
	q.mu.Lock()
	if waiting, running := q.pending[key]; running {
		q.pending[key] = append(waiting, f)
		q.mu.Unlock()
		return
	}
	if q.pending == nil {
		q.pending = map[string][]func(context.Context){}
	}
	q.pending[key] = nil
	q.mu.Unlock()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		for f != nil {
			ctx, cancel := context.WithTimeout(q.ctx, publishTimeout)
			f(ctx)
			if errors.Is(context.Cause(ctx), errShuttingDown) {
				s.log.Warn("gave up a publication to federation at shutdown", "what", key)
			}
			cancel()
			q.mu.Lock()
			if waiting := q.pending[key]; len(waiting) > 0 {
				f, q.pending[key] = waiting[0], waiting[1:]
			} else {
				f = nil
				delete(q.pending, key)
			}
			q.mu.Unlock()
		}
	}()
}

// ApplyRemoteModeration applies a ban, unban, kick or leave that the home node of a
// federated guild issued; target is a local username or a remote user's name@node. It is
// idempotent, since this node may have made the change itself first.
func (s *Service) ApplyRemoteModeration(guildFedID string, action ModAction, target, reason string) error {
	s.lock()
	defer s.mu.Unlock()
	gs := s.guildByFedID(guildFedID)
	if gs == nil {
		return nil
	}
	uid, ok := s.usernames[target]
	if isRemoteName(target) {
		var err error
		if uid, err = s.storeRemoteUser(target); err != nil {
			return fmt.Errorf("chat: remote moderation: %w", err)
		}
	} else if !ok {
		return nil // a user this node does not have
	}
	switch action {
	case ModBan:
		if gs.bans[uid] != nil || uid == gs.g.OwnerID {
			return nil
		}
		var why *string
		if reason != "" {
			why = &reason
		}
		return s.removeMember(gs, uid, &model.Ban{GuildID: gs.g.ID, UserID: uid, Reason: why})
	case ModUnban:
		if gs.bans[uid] == nil {
			return nil
		}
		return s.liftBan(gs, uid)
	case ModKick, ModLeave:
		if gs.members[uid] == nil || uid == gs.g.OwnerID {
			return nil
		}
		return s.removeMember(gs, uid, nil)
	}
	return nil
}
