package chat

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/snowflake"
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

// guildByFedID finds the local guild of a federation guild ID. Callers hold s.mu.
func (s *Service) guildByFedID(fedID string) *guildState {
	for _, gs := range s.guilds {
		if gs.g.FedID == fedID {
			return gs
		}
	}
	return nil
}

// ApplyRemoteMessage stores a message that another node published in a federated channel
// and dispatches MESSAGE_CREATE, once per event: replays are ignored.
func (s *Service) ApplyRemoteMessage(rm RemoteMessage) error {
	return s.ApplyRemoteMessages([]RemoteMessage{rm})
}

// ApplyRemoteMessages is ApplyRemoteMessage for several messages, in order, in one write:
// a catch-up applies thousands, and a write each (one round trip through the database's
// writer) would bound it to a few thousand a second on a busy machine.
func (s *Service) ApplyRemoteMessages(rms []RemoteMessage) error {
	if len(rms) == 0 {
		return nil
	}
	type applied struct {
		rm        *RemoteMessage
		c         *model.Channel
		gs        *guildState
		msg       *model.Message
		newMember *model.Member
	}
	s.lock()
	var batch []applied
	for i := range rms {
		rm := &rms[i]
		c := s.channelByFedID(rm.Channel)
		if c == nil {
			continue // a channel this node does not show
		}
		msg := &model.Message{ChannelID: c.ID, GuildID: c.GuildID, Content: rm.Content, Type: model.MessageDefault}
		for _, a := range rm.Attachments {
			msg.Attachments = append(msg.Attachments, model.Attachment{ID: s.ids.Next(), Filename: a.Filename, Hash: a.Hash, Size: a.Size,
				ContentType: a.ContentType, Width: a.Width, Height: a.Height})
		}
		batch = append(batch, applied{rm: rm, c: c, gs: s.guilds[c.GuildID], msg: msg})
	}
	var done []applied // stored by the last attempt of the transaction
	// Remote users this call introduced: remoteUser records them in memory at once, so a
	// retried transaction (a conflict) must write them again.
	var created []*model.User
	// The federation store holds the events durably and replays them at start, so the node's
	// copy need not wait for an fsync of its own.
	err := s.db.UpdateLazy(func(tx *store.Tx) error {
		done = done[:0]
		for _, u := range created {
			if err := tx.Put(store.Key(store.PrefixUser, uint64(u.ID)), u); err != nil {
				return err
			}
		}
		seen := map[string]bool{}           // event IDs of this batch
		joined := map[[2]ID]*model.Member{} // (guild, user) members added by this batch
		for _, a := range batch {
			a.newMember = nil
			rm, msg, gs := a.rm, a.msg, a.gs
			key := store.KeyString(store.PrefixFedMessage, rm.EventID)
			if seen[rm.EventID] {
				continue
			}
			seen[rm.EventID] = true
			if ok, err := tx.Has(key); err != nil {
				return err
			} else if ok {
				continue // a replay
			}
			local := !isRemoteName(rm.Author) // a message of this node's own, restored at start
			var author ID
			if local {
				if author = s.usernames[rm.Author]; author == 0 {
					continue
				}
			} else {
				_, known := s.remotes[rm.Author]
				var err error
				if author, err = s.remoteUser(tx, rm.Author); err != nil {
					return err
				}
				if !known {
					created = append(created, s.users[author])
				}
			}
			msg.AuthorID = author
			if !local && gs != nil && gs.members[author] == nil && joined[[2]ID{gs.g.ID, author}] == nil {
				a.newMember = &model.Member{GuildID: gs.g.ID, UserID: author, Roles: []ID{}, JoinedAt: s.now().UTC()}
				joined[[2]ID{gs.g.ID, author}] = a.newMember
				if err := tx.Put(store.Key(store.PrefixMember, uint64(gs.g.ID), uint64(author)), a.newMember); err != nil {
					return err
				}
			}
			var err error
			if msg.ID, err = freeMessageID(tx, a.c.ID, FedMessageID(rm.TS, rm.EventID)); err != nil {
				return err
			}
			msg.Type, msg.MessageReference = model.MessageDefault, nil
			var ref ID
			if rm.ReplyTo != "" && tx.Get(store.KeyString(store.PrefixFedMessage, rm.ReplyTo), &ref) == nil {
				msg.Type, msg.MessageReference = model.MessageReply, &model.MessageReference{MessageID: ref, ChannelID: a.c.ID}
				if gid := a.c.GuildID; gid != 0 {
					msg.MessageReference.GuildID = &gid
				}
			}
			errs := []error{tx.Put(key, msg.ID), tx.Put(store.Key(store.PrefixFedMessageRev, uint64(msg.ID)), rm.EventID),
				tx.Put(store.Key(store.PrefixMessage, uint64(a.c.ID), uint64(msg.ID)), msg)}
			for _, at := range msg.Attachments {
				errs = append(errs, tx.Put(attachRef(at.Hash, a.c.ID, msg.ID), true))
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			done = append(done, a)
		}
		return nil
	})
	if err != nil {
		s.mu.Unlock()
		return err
	}
	for _, a := range done {
		if a.newMember != nil {
			a.gs.members[a.newMember.UserID] = a.newMember
			addTo(s.userGuilds, a.newMember.UserID, a.gs.g.ID)
		}
		if id := a.msg.ID; a.c.LastMessageID == nil || *a.c.LastMessageID < id {
			a.c.LastMessageID = &id
		}
	}
	s.mu.Unlock()
	for _, a := range done {
		s.stored(a.msg)
	}
	for _, a := range done {
		if a.rm.Snapshot {
			continue
		}
		s.mu.RLock()
		if a.newMember != nil {
			out := s.memberOut(a.newMember, true)
			gid := a.gs.g.ID
			out.GuildID = &gid
			s.publishGuild(gid, "GUILD_MEMBER_ADD", IntentGuildMembers, out)
		}
		out := s.messageOut(a.msg, 0)
		if a.msg.MessageReference != nil {
			if ref, err := s.loadMessage(a.c.ID, a.msg.MessageReference.MessageID); err == nil {
				r := s.messageOut(ref, 0)
				out.ReferencedMessage = &r
			}
		}
		ev := s.messageEvent("MESSAGE_CREATE", a.c, out)
		s.mu.RUnlock()
		s.pub.Publish(ev)
	}
	return nil
}

// FedMessageID is the ID of a message of a federated channel, the same on every node: the
// event's millisecond, then its HLC counter (5 bits, saturated at 31), then 17 bits of a hash
// of the event ID [FED-066]. History sorted by it is the (ts, event) order of
// spec/events.md [EVT-033] up to the counter's saturation and the hash, and every node sorts
// it alike, except after a collision of two events of one millisecond and counter (one pair
// in 131,072), which takes the next free ID in arrival order. (With 8 counter bits and 14 hash
// bits, two nodes writing 10,000 messages a minute between them collided about once a run.)
func FedMessageID(ts uint64, eventID string) ID {
	h := fnv.New32a()
	h.Write([]byte(eventID))
	ms := time.UnixMilli(int64(ts >> 16))
	return snowflake.FromTime(ms) | ID(min(ts&0xffff, 31))<<17 | ID(h.Sum32()&(1<<17-1))
}

// freeMessageID returns id, or the next ID after it that no message of the channel has (two
// events of one millisecond, counter and hash, which is rare).
func freeMessageID(tx *store.Tx, channel, id ID) (ID, error) {
	for {
		taken, err := tx.Has(store.Key(store.PrefixMessage, uint64(channel), uint64(id)))
		if err != nil || !taken {
			return id, err
		}
		id++
	}
}

// Applied reports whether the remote event with this ID was applied already: a message
// stored, or a change marked with MarkApplied. It only reads, so a replay of a long history
// costs no writes.
func (s *Service) Applied(eventID string) bool {
	var ok bool
	err := s.db.View(func(tx *store.Tx) (err error) {
		if ok, err = tx.Has(store.KeyString(store.PrefixFedMessage, eventID)); ok || err != nil {
			return err
		}
		ok, err = tx.Has(store.KeyString(store.PrefixFedApplied, eventID))
		return err
	})
	return err == nil && ok
}

// MarkApplied records that the remote change with this event ID was applied, so that a
// replay at start skips it.
func (s *Service) MarkApplied(eventID string) error {
	return s.db.UpdateLazy(func(tx *store.Tx) error { return tx.Put(store.KeyString(store.PrefixFedApplied, eventID), true) })
}

// publishFirst publishes a new message of a federated channel before the node stores it, and
// returns its event ID and the message ID derived from the event (FedMessageID); the caller
// stores the message under that ID with the event ID recorded. It returns "" for a channel
// that is not federated, and when federation refuses or fails (the message then stays on
// this node, which is logged). files are the message's attachments.
func (s *Service) publishFirst(ctx context.Context, c *model.Channel, author ID, msg *model.Message, files []model.Attachment) (string, ID) {
	if s.fed == nil || c.FedID == "" {
		return "", 0
	}
	s.mu.RLock()
	fg := s.fedGuildOf(c)
	name := s.user(author).Username
	s.mu.RUnlock()
	if fg == "" || isRemoteName(name) {
		return "", 0
	}
	fm := FedMessage{Content: msg.Content}
	for _, a := range files {
		fm.Attachments = append(fm.Attachments, RemoteAttachment{Hash: a.Hash, Size: a.Size, Filename: a.Filename,
			ContentType: a.ContentType, Width: a.Width, Height: a.Height})
	}
	if ref := msg.MessageReference; ref != nil {
		// A reply to a message that never crossed nodes crosses as a plain message.
		_ = s.db.View(func(tx *store.Tx) error {
			return tx.Get(store.Key(store.PrefixFedMessageRev, uint64(ref.MessageID)), &fm.ReplyTo)
		})
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	evID, ts, err := s.fed.PublishMessage(ctx, fg, c.FedID, name, fm)
	if err != nil {
		s.log.Warn("publishing a message to other nodes; it stays on this node", "channel", c.ID, "err", err)
		return "", 0
	}
	return evID, FedMessageID(ts, evID)
}

// publishChange sends a local user's change to a message of a federated channel to the
// other nodes, in the background.
func (s *Service) publishChange(c *model.Channel, author ID, kind ChangeKind, msgID ID, text string) {
	if s.fed == nil || c == nil || c.FedID == "" {
		return
	}
	s.mu.RLock()
	fg := s.fedGuildOf(c)
	name := s.user(author).Username
	s.mu.RUnlock()
	if fg == "" || isRemoteName(name) {
		return // remote users' changes came from their own node
	}
	fc := c.FedID
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The message's event ID is stored with it (publishFirst); none means it never
		// crossed nodes.
		var evID string
		if err := s.db.View(func(tx *store.Tx) error {
			return tx.Get(store.Key(store.PrefixFedMessageRev, uint64(msgID)), &evID)
		}); err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("looking up a message's event ID", "message", msgID, "err", err)
			}
			return
		}
		if err := s.fed.PublishChange(ctx, fg, fc, name, kind, evID, text); err != nil {
			s.log.Warn("publishing a message change to other nodes", "message", msgID, "err", err)
		}
	}()
}

// ApplyRemoteChange applies an edit, delete or reaction that another node published, as the
// remote author (whose permissions in the local copy of the guild are checked as for anyone).
func (s *Service) ApplyRemoteChange(rc RemoteChange) error {
	var msgID ID
	if err := s.db.View(func(tx *store.Tx) error {
		return tx.Get(store.KeyString(store.PrefixFedMessage, rc.Target), &msgID)
	}); err != nil {
		return nil // a message this node does not hold
	}
	s.lock()
	c := s.channelByFedID(rc.Channel)
	if c == nil {
		s.mu.Unlock()
		return nil
	}
	gs := s.guilds[c.GuildID]
	var author ID
	var member *model.Member
	err := s.db.Update(func(tx *store.Tx) error {
		var err error
		if author, err = s.remoteUser(tx, rc.Author); err != nil {
			return err
		}
		if gs != nil && gs.members[author] == nil { // a remote member acting here for the first time
			member = &model.Member{GuildID: gs.g.ID, UserID: author, Roles: []ID{}, JoinedAt: s.now().UTC()}
			return tx.Put(store.Key(store.PrefixMember, uint64(gs.g.ID), uint64(author)), member)
		}
		return nil
	})
	if err == nil && member != nil {
		gs.members[author] = member
		addTo(s.userGuilds, author, gs.g.ID)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch rc.Kind {
	case ChangeEdit:
		_, err = s.EditMessage(ctx, author, c.ID, msgID, &rc.Text)
	case ChangeDelete:
		err = s.DeleteMessage(ctx, author, c.ID, msgID)
	case ChangeReact, ChangeUnreact:
		err = s.React(ctx, author, c.ID, msgID, rc.Text, author, rc.Kind == ChangeReact)
	case ChangePin, ChangeUnpin:
		err = s.SetPin(ctx, author, c.ID, msgID, rc.Kind == ChangePin)
	}
	if errors.Is(err, ErrUnknownMessage) {
		return nil // deleted already
	}
	return err
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
