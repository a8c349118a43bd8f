package search

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/RoaringBitmap/roaring/v2"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// idChunk is how many documents' message IDs segCache decodes at once: the
// engine compresses doc values 1,024 documents to a block, so reading one
// document's value costs decoding its whole block.
const idChunk = 1024

// defaultIDCacheSize is the default of Options.IDCacheSize (48 MiB).
const defaultIDCacheSize = 4 << 20

// segCaches keeps what search reads from immutable segments again and
// again: the message ID of each document (filled a block at a time), and
// the channel terms of each guild. Reading an ID through the engine costs
// decompressing a block of 1,024 values, which dominated time-ordered
// queries; from the cache it is an array read. Entries are keyed by
// segment and dropped when their segment leaves the index (merged away).
// Memory is bounded: past maxIDs cached documents (12 bytes each: the ID
// and the index of its guild and channel, in pointer-free arrays the
// collector does not scan), the whole cache is dropped and refills on
// demand.
type segCaches struct {
	maxIDs int64
	mu     sync.Mutex
	segs   map[segment.Segment]*segCache
	ids    atomic.Int64 // IDs cached over all segments
	// storedRead counts the documents whose stored words queries read (a
	// phrase confirming candidates, phrase.go): the only place a query reads
	// a message's content rather than the index. A test holds it far below
	// the number of documents [SRCH-083].
	storedRead atomic.Int64
}

func newSegCaches(maxIDs int) *segCaches {
	return &segCaches{maxIDs: int64(maxIDs), segs: make(map[segment.Segment]*segCache)}
}

// segCache is one segment's cache.
type segCache struct {
	seg    segment.Segment
	chunks []atomic.Pointer[idBlock]

	mu       sync.Mutex
	channels map[string][]string // guild prefix → the segment's channel terms in it
	places   []place             // distinct (guild, channel) values of the documents
	placeIdx map[place]uint32
	// guilds holds the documents of a guild (by channel term prefix).
	guilds map[string]*roaring.Bitmap
	// epochs lists the common-word epochs of the segment's documents;
	// oldEpochs[e] holds the documents of epochs before e (phrase.go).
	epochs    []uint32
	oldEpochs map[uint32]*roaring.Bitmap
	// storedRead is the owner's storedRead.
	storedRead *atomic.Int64
}

// idBlock is what the cache knows of idChunk consecutive documents.
type idBlock struct {
	ids    [idChunk]uint64 // message ID; 0 for a document without a key
	places [idChunk]uint32 // index in segCache.places
}

// place is the guild and channel of a document.
type place struct{ guild, channel uint64 }

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
			sc = &segCache{seg: s, chunks: make([]atomic.Pointer[idBlock], n), storedRead: &c.storedRead}
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

// block returns the block of document num, decoding it on first use: the
// message IDs from the document IDs, and the guilds and channels through
// read, which visits the channel doc values of a document. It returns nil
// for a number past the segment's end.
func (c *segCaches) block(sc *segCache, num uint32, read func(num uint32, fn index.DocValueVisitor) error) (*idBlock, error) {
	k := int(num / idChunk)
	if k >= len(sc.chunks) {
		return nil, nil
	}
	if b := sc.chunks[k].Load(); b != nil {
		return b, nil
	}
	b := new(idBlock)
	first := uint64(k * idChunk)
	last := min(first+idChunk, sc.seg.Count())
	for n := first; n < last; n++ {
		var p place
		err := read(uint32(n), func(field string, t []byte) {
			if x, y, ok := unpair16(t); ok && field == fChannel {
				p = place{x, y}
			}
		})
		if err != nil {
			return nil, err
		}
		id, err := sc.seg.DocID(n)
		if err != nil {
			return nil, fmt.Errorf("search: document ID: %w", err)
		}
		b.ids[n-first], _ = parseDocID(id)
		b.places[n-first] = sc.placeIndex(p)
	}
	// Two queries may fill the same block at once; both hold the same
	// values, and the first to store wins.
	if !sc.chunks[k].CompareAndSwap(nil, b) {
		return sc.chunks[k].Load(), nil
	}
	// Count it only if sc is still in the cache (not dropped by a reset or
	// a merge while this query ran).
	c.mu.Lock()
	live := c.segs[sc.seg] == sc
	c.mu.Unlock()
	if live && c.ids.Add(idChunk) > c.maxIDs {
		c.reset()
	}
	return b, nil
}

func (sc *segCache) placeIndex(p place) uint32 {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	i, ok := sc.placeIdx[p]
	if !ok {
		if sc.placeIdx == nil {
			sc.placeIdx = make(map[place]uint32)
		}
		i = uint32(len(sc.places))
		sc.places = append(sc.places, p)
		sc.placeIdx[p] = i
	}
	return i
}

func (sc *segCache) place(i uint32) place {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.places[i]
}

// channelTerms returns the segment's channel terms under prefix (one
// guild), reading them from its term dictionary on first use.
func (sc *segCache) channelTerms(prefix string) ([]string, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if terms, ok := sc.channels[prefix]; ok {
		return terms, nil
	}
	terms, err := prefixTerms(sc.seg, fChannel, prefix)
	if err != nil {
		return nil, err
	}
	if sc.channels == nil {
		sc.channels = make(map[string][]string)
	}
	sc.channels[prefix] = terms
	return terms, nil
}

// prefixTerms returns the terms of field in seg that start with prefix, in
// order.
func prefixTerms(seg segment.Segment, field, prefix string) ([]string, error) {
	dict, err := seg.Dictionary(field)
	if err != nil {
		return nil, fmt.Errorf("search: dictionary: %w", err)
	}
	it := dict.AutomatonIterator(nil, []byte(prefix), prefixEnd(prefix))
	var terms []string
	for {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("search: dictionary: %w", err)
		}
		if e == nil {
			return terms, nil
		}
		terms = append(terms, e.Term)
	}
}

// guildBitmap returns the segment's documents in the channels under prefix
// (one guild; nil when none), deleted ones included. It is shared: read
// only.
func (sc *segCache) guildBitmap(prefix string) (*roaring.Bitmap, error) {
	terms, err := sc.channelTerms(prefix)
	if err != nil {
		return nil, err
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if bm, ok := sc.guilds[prefix]; ok {
		return bm, nil
	}
	bm, err := setBitmap(sc.seg, termSet{field: fChannel, terms: terms})
	if err != nil {
		return nil, err
	}
	if sc.guilds == nil {
		sc.guilds = make(map[string]*roaring.Bitmap)
	}
	sc.guilds[prefix] = bm
	return bm, nil
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
