package chat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/store"
)

// Federator is what the domain needs from the federation layer. Federation IDs are opaque
// strings here; users are local usernames (this node) or display names "name@node" (remote).
type Federator interface {
	// CreateGuild federates a new guild homed here and returns its ID and the ID of its
	// first text channel.
	CreateGuild(ctx context.Context, owner, name string) (guild, general string, err error)
	// CreateInvite returns an invite code that any node reaching this one can use, maxUses
	// times (0: unlimited) until expires (zero: never).
	CreateInvite(ctx context.Context, guild, actor string, maxUses int, expires time.Time) (string, error)
	// IsInvite reports whether code is a federation invite.
	IsInvite(code string) bool
	// RevokeInvite withdraws a federation invite of a guild for actor (its creator, or a
	// member with MANAGE_CHANNELS): issued here for a guild homed here, else asked of the
	// home node (ErrMissingPerms, ErrHomeUnreachable as for CreateChannel).
	RevokeInvite(ctx context.Context, guild, actor, code string) error
	// Join joins the guild of a federation invite for a local user.
	Join(ctx context.Context, code, user string) (*RemoteGuild, error)
	// PublishMessage sends a message of a federated channel to the guild before the node
	// stores it, and returns its event ID and the event's HLC timestamp, from which every
	// node derives the message's ID (FedMessageID).
	PublishMessage(ctx context.Context, guild, channel, author string, m FedMessage) (eventID string, ts uint64, err error)
	// PublishChange sends an edit, delete or reaction of the message with event ID target;
	// text is the new content or the emoji.
	PublishChange(ctx context.Context, guild, channel, author string, kind ChangeKind, target, text string) error
	// Typing tells the guild's other nodes that a local user is typing in a channel.
	Typing(guild, channel, user string)
	// SetPresence tells the nodes of the user's guilds a local user's shown status
	// ("online", "idle", "dnd" or "offline"). It must not block.
	SetPresence(user, status string)
	// CreateChannel creates a text or voice channel or a category (c.FedID is ignored) and
	// returns its federation ID: issued here for a guild homed here, else asked of the
	// home node, which may refuse (ErrMissingPerms) or be unreachable (ErrHomeUnreachable).
	CreateChannel(ctx context.Context, guild, actor string, c RemoteChannel) (string, error)
	// DeleteGuild publishes the deletion of a guild homed here.
	DeleteGuild(ctx context.Context, guild, actor string) error
	// RenameGuild publishes a guild's new name (through its home node, as CreateChannel).
	RenameGuild(ctx context.Context, guild, actor, name string) error
	// ChangeChannel publishes the new name, topic and position of a federated channel, or its
	// deletion when update is nil (through the guild's home node, as CreateChannel).
	ChangeChannel(ctx context.Context, guild, actor, channel string, update *RemoteChannel) error
	// CreateRole federates a new role and returns its federation ID, once its event is here
	// (through the guild's home node, as CreateChannel).
	CreateRole(ctx context.Context, guild, actor string, r RemoteRole) (string, error)
	// SyncPermissions publishes the roles, member roles and channel overwrites of a guild,
	// issuing (or asking the home node for) what differs from the federated state, and
	// returns once those events are here. Every role in want has a federation ID.
	SyncPermissions(ctx context.Context, guild, actor string, want *RemotePerms) error
	// PublishProfile publishes the profile of the local user target in a guild, changed by
	// actor (target, or a moderator changing target's nickname).
	PublishProfile(ctx context.Context, guild, actor, target string, p RemoteProfile) error
	// OpenDM opens a direct conversation between the local user from and the remote user to
	// (name@node, where node is a node name, a peer ID or a multiaddr [CAPI-033]) and returns
	// the federation IDs of the conversation and its channel, once to's node has joined it,
	// and to as this node shows them (name@node-name). ErrUnknownUser means to's node has no
	// such user, ErrDMRefused that it refuses, ErrNodeUnreachable that it cannot be reached
	// or is busy, *UnknownNodeError that node names no node this node can reach.
	OpenDM(ctx context.Context, from, to string) (guild, channel, user string, err error)
	// Moderate bans, unbans, kicks or removes target (a local username or a remote user's
	// name@node) in a guild. In a guild homed here the change is issued at once: this node
	// has authorised it. Elsewhere the home node checks actor's permissions and answers
	// ErrMissingPerms when it refuses. reason goes with bans.
	Moderate(ctx context.Context, guild, actor string, action ModAction, target, reason string) error
}

// ModAction is a membership change that crosses nodes; the home node issues it.
type ModAction int

// Membership changes.
const (
	ModBan ModAction = iota + 1
	ModUnban
	ModKick  // removed by a moderator
	ModLeave // left on their own
)

// ChangeKind is a change to an existing message that crosses nodes.
type ChangeKind int

// Changes to messages.
const (
	ChangeEdit ChangeKind = iota + 1
	ChangeDelete
	ChangeReact
	ChangeUnreact
	ChangePin
	ChangeUnpin
)

// RemoteChange is a change another node published to a message.
type RemoteChange struct {
	Kind    ChangeKind
	Target  string // event ID of the message
	Channel string // federation channel ID
	Author  string // display name (name@node)
	Text    string // new content or emoji
}

// RemoteGuild is the snapshot of a guild joined on another node.
type RemoteGuild struct {
	FedID    string
	Name     string
	Owner    string // display name of the owner (name@node)
	Channels []RemoteChannel
	Members  []string // display names of remote members
	// Profiles are the nicknames, display names and avatars members set before this node
	// joined, by display name; later changes arrive as events.
	Profiles map[string]RemoteProfile
	Messages []RemoteMessage
	Perms    *RemotePerms // roles, member roles and overwrites
}

// RemoteChannel is a text or voice channel or a category of a federated guild.
type RemoteChannel struct {
	FedID, Name, Topic string
	Type               int // model.ChannelText, model.ChannelVoice or model.ChannelCategory
	Position           int
	Parent             string // federation ID of the channel's category, or ""
}

// FedMessage is what a message carries across nodes.
type FedMessage struct {
	Content     string
	ReplyTo     string // event ID of the message replied to, or ""
	Attachments []RemoteAttachment
}

// RemoteAttachment references a file of a message by the hex SHA-256 of its bytes; the bytes
// stay on the origin node until a reader asks for them.
type RemoteAttachment struct {
	Hash          string
	Size          int64
	Filename      string
	ContentType   string
	Width, Height int
}

// RemoteMessage is a message event from another node.
type RemoteMessage struct {
	FedMessage
	EventID string
	Channel string // federation channel ID
	// Author is the display name (name@node) of a remote user, or the username of a local
	// one for a message of this node's own that federation holds and the node's store lacks.
	Author   string
	TS       uint64 // the event's HLC timestamp
	Snapshot bool   // part of a join snapshot: stored, not dispatched
}

// SetFederator enables federation; call it before serving.
func (s *Service) SetFederator(f Federator) { s.fed = f }

// federateGuild registers a new local guild with federation and remembers the mapping of the
// guild and its general channel. Failures leave the guild local and are logged.
func (s *Service) federateGuild(ctx context.Context, gid, general ID, owner, name string) {
	fg, fc, err := s.fed.CreateGuild(ctx, owner, name)
	if err != nil {
		s.log.Error("federating a new guild; it stays local to this node", "guild", gid, "err", err)
		return
	}
	s.lock()
	gs, c := s.guilds[gid], s.channels[general]
	if gs == nil || c == nil {
		s.mu.Unlock()
		return
	}
	g, ch := gs.g, *c
	g.FedID, ch.FedID = fg, fc
	if err := s.db.Update(func(tx *store.Tx) error {
		return errors.Join(tx.Put(store.Key(store.PrefixGuild, uint64(gid)), &g), tx.Put(store.Key(store.PrefixChannel, uint64(general)), &ch))
	}); err != nil {
		s.mu.Unlock()
		s.log.Error("storing federation IDs", "guild", gid, "err", err)
		return
	}
	gs.g, s.channels[general] = g, &ch
	s.federatePerms(gs, gs.g.OwnerID) // roles and overwrites made meanwhile
	var others []*model.Channel       // the categories, the voice channel, any made meanwhile
	for cid := range gs.channels {
		if c := s.channels[cid]; c.FedID == "" {
			others = append(others, c)
		}
	}
	s.mu.Unlock()
	for _, c := range others {
		s.federateChannel(c, g.OwnerID)
	}
}

// channelByFedID finds the local channel of a federation channel ID. Callers hold s.mu.
func (s *Service) channelByFedID(fedID string) *model.Channel {
	if id, ok := s.fedChans.Load(fedID); ok {
		if c := s.channels[id.(ID)]; c != nil && c.FedID == fedID {
			return c
		}
	}
	for _, c := range s.channels {
		if c.FedID == fedID {
			s.fedChans.Store(fedID, c.ID)
			return c
		}
	}
	return nil
}

// remoteUser returns the local user standing for a remote display name, creating it.
// Callers hold s.mu for writing.
func (s *Service) remoteUser(tx *store.Tx, display string) (ID, error) {
	if id, ok := s.remotes[display]; ok {
		return id, nil
	}
	u := &model.User{ID: s.ids.Next(), Username: display, Discriminator: "0"}
	if err := tx.Put(store.Key(store.PrefixUser, uint64(u.ID)), u); err != nil {
		return 0, err
	}
	s.users[u.ID] = u
	s.remotes[display] = u.ID
	return u.ID, nil
}

// storeRemoteUser is remoteUser in a transaction of its own. Callers hold s.mu for writing.
func (s *Service) storeRemoteUser(display string) (ID, error) {
	var uid ID
	err := s.db.Update(func(tx *store.Tx) error {
		var err error
		uid, err = s.remoteUser(tx, display)
		return err
	})
	return uid, err
}

// guildByFedID finds the local guild of a federation guild ID. Callers hold s.mu.
func (s *Service) guildByFedID(fedID string) *guildState {
	for _, gs := range s.guilds {
		if gs.g.FedID == fedID {
			return gs
		}
	}
	return nil
}

// ApplyRemoteTyping dispatches TYPING_START for a remote user typing in a federated channel.
func (s *Service) ApplyRemoteTyping(channelFedID, author string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.channelByFedID(channelFedID)
	if c == nil {
		return
	}
	uid, ok := s.remotes[author]
	if !ok {
		return // not seen here yet: their join or first message will introduce them
	}
	ev := &fanout.Event{Type: "TYPING_START", Data: encode(map[string]any{
		"channel_id": c.ID, "guild_id": c.GuildID, "user_id": uid, "timestamp": s.now().Unix()})}
	s.route(ev, c, IntentGuildMessageTyping, IntentDirectMessageTyping)
	s.pub.Publish(ev)
}

// typingRemote passes a local user's typing in a federated channel on to the other nodes.
// Callers hold s.mu.
func (s *Service) typingRemote(c *model.Channel, actor ID) {
	if s.fed == nil || c.FedID == "" {
		return
	}
	fg, name := s.fedGuildOf(c), s.user(actor).Username
	if fg == "" || isRemoteName(name) {
		return
	}
	s.fed.Typing(fg, c.FedID, name)
}

// fedGuildOf returns the federation ID of the guild a channel belongs to in federation: its
// guild's, or for a DM with a user of another node, the conversation's. It is "" for a
// channel that is not federated. Callers hold s.mu.
func (s *Service) fedGuildOf(c *model.Channel) string {
	if c.IsPrivate() {
		return c.FedGuild
	}
	if gs := s.guilds[c.GuildID]; gs != nil {
		return gs.g.FedID
	}
	return ""
}

// federateChannel creates a new channel or category of a guild homed here in federation too,
// and records its federation ID. Failures leave the channel local and are logged.
func (s *Service) federateChannel(c *model.Channel, actor ID) {
	s.mu.RLock()
	gs := s.guilds[c.GuildID]
	name := s.user(actor).Username
	owner := ""
	if gs != nil {
		owner = s.user(gs.g.OwnerID).Username
	}
	s.mu.RUnlock()
	if gs == nil || gs.g.FedID == "" || isRemoteName(owner) || isRemoteName(name) {
		return // not federated, or homed elsewhere
	}
	fg, id := gs.g.FedID, c.ID
	rc := RemoteChannel{Name: c.Name, Type: c.Type, Position: c.Position}
	if c.Topic != nil {
		rc.Topic = *c.Topic
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c.ParentID != nil {
			// A category made just before is being federated too: its ID comes first.
			if rc.Parent = s.awaitFedID(ctx, *c.ParentID); rc.Parent == "" {
				s.log.Warn("federating a new channel outside its category, which is not federated", "channel", id)
			}
		}
		fc, err := s.fed.CreateChannel(ctx, fg, name, rc)
		if err != nil {
			s.log.Warn("federating a new channel; it stays local to this node", "channel", id, "err", err)
			return
		}
		s.lock()
		cur := s.channels[id]
		if cur == nil { // deleted while it was being federated
			s.mu.Unlock()
			if err := s.fed.ChangeChannel(ctx, fg, name, fc, nil); err != nil {
				s.log.Warn("publishing a channel's deletion to other nodes", "channel", id, "err", err)
			}
			return
		}
		defer s.mu.Unlock()
		cp := *cur
		cp.FedID = fc
		if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(store.Key(store.PrefixChannel, uint64(id)), &cp) }); err != nil {
			s.log.Error("storing a channel's federation ID", "channel", id, "err", err)
			return
		}
		s.channels[id] = &cp
		gs := s.guilds[cp.GuildID]
		if gs == nil {
			return
		}
		if len(cp.PermissionOverwrites) > 0 {
			s.federatePerms(gs, actor)
		}
		if cp.Type == model.ChannelCategory {
			// Channels federated before their category (the guild's first channel, made with
			// the guild) move into it now.
			for cid := range gs.channels {
				if ch := s.channels[cid]; ch.FedID != "" && ch.ParentID != nil && *ch.ParentID == id {
					s.federateChannelChange(ch, actor, false)
				}
			}
		}
	}()
}

// ApplyRemoteChannel creates the local copy of a channel or category that the home node of a
// federated guild created, and dispatches CHANNEL_CREATE.
func (s *Service) ApplyRemoteChannel(guildFedID string, rc RemoteChannel) error {
	s.lock()
	defer s.mu.Unlock()
	if s.channelByFedID(rc.FedID) != nil {
		return nil
	}
	gs := s.guildByFedID(guildFedID)
	if gs == nil {
		return nil
	}
	c := remoteChannel(gs.g.ID, rc, s.localChannels(rc.Parent))
	c.ID = s.ids.Next()
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(store.Key(store.PrefixChannel, uint64(c.ID)), c) }); err != nil {
		return fmt.Errorf("chat: remote channel: %w", err)
	}
	s.channels[c.ID] = c
	gs.channels[c.ID] = struct{}{}
	s.pub.Publish(&fanout.Event{Type: "CHANNEL_CREATE", Data: encode(s.channelOut(c)), Intent: IntentGuilds, GuildID: uint64(gs.g.ID), Visible: s.viewersLocked(c.ID)})
	return nil
}

// ApplyRemotePresence shows a remote user's status ("online", "idle", "dnd" or "offline") in
// the guilds they share with local users, through the normal presence batching. A user not
// known here yet is skipped: their join introduces them. It does not block on federation.
func (s *Service) ApplyRemotePresence(display, status string) {
	s.mu.RLock()
	uid, ok := s.remotes[display]
	s.mu.RUnlock()
	if !ok {
		return
	}
	s.SetPresence(uid, Presence{Status: status})
}

// presenceRemote passes a local user's shown status on to federation.
func (s *Service) presenceRemote(uid ID, status string) {
	s.mu.RLock()
	name := s.user(uid).Username
	s.mu.RUnlock()
	if !isRemoteName(name) {
		s.fed.SetPresence(name, status)
	}
}

// federateGuildName publishes the new name of a federated guild homed here, in the
// background. Callers hold s.mu.
func (s *Service) federateGuildName(gs *guildState, actor ID) {
	name := s.user(actor).Username
	if s.fed == nil || gs.g.FedID == "" || s.fedElsewhere(gs) != "" || isRemoteName(name) {
		return
	}
	fg, gid, newName := gs.g.FedID, gs.g.ID, gs.g.Name
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.fed.RenameGuild(ctx, fg, name, newName); err != nil {
			s.log.Warn("publishing a guild's new name to other nodes", "guild", gid, "err", err)
		}
	}()
}

// ApplyRemoteGuildName renames the local copy of a federated guild as its home node did,
// acting as the guild's owner there.
func (s *Service) ApplyRemoteGuildName(guildFedID, name string) error {
	s.mu.RLock()
	gs := s.guildByFedID(guildFedID)
	var owner, id ID
	if gs != nil {
		owner, id = gs.g.OwnerID, gs.g.ID
	}
	s.mu.RUnlock()
	if gs == nil {
		return nil
	}
	_, err := s.modifyGuild(owner, id, GuildPatch{Name: &name}, false)
	return err
}

// federateChannelChange publishes a change to (or the deletion of) a federated channel of a
// guild homed here, in the background. Callers hold s.mu.
func (s *Service) federateChannelChange(c *model.Channel, actor ID, deleted bool) {
	if s.fed == nil || c.FedID == "" {
		return
	}
	gs := s.guilds[c.GuildID]
	name := s.user(actor).Username
	if gs == nil || gs.g.FedID == "" || s.fedElsewhere(gs) != "" || isRemoteName(name) {
		return
	}
	var update *RemoteChannel
	if !deleted {
		update = &RemoteChannel{FedID: c.FedID, Name: c.Name, Position: c.Position, Type: c.Type}
		if c.Topic != nil {
			update.Topic = *c.Topic
		}
		update.Parent = s.parentFedID(c)
	}
	fg, fc, id := gs.g.FedID, c.FedID, c.ID
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.fed.ChangeChannel(ctx, fg, name, fc, update); err != nil {
			s.log.Warn("publishing a channel change to other nodes", "channel", id, "err", err)
		}
	}()
}

// ApplyRemoteChannelChange applies a change (update nil: the deletion) that the home node
// of a federated guild made to a channel, acting as the guild's owner in the local copy.
func (s *Service) ApplyRemoteChannelChange(channelFedID string, update *RemoteChannel) error {
	s.mu.RLock()
	c := s.channelByFedID(channelFedID)
	var owner, id ID
	if c != nil {
		id, owner = c.ID, s.guilds[c.GuildID].g.OwnerID
	}
	s.mu.RUnlock()
	if c == nil {
		return nil // deleted already, or a channel this node does not show
	}
	if update == nil {
		_, err := s.deleteChannel(owner, id, false)
		return err
	}
	var parent ID // none
	if update.Parent != "" {
		s.mu.RLock()
		if p := s.channelByFedID(update.Parent); p != nil {
			parent = p.ID
		}
		s.mu.RUnlock()
	}
	_, err := s.modifyChannel(owner, id, ChannelSpec{Name: &update.Name, Topic: &update.Topic, Position: &update.Position,
		ParentID: Optional[ID]{Set: true, Val: &parent}}, false)
	return err
}

// localChannels maps a channel's federation ID to its local ID, for remoteChannel; empty when
// there is none. Callers hold s.mu.
func (s *Service) localChannels(fedIDs ...string) map[string]ID {
	m := map[string]ID{}
	for _, f := range fedIDs {
		if c := s.channelByFedID(f); f != "" && c != nil {
			m[f] = c.ID
		}
	}
	return m
}

// awaitFedID returns the federation ID of a channel of this node, waiting (up to ctx) while
// it is being federated; "" if it never gets one.
func (s *Service) awaitFedID(ctx context.Context, channelID ID) string {
	for {
		s.mu.RLock()
		c := s.channels[channelID]
		s.mu.RUnlock()
		if c == nil {
			return ""
		}
		if c.FedID != "" {
			return c.FedID
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// remoteChannel is the local form of a remote guild's channel, without its ID; local maps
// federation IDs to local channel IDs, for the channel's category.
func remoteChannel(guild ID, rc RemoteChannel, local map[string]ID) *model.Channel {
	c := &model.Channel{Type: model.ChannelText, GuildID: guild, Name: rc.Name, Position: rc.Position, FedID: rc.FedID}
	if rc.Topic != "" {
		topic := rc.Topic
		c.Topic = &topic
	}
	switch rc.Type {
	case model.ChannelVoice:
		c.Type, c.Bitrate = model.ChannelVoice, 64000
	case model.ChannelCategory:
		c.Type = model.ChannelCategory
	}
	if p, ok := local[rc.Parent]; ok && rc.Parent != "" && c.Type != model.ChannelCategory {
		c.ParentID = &p
	}
	return c
}
