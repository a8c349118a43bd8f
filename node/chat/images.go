package chat

import (
	"github.com/hearth-chat/hearth/node/store"
)

// Kinds of image references: a user's avatar or a guild's icon.
const (
	imageUser  = 'u'
	imageGuild = 'g'
)

func imageRefPrefix(hash string, kind byte) []byte {
	return []byte(store.PrefixImageRef + hash + "/" + string(kind))
}

// writer is what writes records: a transaction (*store.Tx) or a batch (*store.Batch).
type writer interface {
	Put(key []byte, v any) error
	Delete(key []byte) error
}

// moveImageRef records that the avatar or icon of id changed from old to new (hex hashes;
// nil is none), so that media GC keeps the image in use and BlobGuilds finds who uses it.
func moveImageRef(tx writer, kind byte, id ID, old, new *string) error {
	if old != nil && (new == nil || *old != *new) {
		if err := tx.Delete(append(imageRefPrefix(*old, kind), store.Key("", uint64(id))...)); err != nil {
			return err
		}
	}
	if new != nil {
		return tx.Put(append(imageRefPrefix(*new, kind), store.Key("", uint64(id))...), true)
	}
	return nil
}

// AvatarOf returns the hex hash of a user's avatar, "" if none.
func (s *Service) AvatarOf(user ID) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if u := s.users[user]; u != nil && u.Avatar != nil {
		return *u.Avatar
	}
	return ""
}

// IconOf returns the hex hash of a guild's icon, "" if none.
func (s *Service) IconOf(guild ID) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if gs := s.guilds[guild]; gs != nil && gs.g.Icon != nil {
		return *gs.g.Icon
	}
	return ""
}
