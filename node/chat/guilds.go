package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// GuildCreatePayload is the full guild sent in GUILD_CREATE: channels the user can view,
// the first page of members, presences.
func (s *Service) GuildCreatePayload(gs *guildState, viewer ID) GuildOut {
	out := guildOut(gs)
	m := gs.members[viewer]
	for cid := range gs.channels {
		c := s.channels[cid]
		if m != nil && gs.channelPerms(m, c).Has(perm.ViewChannel) {
			out.Channels = append(out.Channels, s.channelOut(c))
		}
	}
	sortBy(out.Channels, func(a, b ChannelOut) bool {
		return a.Position < b.Position || (a.Position == b.Position && a.ID < b.ID)
	})
	if out.Channels == nil {
		out.Channels = []ChannelOut{}
	}
	const firstPage = 100
	for _, mem := range gs.members {
		if len(out.Members) >= firstPage {
			break
		}
		out.Members = append(out.Members, s.memberOut(mem, true))
	}
	out.Presences = []PresenceOut{}
	for uid := range gs.members {
		if p, ok := s.visiblePresence(uid); ok {
			out.Presences = append(out.Presences, PresenceOut{User: PresenceUser{ID: uid}, Status: p.Status, Activities: p.Activities, ClientStatus: map[string]string{"web": p.Status}, GuildID: gs.g.ID})
		}
		if len(out.Presences) >= 1000 {
			break
		}
	}
	out.MemberCount = len(gs.members)
	large := len(gs.members) > 250
	unavailable := false
	out.Large, out.Unavailable = &large, &unavailable
	if m != nil {
		out.JoinedAt = tsPtr(&m.JoinedAt)
	}
	out.VoiceStates = s.VoiceStates(gs.g.ID)
	return out
}

// CreateGuild creates a guild owned by the actor with Discord's default roles and channels.
func (s *Service) CreateGuild(ctx context.Context, actor ID, name string) (GuildOut, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 2 || n > 100 {
		return GuildOut{}, invalid("name", "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 100 in length.")
	}
	s.lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	gid := s.ids.Next()
	gs := &guildState{
		g:        model.Guild{ID: gid, Name: name, OwnerID: actor, CreatedAt: now},
		roles:    map[ID]*model.Role{gid: {ID: gid, GuildID: gid, Name: "@everyone", Permissions: perm.DefaultEveryone}},
		channels: map[ID]struct{}{}, members: map[ID]*model.Member{}, bans: map[ID]*model.Ban{},
	}
	textCat := &model.Channel{ID: s.ids.Next(), Type: model.ChannelCategory, GuildID: gid, Name: "Text Channels", Position: 0}
	voiceCat := &model.Channel{ID: s.ids.Next(), Type: model.ChannelCategory, GuildID: gid, Name: "Voice Channels", Position: 1}
	general := &model.Channel{ID: s.ids.Next(), Type: model.ChannelText, GuildID: gid, Name: "general", Position: 0, ParentID: &textCat.ID}
	voice := &model.Channel{ID: s.ids.Next(), Type: model.ChannelVoice, GuildID: gid, Name: "General", Position: 0, ParentID: &voiceCat.ID, Bitrate: 64000}
	gs.g.SystemChannelID = &general.ID
	member := &model.Member{GuildID: gid, UserID: actor, Roles: []ID{}, JoinedAt: now}
	err := s.db.Update(func(tx *store.Tx) error {
		errs := []error{
			tx.Put(store.Key(store.PrefixGuild, uint64(gid)), &gs.g),
			tx.Put(store.Key(store.PrefixRole, uint64(gid), uint64(gid)), gs.roles[gid]),
			tx.Put(store.Key(store.PrefixMember, uint64(gid), uint64(actor)), member),
		}
		for _, c := range []*model.Channel{textCat, voiceCat, general, voice} {
			errs = append(errs, tx.Put(store.Key(store.PrefixChannel, uint64(c.ID)), c))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return GuildOut{}, fmt.Errorf("chat: create guild: %w", err)
	}
	for _, c := range []*model.Channel{textCat, voiceCat, general, voice} {
		s.channels[c.ID] = c
		gs.channels[c.ID] = struct{}{}
	}
	gs.members[actor] = member
	s.guilds[gid] = gs
	addTo(s.userGuilds, actor, gid)
	s.pub.Join(uint64(gid), uint64(actor))
	payload := s.GuildCreatePayload(gs, actor)
	s.publishUsers([]ID{actor}, "GUILD_CREATE", IntentGuilds, payload)
	if s.fed != nil {
		owner := s.user(actor).Username
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.federateGuild(context.Background(), gid, general.ID, owner, name) }()
	}
	return payload, nil
}

// Guild returns a guild the actor is a member of.
func (s *Service) Guild(actor, guildID ID) (GuildOut, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs, _, err := s.guild(actor, guildID)
	if err != nil {
		return GuildOut{}, err
	}
	out := guildOut(gs)
	out.MemberCount = len(gs.members)
	return out, nil
}

// GuildPatch is the body of PATCH /guilds/{id}. Nil fields are unchanged.
type GuildPatch struct {
	Name            *string          `json:"name"`
	Description     *string          `json:"description"`
	Icon            Optional[string] `json:"icon"` // a stored image's hash (see UserPatch.Avatar)
	SystemChannelID *ID              `json:"system_channel_id"`
}

// ModifyGuild changes guild settings (MANAGE_GUILD).
func (s *Service) ModifyGuild(ctx context.Context, actor, guildID ID, p GuildPatch) (GuildOut, error) {
	if p.Name != nil {
		if _, err := s.renameGuildAtHome(ctx, actor, guildID, *p.Name); err != nil {
			return GuildOut{}, err
		}
	}
	return s.modifyGuild(actor, guildID, p, true)
}

// modifyGuild is ModifyGuild without the home node's part; federate publishes a new name when
// this node is the guild's home (false: it applies a name the home node published).
func (s *Service) modifyGuild(actor, guildID ID, p GuildPatch, federate bool) (GuildOut, error) {
	s.lock()
	defer s.mu.Unlock()
	gs, m, err := s.guild(actor, guildID)
	if err != nil {
		return GuildOut{}, err
	}
	if !gs.basePerms(m).Has(perm.ManageGuild) {
		return GuildOut{}, ErrMissingPerms
	}
	g := gs.g
	if p.Name != nil {
		name := strings.TrimSpace(*p.Name)
		if n := utf8.RuneCountInString(name); n < 2 || n > 100 {
			return GuildOut{}, invalid("name", "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 100 in length.")
		}
		g.Name = name
	}
	if p.Description != nil {
		g.Description = p.Description
	}
	if p.Icon.Set {
		g.Icon = p.Icon.Val
	}
	if p.SystemChannelID != nil {
		if c := s.channels[*p.SystemChannelID]; c == nil || c.GuildID != guildID || c.Type != model.ChannelText {
			return GuildOut{}, invalid("system_channel_id", "CHANNEL_INVALID", "Not a text channel of this guild.")
		}
		g.SystemChannelID = p.SystemChannelID
	}
	if reflect.DeepEqual(g, gs.g) {
		// Nothing changes: no write and no GUILD_UPDATE (a rename made through the home node
		// arrives a second time as its state event, and ends here).
		return guildOut(gs), nil
	}
	if err := s.db.Update(func(tx *store.Tx) error {
		return errors.Join(tx.Put(store.Key(store.PrefixGuild, uint64(guildID)), &g), moveImageRef(tx, imageGuild, guildID, gs.g.Icon, g.Icon))
	}); err != nil {
		return GuildOut{}, fmt.Errorf("chat: modify guild: %w", err)
	}
	gs.g = g
	out := guildOut(gs)
	s.publishGuild(guildID, "GUILD_UPDATE", IntentGuilds, out)
	if p.Name != nil && federate {
		s.federateGuildName(gs, actor)
	}
	return out, nil
}

// DeleteGuild deletes a guild and everything in it (owner only).
func (s *Service) DeleteGuild(ctx context.Context, actor, guildID ID) error {
	s.lock()
	defer s.mu.Unlock()
	gs, _, err := s.guild(actor, guildID)
	if err != nil {
		return err
	}
	if gs.g.OwnerID != actor {
		return ErrMissingPerms
	}
	if err := s.removeGuild(gs); err != nil {
		return err
	}
	if s.homedHere(gs) {
		fg, name := gs.g.FedID, s.user(actor).Username
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.fed.DeleteGuild(ctx, fg, name); err != nil {
				s.log.Warn("publishing a guild's deletion to other nodes", "guild", guildID, "err", err)
			}
		}()
	}
	return nil
}

// ApplyRemoteGuildDelete removes this node's copy of a federated guild that its home node
// deleted, and dispatches GUILD_DELETE to its local members.
func (s *Service) ApplyRemoteGuildDelete(guildFedID string) error {
	s.lock()
	defer s.mu.Unlock()
	gs := s.guildByFedID(guildFedID)
	if gs == nil || s.homedHere(gs) {
		return nil
	}
	return s.removeGuild(gs)
}

// removeGuild deletes a guild and everything in it, and tells its members. Callers hold s.mu.
func (s *Service) removeGuild(gs *guildState) error {
	guildID := gs.g.ID
	err := s.db.Update(func(tx *store.Tx) error {
		errs := []error{tx.Delete(store.Key(store.PrefixGuild, uint64(guildID)))}
		for rid := range gs.roles {
			errs = append(errs, tx.Delete(store.Key(store.PrefixRole, uint64(guildID), uint64(rid))))
		}
		for uid := range gs.members {
			errs = append(errs, tx.Delete(store.Key(store.PrefixMember, uint64(guildID), uint64(uid))))
		}
		for uid := range gs.bans {
			errs = append(errs, tx.Delete(store.Key(store.PrefixBan, uint64(guildID), uint64(uid))))
		}
		for cid := range gs.channels {
			errs = append(errs, tx.Delete(store.Key(store.PrefixChannel, uint64(cid))))
		}
		for code, inv := range s.invites {
			if inv.GuildID == guildID {
				errs = append(errs, tx.Delete(store.KeyString(store.PrefixInvite, code)))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("chat: delete guild: %w", err)
	}
	// Messages of the deleted channels are unreachable now; they are removed in the
	// background so a large guild does not make this call slow.
	channels := make([]ID, 0, len(gs.channels))
	for cid := range gs.channels {
		delete(s.channels, cid)
		channels = append(channels, cid)
	}
	for code, inv := range s.invites {
		if inv.GuildID == guildID {
			delete(s.invites, code)
		}
	}
	members := make([]ID, 0, len(gs.members))
	for uid := range gs.members {
		delete(s.userGuilds[uid], guildID)
		members = append(members, uid)
	}
	delete(s.guilds, guildID)
	s.publishUsers(members, "GUILD_DELETE", IntentGuilds, map[string]any{"id": guildID, "unavailable": false})
	s.pub.DropGuild(uint64(guildID))
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.purgeMessages(channels) }()
	return nil
}

// purgeMessages deletes every stored message of the channels, with their pins and
// attachment references.
func (s *Service) purgeMessages(channels []ID) {
	for _, cid := range channels {
		prefix := store.Key(store.PrefixMessage, uint64(cid))
		for {
			var msgs []*model.Message
			err := s.db.View(func(tx *store.Tx) error {
				return tx.Scan(prefix, nil, false, func(_, v []byte) (bool, error) {
					var m model.Message
					if err := json.Unmarshal(v, &m); err != nil {
						return false, err
					}
					msgs = append(msgs, &m)
					return len(msgs) < 1000, nil
				})
			})
			if err == nil && len(msgs) > 0 {
				err = s.db.Update(func(tx *store.Tx) error {
					var errs []error
					for _, m := range msgs {
						errs = append(errs, tx.Delete(store.Key(store.PrefixMessage, uint64(cid), uint64(m.ID))),
							tx.Delete(store.Key(store.PrefixPin, uint64(cid), uint64(m.ID))), dropAttachRefs(tx, m))
					}
					return errors.Join(errs...)
				})
			}
			if err != nil {
				s.log.Error("purging messages of deleted channel", "channel", cid, "err", err)
				break
			}
			for _, m := range msgs {
				s.deleted(cid, m.ID)
			}
			if len(msgs) == 0 {
				break
			}
		}
	}
}
