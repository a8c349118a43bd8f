package search

import (
	"context"
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// termSet matches the documents that hold at least one of terms in field.
type termSet struct {
	field string
	terms []string
	// guild, if set, says that terms are all the channel terms of the
	// guild with this prefix: bitEval then takes the guild's documents from
	// each segment's cache.
	guild string
}

// bitEval answers a query whose clauses are all term sets directly from the
// segments' posting bitmaps: counts are bitmap cardinalities, and a time
// window is one more bitmap AND, so no match is visited one by one except
// those whose message ID must be read, and the phrase candidates that
// must be confirmed (phrase.go).
type bitEval struct {
	ctx    context.Context
	segs   []*scorch.SegmentSnapshot
	caches *segCaches
	cached []*segCache // per segment
	// base is, per segment, the live documents matching every must set and
	// no mustNot set; nil when none match.
	base []*roaring.Bitmap
	// dvs holds, per segment, the engine's doc value read state: it keeps
	// a decoded chunk of documents (and serves only the fields of its first
	// call, so every call reads the same fields).
	dvs []segment.DocVisitState
}

// newBitEval evaluates the term sets, exclusions and phrases of p over
// every segment of snap; set is the index's common words (phrase.go).
func newBitEval(ctx context.Context, snap *scorch.IndexSnapshot, caches *segCaches, p plan, set *commonSet) (*bitEval, error) {
	must, mustNot := p.sets, p.mustNot
	b := &bitEval{ctx: ctx, segs: snap.Segments(), caches: caches}
	b.cached = caches.get(segmentsOf(b.segs), true)
	b.base = make([]*roaring.Bitmap, len(b.segs))
	b.dvs = make([]segment.DocVisitState, len(b.segs))
	for i, seg := range b.segs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var acc *roaring.Bitmap
		owned := false // acc may be a segment's own (read-only) bitmap
		for _, ts := range must {
			bm, err := b.setBits(i, ts)
			if err != nil {
				return nil, err
			}
			switch {
			case bm == nil || bm.IsEmpty():
				acc = nil
			case acc == nil && !owned:
				acc = bm
			case owned:
				acc.And(bm)
			default:
				acc, owned = roaring.And(acc, bm), true
			}
			if acc == nil || acc.IsEmpty() {
				acc = nil
				break
			}
		}
		if acc == nil {
			continue
		}
		subtract := func(bm *roaring.Bitmap) {
			if bm == nil || bm.IsEmpty() {
				return
			}
			if owned {
				acc.AndNot(bm)
			} else {
				acc, owned = roaring.AndNot(acc, bm), true
			}
		}
		for _, ts := range mustNot {
			bm, err := setBitmap(seg.Segment(), ts)
			if err != nil {
				return nil, err
			}
			subtract(bm)
		}
		subtract(seg.Deleted())
		for _, terms := range p.phrases {
			if acc.IsEmpty() {
				break
			}
			bm, err := phraseBits(ctx, seg.Segment(), b.cached[i], acc, terms, set)
			if err != nil {
				return nil, err
			}
			if acc = bm; acc == nil {
				break
			}
		}
		if acc != nil && !acc.IsEmpty() {
			b.base[i] = acc
		}
	}
	return b, nil
}

// setBits returns the documents of segment i holding any term of ts, as
// setBitmap does.
func (b *bitEval) setBits(i int, ts termSet) (*roaring.Bitmap, error) {
	if ts.guild != "" {
		return b.cached[i].guildBitmap(ts.guild)
	}
	return setBitmap(b.segs[i].Segment(), ts)
}

// setBitmap returns the documents of seg holding any term of ts, deleted
// ones included. The result may be the segment's own bitmap: read only.
func setBitmap(seg segment.Segment, ts termSet) (*roaring.Bitmap, error) {
	dict, err := seg.Dictionary(ts.field)
	if err != nil {
		return nil, fmt.Errorf("search: dictionary: %w", err)
	}
	var parts []*roaring.Bitmap
	var ones []uint32
	for _, t := range ts.terms {
		pl, err := dict.PostingsList([]byte(t), nil, nil)
		if err != nil {
			return nil, fmt.Errorf("search: postings: %w", err)
		}
		it, ok := pl.Iterator(false, false, false, nil).(segment.OptimizablePostingsIterator)
		if !ok {
			return nil, fmt.Errorf("search: segment type %T has no bitmap postings", seg)
		}
		if n, ok := it.DocNum1Hit(); ok {
			ones = append(ones, uint32(n))
		} else if bm := it.ActualBitmap(); bm != nil && !bm.IsEmpty() {
			parts = append(parts, bm)
		}
	}
	switch {
	case len(ones) == 0 && len(parts) == 0:
		return nil, nil
	case len(ones) == 0 && len(parts) == 1:
		return parts[0], nil
	}
	out := roaring.FastOr(parts...)
	out.AddMany(ones)
	return out, nil
}

// postings returns the postings of the one term of ts in seg, without the
// documents in except.
func postings(seg segment.Segment, ts termSet, except *roaring.Bitmap) (segment.PostingsList, error) {
	dict, err := seg.Dictionary(ts.field)
	if err != nil {
		return nil, fmt.Errorf("search: dictionary: %w", err)
	}
	pl, err := dict.PostingsList([]byte(ts.terms[0]), except, nil)
	if err != nil {
		return nil, fmt.Errorf("search: postings: %w", err)
	}
	return pl, nil
}

// restrict returns base ∧ ts for segment i (nil when empty); without ts, base
// itself (read only).
func (b *bitEval) restrict(i int, ts *termSet) (*roaring.Bitmap, error) {
	base := b.base[i]
	if base == nil || ts == nil {
		return base, nil
	}
	bm, err := setBitmap(b.segs[i].Segment(), *ts)
	if err != nil || bm == nil {
		return nil, err
	}
	out := roaring.And(base, bm)
	if out.IsEmpty() {
		return nil, nil
	}
	return out, nil
}

// count returns the number of live documents matching base and ts (nil: base
// alone).
func (b *bitEval) count(ts *termSet) (int, error) {
	n := 0
	for i := range b.segs {
		if err := b.ctx.Err(); err != nil {
			return n, err
		}
		base := b.base[i]
		if base == nil {
			continue
		}
		if ts == nil {
			n += int(base.GetCardinality())
			continue
		}
		bm, err := setBitmap(b.segs[i].Segment(), *ts)
		if err != nil {
			return n, err
		}
		if bm != nil {
			n += int(base.AndCardinality(bm))
		}
	}
	return n, nil
}

// each calls fn for every live document matching base and ts, segment by
// segment in document order, until fn returns false. It returns the
// context's error if the deadline passed.
func (b *bitEval) each(ts *termSet, fn func(seg int, num uint32) (bool, error)) error {
	k := 0
	for i := range b.segs {
		bm, err := b.restrict(i, ts)
		if err != nil {
			return err
		}
		if bm == nil {
			continue
		}
		it := bm.Iterator()
		for it.HasNext() {
			if k++; k%checkEvery == 0 {
				if err := b.ctx.Err(); err != nil {
					return err
				}
			}
			more, err := fn(i, it.Next())
			if err != nil || !more {
				return err
			}
		}
	}
	return b.ctx.Err()
}

func segmentsOf(segs []*scorch.SegmentSnapshot) []segment.Segment {
	out := make([]segment.Segment, len(segs))
	for i, s := range segs {
		out[i] = s.Segment()
	}
	return out
}

// key returns the message ID of document num of segment i; ok is false if
// the document has none (never for a live one).
func (b *bitEval) key(i int, num uint32) (uint64, bool, error) {
	blk, err := b.block(i, num)
	if err != nil || blk == nil {
		return 0, false, err
	}
	id := blk.ids[num%idChunk]
	return id, id != 0, nil
}

// keyAndPlace returns the message ID, guild and channel of document num of
// segment i; ok is false if the document has no key.
func (b *bitEval) keyAndPlace(i int, num uint32) (uint64, place, bool, error) {
	blk, err := b.block(i, num)
	if err != nil || blk == nil {
		return 0, place{}, false, err
	}
	id := blk.ids[num%idChunk]
	return id, b.cached[i].place(blk.places[num%idChunk]), id != 0, nil
}

func (b *bitEval) block(i int, num uint32) (*idBlock, error) {
	return b.caches.block(b.cached[i], num, func(n uint32, fn index.DocValueVisitor) error {
		return b.visit(i, n, fn)
	})
}

// visit reads the channel doc values of document num of segment i.
func (b *bitEval) visit(i int, num uint32, fn index.DocValueVisitor) error {
	dv, ok := b.segs[i].Segment().(segment.DocValueVisitable)
	if !ok {
		return fmt.Errorf("search: segment type %T has no doc values", b.segs[i].Segment())
	}
	dvs, err := dv.VisitDocValues(uint64(num), channelField, fn, b.dvs[i])
	if err != nil {
		return fmt.Errorf("search: doc values: %w", err)
	}
	b.dvs[i] = dvs
	return nil
}
