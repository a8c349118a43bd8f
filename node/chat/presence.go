package chat

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/node/fanout"
)

// Presence is a user's chosen status and activities. Status "invisible" is shown to others
// as "offline".
type Presence struct {
	Status     string            `json:"status"`
	Activities []json.RawMessage `json:"activities"`
	Since      *int64            `json:"since"`
	AFK        bool              `json:"afk"`
}

// PresenceUser is the partial user in a presence.
type PresenceUser struct {
	ID ID `json:"id"`
}

// PresenceOut is the PRESENCE_UPDATE payload.
type PresenceOut struct {
	User         PresenceUser      `json:"user"`
	GuildID      ID                `json:"guild_id,omitempty"`
	Status       string            `json:"status"`
	Activities   []json.RawMessage `json:"activities"`
	ClientStatus map[string]string `json:"client_status"`
}

// ValidStatus reports whether status may be set by a client.
func ValidStatus(status string) bool {
	switch status {
	case "online", "idle", "dnd", "invisible":
		return true
	}
	return false
}

// visiblePresence is what others see of a user: nothing if offline or invisible. Callers
// hold s.mu.
func (s *Service) visiblePresence(uid ID) (Presence, bool) {
	p, ok := s.presence[uid]
	if !ok || p.Status == "invisible" || p.Status == "offline" {
		return Presence{}, false
	}
	// A local user is shown while a session is attached; a remote user as their node says
	// (federation expires a vanished node's users).
	if u := s.users[uid]; !s.pub.Online(uint64(uid)) && (u == nil || !isRemoteName(u.Username)) {
		return Presence{}, false
	}
	if p.Activities == nil {
		p.Activities = []json.RawMessage{}
	}
	return p, true
}

// SetPresence records the user's presence and queues PRESENCE_UPDATE for the guilds the user
// is in. Use status "offline" when the user's last session ends.
func (s *Service) SetPresence(uid ID, p Presence) {
	if p.Activities == nil {
		p.Activities = []json.RawMessage{}
	}
	s.lockKeepViews()
	remote := isRemoteName(s.user(uid).Username)
	old, had := s.presence[uid]
	if p.Status == "offline" {
		delete(s.presence, uid)
	} else {
		s.presence[uid] = p
	}
	s.mu.Unlock()
	shown := func(p Presence, ok bool) string {
		if !ok || p.Status == "invisible" || p.Status == "offline" {
			return "offline"
		}
		return p.Status
	}
	before, after := shown(old, had), shown(p, true)
	if before == after && string(encode(old.Activities)) == string(encode(p.Activities)) {
		return
	}
	if remote {
		// Batched by its node already: it waits only for the short remote flush.
		s.remoteBatch.add(uid, after, p.Activities)
	} else {
		s.presenceBatch.add(uid, after, p.Activities)
	}
	if s.fed != nil && before != after {
		s.presenceRemote(uid, after)
	}
}

// presenceBatcher coalesces presence changes and flushes them once per interval, so that
// N members coming online in a guild of N cost N dispatches per session per interval at
// most, and a user flapping costs one.
type presenceBatcher struct {
	mu      sync.Mutex
	pending map[ID]PresenceOut
}

func (b *presenceBatcher) add(uid ID, status string, acts []json.RawMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[ID]PresenceOut{}
	}
	b.pending[uid] = PresenceOut{User: PresenceUser{ID: uid}, Status: status, Activities: acts, ClientStatus: map[string]string{}}
}

func (b *presenceBatcher) take() map[ID]PresenceOut {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pending
	b.pending = nil
	return p
}

// FlushPresence publishes the queued presence changes. The server calls it on a ticker
// (about once a second); tests call it directly.
func (s *Service) FlushPresence() {
	s.publishPresence(s.presenceBatch.take())
	s.publishPresence(s.remoteBatch.take())
}

// RemoteFlushInterval is how often presence changes of other nodes' users are published:
// their nodes batched them already (spec/federation.md [FED-060]), so they wait only long
// enough here to be coalesced into bulk dispatches.
const RemoteFlushInterval = 100 * time.Millisecond

// publishPresence dispatches a batch of presence changes to the guilds of the users.
func (s *Service) publishPresence(batch map[ID]PresenceOut) {
	if len(batch) == 0 {
		return
	}
	byGuild := map[ID][]PresenceOut{}
	var events []*fanout.Event
	s.mu.RLock()
	for uid, p := range batch {
		if p.Status != "offline" {
			p.ClientStatus = map[string]string{"web": p.Status}
		}
		for gid := range s.userGuilds[uid] {
			p.GuildID = gid
			byGuild[gid] = append(byGuild[gid], p)
		}
		// The user's own sessions see it too, without a guild.
		p.GuildID = 0
		events = append(events, &fanout.Event{Type: "PRESENCE_UPDATE", Data: encode(p), Intent: IntentGuildPresences, UserIDs: []uint64{uint64(uid)}})
	}
	s.mu.RUnlock()
	for gid, ps := range byGuild {
		if len(ps) > BulkPresenceThreshold {
			events = append(events, &fanout.Event{Type: "PRESENCE_UPDATE_BULK", Intent: IntentGuildPresences, GuildID: uint64(gid),
				Data: encode(map[string]any{"guild_id": gid, "presences": ps})})
			continue
		}
		for _, p := range ps {
			events = append(events, &fanout.Event{Type: "PRESENCE_UPDATE", Data: encode(p), Intent: IntentGuildPresences, GuildID: uint64(gid)})
		}
	}
	for _, ev := range events {
		s.pub.Publish(ev)
	}
}

// BulkPresenceThreshold is how many presence changes of one guild in one flush are sent as
// separate PRESENCE_UPDATE dispatches; more are sent as one PRESENCE_UPDATE_BULK, so a guild
// of N members where everyone comes online costs each session one dispatch per flush, not N.
const BulkPresenceThreshold = 16

// RunPresence flushes presence batches every interval, and other nodes' users' changes every
// RemoteFlushInterval, until stop is closed.
func (s *Service) RunPresence(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	r := time.NewTicker(min(RemoteFlushInterval, interval))
	defer r.Stop()
	for {
		select {
		case <-stop:
			s.FlushPresence()
			return
		case <-t.C:
			s.publishPresence(s.presenceBatch.take())
		case <-r.C:
			s.publishPresence(s.remoteBatch.take())
		}
	}
}
