package server

import (
	"sync"

	"github.com/hearth-chat/hearth/federation/event"
)

// eventQueue carries remote events from federation's commit path, which must not block, to
// the node's apply worker. It never drops: an event left out would not come back until the
// next start (the federation store has counted it as held, so catch-up does not fetch it
// again). It grows with a burst the worker has not caught up with yet; the start-up replay,
// which could fill it with a whole history, waits for room instead (pushWait).
type eventQueue struct {
	mu    sync.Mutex
	items []*event.Event
	ready chan struct{} // signalled when items may have become non-empty
	room  chan struct{} // signalled when items may have fallen under replayLimit
}

// replayLimit is the length of the queue above which the start-up replay waits.
const replayLimit = 4096

func newEventQueue() *eventQueue {
	return &eventQueue{ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push appends ev; it never blocks.
func (q *eventQueue) push(ev *event.Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	notify(q.ready)
}

// pushWait appends ev once the queue is shorter than replayLimit, or returns errStopped when
// stop closes first.
func (q *eventQueue) pushWait(ev *event.Event, stop <-chan struct{}) error {
	for {
		q.mu.Lock()
		if len(q.items) < replayLimit {
			q.items = append(q.items, ev)
			q.mu.Unlock()
			notify(q.ready)
			return nil
		}
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-stop:
			return errStopped
		}
	}
}

// take removes and returns up to max events from the head of the queue.
func (q *eventQueue) take(max int) []*event.Event {
	q.mu.Lock()
	n := min(len(q.items), max)
	out := make([]*event.Event, n)
	copy(out, q.items)
	clear(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) == 0 {
		q.items = nil // let a burst's backing array go
	}
	q.mu.Unlock()
	notify(q.room)
	return out
}
