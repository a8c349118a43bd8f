package event

import (
	"sync"
	"time"
)

// HLC is a hybrid logical clock timestamp: milliseconds since the Unix epoch
// in the high 48 bits, a logical counter in the low 16 (spec/events.md §4).
type HLC uint64

// MakeHLC builds a timestamp from wall time in ms and a counter.
func MakeHLC(ms uint64, counter uint16) HLC { return HLC(ms<<16 | uint64(counter)) }

// Millis is the physical part in Unix milliseconds.
func (h HLC) Millis() uint64 { return uint64(h) >> 16 }

// Time is the physical part as a time.Time.
func (h HLC) Time() time.Time { return time.UnixMilli(int64(h.Millis())) }

// Clock issues HLC timestamps that never go backwards and stay ahead of every
// timestamp observed [EVT-030]. The zero value uses time.Now and is ready to
// use; it is safe for concurrent use.
type Clock struct {
	// Now returns the physical time; nil means time.Now. Tests set it.
	Now func() time.Time

	mu   sync.Mutex
	last HLC
}

func (c *Clock) wall() uint64 {
	if c.Now != nil {
		return uint64(c.Now().UnixMilli())
	}
	return uint64(time.Now().UnixMilli())
}

// Tick returns a new timestamp for a locally signed event.
func (c *Clock) Tick() HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := MakeHLC(c.wall(), 0)
	if next <= c.last {
		next = c.last + 1
	}
	c.last = next
	return next
}

// Observe advances the clock past a timestamp received from another node.
// Callers must only observe timestamps that passed the skew check, or a
// remote node could push this clock into the future.
func (c *Clock) Observe(h HLC) {
	c.mu.Lock()
	if h > c.last {
		c.last = h
	}
	c.mu.Unlock()
}

// Last returns the latest timestamp issued or observed.
func (c *Clock) Last() HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
