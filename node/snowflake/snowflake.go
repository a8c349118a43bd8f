// Package snowflake generates Discord-style 64-bit IDs that are local to one node.
//
// Layout, most significant bit first: 42 bits of milliseconds since the Discord epoch
// (2015-01-01T00:00:00Z), 10 bits of worker ID, 12 bits of a per-millisecond increment.
// IDs from one Generator are strictly increasing, so history ordered by ID is ordered by
// creation time; this is what the store's message keys rely on.
package snowflake

import (
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Epoch is Discord's epoch in Unix milliseconds.
const Epoch = 1420070400000

// ID is a snowflake. Zero means "no ID".
type ID uint64

// String returns the decimal form used on the wire.
func (id ID) String() string { return strconv.FormatUint(uint64(id), 10) }

// Time returns the creation time encoded in the ID.
func (id ID) Time() time.Time {
	return time.UnixMilli(int64(id>>22) + Epoch).UTC()
}

// FromTime returns the smallest ID created at t; useful as a bound for range queries.
func FromTime(t time.Time) ID {
	ms := t.UnixMilli() - Epoch
	if ms < 0 {
		return 0
	}
	return ID(uint64(ms) << 22)
}

// Parse parses the decimal form. It rejects empty strings, signs and overflow.
func Parse(s string) (ID, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	return ID(v), nil
}

// Generator hands out increasing IDs. The zero value is not usable; use New.
type Generator struct {
	mu     sync.Mutex
	worker uint64
	lastMS int64
	seq    uint64
	now    func() time.Time
}

// New returns a generator for the given worker (only the low 10 bits are used).
func New(worker uint16) *Generator {
	return &Generator{worker: uint64(worker) & 0x3ff, now: time.Now}
}

// Next returns a new ID, strictly greater than every ID this generator returned before,
// even if the wall clock steps backwards or more than 4096 IDs are needed in a millisecond.
func (g *Generator) Next() ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.now().UnixMilli() - Epoch
	if ms <= g.lastMS {
		g.seq++
		if g.seq > 0xfff {
			g.lastMS++
			g.seq = 0
		}
	} else {
		g.lastMS = ms
		g.seq = 0
	}
	return ID(uint64(g.lastMS)<<22 | g.worker<<12 | g.seq)
}

// Observe makes sure future IDs are greater than id; call it at start-up with the largest
// stored ID so a clock that went backwards across a restart cannot reuse IDs.
func (g *Generator) Observe(id ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := int64(id >> 22)
	if ms >= g.lastMS {
		g.lastMS = ms
		g.seq = uint64(id) & 0xfff
	}
}

// MarshalText encodes the ID as decimal digits, which encoding/json writes as a JSON string,
// as Discord does, so JavaScript clients do not lose precision. (A text marshaler rather than
// MarshalJSON: encoding/json re-scans and compacts what MarshalJSON returns, which cost more
// than the rest of a message's encoding.)
func (id ID) MarshalText() ([]byte, error) {
	return strconv.AppendUint(make([]byte, 0, 20), uint64(id), 10), nil
}

// UnmarshalJSON accepts a decimal string or a JSON number; null leaves the ID zero.
func (id *ID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := Parse(s)
	if err != nil {
		return fmt.Errorf("snowflake: invalid ID %q", s)
	}
	*id = v
	return nil
}
