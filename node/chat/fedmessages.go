package chat

import (
	"context"
	"errors"
	"hash/fnv"
	"time"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/snowflake"
	"github.com/hearth-chat/hearth/node/store"
)

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
	s.lockKeepViews()
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
			s.gen.Add(1)
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
	s.lockKeepViews()
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
		s.gen.Add(1)
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
