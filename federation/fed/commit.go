package fed

import (
	"errors"
	"fmt"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/store"
)

// Group commit. Validation of a guild's events is serialised under rt.mu,
// but the durable write is not: validated events are queued, and whichever
// waiting caller next takes rt.commitSem writes everything queued so far in
// one Badger transaction, delivers the events to OnEvent in queue order once
// committed, and releases rt.commitSem before the node's group sync (if any)
// that makes them durable: the next batch is written while this one syncs, and
// the syncs of both may be one. A caller is answered once its event is durable,
// whoever committed it; it does not wait for later batches. Until an event is
// committed it sits in an overlay that validation consults, so duplicates and
// equivocations are still caught.

type pending struct {
	ev   *event.Event
	done chan error
	// taken is set, under rt.mu, once a committer has taken the event from
	// the queue.
	taken bool
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

// take removes and returns the queue. The caller holds rt.mu.
func (rt *guildRT) take() []*pending {
	batch := rt.queue
	rt.queue = nil
	for _, p := range batch {
		p.taken = true
	}
	return batch
}

// await returns the outcome of p's commit once p is durable (or failed),
// committing the queue itself when p is still in it and no other caller is
// committing. The caller must not hold rt.mu.
func (s *Service) await(rt *guildRT, p *pending) error {
	for {
		select {
		case err := <-p.done:
			return err
		case rt.commitSem <- struct{}{}:
		}
		rt.mu.Lock()
		var batch []*pending
		if !p.taken {
			batch = rt.take()
		}
		rt.mu.Unlock()
		if len(batch) == 0 {
			// Another caller's batch holds p and answers it once durable.
			<-rt.commitSem
			return <-p.done
		}
		s.commitBatch(rt, batch)
	}
}

// flush commits everything queued so far; when it returns, every event
// that was queued or being committed before the call is committed (or
// failed), though perhaps not synced yet (store.Sync does that). The caller
// must not hold rt.mu.
func (s *Service) flush(rt *guildRT) {
	rt.commitSem <- struct{}{}
	rt.mu.Lock()
	batch := rt.take()
	rt.mu.Unlock()
	if len(batch) > 0 {
		s.commitBatch(rt, batch)
		return
	}
	<-rt.commitSem
}

// commitBatch writes and delivers one batch, releases rt.commitSem (which
// the caller took) once the batch is committed, and answers the batch's
// callers once it is durable.
func (s *Service) commitBatch(rt *guildRT, batch []*pending) {
	evs := make([]*event.Event, len(batch))
	for i, p := range batch {
		evs[i] = p.ev
	}
	released := false
	release := func() {
		rt.mu.Lock()
		for _, ev := range evs {
			delete(rt.overlay, ev.ID)
			delete(rt.overlaySeq, seqKey{ev.Origin, ev.Seq})
		}
		rt.mu.Unlock()
		released = true
		<-rt.commitSem
	}
	// The application hears of the events once they are committed, while the sync that
	// makes them durable runs: a crash of the process keeps them, and a power loss before
	// the sync loses them here and in the vector alike, so catch-up fetches them again.
	// Peers still hear of them only after the sync (the callers await it) [FED-019].
	fresh, err := s.store.PutThen(func(fresh []bool) {
		for i, p := range batch {
			if fresh[i] {
				s.clock.Observe(p.ev.TS)
				if s.cfg.OnEvent != nil && !rt.st.Historical(p.ev) { // [FED-104]
					s.cfg.OnEvent(p.ev)
				}
			}
		}
		release()
	}, evs...)
	if !released {
		release()
	}
	if err != nil {
		if !errors.Is(err, errIgnore) { // a free-space refusal is logged by the node once
			s.log.Error("fed: commit failed; in-memory state may be ahead of the store", "guild", rt.id, "err", err)
		}
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
