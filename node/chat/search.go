package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// MessageObserver learns of every durable change to a message (the search index).
// Calls happen after the commit, in commit order per channel, and must not block.
type MessageObserver interface {
	MessageStored(m *model.Message)
	MessageDeleted(channelID, id ID)
}

// SetObserver installs the message observer; call it before serving.
func (s *Service) SetObserver(o MessageObserver) { s.observer = o }

func (s *Service) stored(m *model.Message) {
	if s.observer != nil {
		s.observer.MessageStored(m)
	}
}

func (s *Service) deleted(channelID, id ID) {
	if s.observer != nil {
		s.observer.MessageDeleted(channelID, id)
	}
}

// ReadableChannels returns the text channels of a guild where the actor has VIEW_CHANNEL and
// READ_MESSAGE_HISTORY now; with guildID 0, the actor's private channels. It is the set
// search results are confined to.
func (s *Service) ReadableChannels(actor, guildID ID) ([]uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []uint64
	if guildID == 0 {
		for cid := range s.private[actor] {
			out = append(out, uint64(cid))
		}
		return out, nil
	}
	gs, m, err := s.guild(actor, guildID)
	if err != nil {
		return nil, err
	}
	for cid := range gs.channels {
		c := s.channels[cid]
		if c.IsTextual() && gs.channelPerms(m, c).Has(perm.ViewChannel|perm.ReadMessageHistory) {
			out = append(out, uint64(cid))
		}
	}
	return out, nil
}

// ResolveUser returns the members of a guild whose username, display name or nickname is
// name (case-insensitive); it serves search's from: and mentions: filters.
func (s *Service) ResolveUser(ctx context.Context, guildID uint64, name string) ([]uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs := s.guilds[ID(guildID)]
	if gs == nil {
		return nil, nil
	}
	name = strings.ToLower(strings.TrimPrefix(name, "@"))
	var out []uint64
	for uid, m := range gs.members {
		u := s.user(uid)
		if u.Username == name || (u.GlobalName != nil && strings.ToLower(*u.GlobalName) == name) || (m.Nick != nil && strings.ToLower(*m.Nick) == name) {
			out = append(out, uint64(uid))
		}
	}
	return out, nil
}

// ResolveChannel returns the guild's channels named name (without a leading #).
func (s *Service) ResolveChannel(ctx context.Context, guildID uint64, name string) ([]uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs := s.guilds[ID(guildID)]
	if gs == nil {
		return nil, nil
	}
	name = strings.ToLower(strings.TrimPrefix(name, "#"))
	var out []uint64
	for cid := range gs.channels {
		if strings.ToLower(s.channels[cid].Name) == name {
			out = append(out, uint64(cid))
		}
	}
	return out, nil
}

// MessagesByID loads search hits for the actor, skipping any that were deleted since or
// are in channels the actor can no longer read.
func (s *Service) MessagesByID(actor ID, hits [][2]uint64) ([]MessageOut, error) {
	out := make([]MessageOut, 0, len(hits))
	for _, h := range hits {
		m, err := s.Message(actor, ID(h[0]), ID(h[1]))
		var ce *Error
		if errors.As(err, &ce) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// CountMessages returns how many messages are stored (for reindex progress).
func (s *Service) CountMessages(ctx context.Context) (int, error) {
	n := 0
	err := s.db.View(func(tx *store.Tx) error {
		return tx.Scan([]byte(store.PrefixMessage), nil, false, func(k, _ []byte) (bool, error) {
			// The media index shares the prefix's first letters ("m/b/", "m/r/",
			// "m/u/"); a message key is the prefix and two IDs.
			if len(k) == messageKeyLen {
				n++
			}
			return ctx.Err() == nil, ctx.Err()
		})
	})
	return n, err
}

// messageKeyLen is the length of a message's key: the prefix, the channel and the message.
var messageKeyLen = len(store.Key(store.PrefixMessage, 0, 0))

// ScanMessages calls fn for every stored message in ascending ID order across all
// channels (a k-way merge of the per-channel key ranges).
func (s *Service) ScanMessages(ctx context.Context, fn func(m *model.Message) error) error {
	s.mu.RLock()
	var channels []ID
	for cid, c := range s.channels {
		if c.IsTextual() {
			channels = append(channels, cid)
		}
	}
	s.mu.RUnlock()
	return s.db.View(func(tx *store.Tx) error {
		var its []*store.Iter
		defer func() {
			for _, it := range its {
				it.Close()
			}
		}()
		for _, cid := range channels {
			it := tx.Iter(store.Key(store.PrefixMessage, uint64(cid)))
			if it.Valid() {
				its = append(its, it)
			} else {
				it.Close()
			}
		}
		off := len(store.PrefixMessage) + 8
		for len(its) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			best := 0
			for i := 1; i < len(its); i++ {
				if store.IDAt(its[i].Key(), off) < store.IDAt(its[best].Key(), off) {
					best = i
				}
			}
			var m model.Message
			if err := its[best].Value(func(v []byte) error { return json.Unmarshal(v, &m) }); err != nil {
				return fmt.Errorf("chat: scan messages: %w", err)
			}
			if err := fn(&m); err != nil {
				return err
			}
			its[best].Next()
			if !its[best].Valid() {
				its[best].Close()
				its = append(its[:best], its[best+1:]...)
			}
		}
		return nil
	})
}
