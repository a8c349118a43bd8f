package search

import (
	"sync"
	"sync/atomic"

	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// idChunk is how many documents' message IDs segCache decodes at once: the
// engine compresses doc values 1,024 documents to a block, so reading one
// document's value costs decoding its whole block.
const idChunk = 1024

// defaultIDCacheSize is the default of Options.IDCacheSize.
const defaultIDCacheSize = 4 << 20

// segCaches keeps what search reads from immutable segments again and
// again: the message ID of each document (filled a block at a time), and
// the channel terms of each guild. Reading an ID through the engine costs
// decompressing a block of 1,024 values, which dominated time-ordered
// queries; from the cache it is an array read. Entries are keyed by
// segment and dropped when their segment leaves the index (merged away).
// Memory is bounded: past maxIDs cached IDs (8 bytes each, in pointer-free
// arrays the collector does not scan), the whole cache is dropped and
// refills on demand.
type segCaches struct {
	maxIDs int64
	mu     sync.Mutex
	segs   map[segment.Segment]*segCache
	ids    atomic.Int64 // IDs cached over all segments
}

func newSegCaches(maxIDs int) *segCaches {
	return &segCaches{maxIDs: int64(maxIDs), segs: make(map[segment.Segment]*segCache)}
}

// segCache is one segment's cache.
type segCache struct {
	seg    segment.Segment
	chunks []atomic.Pointer[[idChunk]uint64]

	mu       sync.Mutex
	channels map[string][]string // guild prefix → the segment's channel terms in it
}

// get returns the caches of segs, in order, creating missing ones, and
// drops those of segments not in segs if segs is the index's current set.
func (c *segCaches) get(segs []segment.Segment, current bool) []*segCache {
	out := make([]*segCache, len(segs))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range segs {
		sc := c.segs[s]
		if sc == nil {
			n := (s.Count() + idChunk - 1) / idChunk
			sc = &segCache{seg: s, chunks: make([]atomic.Pointer[[idChunk]uint64], n)}
			c.segs[s] = sc
		}
		out[i] = sc
	}
	if current && len(c.segs) > len(segs) {
		live := make(map[segment.Segment]bool, len(segs))
		for _, s := range segs {
			live[s] = true
		}
		for s, sc := range c.segs {
			if !live[s] {
				c.ids.Add(-sc.cachedIDs())
				delete(c.segs, s)
			}
		}
	}
	return out
}

// reset drops every entry (after a rebuild swapped the index, or when the
// cache outgrew its bound).
func (c *segCaches) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.segs = make(map[segment.Segment]*segCache)
	c.ids.Store(0)
}

func (sc *segCache) cachedIDs() int64 {
	var n int64
	for i := range sc.chunks {
		if sc.chunks[i].Load() != nil {
			n += idChunk
		}
	}
	return n
}

// id returns the message ID of document num, decoding its block through
// read (which visits the key doc value of a document) on first use. ok is
// false if the document has no key.
func (c *segCaches) id(sc *segCache, num uint32, read func(num uint32, fn func(id uint64)) error) (uint64, bool, error) {
	k := int(num / idChunk)
	if k >= len(sc.chunks) {
		return 0, false, nil
	}
	block := sc.chunks[k].Load()
	if block == nil {
		block = new([idChunk]uint64)
		first := uint32(k * idChunk)
		last := min(uint64(first)+idChunk, sc.seg.Count())
		for n := uint64(first); n < last; n++ {
			err := read(uint32(n), func(id uint64) { block[n-uint64(first)] = id })
			if err != nil {
				return 0, false, err
			}
		}
		// Two queries may fill the same block at once; both hold the
		// same values, and the first to store wins.
		if sc.chunks[k].CompareAndSwap(nil, block) {
			if c.ids.Add(idChunk) > c.maxIDs {
				c.reset()
			}
		} else {
			block = sc.chunks[k].Load()
		}
	}
	id := block[num%idChunk]
	return id, id != 0, nil
}

// channelTerms returns the segment's channel terms under prefix (one
// guild), reading them from its term dictionary on first use.
func (sc *segCache) channelTerms(prefix string) ([]string, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if terms, ok := sc.channels[prefix]; ok {
		return terms, nil
	}
	dict, err := sc.seg.Dictionary(fChannel)
	if err != nil {
		return nil, err
	}
	it := dict.AutomatonIterator(nil, []byte(prefix), prefixEnd(prefix))
	var terms []string
	for {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		terms = append(terms, e.Term)
	}
	if sc.channels == nil {
		sc.channels = make(map[string][]string)
	}
	sc.channels[prefix] = terms
	return terms, nil
}

// prefixEnd returns the smallest string greater than every string with
// prefix p (nil if there is none).
func prefixEnd(p string) []byte {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return b[:i+1]
		}
	}
	return nil
}
