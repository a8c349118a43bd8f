package fed

import (
	"errors"
	"fmt"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/store"
)

// Group commit. Validation of a guild's events is serialised under rt.mu,
// but the durable write is not: validated events are queued, and whichever
// caller next takes rt.commitMu writes everything queued so far in one
// Badger transaction (one fsync with SyncWrites), delivers the events to
// OnEvent in queue order once committed (before the node's group sync, if
// any, so that the application's work overlaps it), and answers the callers
// once they are durable. Until then the events sit in an overlay that
// validation consults, so duplicates and equivocations are still caught.

type pending struct {
	ev   *event.Event
	done chan error
}

type seqKey struct {
	origin event.Node
	seq    uint64
}

// enqueue queues a validated event for the next group commit. The caller
// holds rt.mu.
func (rt *guildRT) enqueue(ev *event.Event) *pending {
	if rt.overlay == nil {
		rt.overlay = map[event.ID]*event.Event{}
		rt.overlaySeq = map[seqKey]event.ID{}
	}
	p := &pending{ev: ev, done: make(chan error, 1)}
	rt.queue = append(rt.queue, p)
	rt.overlay[ev.ID] = ev
	rt.overlaySeq[seqKey{ev.Origin, ev.Seq}] = ev.ID
	return p
}

// await makes sure p is durable (committing the queue if nobody else is)
// and returns the outcome of its commit. The caller must not hold rt.mu.
func (s *Service) await(rt *guildRT, p *pending) error {
	s.flush(rt)
	return <-p.done
}

// flush commits everything queued so far; when it returns, every event
// that was queued or being committed before the call is durable (or failed).
// The caller must not hold rt.mu.
func (s *Service) flush(rt *guildRT) {
	rt.commitMu.Lock()
	defer rt.commitMu.Unlock()
	rt.mu.Lock()
	batch := rt.queue
	rt.queue = nil
	rt.mu.Unlock()
	if len(batch) > 0 {
		s.commitBatch(rt, batch)
	}
}

// commitBatch writes and delivers one batch. The caller holds rt.commitMu.
func (s *Service) commitBatch(rt *guildRT, batch []*pending) {
	evs := make([]*event.Event, len(batch))
	for i, p := range batch {
		evs[i] = p.ev
	}
	// The application hears of the events once they are committed, while the sync that
	// makes them durable runs: a crash of the process keeps them, and a power loss before
	// the sync loses them here and in the vector alike, so catch-up fetches them again.
	// Peers still hear of them only after the sync (the callers await it) [FED-019].
	delivered := false
	fresh, err := s.store.PutThen(func(fresh []bool) {
		delivered = true
		for i, p := range batch {
			if fresh[i] {
				s.clock.Observe(p.ev.TS)
				if s.cfg.OnEvent != nil {
					s.cfg.OnEvent(p.ev)
				}
			}
		}
	}, evs...)
	rt.mu.Lock()
	for _, ev := range evs {
		delete(rt.overlay, ev.ID)
		delete(rt.overlaySeq, seqKey{ev.Origin, ev.Seq})
	}
	rt.mu.Unlock()
	if err != nil {
		s.log.Error("fed: commit failed; in-memory state may be ahead of the store", "guild", rt.id, "delivered", delivered, "err", err)
		for _, p := range batch {
			p.done <- fmt.Errorf("fed: commit: %w", err)
		}
		return
	}
	for i, p := range batch {
		if !fresh[i] {
			p.done <- ignore("already stored")
			continue
		}
		p.done <- nil
	}
}

// has reports whether an event is stored or queued. The caller holds rt.mu.
func (s *Service) has(rt *guildRT, id event.ID) (bool, error) {
	if _, ok := rt.overlay[id]; ok {
		return true, nil
	}
	return s.store.Has(id)
}

// bySeq is store.BySeq through the overlay. The caller holds rt.mu.
func (s *Service) bySeq(rt *guildRT, origin event.Node, seq uint64) (event.ID, error) {
	if id, ok := rt.overlaySeq[seqKey{origin, seq}]; ok {
		return id, nil
	}
	return s.store.BySeq(rt.id, origin, seq)
}

// lookup is store.Get through the overlay. The caller holds rt.mu.
func (s *Service) lookup(rt *guildRT, id event.ID) (*event.Event, error) {
	if ev, ok := rt.overlay[id]; ok {
		return ev, nil
	}
	ev, err := s.store.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return ev, err
}
