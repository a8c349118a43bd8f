package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// RoleSpec is the body of role create and modify. Nil fields are default/unchanged.
type RoleSpec struct {
	Name        *string    `json:"name"`
	Permissions *perm.Bits `json:"permissions,string"`
	Color       *int       `json:"color"`
	Hoist       *bool      `json:"hoist"`
	Mentionable *bool      `json:"mentionable"`
}

// Roles lists a guild's roles by position.
func (s *Service) Roles(actor, guildID ID) ([]*model.Role, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs, _, err := s.guild(actor, guildID)
	if err != nil {
		return nil, err
	}
	return gs.sortedRoles(), nil
}

// manageRoles checks MANAGE_ROLES and returns the actor's highest role position.
func (s *Service) manageRoles(actor, guildID ID) (*guildState, int, error) {
	gs, m, err := s.guild(actor, guildID)
	if err != nil {
		return nil, 0, err
	}
	if !gs.basePerms(m).Has(perm.ManageRoles) {
		return nil, 0, ErrMissingPerms
	}
	return gs, gs.highestRole(m), nil
}

func (spec *RoleSpec) apply(r *model.Role, actorPerms perm.Bits) error {
	if spec.Name != nil {
		name := strings.TrimSpace(*spec.Name)
		if n := utf8.RuneCountInString(name); n < 1 || n > 100 {
			return invalid("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
		}
		r.Name = name
	}
	if spec.Permissions != nil {
		// Nobody grants what they do not have.
		if *spec.Permissions&^actorPerms != 0 {
			return ErrMissingPerms
		}
		r.Permissions = *spec.Permissions
	}
	if spec.Color != nil {
		if *spec.Color < 0 || *spec.Color > 0xffffff {
			return invalid("color", "NUMBER_TYPE_MAX", "Must be between 0 and 16777215.")
		}
		r.Color = *spec.Color
	}
	if spec.Hoist != nil {
		r.Hoist = *spec.Hoist
	}
	if spec.Mentionable != nil {
		r.Mentionable = *spec.Mentionable
	}
	return nil
}

// CreateRole adds a role just above @everyone (MANAGE_ROLES).
func (s *Service) CreateRole(ctx context.Context, actor, guildID ID, spec RoleSpec) (_ *model.Role, err error) {
	defer s.beginPermChange(ctx, guildID, actor)(&err)
	s.lock()
	defer s.mu.Unlock()
	gs, _, err := s.manageRoles(actor, guildID)
	if err != nil {
		return nil, err
	}
	if len(gs.roles) >= 250 {
		return nil, newErr(400, 30005, "Maximum number of guild roles reached (250)")
	}
	r := &model.Role{ID: s.ids.Next(), GuildID: guildID, Name: "new role", Position: 1}
	if err := spec.apply(r, gs.basePerms(gs.members[actor])); err != nil {
		return nil, err
	}
	// Shift the other roles up to make room at position 1.
	var shifted []*model.Role
	for _, o := range gs.roles {
		if o.ID != guildID {
			cp := *o
			cp.Position++
			shifted = append(shifted, &cp)
		}
	}
	err = s.db.Update(func(tx *store.Tx) error {
		errs := []error{tx.Put(store.Key(store.PrefixRole, uint64(guildID), uint64(r.ID)), r)}
		for _, o := range shifted {
			errs = append(errs, tx.Put(store.Key(store.PrefixRole, uint64(guildID), uint64(o.ID)), o))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return nil, fmt.Errorf("chat: create role: %w", err)
	}
	for _, o := range shifted {
		gs.roles[o.ID] = o
		s.publishGuild(guildID, "GUILD_ROLE_UPDATE", IntentGuilds, map[string]any{"guild_id": guildID, "role": o})
	}
	gs.roles[r.ID] = r
	s.publishGuild(guildID, "GUILD_ROLE_CREATE", IntentGuilds, map[string]any{"guild_id": guildID, "role": r})
	return r, nil
}

// ModifyRole changes a role below the actor's highest role (MANAGE_ROLES).
func (s *Service) ModifyRole(ctx context.Context, actor, guildID, roleID ID, spec RoleSpec) (_ *model.Role, err error) {
	defer s.beginPermChange(ctx, guildID, actor)(&err)
	s.lock()
	defer s.mu.Unlock()
	gs, top, err := s.manageRoles(actor, guildID)
	if err != nil {
		return nil, err
	}
	old := gs.roles[roleID]
	if old == nil {
		return nil, ErrUnknownRole
	}
	if roleID != guildID && old.Position >= top {
		return nil, ErrMissingPerms
	}
	r := *old
	if roleID == guildID {
		spec.Name = nil // @everyone keeps its name
	}
	if err := spec.apply(&r, gs.basePerms(gs.members[actor])); err != nil {
		return nil, err
	}
	if err := s.db.Update(func(tx *store.Tx) error {
		return tx.Put(store.Key(store.PrefixRole, uint64(guildID), uint64(roleID)), &r)
	}); err != nil {
		return nil, fmt.Errorf("chat: modify role: %w", err)
	}
	gs.roles[roleID] = &r
	s.publishGuild(guildID, "GUILD_ROLE_UPDATE", IntentGuilds, map[string]any{"guild_id": guildID, "role": &r})
	return &r, nil
}

// RolePosition is an element of the role reorder body.
type RolePosition struct {
	ID       ID  `json:"id"`
	Position int `json:"position"`
}

// ReorderRoles moves roles below the actor's highest role (MANAGE_ROLES).
func (s *Service) ReorderRoles(ctx context.Context, actor, guildID ID, moves []RolePosition) (_ []*model.Role, err error) {
	defer s.beginPermChange(ctx, guildID, actor)(&err)
	s.lock()
	defer s.mu.Unlock()
	gs, top, err := s.manageRoles(actor, guildID)
	if err != nil {
		return nil, err
	}
	var changed []*model.Role
	for _, mv := range moves {
		r := gs.roles[mv.ID]
		if r == nil || mv.ID == guildID {
			return nil, ErrUnknownRole
		}
		if r.Position >= top || mv.Position >= top || mv.Position < 1 {
			return nil, ErrMissingPerms
		}
		cp := *r
		cp.Position = mv.Position
		changed = append(changed, &cp)
	}
	if err := s.db.Update(func(tx *store.Tx) error {
		var errs []error
		for _, r := range changed {
			errs = append(errs, tx.Put(store.Key(store.PrefixRole, uint64(guildID), uint64(r.ID)), r))
		}
		return errors.Join(errs...)
	}); err != nil {
		return nil, fmt.Errorf("chat: reorder roles: %w", err)
	}
	for _, r := range changed {
		gs.roles[r.ID] = r
		s.publishGuild(guildID, "GUILD_ROLE_UPDATE", IntentGuilds, map[string]any{"guild_id": guildID, "role": r})
	}
	return gs.sortedRoles(), nil
}

// DeleteRole removes a role below the actor's highest role, and from every member.
func (s *Service) DeleteRole(ctx context.Context, actor, guildID, roleID ID) (err error) {
	defer s.beginPermChange(ctx, guildID, actor)(&err)
	s.lock()
	defer s.mu.Unlock()
	gs, top, err := s.manageRoles(actor, guildID)
	if err != nil {
		return err
	}
	r := gs.roles[roleID]
	if r == nil || roleID == guildID {
		return ErrUnknownRole
	}
	if r.Position >= top {
		return ErrMissingPerms
	}
	var changed []*model.Member
	for _, m := range gs.members {
		if idx := indexOf(m.Roles, roleID); idx >= 0 {
			cp := *m
			cp.Roles = append(append([]ID{}, m.Roles[:idx]...), m.Roles[idx+1:]...)
			changed = append(changed, &cp)
		}
	}
	if err := s.db.Update(func(tx *store.Tx) error {
		errs := []error{tx.Delete(store.Key(store.PrefixRole, uint64(guildID), uint64(roleID))),
			tx.Delete(store.Key(store.PrefixRoleFed, uint64(guildID), uint64(roleID)))}
		for _, m := range changed {
			errs = append(errs, tx.Put(store.Key(store.PrefixMember, uint64(guildID), uint64(m.UserID)), m))
		}
		return errors.Join(errs...)
	}); err != nil {
		return fmt.Errorf("chat: delete role: %w", err)
	}
	delete(gs.roles, roleID)
	for _, m := range changed {
		gs.members[m.UserID] = m
	}
	s.publishGuild(guildID, "GUILD_ROLE_DELETE", IntentGuilds, map[string]any{"guild_id": guildID, "role_id": roleID})
	return nil
}

func indexOf(ids []ID, id ID) int {
	for i, v := range ids {
		if v == id {
			return i
		}
	}
	return -1
}
