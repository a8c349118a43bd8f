package server

import (
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
)

// TestEventQueue: push never blocks or drops, events come out in order, and pushWait waits
// for room above replayLimit until take makes some or stop closes.
func TestEventQueue(t *testing.T) {
	q := newEventQueue()
	const n = 3 * replayLimit
	for i := range n {
		q.push(&event.Event{Envelope: event.Envelope{Seq: uint64(i)}})
	}
	var got []*event.Event
	for evs := q.take(1000); len(evs) > 0; evs = q.take(1000) {
		got = append(got, evs...)
	}
	if len(got) != n {
		t.Fatalf("took %d events, pushed %d", len(got), n)
	}
	for i, ev := range got {
		if ev.Seq != uint64(i) {
			t.Fatalf("event %d has seq %d: out of order", i, ev.Seq)
		}
	}

	for range replayLimit {
		q.push(&event.Event{})
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- q.pushWait(&event.Event{}, stop) }()
	select {
	case err := <-done:
		t.Fatalf("pushWait returned %v with the queue full", err)
	default:
	}
	q.take(1)
	if err := <-done; err != nil {
		t.Fatalf("pushWait after take: %v", err)
	}
	go func() { done <- q.pushWait(&event.Event{}, stop) }()
	close(stop)
	if err := <-done; err != errStopped {
		t.Fatalf("pushWait after stop: %v, want errStopped", err)
	}
}
