package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-chat/hearth/node/content"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// MaxContent is the longest message, in Unicode code points.
const MaxContent = 2000

// MessageCreate is the body of POST /channels/{id}/messages.
type MessageCreate struct {
	Content          string          `json:"content"`
	Nonce            json.RawMessage `json:"nonce"`
	TTS              bool            `json:"tts"`
	MessageReference *struct {
		MessageID ID `json:"message_id"`
	} `json:"message_reference"`
	AllowedMentions *AllowedMentions `json:"allowed_mentions"`

	// Files are the uploaded attachments (multipart requests); they are not part of the JSON.
	Files []model.Attachment `json:"-"`
}

// AllowedMentions restricts which parsed mentions take effect (Discord's shape).
type AllowedMentions struct {
	Parse []string `json:"parse"`
	Users []ID     `json:"users"`
	Roles []ID     `json:"roles"`
}

func (a *AllowedMentions) allows(kind string, id ID) bool {
	if a == nil {
		return true
	}
	for _, p := range a.Parse {
		if p == kind {
			return true
		}
	}
	list := a.Users
	if kind == "roles" {
		list = a.Roles
	}
	return indexOf(list, id) >= 0
}

// nonceString accepts Discord's string or integer nonce.
func nonceString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if len(s) > 25 {
			return "", invalid("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", invalid("nonce", "BASE_TYPE_STRING", "Must be a string or an integer.")
}

func checkContent(c string) error {
	if utf8.RuneCountInString(c) > MaxContent {
		return invalid("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
	}
	if !utf8.ValidString(c) {
		return invalid("content", "BASE_TYPE_STRING", "Must be valid UTF-8.")
	}
	return nil
}

// resolveMentions fills the mention fields of m from its content. Callers hold s.mu.
func (s *Service) resolveMentions(m *model.Message, c *model.Channel, gs *guildState, p perm.Bits, allowed *AllowedMentions) {
	parsed := content.Parse(m.Content)
	m.Mentions, m.MentionRoles, m.MentionEveryone = nil, nil, false
	for _, uid := range parsed.Users {
		id := ID(uid)
		if !allowed.allows("users", id) || s.users[id] == nil {
			continue
		}
		if gs != nil {
			mem := gs.members[id]
			if mem == nil || !gs.channelPerms(mem, c).Has(perm.ViewChannel) {
				continue
			}
		} else if indexOf(c.RecipientIDs, id) < 0 {
			continue
		}
		m.Mentions = append(m.Mentions, id)
	}
	if gs != nil {
		for _, rid := range parsed.Roles {
			id := ID(rid)
			if r := gs.roles[id]; r != nil && id != gs.g.ID && allowed.allows("roles", id) && (r.Mentionable || p.Has(perm.MentionEveryone)) {
				m.MentionRoles = append(m.MentionRoles, id)
			}
		}
		m.MentionEveryone = (parsed.Everyone || parsed.Here) && p.Has(perm.MentionEveryone) && allowed.allows("everyone", 0)
	}
}

// mentioned returns the users whose mention count the message increments. Callers hold s.mu.
func (s *Service) mentioned(m *model.Message, c *model.Channel, gs *guildState) []ID {
	set := map[ID]bool{}
	for _, u := range m.Mentions {
		set[u] = true
	}
	if gs != nil && (m.MentionEveryone || len(m.MentionRoles) > 0) {
		for uid, mem := range gs.members {
			if set[uid] || !gs.channelPerms(mem, c).Has(perm.ViewChannel) {
				continue
			}
			if m.MentionEveryone {
				set[uid] = true
				continue
			}
			for _, r := range m.MentionRoles {
				if indexOf(mem.Roles, r) >= 0 {
					set[uid] = true
					break
				}
			}
		}
	}
	delete(set, m.AuthorID)
	out := make([]ID, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	return out
}

// CreateMessage stores a message and dispatches MESSAGE_CREATE. It returns once the message
// is durable.
func (s *Service) CreateMessage(ctx context.Context, actor, channelID ID, req MessageCreate) (MessageOut, error) {
	if strings.TrimSpace(req.Content) == "" && len(req.Files) == 0 {
		return MessageOut{}, ErrEmptyMessage
	}
	if len(req.Files) > 10 {
		return MessageOut{}, invalid("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
	}
	if err := checkContent(req.Content); err != nil {
		return MessageOut{}, err
	}
	nonce, err := nonceString(req.Nonce)
	if err != nil {
		return MessageOut{}, err
	}
	// Refused before federation publishes it: a message the node cannot store must not
	// reach other nodes.
	if err := s.db.Space(); err != nil {
		return MessageOut{}, fmt.Errorf("chat: create message: %w", err)
	}
	msg := &model.Message{ChannelID: channelID, AuthorID: actor, Content: req.Content, Nonce: nonce, TTS: req.TTS, Type: model.MessageDefault}

	s.mu.RLock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	if err == nil && !c.IsTextual() {
		err = ErrNotText
	}
	if err == nil && !p.Has(perm.SendMessages) {
		err = ErrMissingPerms
	}
	if err == nil && len(req.Files) > 0 && !p.Has(perm.AttachFiles) {
		err = ErrMissingPerms
	}
	if err != nil {
		s.mu.RUnlock()
		return MessageOut{}, err
	}
	if gs != nil {
		msg.GuildID = gs.g.ID
	}
	s.resolveMentions(msg, c, gs, p, req.AllowedMentions)
	mentioned := s.mentioned(msg, c, gs)
	s.mu.RUnlock()

	var ref *model.Message
	if req.MessageReference != nil && req.MessageReference.MessageID != 0 {
		ref, err = s.loadMessage(channelID, req.MessageReference.MessageID)
		if err != nil {
			return MessageOut{}, invalid("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
		}
		msg.Type = model.MessageReply
		msg.MessageReference = &model.MessageReference{MessageID: ref.ID, ChannelID: channelID}
		if gs != nil {
			gid := gs.g.ID
			msg.MessageReference.GuildID = &gid
		}
	}

	// In a federated channel the message is published first: its ID comes from its event, the
	// same on every node, so that every node orders the channel alike.
	eventID, fedID := s.publishFirst(ctx, c, actor, msg, req.Files)
	sl := s.ord.reserve(channelID, func() {
		msg.ID = fedID
		if eventID == "" {
			msg.ID = s.ids.Next()
		}
		for _, f := range req.Files {
			f.ID = s.ids.Next()
			msg.Attachments = append(msg.Attachments, f)
		}
	})
	// A published message is durable in the federation store already, and the node restores
	// it from there at start if a crash kept this write from the disk (server restoreOwn), so
	// the write need not wait for an fsync of its own.
	write := s.db.Update
	if eventID != "" {
		write = s.db.UpdateLazy
	}
	err = write(func(tx *store.Tx) error {
		if eventID != "" {
			var err error
			if msg.ID, err = freeMessageID(tx, channelID, msg.ID); err != nil {
				return err
			}
			if err := errors.Join(tx.Put(store.KeyString(store.PrefixFedMessage, eventID), msg.ID),
				tx.Put(store.Key(store.PrefixFedMessageRev, uint64(msg.ID)), eventID)); err != nil {
				return err
			}
		}
		if err := tx.Put(store.Key(store.PrefixMessage, uint64(channelID), uint64(msg.ID)), msg); err != nil {
			return err
		}
		for _, a := range msg.Attachments {
			if err := tx.Put(attachRef(a.Hash, channelID, msg.ID), true); err != nil {
				return err
			}
		}
		for _, uid := range mentioned {
			rs := model.ReadState{ChannelID: channelID}
			key := store.Key(store.PrefixReadState, uint64(uid), uint64(channelID))
			if err := tx.Get(key, &rs); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			rs.MentionCount++
			if err := tx.Put(key, &rs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.ord.complete(channelID, sl)
		return MessageOut{}, fmt.Errorf("chat: create message: %w", err)
	}

	s.stored(msg)
	s.lockKeepViews()
	if cur := s.channels[channelID]; cur != nil {
		id := msg.ID
		cur.LastMessageID = &id
	}
	for _, uid := range mentioned {
		s.readState(uid, channelID).MentionCount++
	}
	s.mu.Unlock()

	s.mu.RLock()
	out := s.messageOut(msg, 0)
	if ref != nil {
		r := s.messageOut(ref, 0)
		out.ReferencedMessage = &r
	}
	if gs != nil {
		if mem := gs.members[actor]; mem != nil {
			mo := s.memberOut(mem, false)
			out.Member = &mo
		}
	}
	ev := s.messageEvent("MESSAGE_CREATE", c, out)
	s.mu.RUnlock()
	s.ord.complete(channelID, sl, ev)
	out.Member = nil
	return out, nil
}

// messageEvent builds a message dispatch for a channel, with the no-content variant for
// sessions without the MESSAGE_CONTENT intent. Callers hold s.mu.
func (s *Service) messageEvent(typ string, c *model.Channel, out MessageOut) *fanout.Event {
	ev := &fanout.Event{Type: typ, Data: encode(out)}
	ev.NoContent = func() []byte {
		stripped := out
		stripped.Content = ""
		return encode(stripped)
	}
	s.route(ev, c, IntentGuildMessages, IntentDirectMessages)
	return ev
}

// route addresses ev to the channel's audience: the viewers of a guild channel or the
// recipients of a private one, tagged with the matching intent. Callers hold s.mu.
func (s *Service) route(ev *fanout.Event, c *model.Channel, guildIntent, dmIntent uint64) {
	if c.IsPrivate() {
		ev.Intent = dmIntent
		for _, u := range c.RecipientIDs {
			ev.UserIDs = append(ev.UserIDs, uint64(u))
		}
		return
	}
	ev.Intent = guildIntent
	ev.GuildID = uint64(c.GuildID)
	ev.Visible = s.viewersCached(c.ID)
}

// loadMessage reads a stored message of a channel.
func (s *Service) loadMessage(channelID, id ID) (*model.Message, error) {
	var m model.Message
	err := s.db.View(func(tx *store.Tx) error {
		return tx.Get(store.Key(store.PrefixMessage, uint64(channelID), uint64(id)), &m)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownMessage
	}
	if err != nil {
		return nil, fmt.Errorf("chat: load message: %w", err)
	}
	return &m, nil
}

// HistoryQuery selects a page of history. At most one of Before, After, Around is set.
// FromStart asks for the oldest messages (Discord's after=0).
type HistoryQuery struct {
	Before, After, Around ID
	FromStart             bool
	Limit                 int
}

// Messages returns a page of a channel's history, newest first (READ_MESSAGE_HISTORY).
func (s *Service) Messages(actor, channelID ID, q HistoryQuery) ([]MessageOut, error) {
	if q.Limit < 1 || q.Limit > 100 {
		return nil, invalid("limit", "NUMBER_TYPE_MAX", "Must be between 1 and 100.")
	}
	s.mu.RLock()
	c, _, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if !c.IsTextual() {
		return []MessageOut{}, nil
	}
	if !p.Has(perm.ReadMessageHistory) {
		return []MessageOut{}, nil
	}
	prefix := store.Key(store.PrefixMessage, uint64(channelID))
	var msgs []*model.Message
	collect := func(start []byte, reverse bool, limit int, skip ID) error {
		return s.db.View(func(tx *store.Tx) error {
			return tx.Scan(prefix, start, reverse, func(k, v []byte) (bool, error) {
				if ID(store.IDAt(k, len(prefix))) == skip {
					return true, nil
				}
				var m model.Message
				if err := json.Unmarshal(v, &m); err != nil {
					return false, err
				}
				msgs = append(msgs, &m)
				return len(msgs) < limit, nil
			})
		})
	}
	switch {
	case q.After != 0 || q.FromStart:
		err = collect(store.Key(store.PrefixMessage, uint64(channelID), uint64(q.After)), false, q.Limit, q.After)
		reverseMsgs(msgs)
	case q.Around != 0:
		half := q.Limit / 2
		if err = collect(store.Key(store.PrefixMessage, uint64(channelID), uint64(q.Around)), false, half+1, 0); err == nil {
			reverseMsgs(msgs)
			newer := len(msgs)
			err = collect(store.Key(store.PrefixMessage, uint64(channelID), uint64(q.Around)), true, newer+(q.Limit-newer), q.Around)
		}
	case q.Before != 0:
		if q.Before > 0 {
			err = collect(store.Key(store.PrefixMessage, uint64(channelID), uint64(q.Before)), true, q.Limit, q.Before)
		}
	default:
		err = collect(nil, true, q.Limit, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("chat: history: %w", err)
	}
	// Replies carry the message they answer, as on Discord: from the page when it is there.
	refs := map[ID]*model.Message{}
	for _, m := range msgs {
		refs[m.ID] = m
	}
	for _, m := range msgs {
		if r := m.MessageReference; r != nil && refs[r.MessageID] == nil {
			if ref, err := s.loadMessage(channelID, r.MessageID); err == nil {
				refs[r.MessageID] = ref
			}
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]MessageOut, len(msgs))
	for i, m := range msgs {
		out[i] = s.messageOut(m, actor)
		if r := m.MessageReference; r != nil && refs[r.MessageID] != nil {
			ro := s.messageOut(refs[r.MessageID], actor)
			out[i].ReferencedMessage = &ro
		}
	}
	return out, nil
}

func reverseMsgs(m []*model.Message) {
	for i, j := 0, len(m)-1; i < j; i, j = i+1, j-1 {
		m[i], m[j] = m[j], m[i]
	}
}

// Message returns one message of a channel the actor can read.
func (s *Service) Message(actor, channelID, id ID) (MessageOut, error) {
	s.mu.RLock()
	_, _, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return MessageOut{}, err
	}
	if !p.Has(perm.ReadMessageHistory) {
		return MessageOut{}, ErrMissingAccess
	}
	m, err := s.loadMessage(channelID, id)
	if err != nil {
		return MessageOut{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := s.messageOut(m, actor)
	if m.MessageReference != nil {
		if ref, err := s.loadMessage(channelID, m.MessageReference.MessageID); err == nil {
			r := s.messageOut(ref, actor)
			out.ReferencedMessage = &r
		}
	}
	return out, nil
}

// mutateMessage runs a read-modify-write of one stored message in a transaction, ordered
// with the channel's other dispatches. edit returns the dispatch to publish, or an error.
func (s *Service) mutateMessage(channelID, id ID, edit func(m *model.Message, tx *store.Tx) (*fanout.Event, error)) error {
	sl := s.ord.reserve(channelID, nil)
	var ev *fanout.Event
	var after func() // tells the observer, once committed
	err := s.db.Update(func(tx *store.Tx) error {
		var m model.Message
		if err := tx.Get(store.Key(store.PrefixMessage, uint64(channelID), uint64(id)), &m); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return ErrUnknownMessage
			}
			return err
		}
		var err error
		ev, err = edit(&m, tx)
		switch {
		case err != nil || ev == nil:
			after = nil
		case ev.Type == "MESSAGE_DELETE":
			after = func() { s.deleted(channelID, id) }
		default:
			after = func() { s.stored(&m) }
		}
		return err
	})
	if err != nil {
		s.ord.complete(channelID, sl)
		var ce *Error
		if errors.As(err, &ce) {
			return err
		}
		return fmt.Errorf("chat: update message: %w", err)
	}
	if after != nil {
		after()
	}
	if ev != nil {
		s.ord.complete(channelID, sl, ev)
	} else {
		s.ord.complete(channelID, sl)
	}
	return nil
}

// EditMessage changes the content of the actor's own message and dispatches MESSAGE_UPDATE.
func (s *Service) EditMessage(ctx context.Context, actor, channelID, id ID, newContent *string) (MessageOut, error) {
	if newContent != nil {
		if err := checkContent(*newContent); err != nil {
			return MessageOut{}, err
		}
		if strings.TrimSpace(*newContent) == "" {
			return MessageOut{}, ErrEmptyMessage
		}
	}
	s.mu.RLock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return MessageOut{}, err
	}
	var out MessageOut
	err = s.mutateMessage(channelID, id, func(m *model.Message, tx *store.Tx) (*fanout.Event, error) {
		if m.AuthorID != actor {
			return nil, ErrCannotEditOthers
		}
		if newContent != nil {
			m.Content = *newContent
			now := s.now().UTC()
			m.EditedTimestamp = &now
			s.mu.RLock()
			s.resolveMentions(m, c, gs, p, nil)
			s.mu.RUnlock()
		}
		if err := tx.Put(store.Key(store.PrefixMessage, uint64(channelID), uint64(id)), m); err != nil {
			return nil, err
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		out = s.messageOut(m, actor)
		return s.messageEvent("MESSAGE_UPDATE", c, out), nil
	})
	if err == nil && newContent != nil {
		s.publishChange(c, actor, ChangeEdit, id, *newContent)
	}
	return out, err
}

// DeleteMessage deletes a message (the author, or MANAGE_MESSAGES in guild channels).
func (s *Service) DeleteMessage(ctx context.Context, actor, channelID, id ID) error {
	s.mu.RLock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	err = s.mutateMessage(channelID, id, func(m *model.Message, tx *store.Tx) (*fanout.Event, error) {
		if m.AuthorID != actor && (gs == nil || !p.Has(perm.ManageMessages)) {
			return nil, ErrMissingPerms
		}
		if err := errors.Join(tx.Delete(store.Key(store.PrefixMessage, uint64(channelID), uint64(id))),
			tx.Delete(store.Key(store.PrefixPin, uint64(channelID), uint64(id))), dropAttachRefs(tx, m)); err != nil {
			return nil, err
		}
		d := map[string]any{"id": id, "channel_id": channelID}
		if gs != nil {
			d["guild_id"] = gs.g.ID
		}
		ev := &fanout.Event{Type: "MESSAGE_DELETE", Data: encode(d)}
		s.mu.RLock()
		s.route(ev, c, IntentGuildMessages, IntentDirectMessages)
		s.mu.RUnlock()
		return ev, nil
	})
	if err == nil {
		s.publishChange(c, actor, ChangeDelete, id, "")
	}
	return err
}

// BulkDelete deletes 2–100 messages younger than 14 days (MANAGE_MESSAGES) and dispatches
// one MESSAGE_DELETE_BULK with the IDs that existed.
func (s *Service) BulkDelete(ctx context.Context, actor, channelID ID, ids []ID) error {
	if len(ids) < 2 || len(ids) > 100 {
		return ErrBulkCount
	}
	cutoff := s.now().Add(-14 * 24 * time.Hour)
	for _, id := range ids {
		if id.Time().Before(cutoff) {
			return ErrBulkTooOld
		}
	}
	s.mu.RLock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if gs == nil || !p.Has(perm.ManageMessages) {
		return ErrMissingPerms
	}
	return s.deleteMany(c, ids)
}

// deleteMany deletes the messages that exist among ids and dispatches MESSAGE_DELETE_BULK.
func (s *Service) deleteMany(c *model.Channel, ids []ID) error {
	sl := s.ord.reserve(c.ID, nil)
	var deleted []ID
	err := s.db.Update(func(tx *store.Tx) error {
		deleted = deleted[:0]
		for _, id := range ids {
			key := store.Key(store.PrefixMessage, uint64(c.ID), uint64(id))
			var m model.Message
			err := tx.Get(key, &m)
			if errors.Is(err, store.ErrNotFound) || indexOf(deleted, id) >= 0 {
				continue
			}
			if err != nil {
				return err
			}
			deleted = append(deleted, id)
			if err := errors.Join(tx.Delete(key), tx.Delete(store.Key(store.PrefixPin, uint64(c.ID), uint64(id))), dropAttachRefs(tx, &m)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(deleted) == 0 {
		s.ord.complete(c.ID, sl)
		if err != nil {
			return fmt.Errorf("chat: bulk delete: %w", err)
		}
		return nil
	}
	for _, id := range deleted {
		s.deleted(c.ID, id)
	}
	ev := &fanout.Event{Type: "MESSAGE_DELETE_BULK", Data: encode(map[string]any{"ids": deleted, "channel_id": c.ID, "guild_id": c.GuildID})}
	s.mu.RLock()
	s.route(ev, c, IntentGuildMessages, IntentDirectMessages)
	s.mu.RUnlock()
	s.ord.complete(c.ID, sl, ev)
	return nil
}

// deleteRecentBy deletes the messages of one author from the last seconds in channels (used
// by bans with delete_message_seconds).
func (s *Service) deleteRecentBy(ctx context.Context, channels []ID, author ID, seconds int) error {
	since := ID(0)
	if t := s.now().Add(-time.Duration(seconds) * time.Second); t.After(time.UnixMilli(1420070400000)) {
		since = ID(uint64(t.UnixMilli()-1420070400000) << 22)
	}
	for _, cid := range channels {
		var ids []ID
		prefix := store.Key(store.PrefixMessage, uint64(cid))
		err := s.db.View(func(tx *store.Tx) error {
			return tx.Scan(prefix, store.Key(store.PrefixMessage, uint64(cid), uint64(since)), false, func(k, v []byte) (bool, error) {
				var m model.Message
				if err := json.Unmarshal(v, &m); err != nil {
					return false, err
				}
				if m.AuthorID == author {
					ids = append(ids, m.ID)
				}
				return ctx.Err() == nil, nil
			})
		})
		if err != nil {
			return fmt.Errorf("chat: find messages to delete: %w", err)
		}
		s.mu.RLock()
		c := s.channels[cid]
		s.mu.RUnlock()
		for len(ids) > 0 && c != nil {
			n := min(len(ids), 100)
			if err := s.deleteMany(c, ids[:n]); err != nil {
				return err
			}
			ids = ids[n:]
		}
	}
	return nil
}

// Typing dispatches TYPING_START for the actor in a channel (SEND_MESSAGES).
func (s *Service) Typing(ctx context.Context, actor, channelID ID) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	if err != nil {
		return err
	}
	if !c.IsTextual() || !p.Has(perm.SendMessages) {
		return ErrMissingPerms
	}
	d := map[string]any{"channel_id": channelID, "user_id": actor, "timestamp": s.now().Unix()}
	if gs != nil {
		d["guild_id"] = gs.g.ID
		d["member"] = s.memberOut(gs.members[actor], true)
	}
	ev := &fanout.Event{Type: "TYPING_START", Data: encode(d)}
	s.route(ev, c, IntentGuildMessageTyping, IntentDirectMessageTyping)
	s.pub.Publish(ev)
	s.typingRemote(c, actor)
	return nil
}

// Pins lists a channel's pinned messages, newest pin first.
func (s *Service) Pins(actor, channelID ID) ([]MessageOut, error) {
	s.mu.RLock()
	_, _, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if !p.Has(perm.ReadMessageHistory) {
		return []MessageOut{}, nil
	}
	type pin struct {
		id ID
		at string
	}
	var pins []pin
	prefix := store.Key(store.PrefixPin, uint64(channelID))
	err = s.db.View(func(tx *store.Tx) error {
		return tx.Scan(prefix, nil, false, func(k, v []byte) (bool, error) {
			var at string
			if err := json.Unmarshal(v, &at); err != nil {
				return false, err
			}
			pins = append(pins, pin{ID(store.IDAt(k, len(prefix))), at})
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("chat: pins: %w", err)
	}
	sortBy(pins, func(a, b pin) bool { return a.at > b.at })
	out := []MessageOut{}
	for _, pn := range pins {
		m, err := s.loadMessage(channelID, pn.id)
		if err != nil {
			continue
		}
		s.mu.RLock()
		out = append(out, s.messageOut(m, actor))
		s.mu.RUnlock()
	}
	return out, nil
}

// SetPin pins or unpins a message (MANAGE_MESSAGES in guilds; anyone in private channels).
func (s *Service) SetPin(ctx context.Context, actor, channelID, id ID, pinned bool) error {
	s.mu.RLock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if gs != nil && !p.Has(perm.ManageMessages) {
		return ErrMissingPerms
	}
	changed := false
	err = s.mutateMessage(channelID, id, func(m *model.Message, tx *store.Tx) (*fanout.Event, error) {
		if m.Pinned == pinned {
			return nil, nil
		}
		changed = true
		pinKey := store.Key(store.PrefixPin, uint64(channelID), uint64(id))
		if pinned {
			n := 0
			if err := tx.Scan(store.Key(store.PrefixPin, uint64(channelID)), nil, false, func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
				return nil, err
			}
			if n >= 50 {
				return nil, ErrMaxPins
			}
			if err := tx.Put(pinKey, s.now().UTC().Format(time.RFC3339Nano)); err != nil {
				return nil, err
			}
		} else if err := tx.Delete(pinKey); err != nil {
			return nil, err
		}
		m.Pinned = pinned
		if err := tx.Put(store.Key(store.PrefixMessage, uint64(channelID), uint64(id)), m); err != nil {
			return nil, err
		}
		d := map[string]any{"channel_id": channelID, "last_pin_timestamp": Timestamp(s.now())}
		if gs != nil {
			d["guild_id"] = gs.g.ID
		}
		ev := &fanout.Event{Type: "CHANNEL_PINS_UPDATE", Data: encode(d)}
		s.mu.RLock()
		s.route(ev, c, IntentGuilds, IntentDirectMessages)
		s.mu.RUnlock()
		return ev, nil
	})
	if err == nil && changed {
		kind := ChangeUnpin
		if pinned {
			kind = ChangePin
		}
		s.publishChange(c, actor, kind, id, "")
	}
	return err
}

// ParseEmoji validates a Unicode emoji from a URL path segment. Custom emoji (name:id) do
// not exist on Hearth and are unknown.
func ParseEmoji(raw string) (string, error) {
	e, err := url.PathUnescape(raw)
	if err != nil || e == "" || len(e) > 64 || !utf8.ValidString(e) || strings.Contains(e, ":") {
		return "", ErrUnknownEmoji
	}
	for _, r := range e {
		if r < 0x80 && r != '#' && r != '*' && !unicode.IsDigit(r) { // keycaps like 1️⃣ start with ASCII
			return "", ErrUnknownEmoji
		}
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", ErrUnknownEmoji
		}
	}
	return e, nil
}

// React adds (add=true) or removes a reaction of user on a message. Adding needs
// ADD_REACTIONS (and READ_MESSAGE_HISTORY); removing another user's needs MANAGE_MESSAGES.
func (s *Service) React(ctx context.Context, actor, channelID, id ID, emoji string, user ID, add bool) error {
	s.mu.RLock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if add && !p.Has(perm.AddReactions|perm.ReadMessageHistory) {
		return ErrMissingPerms
	}
	if user != actor && (gs == nil || !p.Has(perm.ManageMessages)) {
		return ErrMissingPerms
	}
	err = s.mutateMessage(channelID, id, func(m *model.Message, tx *store.Tx) (*fanout.Event, error) {
		idx := -1
		for i := range m.Reactions {
			if m.Reactions[i].Emoji == emoji {
				idx = i
			}
		}
		if add {
			if idx < 0 {
				if len(m.Reactions) >= 20 {
					return nil, ErrMaxReactions
				}
				m.Reactions = append(m.Reactions, model.Reaction{Emoji: emoji})
				idx = len(m.Reactions) - 1
			}
			if indexOf(m.Reactions[idx].Users, user) >= 0 {
				return nil, nil // already reacted: nothing changes
			}
			m.Reactions[idx].Users = append(m.Reactions[idx].Users, user)
		} else {
			if idx < 0 {
				return nil, nil
			}
			ui := indexOf(m.Reactions[idx].Users, user)
			if ui < 0 {
				return nil, nil
			}
			r := &m.Reactions[idx]
			r.Users = append(r.Users[:ui:ui], r.Users[ui+1:]...)
			if len(r.Users) == 0 {
				m.Reactions = append(m.Reactions[:idx:idx], m.Reactions[idx+1:]...)
			}
		}
		if err := tx.Put(store.Key(store.PrefixMessage, uint64(channelID), uint64(id)), m); err != nil {
			return nil, err
		}
		d := map[string]any{"user_id": user, "channel_id": channelID, "message_id": id, "emoji": EmojiOut{Name: emoji}}
		typ := "MESSAGE_REACTION_REMOVE"
		s.mu.RLock()
		defer s.mu.RUnlock()
		if gs != nil {
			d["guild_id"] = gs.g.ID
			if add {
				if mem := gs.members[user]; mem != nil {
					d["member"] = s.memberOut(mem, true)
				}
			}
		}
		if add {
			typ = "MESSAGE_REACTION_ADD"
			d["message_author_id"] = m.AuthorID
		}
		ev := &fanout.Event{Type: typ, Data: encode(d)}
		s.route(ev, c, IntentGuildMessageReactions, IntentDirectMessageReactions)
		return ev, nil
	})
	if err == nil && user == actor {
		kind := ChangeUnreact
		if add {
			kind = ChangeReact
		}
		s.publishChange(c, actor, kind, id, emoji)
	}
	return err
}

// ClearReactions removes all reactions from a message (MANAGE_MESSAGES).
func (s *Service) ClearReactions(ctx context.Context, actor, channelID, id ID) error {
	s.mu.RLock()
	c, gs, p, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if gs == nil || !p.Has(perm.ManageMessages) {
		return ErrMissingPerms
	}
	return s.mutateMessage(channelID, id, func(m *model.Message, tx *store.Tx) (*fanout.Event, error) {
		if len(m.Reactions) == 0 {
			return nil, nil
		}
		m.Reactions = nil
		if err := tx.Put(store.Key(store.PrefixMessage, uint64(channelID), uint64(id)), m); err != nil {
			return nil, err
		}
		ev := &fanout.Event{Type: "MESSAGE_REACTION_REMOVE_ALL", Data: encode(map[string]any{"channel_id": channelID, "message_id": id, "guild_id": gs.g.ID})}
		s.mu.RLock()
		s.route(ev, c, IntentGuildMessageReactions, IntentDirectMessageReactions)
		s.mu.RUnlock()
		return ev, nil
	})
}

// Reactors lists the users who reacted with emoji, in order, after the given user ID.
func (s *Service) Reactors(actor, channelID, id ID, emoji string, limit int, after ID) ([]any, error) {
	if limit <= 0 || limit > 100 {
		limit = 25
	}
	s.mu.RLock()
	_, _, _, err := s.channelAccess(actor, channelID)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	m, err := s.loadMessage(channelID, id)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []any{}
	for _, r := range m.Reactions {
		if r.Emoji != emoji {
			continue
		}
		for _, u := range r.Users {
			if u > after && len(out) < limit {
				out = append(out, s.user(u))
			}
		}
	}
	return out, nil
}

// attachRef is the key recording that a message uses a blob.
func attachRef(hash string, channelID, messageID ID) []byte {
	return store.Key(store.PrefixAttachRef+hash+"/", uint64(channelID), uint64(messageID))
}

// dropAttachRefs deletes the blob references of a message being deleted.
func dropAttachRefs(tx *store.Tx, m *model.Message) error {
	var errs []error
	for _, a := range m.Attachments {
		errs = append(errs, tx.Delete(attachRef(a.Hash, m.ChannelID, m.ID)))
	}
	return errors.Join(errs...)
}

// BlobGuilds returns the federation IDs of the federated guilds in which a stored message
// uses the blob with the hex hash: the nodes of those guilds may fetch it from this one.
// An avatar or icon counts as used in the guilds of its user, or in its guild.
func (s *Service) BlobGuilds(hash string) []string {
	var channels, users, guilds []ID
	err := s.db.View(func(tx *store.Tx) error {
		prefix := []byte(store.PrefixAttachRef + hash + "/")
		err := tx.Scan(prefix, nil, false, func(k, _ []byte) (bool, error) {
			channels = append(channels, ID(store.IDAt(k, len(prefix))))
			return len(channels) < 1000, nil
		})
		if err != nil {
			return err
		}
		for kind, ids := range map[byte]*[]ID{imageUser: &users, imageGuild: &guilds} {
			prefix := imageRefPrefix(hash, kind)
			if err := tx.Scan(prefix, nil, false, func(k, _ []byte) (bool, error) {
				*ids = append(*ids, ID(store.IDAt(k, len(prefix))))
				return len(*ids) < 1000, nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("looking up a blob's messages", "hash", hash, "err", err)
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	add := func(gid ID) {
		if gs := s.guilds[gid]; gs != nil && gs.g.FedID != "" && !slices.Contains(out, gs.g.FedID) {
			out = append(out, gs.g.FedID)
		}
	}
	for _, cid := range channels {
		if c := s.channels[cid]; c != nil {
			add(c.GuildID)
		}
	}
	for _, uid := range users {
		for gid := range s.userGuilds[uid] {
			add(gid)
		}
	}
	for _, gid := range guilds {
		add(gid)
	}
	return out
}

// BlobReferenced reports whether any stored message uses the blob with the hex hash; the
// media garbage collector asks it.
func (s *Service) BlobReferenced(hash string) bool {
	used := false
	err := s.db.View(func(tx *store.Tx) error {
		for _, prefix := range [][]byte{[]byte(store.PrefixAttachRef + hash + "/"), []byte(store.PrefixImageRef + hash + "/")} {
			if err := tx.Scan(prefix, nil, false, func(_, _ []byte) (bool, error) {
				used = true
				return false, nil
			}); err != nil || used {
				return err
			}
		}
		return nil
	})
	return used || err != nil // on error, keep the blob
}
