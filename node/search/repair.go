package search

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
)

// Source lists the messages the index should hold. The node implements it
// over its store; repair and rebuild read it while the node keeps running.
type Source interface {
	// Count returns about how many messages Scan will visit, for progress
	// reports; it need not be exact.
	Count(ctx context.Context) (int, error)
	// Scan calls fn for every stored message that search should see, in
	// strictly ascending ID order, and stops at the first error fn returns.
	// fn does not keep d.Mentions beyond the call unless it copies it.
	Scan(ctx context.Context, fn func(d Doc) error) error
}

// RepairStats says what a repair or rebuild found.
type RepairStats struct {
	Checked int // messages read from the source
	Missing int // in the source, not in the index: indexed
	Stale   int // in both, index out of date: re-indexed
	Extra   int // in the index, not in the source: deleted
}

// repairChunk is how many source messages are compared with the index at a
// time.
const repairChunk = 2000

// progressLogEvery is how often repair logs its progress.
const progressLogEvery = 5 * time.Second

// Repair compares the index with src and fixes every difference, without
// stopping indexing or search. It walks src and the index side by side in ID
// order, one chunk at a time, so its memory use does not grow with the index.
// Live Index and Delete calls made while it runs win over its fixes. progress
// (nil for none) is called after each chunk with the messages checked so far
// and src.Count. On success the index is marked consistent, so the next clean
// Close lets Open skip repair.
func (ix *Index) Repair(ctx context.Context, src Source, progress func(done, total int)) (RepairStats, error) {
	ix.repairMu.Lock()
	defer ix.repairMu.Unlock()
	return ix.repair(ctx, src, progress, "repair")
}

// Rebuild discards the index and builds it again from src, reporting
// progress as Repair does. Search keeps answering meanwhile, from the part
// rebuilt so far, with Result.Partial set. If Rebuild fails or is
// cancelled the index stays marked for repair, which the next Open (with a
// Source) or Repair completes. This is what `hearth admin reindex` runs.
func (ix *Index) Rebuild(ctx context.Context, src Source, progress func(done, total int)) (RepairStats, error) {
	ix.repairMu.Lock()
	defer ix.repairMu.Unlock()
	ix.mu.Lock()
	ix.qmu.Lock()
	closed := ix.closed
	ix.consistent = false
	ix.qmu.Unlock()
	if closed {
		ix.mu.Unlock()
		return RepairStats{}, ErrClosed
	}
	err := ix.newGeneration()
	if err == nil {
		err = ix.writeManifest(false)
	}
	ix.mu.Unlock()
	if err != nil {
		return RepairStats{}, fmt.Errorf("search: rebuild: %w", err)
	}
	ix.rebuilding.Store(true)
	ix.log.Info("search index rebuild started", "generation", ix.gen)
	return ix.repair(ctx, src, progress, "rebuild")
}

func (ix *Index) repair(ctx context.Context, src Source, progress func(done, total int), what string) (RepairStats, error) {
	var st RepairStats
	ix.qmu.Lock()
	ix.touched = make(map[uint64]struct{})
	// The repair fixes whatever was lost before it started; only losses
	// from now on, or its own failure, leave the index unclean.
	ix.consistent, ix.dirty = false, false
	ix.qmu.Unlock()
	defer func() {
		ix.qmu.Lock()
		ix.touched = nil
		ix.qmu.Unlock()
	}()
	total, err := src.Count(ctx)
	if err != nil {
		return st, fmt.Errorf("search: %s: count: %w", what, err)
	}
	ix.met.repairProgress.Set(0)
	defer ix.met.repairProgress.Set(1)
	began, lastLog := time.Now(), time.Now()
	report := func(done bool) {
		if progress != nil {
			progress(st.Checked, total)
		}
		if total > 0 {
			ix.met.repairProgress.Set(min(1, float64(st.Checked)/float64(total)))
		}
		if done || time.Since(lastLog) >= progressLogEvery {
			lastLog = time.Now()
			ix.log.Info("search index "+what, "checked", st.Checked, "total", total,
				"missing", st.Missing, "stale", st.Stale, "extra", st.Extra,
				"elapsed", time.Since(began).Round(time.Millisecond), "done", done)
		}
	}

	chunk := make([]Doc, 0, repairChunk)
	var lo, last uint64 // lo: exclusive lower bound of the next range
	compare := func(hi uint64) error {
		held, err := ix.heldRange(ctx, lo, hi)
		if err != nil {
			return err
		}
		for _, d := range chunk {
			fp, ok := held[d.ID]
			delete(held, d.ID)
			switch {
			case !ok:
				st.Missing++
				ix.met.repairFixed.WithLabelValues("missing").Inc()
			case fp != fingerprint(d):
				st.Stale++
				ix.met.repairFixed.WithLabelValues("stale").Inc()
			default:
				continue
			}
			if err := ix.enqueue(op{doc: d}, true); err != nil {
				return err
			}
		}
		for id := range held {
			st.Extra++
			ix.met.repairFixed.WithLabelValues("extra").Inc()
			if err := ix.enqueue(op{doc: Doc{ID: id}, del: true}, true); err != nil {
				return err
			}
		}
		st.Checked += len(chunk)
		ix.met.repairChecked.Add(float64(len(chunk)))
		chunk, lo = chunk[:0], hi
		report(false)
		// Keep the queue bounded: the source is faster than the indexer.
		return ix.waitApplied(ctx, func() bool { return len(ix.pending) < ix.opts.MaxPending/2 })
	}
	err = src.Scan(ctx, func(d Doc) error {
		if err := d.validate(); err != nil {
			return err
		}
		if d.ID <= last {
			return fmt.Errorf("search: source not in ascending ID order: %d after %d", d.ID, last)
		}
		last = d.ID
		d.Mentions = slices.Clone(d.Mentions)
		chunk = append(chunk, d)
		if len(chunk) == repairChunk {
			return compare(d.ID)
		}
		return nil
	})
	if err == nil {
		err = compare(math.MaxUint64)
	}
	if err == nil {
		err = ix.Flush(ctx)
	}
	if err != nil {
		return st, fmt.Errorf("search: %s: %w", what, err)
	}
	ix.qmu.Lock()
	ix.consistent = true
	ix.qmu.Unlock()
	ix.rebuilding.Store(false)
	report(true)
	return st, nil
}

// heldRange returns the fingerprints of the indexed messages with IDs in
// (lo, hi]: the documents of the days the range covers, read segment by
// segment (the ID from the document ID, the fingerprint from the start of
// the stored content).
func (ix *Index) heldRange(ctx context.Context, lo, hi uint64) (map[uint64]uint64, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	bidx, err := ix.bi.Advanced()
	if err != nil {
		return nil, fmt.Errorf("held range: %w", err)
	}
	reader, err := bidx.Reader()
	if err != nil {
		return nil, fmt.Errorf("held range: %w", err)
	}
	defer reader.Close()
	snap, ok := reader.(*scorch.IndexSnapshot)
	if !ok {
		return nil, fmt.Errorf("held range: reader %T is not the engine's snapshot", reader)
	}
	days := termSet{field: fFilter, terms: coverDays(snowflakeDay(lo+1), snowflakeDay(hi))}
	held := make(map[uint64]uint64, repairChunk)
	for _, ss := range snap.Segments() {
		seg := ss.Segment()
		bm, err := setBitmap(seg, days)
		if err != nil {
			return nil, fmt.Errorf("held range: %w", err)
		}
		if bm == nil {
			continue
		}
		if del := ss.Deleted(); del != nil && !del.IsEmpty() {
			bm = roaring.AndNot(bm, del)
		}
		it := bm.Iterator()
		for k := 0; it.HasNext(); k++ {
			if k%checkEvery == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			num := uint64(it.Next())
			ext, err := seg.DocID(num)
			if err != nil {
				return nil, fmt.Errorf("held range: %w", err)
			}
			id, ok := parseDocID(ext)
			if !ok || id <= lo || id > hi {
				continue
			}
			err = seg.VisitStoredFields(num, func(field string, _ byte, v []byte, _ []uint64) bool {
				if fp, _, ok := storedWords(v); ok && field == fContent {
					held[id] = fp
				}
				return true
			})
			if err != nil {
				return nil, fmt.Errorf("held range: %w", err)
			}
		}
	}
	return held, nil
}
