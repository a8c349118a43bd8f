// Package fanout delivers dispatch events to the sessions entitled to them.
//
// A Hub indexes live sessions by user and by guild. Publishing never blocks on a session:
// each session owns a bounded queue (see gateway), and a session that cannot keep up is
// closed by its owner, never waited for. An event is encoded once; per-session work is a
// filter call and a queue push.
package fanout

import (
	"sync"
	"sync/atomic"
)

// Event is one dispatch (op 0) ready to be framed for any session.
type Event struct {
	// Type is the dispatch name, e.g. MESSAGE_CREATE.
	Type string
	// Data is the encoded "d" payload.
	Data []byte
	// NoContent, if set, computes what sessions without the MESSAGE_CONTENT intent receive.
	// It runs at most once per event, and only if such a session receives it.
	NoContent func() []byte
	// Intent is the intent bit a session needs to receive the event; 0 means always.
	Intent uint64

	// GuildID routes the event to the sessions of the guild's members. Zero means the event
	// goes to the users in UserIDs only.
	GuildID uint64
	// UserIDs routes the event to these users' sessions (for guild events: only to them).
	UserIDs []uint64
	// Visible, if set, is asked for each receiving user (guild events); false skips the user.
	// It is how channel permissions (VIEW_CHANNEL) are applied to message dispatches.
	Visible func(userID uint64) bool
	// Except skips one session (e.g. the one that caused a presence echo); nil skips none.
	Except Session

	stripOnce sync.Once
	stripped  []byte
}

// Payload returns the encoded "d" for a session with or without MESSAGE_CONTENT.
func (ev *Event) Payload(withContent bool) []byte {
	if withContent || ev.NoContent == nil {
		return ev.Data
	}
	ev.stripOnce.Do(func() { ev.stripped = ev.NoContent() })
	return ev.stripped
}

// Session is what the hub needs from a connected client session.
type Session interface {
	// UserID is the session's user.
	UserID() uint64
	// Deliver queues ev without blocking. A session whose queue is full closes itself.
	Deliver(ev *Event)
}

// Hub routes events to sessions. The zero value is not usable; use NewHub.
type Hub struct {
	mu     sync.RWMutex
	users  map[uint64]map[Session]struct{}
	guilds map[uint64]map[uint64]struct{} // guild → users with sessions

	published atomic.Uint64
	delivered atomic.Uint64
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{users: make(map[uint64]map[Session]struct{}), guilds: make(map[uint64]map[uint64]struct{})}
}

// Add registers a session and subscribes it to guilds.
func (h *Hub) Add(s Session, guilds []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	uid := s.UserID()
	set := h.users[uid]
	if set == nil {
		set = make(map[Session]struct{}, 1)
		h.users[uid] = set
	}
	if _, ok := set[s]; ok {
		return
	}
	set[s] = struct{}{}
	if len(set) == 1 {
		for _, g := range guilds {
			h.joinLocked(g, uid)
		}
	}
}

// Remove unregisters a session. It reports whether it was the user's last session.
func (h *Hub) Remove(s Session, guilds []uint64) (last bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	uid := s.UserID()
	set := h.users[uid]
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) > 0 {
		return false
	}
	delete(h.users, uid)
	for _, g := range guilds {
		h.leaveLocked(g, uid)
	}
	return true
}

// Join subscribes the user's sessions to a guild (the user joined it).
func (h *Hub) Join(guildID, userID uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.users[userID]) > 0 {
		h.joinLocked(guildID, userID)
	}
}

// Leave unsubscribes the user's sessions from a guild (left, kicked, banned, deleted).
func (h *Hub) Leave(guildID, userID uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leaveLocked(guildID, userID)
}

// DropGuild unsubscribes everyone from a deleted guild.
func (h *Hub) DropGuild(guildID uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.guilds, guildID)
}

func (h *Hub) joinLocked(g, uid uint64) {
	m := h.guilds[g]
	if m == nil {
		m = make(map[uint64]struct{})
		h.guilds[g] = m
	}
	m[uid] = struct{}{}
}

func (h *Hub) leaveLocked(g, uid uint64) {
	if m := h.guilds[g]; m != nil {
		delete(m, uid)
		if len(m) == 0 {
			delete(h.guilds, g)
		}
	}
}

// Online reports whether the user has at least one session.
func (h *Hub) Online(userID uint64) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[userID]) > 0
}

// Sessions returns the number of registered sessions.
func (h *Hub) Sessions() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, s := range h.users {
		n += len(s)
	}
	return n
}

// Stats returns how many events were published and how many session deliveries they made.
func (h *Hub) Stats() (published, delivered uint64) {
	return h.published.Load(), h.delivered.Load()
}

// Publish delivers ev to every session entitled to it. It does not block on sessions.
func (h *Hub) Publish(ev *Event) {
	h.published.Add(1)
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	deliverUser := func(uid uint64) {
		if ev.Visible != nil && !ev.Visible(uid) {
			return
		}
		for s := range h.users[uid] {
			if s != ev.Except {
				s.Deliver(ev)
				n++
			}
		}
	}
	switch {
	case ev.GuildID != 0 && ev.UserIDs == nil:
		for uid := range h.guilds[ev.GuildID] {
			deliverUser(uid)
		}
	default:
		for _, uid := range ev.UserIDs {
			deliverUser(uid)
		}
	}
	h.delivered.Add(uint64(n))
}
