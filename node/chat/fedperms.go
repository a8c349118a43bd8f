package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// Permissions of a federated guild cross nodes as a whole state rather than as single
// edits: the home node publishes whatever its roles, member roles and channel overwrites
// are after a change, and member nodes make their copy equal to the state federation holds.
// Both sides are idempotent, so a replay, a catch-up or a lost event needs no special case.

// RemoteRole is a role of a federated guild.
type RemoteRole struct {
	FedID       string // the role's federation ID; "" for a role of a guild homed here not federated yet
	Local       ID     // the local role (on the home node)
	Name        string
	Permissions perm.Bits
	Position    int
	Color       int
	Hoist       bool
	Mentionable bool
}

// RemoteOverwrite is a channel permission overwrite of a federated guild. Target is a role's
// federation ID (Type perm.OverwriteRole; the guild's federation ID for @everyone) or a
// member's name (a local username or name@node).
type RemoteOverwrite struct {
	Target      string
	Type        int
	Allow, Deny perm.Bits
}

// RemotePerms is the permission state of a federated guild.
type RemotePerms struct {
	Everyone perm.Bits    // the @everyone role's permissions
	Roles    []RemoteRole // every role but @everyone
	// Members maps every member's name (local username or name@node) to the federation IDs
	// of their roles.
	Members map[string][]string
	// Overwrites maps a channel's federation ID to its overwrites.
	Overwrites map[string][]RemoteOverwrite
}

// homedHere reports whether a federated guild has this node as its home. Callers hold s.mu.
func (s *Service) homedHere(gs *guildState) bool {
	return s.fed != nil && gs.g.FedID != "" && !isRemoteName(s.user(gs.g.OwnerID).Username)
}

// beginPermChange starts a change to a guild's roles, member roles or channel overwrites
// made through the client API. It serialises the change with every other publication of
// the guild's permissions, and returns the function the caller defers (before taking s.mu,
// so that it runs after s.mu is released) to publish the change when the guild is
// federated: a guild homed here issues the state events; a guild homed elsewhere asks its
// home node for them [FED-040], and when the home node refuses or cannot be reached, the
// change is undone here and the error returned [FED-081].
func (s *Service) beginPermChange(ctx context.Context, guildID, actor ID) func(*error) {
	s.permSync.Lock()
	return func(err *error) {
		defer s.releasePerms()
		if *err == nil {
			*err = s.publishPerms(ctx, guildID, actor)
		}
	}
}

// permDeferrals holds the guilds whose federated permissions arrived while a change was
// being published: applying them then would show a state from the middle of the change.
type permDeferrals struct {
	mu     sync.Mutex
	guilds map[string]bool // federation IDs
}

// releasePerms applies the federated permission states that arrived while s.permSync was
// held, and releases it.
func (s *Service) releasePerms() {
	s.permDefer.mu.Lock()
	defer s.permDefer.mu.Unlock()
	fp, _ := s.fed.(interface {
		FederatedPerms(guild string) *RemotePerms
	})
	for fg := range s.permDefer.guilds {
		delete(s.permDefer.guilds, fg)
		if fp == nil {
			continue
		}
		if rp := fp.FederatedPerms(fg); rp != nil {
			if err := s.applyPerms(fg, rp); err != nil {
				s.log.Error("applying a guild's federated permissions", "guild", fg, "err", err)
			}
		}
	}
	s.permSync.Unlock()
}

// publishPerms publishes a guild's permission state after a local change; the caller holds
// s.permSync.
func (s *Service) publishPerms(ctx context.Context, gid, actor ID) error {
	s.mu.RLock()
	gs := s.guilds[gid]
	if s.fed == nil || gs == nil || gs.g.FedID == "" {
		s.mu.RUnlock()
		return nil
	}
	fg, home, name := gs.g.FedID, s.homedHere(gs), s.user(actor).Username
	s.mu.RUnlock()
	if isRemoteName(name) {
		return nil
	}
	err := s.syncPerms(ctx, gid, fg, name)
	if home {
		return err
	}
	// Make this copy equal to the federated state, which now holds the change (the
	// Federator returns once the home node's events for it are here) or, when the home node
	// did not take it, undoes it. The events' own application, which may come later and one
	// at a time, then finds nothing to change.
	if fp, ok := s.fed.(interface {
		FederatedPerms(guild string) *RemotePerms
	}); ok {
		if rp := fp.FederatedPerms(fg); rp != nil {
			if aerr := s.applyPerms(fg, rp); aerr != nil {
				s.log.Error("applying a guild's federated permissions", "guild", gid, "err", aerr)
			}
		}
	}
	return err
}

// federatePerms publishes the permission state of a guild homed here after a local change,
// in the background; changes are serialised so that a role is federated once. Callers hold
// s.mu.
func (s *Service) federatePerms(gs *guildState, actor ID) {
	if !s.homedHere(gs) {
		return
	}
	gid, fg, name := gs.g.ID, gs.g.FedID, s.user(actor).Username
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.permSync.Lock()
		defer s.releasePerms()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.syncPerms(ctx, gid, fg, name); err != nil {
			s.log.Warn("publishing a guild's permissions to other nodes", "guild", gid, "err", err)
		}
	}()
}

func (s *Service) syncPerms(ctx context.Context, gid ID, fg, actor string) error {
	want, ok := s.localPerms(gid)
	if !ok {
		return nil // deleted meanwhile
	}
	created := false
	for _, r := range want.Roles {
		if r.FedID != "" {
			continue
		}
		id, err := s.fed.CreateRole(ctx, fg, actor, r)
		if err != nil {
			return err
		}
		if err := s.setRoleFedID(gid, r.Local, id); err != nil {
			return err
		}
		created = true
	}
	if created {
		if want, ok = s.localPerms(gid); !ok {
			return nil
		}
	}
	return s.fed.SyncPermissions(ctx, fg, actor, want)
}

// localPerms is the permission state of a local guild in federation's terms; roles not
// federated yet have an empty FedID, and overwrites naming them are left out.
func (s *Service) localPerms(gid ID) (*RemotePerms, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs := s.guilds[gid]
	if gs == nil {
		return nil, false
	}
	rp := &RemotePerms{Everyone: gs.roles[gid].Permissions, Members: make(map[string][]string, len(gs.members)), Overwrites: map[string][]RemoteOverwrite{}}
	fedOf := func(role ID) string {
		if role == gid {
			return gs.g.FedID
		}
		if r := gs.roles[role]; r != nil {
			return r.FedID
		}
		return ""
	}
	for _, r := range gs.sortedRoles() {
		if r.ID != gid {
			rp.Roles = append(rp.Roles, RemoteRole{FedID: r.FedID, Local: r.ID, Name: r.Name, Permissions: r.Permissions,
				Position: r.Position, Color: r.Color, Hoist: r.Hoist, Mentionable: r.Mentionable})
		}
	}
	for uid, m := range gs.members {
		roles := []string{}
		for _, r := range m.Roles {
			if id := fedOf(r); id != "" {
				roles = append(roles, id)
			}
		}
		rp.Members[s.user(uid).Username] = roles
	}
	for cid := range gs.channels {
		c := s.channels[cid]
		if c == nil || c.FedID == "" {
			continue
		}
		ows := []RemoteOverwrite{}
		for _, o := range c.PermissionOverwrites {
			target := ""
			if o.Type == perm.OverwriteRole {
				target = fedOf(o.ID)
			} else if u := s.users[o.ID]; u != nil {
				target = u.Username
			}
			if target != "" {
				ows = append(ows, RemoteOverwrite{Target: target, Type: o.Type, Allow: o.Allow, Deny: o.Deny})
			}
		}
		rp.Overwrites[c.FedID] = ows
	}
	return rp, true
}

// setRoleFedID records the federation ID of a role of a guild homed here.
func (s *Service) setRoleFedID(gid, role ID, fedID string) error {
	s.lock()
	defer s.mu.Unlock()
	gs := s.guilds[gid]
	if gs == nil || gs.roles[role] == nil {
		return nil // deleted meanwhile; the next sync removes it from federation
	}
	if err := s.db.Update(func(tx *store.Tx) error {
		return tx.Put(store.Key(store.PrefixRoleFed, uint64(gid), uint64(role)), fedID)
	}); err != nil {
		return fmt.Errorf("chat: store a role's federation ID: %w", err)
	}
	r := *gs.roles[role]
	r.FedID = fedID
	gs.roles[role] = &r
	return nil
}

// ApplyRemotePerms makes the roles, member roles and channel overwrites of this node's copy
// of a federated guild equal to rp, and dispatches what changed (GUILD_ROLE_CREATE,
// GUILD_ROLE_UPDATE, GUILD_ROLE_DELETE, GUILD_MEMBER_UPDATE, CHANNEL_UPDATE). Members and
// roles it does not know are skipped. On the home node (which applies what it issued for
// members of other nodes, FED-081) it keeps the roles it has not federated yet, with the
// member roles and overwrites that name them. While a local change is being published, the
// state is applied when that ends instead (releasePerms).
func (s *Service) ApplyRemotePerms(guildFedID string, rp *RemotePerms) error {
	s.permDefer.mu.Lock()
	if !s.permSync.TryLock() {
		// A change is being published: its end applies the state as it is then.
		if s.permDefer.guilds == nil {
			s.permDefer.guilds = map[string]bool{}
		}
		s.permDefer.guilds[guildFedID] = true
		s.permDefer.mu.Unlock()
		return nil
	}
	s.permDefer.mu.Unlock()
	defer s.permSync.Unlock()
	return s.applyPerms(guildFedID, rp)
}

func (s *Service) applyPerms(guildFedID string, rp *RemotePerms) error {
	s.lock()
	defer s.mu.Unlock()
	gs := s.guildByFedID(guildFedID)
	if gs == nil {
		return nil
	}
	home := s.homedHere(gs)
	gid := gs.g.ID
	local := map[string]ID{gs.g.FedID: gid} // role federation ID → local role
	unfederated := map[ID]bool{}            // on the home node: roles not federated yet
	for _, r := range gs.roles {
		if r.FedID != "" {
			local[r.FedID] = r.ID
		} else if home && r.ID != gid {
			unfederated[r.ID] = true
		}
	}
	// Roles.
	var created, updated []*model.Role
	keep := map[ID]bool{gid: true}
	for id := range unfederated {
		keep[id] = true
	}
	if ev := gs.roles[gid]; ev.Permissions != rp.Everyone {
		cp := *ev
		cp.Permissions = rp.Everyone
		updated = append(updated, &cp)
	}
	for _, rr := range rp.Roles {
		r := model.Role{GuildID: gid, Name: rr.Name, Permissions: rr.Permissions, Position: rr.Position,
			Color: rr.Color, Hoist: rr.Hoist, Mentionable: rr.Mentionable, FedID: rr.FedID}
		id, ok := local[rr.FedID]
		if !ok {
			r.ID = s.ids.Next()
			local[rr.FedID] = r.ID
			created = append(created, &r)
		} else if r.ID = id; *gs.roles[id] != r {
			updated = append(updated, &r)
		}
		keep[r.ID] = true
	}
	var deleted []ID
	for id := range gs.roles {
		if !keep[id] {
			deleted = append(deleted, id)
		}
	}
	// Member roles.
	var members []*model.Member
	for name, fedRoles := range rp.Members {
		uid, ok := s.remotes[name]
		if !isRemoteName(name) {
			uid, ok = s.usernames[name]
		}
		m := gs.members[uid]
		if !ok || m == nil {
			continue
		}
		roles := []ID{}
		for _, fr := range fedRoles {
			if id, ok := local[fr]; ok && id != gid {
				roles = append(roles, id)
			}
		}
		for _, id := range m.Roles {
			if unfederated[id] {
				roles = append(roles, id)
			}
		}
		if !sameIDs(m.Roles, roles) {
			cp := *m
			cp.Roles = roles
			members = append(members, &cp)
		}
	}
	// Channel overwrites.
	var channels []*model.Channel
	for cid := range gs.channels {
		c := s.channels[cid]
		if c == nil || c.FedID == "" {
			continue
		}
		ows := []model.Overwrite{}
		for _, ro := range rp.Overwrites[c.FedID] {
			if ro.Allow == 0 && ro.Deny == 0 {
				continue // a removed overwrite
			}
			o := model.Overwrite{Type: ro.Type, Allow: ro.Allow, Deny: ro.Deny}
			var ok bool
			switch {
			case ro.Type == perm.OverwriteRole:
				o.ID, ok = local[ro.Target]
			case isRemoteName(ro.Target):
				o.ID, ok = s.remotes[ro.Target]
			default:
				o.ID, ok = s.usernames[ro.Target]
			}
			if ok {
				ows = append(ows, o)
			}
		}
		for _, o := range c.PermissionOverwrites {
			if o.Type == perm.OverwriteRole && unfederated[o.ID] {
				ows = append(ows, o)
			}
		}
		if !slices.Equal(c.PermissionOverwrites, ows) && !(len(c.PermissionOverwrites) == 0 && len(ows) == 0) {
			cp := *c
			cp.PermissionOverwrites = ows
			channels = append(channels, &cp)
		}
	}
	if len(created)+len(updated)+len(deleted)+len(members)+len(channels) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *store.Tx) error {
		var errs []error
		for _, r := range append(slices.Clip(created), updated...) {
			errs = append(errs, tx.Put(store.Key(store.PrefixRole, uint64(gid), uint64(r.ID)), r))
			if r.FedID != "" {
				errs = append(errs, tx.Put(store.Key(store.PrefixRoleFed, uint64(gid), uint64(r.ID)), r.FedID))
			}
		}
		for _, id := range deleted {
			errs = append(errs, tx.Delete(store.Key(store.PrefixRole, uint64(gid), uint64(id))),
				tx.Delete(store.Key(store.PrefixRoleFed, uint64(gid), uint64(id))))
		}
		for _, m := range members {
			errs = append(errs, tx.Put(store.Key(store.PrefixMember, uint64(gid), uint64(m.UserID)), m))
		}
		for _, c := range channels {
			errs = append(errs, tx.Put(store.Key(store.PrefixChannel, uint64(c.ID)), c))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("chat: apply remote permissions: %w", err)
	}
	for _, r := range created {
		gs.roles[r.ID] = r
		s.publishGuild(gid, "GUILD_ROLE_CREATE", IntentGuilds, map[string]any{"guild_id": gid, "role": r})
	}
	for _, r := range updated {
		gs.roles[r.ID] = r
		s.publishGuild(gid, "GUILD_ROLE_UPDATE", IntentGuilds, map[string]any{"guild_id": gid, "role": r})
	}
	for _, id := range deleted {
		delete(gs.roles, id)
		s.publishGuild(gid, "GUILD_ROLE_DELETE", IntentGuilds, map[string]any{"guild_id": gid, "role_id": id})
	}
	for _, m := range members {
		gs.members[m.UserID] = m
		out := s.memberOut(m, true)
		out.GuildID = &gid
		s.publishGuild(gid, "GUILD_MEMBER_UPDATE", IntentGuildMembers, out)
	}
	for _, c := range channels {
		s.channelChanged(c)
	}
	return nil
}

// sameIDs reports whether a and b hold the same IDs, in any order.
func sameIDs(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, id := range a {
		if !slices.Contains(b, id) {
			return false
		}
	}
	return true
}
