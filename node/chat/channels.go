package chat

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// ChannelSpec is the body of channel create and modify. Nil fields are unset/unchanged.
type ChannelSpec struct {
	Name                 *string            `json:"name"`
	Type                 *int               `json:"type"`
	Topic                *string            `json:"topic"`
	Position             *int               `json:"position"`
	ParentID             Optional[ID]       `json:"parent_id"` // null or "0": out of its category
	NSFW                 *bool              `json:"nsfw"`
	RateLimitPerUser     *int               `json:"rate_limit_per_user"`
	PermissionOverwrites *[]model.Overwrite `json:"permission_overwrites"`
	UserLimit            *int               `json:"user_limit"`
	Bitrate              *int               `json:"bitrate"`
}

// apply validates spec against the guild and writes it into c.
func (spec *ChannelSpec) apply(c *model.Channel, gs *guildState, s *Service) error {
	if spec.Name != nil {
		name := strings.TrimSpace(*spec.Name)
		if c.Type == model.ChannelText {
			name = strings.ToLower(strings.Join(strings.Fields(name), "-"))
		}
		if n := utf8.RuneCountInString(name); n < 1 || n > 100 {
			return invalid("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
		}
		c.Name = name
	}
	if spec.Topic != nil {
		if utf8.RuneCountInString(*spec.Topic) > 1024 {
			return invalid("topic", "BASE_TYPE_MAX_LENGTH", "Must be 1024 or fewer in length.")
		}
		c.Topic = spec.Topic
	}
	if spec.Position != nil {
		c.Position = *spec.Position
	}
	if spec.ParentID.Set {
		if spec.ParentID.Val == nil || *spec.ParentID.Val == 0 {
			c.ParentID = nil
		} else {
			p := s.channels[*spec.ParentID.Val]
			if p == nil || p.GuildID != gs.g.ID || p.Type != model.ChannelCategory || c.Type == model.ChannelCategory {
				return invalid("parent_id", "CHANNEL_PARENT_INVALID", "Not a category of this guild.")
			}
			pid := *spec.ParentID.Val
			c.ParentID = &pid
		}
	}
	if spec.NSFW != nil {
		c.NSFW = *spec.NSFW
	}
	if spec.RateLimitPerUser != nil {
		if *spec.RateLimitPerUser < 0 || *spec.RateLimitPerUser > 21600 {
			return invalid("rate_limit_per_user", "NUMBER_TYPE_MAX", "Must be between 0 and 21600.")
		}
		c.RateLimitPerUser = *spec.RateLimitPerUser
	}
	if spec.UserLimit != nil && c.Type == model.ChannelVoice {
		c.UserLimit = *spec.UserLimit
	}
	if spec.Bitrate != nil && c.Type == model.ChannelVoice {
		c.Bitrate = *spec.Bitrate
	}
	if spec.PermissionOverwrites != nil {
		ows := *spec.PermissionOverwrites
		if len(ows) > 100 {
			return invalid("permission_overwrites", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
		}
		for _, o := range ows {
			if o.Type != perm.OverwriteRole && o.Type != perm.OverwriteMember {
				return invalid("permission_overwrites", "BASE_TYPE_CHOICES", "Overwrite type must be 0 or 1.")
			}
		}
		c.PermissionOverwrites = append([]model.Overwrite(nil), ows...)
	}
	return nil
}

// Channels lists the guild channels the actor can view.
func (s *Service) Channels(actor, guildID ID) ([]ChannelOut, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs, _, err := s.guild(actor, guildID)
	if err != nil {
		return nil, err
	}
	return s.GuildCreatePayload(gs, actor).Channels, nil
}

// CreateChannel creates a text, voice or category channel (MANAGE_CHANNELS).
func (s *Service) CreateChannel(ctx context.Context, actor, guildID ID, spec ChannelSpec) (ChannelOut, error) {
	if out, forwarded, err := s.createChannelAtHome(ctx, actor, guildID, spec); forwarded {
		return out, err
	}
	s.lock()
	defer s.mu.Unlock()
	gs, m, err := s.guild(actor, guildID)
	if err != nil {
		return ChannelOut{}, err
	}
	if !gs.basePerms(m).Has(perm.ManageChannels) {
		return ChannelOut{}, ErrMissingPerms
	}
	typ := model.ChannelText
	if spec.Type != nil {
		typ = *spec.Type
	}
	if typ != model.ChannelText && typ != model.ChannelVoice && typ != model.ChannelCategory {
		return ChannelOut{}, invalid("type", "BASE_TYPE_CHOICES", "Value must be one of {0, 2, 4}.")
	}
	if spec.Name == nil {
		return ChannelOut{}, invalid("name", "BASE_TYPE_REQUIRED", "This field is required")
	}
	c := &model.Channel{ID: s.ids.Next(), Type: typ, GuildID: guildID}
	if typ == model.ChannelVoice {
		c.Bitrate = 64000
	}
	if spec.Position == nil {
		c.Position = s.nextPosition(gs, typ)
	}
	if err := spec.apply(c, gs, s); err != nil {
		return ChannelOut{}, err
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(store.Key(store.PrefixChannel, uint64(c.ID)), c) }); err != nil {
		return ChannelOut{}, fmt.Errorf("chat: create channel: %w", err)
	}
	s.channels[c.ID] = c
	gs.channels[c.ID] = struct{}{}
	out := s.channelOut(c)
	s.pub.Publish(&fanout.Event{Type: "CHANNEL_CREATE", Data: encode(out), Intent: IntentGuilds, GuildID: uint64(guildID), Visible: s.viewersLocked(c.ID)})
	if s.fed != nil && gs.g.FedID != "" {
		cp := *c
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.federateChannel(&cp, actor) }() // needs s.mu, held here
	}
	return out, nil
}

// guildOf returns the guild of a channel, or 0.
func (s *Service) guildOf(channelID ID) ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.channels[channelID]; c != nil {
		return c.GuildID
	}
	return 0
}

// viewersLocked is viewers for use while s.mu is held by the publisher: it evaluates the
// filter eagerly, under the caller's lock.
func (s *Service) viewersLocked(channelID ID) func(uint64) bool {
	c := s.channels[channelID]
	gs := s.guilds[c.GuildID]
	allowed := map[uint64]bool{}
	for uid, m := range gs.members {
		if gs.channelPerms(m, c).Has(perm.ViewChannel) {
			allowed[uint64(uid)] = true
		}
	}
	return func(uid uint64) bool { return allowed[uid] }
}

// Channel returns a channel the actor can view.
func (s *Service) Channel(actor, channelID ID) (ChannelOut, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, _, _, err := s.channelAccess(actor, channelID)
	if err != nil {
		return ChannelOut{}, err
	}
	return s.channelOut(c), nil
}

// ModifyChannel changes a guild channel (MANAGE_CHANNELS; overwrites need MANAGE_ROLES).
func (s *Service) ModifyChannel(ctx context.Context, actor, channelID ID, spec ChannelSpec) (_ ChannelOut, err error) {
	if spec.PermissionOverwrites != nil {
		defer s.beginPermChange(ctx, s.guildOf(channelID), actor)(&err)
	}
	if _, _, err := s.changeChannelAtHome(ctx, actor, channelID, &spec); err != nil {
		return ChannelOut{}, err
	}
	return s.modifyChannel(actor, channelID, spec, true)
}

// modifyChannel is ModifyChannel without the home node's part; federate publishes the change
// when this node is the guild's home (false: it applies a change the home node published).
func (s *Service) modifyChannel(actor, channelID ID, spec ChannelSpec, federate bool) (ChannelOut, error) {
	s.lock()
	defer s.mu.Unlock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	if err != nil {
		return ChannelOut{}, err
	}
	if c.IsPrivate() {
		if c.Type != model.ChannelGroupDM || spec.Name == nil {
			return ChannelOut{}, ErrMissingPerms
		}
	} else if !p.Has(perm.ManageChannels) || (spec.PermissionOverwrites != nil && !p.Has(perm.ManageRoles)) {
		return ChannelOut{}, ErrMissingPerms
	}
	spec.Type = nil
	updated := *c
	if gs != nil {
		if err := spec.apply(&updated, gs, s); err != nil {
			return ChannelOut{}, err
		}
	} else {
		updated.Name = strings.TrimSpace(*spec.Name)
	}
	if reflect.DeepEqual(&updated, c) {
		// Nothing changes: no write and no CHANNEL_UPDATE. A change made through a federated
		// guild's home node arrives a second time as its state event, and ends here.
		return s.channelOut(c), nil
	}
	out, err := s.saveChannel(&updated)
	if err == nil && gs != nil && federate {
		s.federateChannelChange(&updated, actor, false)
	}
	return out, err
}

// saveChannel stores an updated channel and dispatches CHANNEL_UPDATE to those who could
// view it before or can view it now. Callers hold s.mu.
func (s *Service) saveChannel(c *model.Channel) (ChannelOut, error) {
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(store.Key(store.PrefixChannel, uint64(c.ID)), c) }); err != nil {
		return ChannelOut{}, fmt.Errorf("chat: update channel: %w", err)
	}
	return s.channelChanged(c), nil
}

// channelChanged replaces a stored channel's state in memory and dispatches CHANNEL_UPDATE
// to those who could view it before or can view it now. Callers hold s.mu.
func (s *Service) channelChanged(c *model.Channel) ChannelOut {
	out := s.channelOut(c)
	if c.IsPrivate() {
		s.channels[c.ID] = c
		s.publishUsers(c.RecipientIDs, "CHANNEL_UPDATE", IntentDirectMessages, out)
		return out
	}
	before := s.viewersLocked(c.ID)
	s.channels[c.ID] = c
	after := s.viewersLocked(c.ID)
	s.pub.Publish(&fanout.Event{Type: "CHANNEL_UPDATE", Data: encode(out), Intent: IntentGuilds, GuildID: uint64(c.GuildID),
		Visible: func(u uint64) bool { return before(u) || after(u) }})
	return out
}

// DeleteChannel deletes a guild channel (MANAGE_CHANNELS) or leaves a group DM.
func (s *Service) DeleteChannel(ctx context.Context, actor, channelID ID) (ChannelOut, error) {
	before, forwarded, err := s.changeChannelAtHome(ctx, actor, channelID, nil)
	if err != nil {
		return ChannelOut{}, err
	}
	out, err := s.deleteChannel(actor, channelID, true)
	if forwarded && errors.Is(err, ErrUnknownChannel) {
		return before, nil // the home node's channel.delete event was applied first
	}
	return out, err
}

// deleteChannel is DeleteChannel without the home node's part; federate as for modifyChannel.
func (s *Service) deleteChannel(actor, channelID ID, federate bool) (ChannelOut, error) {
	s.lock()
	defer s.mu.Unlock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	if err != nil {
		return ChannelOut{}, err
	}
	out := s.channelOut(c)
	if c.IsPrivate() {
		if c.Type == model.ChannelDM {
			return out, nil // DMs cannot be deleted, only closed in the client
		}
		updated := *c
		updated.RecipientIDs = nil
		for _, u := range c.RecipientIDs {
			if u != actor {
				updated.RecipientIDs = append(updated.RecipientIDs, u)
			}
		}
		if err := s.db.Update(func(tx *store.Tx) error {
			return errors.Join(tx.Put(store.Key(store.PrefixChannel, uint64(c.ID)), &updated),
				tx.Delete(store.Key(store.PrefixPrivateChan, uint64(actor), uint64(c.ID))))
		}); err != nil {
			return ChannelOut{}, fmt.Errorf("chat: leave group: %w", err)
		}
		s.channels[c.ID] = &updated
		delete(s.private[actor], c.ID)
		s.publishUsers([]ID{actor}, "CHANNEL_DELETE", IntentDirectMessages, out)
		s.publishUsers(updated.RecipientIDs, "CHANNEL_RECIPIENT_REMOVE", IntentDirectMessages, map[string]any{"channel_id": c.ID, "user": s.user(actor)})
		return out, nil
	}
	if !p.Has(perm.ManageChannels) {
		return ChannelOut{}, ErrMissingPerms
	}
	visible := s.viewersLocked(c.ID)
	var orphans []*model.Channel
	for cid := range gs.channels {
		if o := s.channels[cid]; o.ParentID != nil && *o.ParentID == c.ID {
			cp := *o
			cp.ParentID = nil
			orphans = append(orphans, &cp)
		}
	}
	err = s.db.Update(func(tx *store.Tx) error {
		errs := []error{tx.Delete(store.Key(store.PrefixChannel, uint64(c.ID)))}
		for _, o := range orphans {
			errs = append(errs, tx.Put(store.Key(store.PrefixChannel, uint64(o.ID)), o))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return ChannelOut{}, fmt.Errorf("chat: delete channel: %w", err)
	}
	delete(s.channels, c.ID)
	delete(gs.channels, c.ID)
	for _, o := range orphans {
		s.channels[o.ID] = o
	}
	s.pub.Publish(&fanout.Event{Type: "CHANNEL_DELETE", Data: encode(out), Intent: IntentGuilds, GuildID: uint64(gs.g.ID), Visible: visible})
	for _, o := range orphans {
		s.publishGuild(gs.g.ID, "CHANNEL_UPDATE", IntentGuilds, s.channelOut(o))
	}
	if federate {
		s.federateChannelChange(c, actor, true)
	}
	s.voiceChannelDeleted(c)
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.purgeMessages([]ID{c.ID}) }()
	return out, nil
}

// ChannelPosition is an element of the channel reorder body.
type ChannelPosition struct {
	ID       ID   `json:"id"`
	Position *int `json:"position"`
	ParentID *ID  `json:"parent_id"`
}

// ReorderChannels changes positions and parents of several channels (MANAGE_CHANNELS).
func (s *Service) ReorderChannels(ctx context.Context, actor, guildID ID, moves []ChannelPosition) error {
	s.lock()
	defer s.mu.Unlock()
	gs, m, err := s.guild(actor, guildID)
	if err != nil {
		return err
	}
	if !gs.basePerms(m).Has(perm.ManageChannels) {
		return ErrMissingPerms
	}
	var changed []*model.Channel
	for _, mv := range moves {
		c := s.channels[mv.ID]
		if c == nil || c.GuildID != guildID {
			return invalid("id", "CHANNEL_INVALID", "Unknown channel in this guild.")
		}
		cp := *c
		spec := ChannelSpec{Position: mv.Position, ParentID: Optional[ID]{Set: mv.ParentID != nil, Val: mv.ParentID}}
		if err := spec.apply(&cp, gs, s); err != nil {
			return err
		}
		changed = append(changed, &cp)
	}
	for _, c := range changed {
		if _, err := s.saveChannel(c); err != nil {
			return err
		}
	}
	return nil
}

// PutOverwrite sets a permission overwrite on a guild channel (MANAGE_ROLES).
func (s *Service) PutOverwrite(ctx context.Context, actor, channelID ID, ow model.Overwrite) error {
	return s.editOverwrites(ctx, actor, channelID, func(ows []model.Overwrite) ([]model.Overwrite, error) {
		if ow.Type != perm.OverwriteRole && ow.Type != perm.OverwriteMember {
			return nil, invalid("type", "BASE_TYPE_CHOICES", "Value must be one of {0, 1}.")
		}
		for i := range ows {
			if ows[i].ID == ow.ID {
				ows[i] = ow
				return ows, nil
			}
		}
		return append(ows, ow), nil
	})
}

// DeleteOverwrite removes a permission overwrite (MANAGE_ROLES).
func (s *Service) DeleteOverwrite(ctx context.Context, actor, channelID, id ID) error {
	return s.editOverwrites(ctx, actor, channelID, func(ows []model.Overwrite) ([]model.Overwrite, error) {
		out := ows[:0]
		for _, o := range ows {
			if o.ID != id {
				out = append(out, o)
			}
		}
		return out, nil
	})
}

func (s *Service) editOverwrites(ctx context.Context, actor, channelID ID, edit func([]model.Overwrite) ([]model.Overwrite, error)) (err error) {
	defer s.beginPermChange(ctx, s.guildOf(channelID), actor)(&err)
	s.lock()
	defer s.mu.Unlock()
	c, _, p, err := s.channelAccess(actor, channelID)
	if err != nil {
		return err
	}
	if c.IsPrivate() || !p.Has(perm.ManageRoles) {
		return ErrMissingPerms
	}
	updated := *c
	ows, err := edit(append([]model.Overwrite(nil), c.PermissionOverwrites...))
	if err != nil {
		return err
	}
	updated.PermissionOverwrites = ows
	_, err = s.saveChannel(&updated)
	return err
}
