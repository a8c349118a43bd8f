package fed

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
)

// Presence timing of spec/federation.md §7.
const (
	// PresenceTTL is how long a received presence entry lives [FED-061].
	PresenceTTL = 30 * time.Second
	// PresenceRefresh is how often the full presence is republished.
	PresenceRefresh = 10 * time.Second
)

// presence batches local presence and typing per guild and tracks remote
// presence with expiry. Its loop is owned by the Service.
type presence struct {
	s *Service

	mu       sync.Mutex
	local    map[string]uint8
	dirty    map[string]bool
	lastFull time.Time
	typing   map[event.ID][]event.Typing
	remote   map[event.ID]map[event.User]remoteEntry

	// wake tells the loop that a change is waiting, so that it is published at
	// once when no batch went out in the last BatchInterval (leading edge).
	wake chan struct{}
	// send publishes everything due; it is flush, replaced in tests of the
	// loop's timing.
	send func(context.Context)
}

type remoteEntry struct {
	status  uint8
	expires time.Time
}

func newPresence(s *Service) *presence {
	p := &presence{s: s, local: map[string]uint8{}, dirty: map[string]bool{},
		typing: map[event.ID][]event.Typing{}, remote: map[event.ID]map[event.User]remoteEntry{},
		wake: make(chan struct{}, 1)}
	p.send = p.flush
	return p
}

// poke wakes the batching loop.
func (p *presence) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// SetPresence records a local user's status (event.StatusOnline, …); it is
// published to every guild the user is a member of at once when no batch
// went out in the last batch interval, else with the next batch, within one
// interval [FED-067].
func (s *Service) SetPresence(name string, status uint8) {
	p := s.pres
	p.mu.Lock()
	if status == event.StatusOffline {
		delete(p.local, name)
	} else {
		p.local[name] = status
	}
	p.dirty[name] = true
	p.mu.Unlock()
	p.poke()
}

// Typing records that a local user is typing in a channel; it is published
// like a presence change (see SetPresence).
func (s *Service) Typing(guildID, channel event.ID, name string) {
	p := s.pres
	p.mu.Lock()
	if len(p.typing[guildID]) < event.MaxBatch {
		p.typing[guildID] = append(p.typing[guildID], event.Typing{Name: name, Channel: channel})
	}
	p.mu.Unlock()
	p.poke()
}

// Presence returns the known statuses of remote users in a guild (users
// absent are offline).
func (s *Service) Presence(guildID event.ID) map[event.User]uint8 {
	p := s.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[event.User]uint8{}
	for u, e := range p.remote[guildID] {
		out[u] = e.status
	}
	return out
}

// run publishes batches and expires remote entries until ctx ends. A batch
// goes out as soon as something is due (a change, typing, or the full
// republish) unless one went out less than BatchInterval ago; then it goes
// out when the interval has passed. So a change after a quiet spell crosses
// at once, and under load every change waits at most one interval, while a
// node still publishes at most one batch of each kind per guild per
// interval [FED-060] [FED-067].
func (p *presence) run(ctx context.Context) {
	gap := p.s.cfg.BatchInterval
	tick := time.NewTicker(gap) // expiry sweeps and the full republish
	defer tick.Stop()
	next := time.NewTimer(gap) // the end of the current interval, when armed
	next.Stop()
	defer next.Stop()
	armed := false
	var last time.Time // when the last batch went out
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.expire()
		case <-p.wake:
		case <-next.C:
			armed = false
		}
		if !p.due() {
			continue
		}
		if wait := gap - time.Since(last); wait > 0 {
			if !armed {
				next.Reset(wait)
				armed = true
			}
			continue
		}
		p.send(ctx)
		last = time.Now()
	}
}

// due reports whether a batch is waiting: a changed status, typing, or the
// full republish of [FED-061].
func (p *presence) due() bool {
	now := p.s.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dirty) > 0 || len(p.typing) > 0 || now.Sub(p.lastFull) >= PresenceRefresh
}

// flush publishes at most one presence and one typing batch per guild
// [FED-060], the full presence every PresenceRefresh [FED-061].
func (p *presence) flush(ctx context.Context) {
	now := p.s.now()
	p.mu.Lock()
	full := now.Sub(p.lastFull) >= PresenceRefresh
	if full {
		p.lastFull = now
	}
	local := make(map[string]uint8, len(p.local))
	for n, st := range p.local {
		local[n] = st
	}
	dirty := p.dirty
	p.dirty = map[string]bool{}
	typing := p.typing
	p.typing = map[event.ID][]event.Typing{}
	p.mu.Unlock()

	for _, id := range p.s.Guilds() {
		rt := p.s.guild(id)
		if rt == nil {
			continue
		}
		var entries []event.Presence
		add := func(name string) {
			if rt.st.IsMember(event.User{Node: p.s.self, Name: name}) {
				entries = append(entries, event.Presence{Name: name, Status: local[name]})
			}
		}
		if full {
			for name := range local {
				add(name)
			}
		}
		for name := range dirty {
			if _, online := local[name]; !online || !full {
				add(name)
			}
		}
		for len(entries) > 0 {
			n := min(len(entries), event.MaxBatch)
			p.publish(ctx, rt, event.KindPresenceBatch, &event.PresenceBatch{Entries: entries[:n], TTL: uint32(PresenceTTL.Milliseconds())})
			entries = entries[n:]
		}
		if ts := typing[id]; len(ts) > 0 {
			p.publish(ctx, rt, event.KindTypingBatch, &event.TypingBatch{Entries: ts})
		}
	}
}

func (p *presence) publish(ctx context.Context, rt *guildRT, kind event.Kind, body any) {
	s := p.s
	ev, err := s.signer.Sign(event.Envelope{Kind: kind, Guild: rt.id, Author: event.User{Node: s.self, Name: "node"},
		TS: s.clock.Tick(), SN: rt.st.Info().SN}, body)
	if err == nil {
		err = s.gossip.Publish(ctx, rt.id, ev.Raw, true)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("fed: publish batch", "kind", kind, "err", fmt.Errorf("fed: %w", err))
	}
}

// receive applies a validated batch from another node.
func (p *presence) receive(guildID event.ID, ev *event.Event) {
	now := p.s.now()
	var changed []event.Presence
	var typing []event.Typing
	p.mu.Lock()
	switch b := ev.Body.(type) {
	case *event.PresenceBatch:
		m := p.remote[guildID]
		if m == nil {
			m = map[event.User]remoteEntry{}
			p.remote[guildID] = m
		}
		ttl := time.Duration(b.TTL) * time.Millisecond
		for _, e := range b.Entries {
			u := event.User{Node: ev.Origin, Name: e.Name}
			old, had := m[u]
			if e.Status == event.StatusOffline {
				delete(m, u)
				if had {
					changed = append(changed, e)
				}
				continue
			}
			m[u] = remoteEntry{status: e.Status, expires: now.Add(ttl)}
			if !had || old.status != e.Status {
				changed = append(changed, e)
			}
		}
	case *event.TypingBatch:
		typing = b.Entries
	}
	p.mu.Unlock()
	if f := p.s.cfg.OnPresence; f != nil {
		for _, e := range changed {
			f(guildID, event.User{Node: ev.Origin, Name: e.Name}, e.Status)
		}
	}
	if f := p.s.cfg.OnTyping; f != nil {
		for _, e := range typing {
			f(guildID, e.Channel, event.User{Node: ev.Origin, Name: e.Name})
		}
	}
}

// expire takes remote users offline when their entries lapse [EVT-082].
func (p *presence) expire() {
	now := p.s.now()
	type gone struct {
		guild event.ID
		user  event.User
	}
	var expired []gone
	p.mu.Lock()
	for g, m := range p.remote {
		for u, e := range m {
			if now.After(e.expires) {
				delete(m, u)
				expired = append(expired, gone{g, u})
			}
		}
	}
	p.mu.Unlock()
	if f := p.s.cfg.OnPresence; f != nil {
		for _, e := range expired {
			f(e.guild, e.user, event.StatusOffline)
		}
	}
}
