package search

import (
	"testing"

	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// fakeSeg is a segment of n documents; only Count is implemented.
type fakeSeg struct {
	segment.Segment
	n uint64
}

func (f *fakeSeg) Count() uint64 { return f.n }

// DocID gives document num the message ID num+1000.
func (f *fakeSeg) DocID(num uint64) ([]byte, error) { return []byte(docID(num + 1000)), nil }

// TestSegCaches checks that the cache decodes a block once, keeps guild
// and channel beside the ID, forgets segments merged away, and empties
// itself past its bound.
func TestSegCaches(t *testing.T) {
	c := newSegCaches(3 * idChunk)
	a, b, d := &fakeSeg{n: 3000}, &fakeSeg{n: 10}, &fakeSeg{n: 5000}
	reads := 0
	read := func(num uint32, fn index.DocValueVisitor) error {
		reads++
		fn(fChannel, []byte(pair16(1, uint64(num%3)+10)))
		return nil
	}
	sc := c.get([]segment.Segment{a, b}, true)
	for range 2 {
		blk, err := c.block(sc[0], 2500, read)
		if err != nil || blk == nil {
			t.Fatal(blk, err)
		}
		if id, p := blk.ids[2500%idChunk], sc[0].place(blk.places[2500%idChunk]); id != 3500 || p != (place{1, 2500%3 + 10}) {
			t.Fatalf("document 2500: id %d place %v", id, p)
		}
	}
	if want := 3000 - 2*idChunk; reads != want {
		t.Fatalf("%d reads for the last block of 3000 documents, want %d", reads, want)
	}
	if blk, err := c.block(sc[1], idChunk, read); blk != nil || err != nil {
		t.Fatalf("past the end: %v", err)
	}
	// b merged with another into d: a and d are the index now.
	c.get([]segment.Segment{a, d}, true)
	if _, ok := c.segs[b]; ok || len(c.segs) != 2 || c.ids.Load() != idChunk {
		t.Fatalf("after the merge: %d segments, %d ids", len(c.segs), c.ids.Load())
	}
	// Past the bound everything goes, and later reads refill.
	sd := c.get([]segment.Segment{a, d}, true)
	for _, n := range []uint32{0, 1024, 2048, 3072} {
		if _, err := c.block(sd[1], n, read); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.segs) != 0 || c.ids.Load() != 0 {
		t.Fatalf("past the bound: %d segments, %d ids", len(c.segs), c.ids.Load())
	}
}
