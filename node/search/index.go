package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure an Index. The zero value is usable.
type Options struct {
	// Logger receives progress and errors; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the index's metrics; nil means they are not
	// exported.
	Registerer prometheus.Registerer
	// Source is the store the index repairs itself from after an unclean
	// shutdown or a format change. Nil means no automatic repair: the index
	// stays marked unclean until Repair or Rebuild succeeds.
	Source Source
	// BatchSize is the most operations written in one index batch; 0 means
	// 5000. Larger batches make fewer, larger segments and less merging.
	BatchSize int
	// MaxPending is the most operations queued before new ones are dropped
	// (and the index marked for repair); 0 means 200,000.
	MaxPending int
	// Coalesce is how long the indexer lets operations gather after the first
	// one arrives before it writes them (unless BatchSize of them are queued
	// or Flush is called). Every write makes a Bleve segment and Bleve merges
	// segments in the background, so a write per message costs more in merging
	// than in indexing under a steady stream. 0 means 200 ms; negative means
	// no wait.
	Coalesce time.Duration
	// QueryTimeout bounds every search, on top of the caller's context. A
	// search that reaches it returns what it found with Result.Partial set.
	// 0 means 2 seconds.
	QueryTimeout time.Duration
	// IDCacheSize is the most messages whose ID, guild and channel queries
	// keep in memory (12 bytes each, decoded from the index a block of
	// 1,024 at a time and reused by later queries); 0 means 4Mi (48 MiB).
	// Past it the cache is emptied and refills.
	IDCacheSize int

	// commonDF and waveDocs replace the constants of the same names when
	// set (tests make words common in small indexes).
	commonDF, waveDocs int
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 200_000
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 2 * time.Second
	}
	if o.IDCacheSize <= 0 {
		o.IDCacheSize = defaultIDCacheSize
	}
	if o.Coalesce == 0 {
		o.Coalesce = 200 * time.Millisecond
	}
	if o.commonDF <= 0 {
		o.commonDF = commonDF
	}
	if o.waveDocs <= 0 {
		o.waveDocs = waveDocs
	}
}

// Index is a node's message search index: a Bleve (scorch) index in its own
// directory, fed asynchronously by an owned indexer goroutine. All methods
// are safe for concurrent use. Close stops the goroutines and must be called.
type Index struct {
	dir  string
	opts Options
	log  *slog.Logger
	met  *metrics
	m    mapping.IndexMapping
	an   analyzers
	// cache holds what queries read from the index's immutable segments.
	cache *segCaches
	// noBitmaps makes every query run Bleve searchers (tests compare the
	// two evaluations).
	noBitmaps bool

	// mu guards bi, gen and vocab: Search and the indexer hold it shared,
	// Rebuild holds it exclusively while it swaps in a new generation.
	mu    sync.RWMutex
	bi    bleve.Index
	gen   int
	vocab *vocab // the generation's common words

	// qmu guards the queue and the fields after it.
	qmu        sync.Mutex
	pending    map[uint64]op
	seq        uint64              // operations enqueued so far
	applied    uint64              // seq covered by applied batches
	progressed chan struct{}       // closed and replaced when applied moves
	touched    map[uint64]struct{} // live-op IDs while a repair runs, else nil
	dirty      bool                // an operation was dropped or failed
	consistent bool                // the index matched the store at open or after repair
	closed     bool

	wake        chan struct{}
	flushNow    chan struct{} // Flush asks the indexer not to wait for more operations
	stop        chan struct{}
	indexerDone chan struct{}

	rebuilding atomic.Bool
	repairMu   sync.Mutex // one repair or rebuild at a time

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	closeErr error
	once     sync.Once
}

type op struct {
	doc Doc // doc.ID is always set; the rest only for index operations
	del bool
}

// manifest is the index directory's record of which generation is live and
// whether it was closed cleanly.
type manifest struct {
	Format     string `json:"format"`
	Generation int    `json:"generation"`
	Clean      bool   `json:"clean"`
}

const manifestName = "manifest.json"

// Open opens or creates the index in dir. If the index was not closed
// cleanly, or was written in another format, and opts.Source is set, Open
// starts a background repair (a full rebuild for a new format) that Close
// stops. Open never blocks on the store.
func Open(dir string, opts Options) (*Index, error) {
	opts.setDefaults()
	m, err := newMapping()
	if err != nil {
		return nil, err
	}
	an, err := newAnalyzers(m)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("search: open: %w", err)
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	man, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	ix := &Index{
		dir: dir, opts: opts, log: opts.Logger.With("component", "search"), met: met, m: m, an: an,
		cache:       newSegCaches(opts.IDCacheSize),
		pending:     make(map[uint64]op),
		progressed:  make(chan struct{}),
		wake:        make(chan struct{}, 1),
		flushNow:    make(chan struct{}, 1),
		stop:        make(chan struct{}),
		indexerDone: make(chan struct{}),
	}
	fresh := man.Format != IndexFormat
	if !fresh {
		ix.vocab, err = openVocab(ix.vocabPath(man.Generation), ix.opts.commonDF, ix.opts.waveDocs)
		if err == nil {
			ix.bi, err = bleve.OpenUsing(ix.genPath(man.Generation), scorchConfig())
		}
		if err != nil {
			ix.log.Warn("search index unreadable, starting a new one", "err", err)
			fresh = true
		}
	}
	ix.gen = man.Generation
	if fresh {
		if err := ix.newGeneration(); err != nil {
			return nil, err
		}
	}
	ix.consistent = man.Clean && !fresh
	if err := ix.writeManifest(false); err != nil {
		ix.bi.Close()
		return nil, err
	}
	ix.bgCtx, ix.bgCancel = context.WithCancel(context.Background())
	go ix.indexer()
	switch {
	case ix.consistent:
		ix.log.Info("search index opened", "dir", dir, "generation", ix.gen)
	case opts.Source == nil:
		ix.log.Warn("search index may be inconsistent and no source is set to repair it", "dir", dir)
	default:
		ix.log.Info("search index needs repair, repairing in the background", "dir", dir, "rebuild", fresh)
		ix.rebuilding.Store(fresh)
		ix.bg.Add(1)
		go func() {
			defer ix.bg.Done()
			if _, err := ix.Repair(ix.bgCtx, opts.Source, nil); err != nil && !errors.Is(err, context.Canceled) {
				ix.log.Error("search index repair failed", "err", err)
			}
		}()
	}
	return ix, nil
}

// scorchConfig is the index engine's configuration. Batches do not wait
// for their segment to reach disk (unsafe_batch): durability comes from the
// store and repair, not from the index, and waiting would cap indexing at
// the disk's sync rate.
func scorchConfig() map[string]any {
	return map[string]any{"unsafe_batch": true}
}

func (ix *Index) genPath(gen int) string {
	return filepath.Join(ix.dir, fmt.Sprintf("gen-%06d", gen))
}

// vocabPath is the file of the common words of generation gen.
func (ix *Index) vocabPath(gen int) string {
	return filepath.Join(ix.dir, fmt.Sprintf("gen-%06d-common.json", gen))
}

// newGeneration creates an empty index in the next generation directory and
// removes every other generation. The caller holds mu or is Open.
func (ix *Index) newGeneration() error {
	ix.gen++
	path, vpath := ix.genPath(ix.gen), ix.vocabPath(ix.gen)
	for _, p := range []string{path, vpath} {
		if err := os.RemoveAll(p); err != nil {
			ix.gen--
			return fmt.Errorf("search: new generation: %w", err)
		}
	}
	v, err := openVocab(vpath, ix.opts.commonDF, ix.opts.waveDocs)
	if err != nil {
		ix.gen--
		return err
	}
	bi, err := bleve.NewUsing(path, ix.m, scorch.Name, scorch.Name, scorchConfig())
	if err != nil {
		ix.gen--
		return fmt.Errorf("search: new generation: %w", err)
	}
	old := ix.bi
	ix.bi, ix.vocab = bi, v
	ix.cache.reset()
	if old != nil {
		if err := old.Close(); err != nil {
			ix.log.Warn("search: closing old generation", "err", err)
		}
	}
	entries, err := os.ReadDir(ix.dir)
	if err != nil {
		return fmt.Errorf("search: new generation: %w", err)
	}
	for _, e := range entries {
		if p := filepath.Join(ix.dir, e.Name()); strings.HasPrefix(e.Name(), "gen-") && p != path && p != vpath {
			if err := os.RemoveAll(filepath.Join(ix.dir, e.Name())); err != nil {
				ix.log.Warn("search: cannot remove old generation", "dir", e.Name(), "err", err)
			}
		}
	}
	return nil
}

func readManifest(dir string) (manifest, error) {
	var man manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return man, nil
	}
	if err != nil {
		return man, fmt.Errorf("search: read manifest: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		// A damaged manifest only costs a rebuild.
		return manifest{}, nil
	}
	return man, nil
}

// writeManifest durably records the live generation and cleanliness.
func (ix *Index) writeManifest(clean bool) error {
	m := manifest{Format: IndexFormat, Generation: ix.gen, Clean: clean}
	if err := writeFileSync(filepath.Join(ix.dir, manifestName), m); err != nil {
		return fmt.Errorf("search: write manifest: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Index queues d to be (re-)indexed, replacing any earlier version. It never
// blocks on indexing: if the queue is full the operation is dropped, counted,
// and the index is repaired on the next start.
func (ix *Index) Index(d Doc) error {
	if err := d.validate(); err != nil {
		return err
	}
	d.Mentions = append([]uint64(nil), d.Mentions...)
	return ix.enqueue(op{doc: d}, false)
}

// Delete queues the removal of message id. Deleting an unknown id is not an
// error.
func (ix *Index) Delete(id uint64) error {
	if id == 0 {
		return fmt.Errorf("search: delete: zero ID")
	}
	return ix.enqueue(op{doc: Doc{ID: id}, del: true}, false)
}

// enqueue adds o to the queue. Repair operations yield to live ones: a
// repair operation for an ID that saw a live operation since the repair
// started is dropped, because the live one is newer.
func (ix *Index) enqueue(o op, repair bool) error {
	ix.qmu.Lock()
	defer ix.qmu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	id := o.doc.ID
	if repair {
		if _, ok := ix.touched[id]; ok {
			return nil
		}
	} else if ix.touched != nil {
		ix.touched[id] = struct{}{}
	}
	if _, ok := ix.pending[id]; !ok && len(ix.pending) >= ix.opts.MaxPending && !repair {
		ix.dirty = true
		ix.met.dropped.Inc()
		return nil
	}
	ix.pending[id] = o
	ix.seq++
	ix.met.queue.Set(float64(len(ix.pending)))
	select {
	case ix.wake <- struct{}{}:
	default:
	}
	return nil
}

// Flush waits until every operation queued before the call is applied (and
// visible to Search), or ctx ends.
func (ix *Index) Flush(ctx context.Context) error {
	ix.qmu.Lock()
	target := ix.seq
	done := ix.applied >= target
	ix.qmu.Unlock()
	if !done {
		select {
		case ix.flushNow <- struct{}{}:
		default:
		}
	}
	return ix.waitApplied(ctx, func() bool { return ix.applied >= target })
}

// waitApplied waits until cond (called with qmu held) is true.
func (ix *Index) waitApplied(ctx context.Context, cond func() bool) error {
	for {
		ix.qmu.Lock()
		ok, ch, closed := cond(), ix.progressed, ix.closed
		ix.qmu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ix.indexerDone:
			if closed {
				return ErrClosed
			}
		case <-ctx.Done():
			return fmt.Errorf("search: flush: %w", ctx.Err())
		}
	}
}

// indexer is the goroutine that owns writing: it takes the whole queue,
// writes it in batches, and repeats. Close stops it after a last drain.
func (ix *Index) indexer() {
	defer close(ix.indexerDone)
	for {
		select {
		case <-ix.wake:
			ix.gather()
			ix.applyPending()
		case <-ix.stop:
			for ix.applyPending() {
			}
			return
		}
	}
}

// gather waits up to opts.Coalesce for more operations to queue, returning
// early once BatchSize are queued, or on Flush or Close.
func (ix *Index) gather() {
	if ix.opts.Coalesce < 0 {
		return
	}
	t := time.NewTimer(ix.opts.Coalesce)
	defer t.Stop()
	for {
		ix.qmu.Lock()
		full := len(ix.pending) >= ix.opts.BatchSize
		ix.qmu.Unlock()
		if full {
			return
		}
		select {
		case <-ix.wake:
		case <-t.C:
			return
		case <-ix.flushNow:
			return
		case <-ix.stop:
			return
		}
	}
}

// applyPending writes the queued operations and reports whether there were
// any.
func (ix *Index) applyPending() bool {
	ix.qmu.Lock()
	var ops map[uint64]op
	target := ix.seq
	n := len(ix.pending)
	if n > 0 {
		// Take the queue and leave a fresh one: when it is empty, ops stays nil rather than
		// aliasing a map that enqueue goes on writing.
		ops = ix.pending
		ix.pending = make(map[uint64]op, min(n, ix.opts.BatchSize))
	}
	ix.qmu.Unlock()
	if n > 0 {
		ix.writeOps(ops)
	}
	ix.qmu.Lock()
	ix.applied = target
	close(ix.progressed)
	ix.progressed = make(chan struct{})
	ix.met.queue.Set(float64(len(ix.pending)))
	ix.qmu.Unlock()
	return n > 0
}

// minParallelBatch is the fewest operations a batch gets when writeOps
// splits a queue to build segments on several cores at once.
const minParallelBatch = 1000

// writeOps writes ops in rounds of at most waveDocs operations, each indexed
// with the common words current at its start (see commonwords.go). The set
// moves on between rounds, so a long queue (a burst, a catch-up, a repair)
// does not index thousands of documents past a word's becoming common
// without its pairs, which phrases of common words would then have to
// confirm by reading their stored words.
func (ix *Index) writeOps(ops map[uint64]op) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	round := make([]op, 0, min(len(ops), ix.opts.waveDocs))
	for _, o := range ops {
		round = append(round, o)
		if len(round) == ix.opts.waveDocs {
			ix.writeRound(round)
			round = round[:0]
		}
	}
	if len(round) > 0 {
		ix.writeRound(round)
	}
}

// writeRound writes ops as Bleve batches. The engine analyses a batch's
// documents on all cores but builds its segment on the calling goroutine,
// which is most of the cost, so writeRound splits the round into batches (at
// most BatchSize each, and at least one per core when there are enough
// operations) and writes up to GOMAXPROCS of them at once. The batches hold
// disjoint IDs (ops come from a map keyed by ID), so their order does not
// matter. The caller holds ix.mu for reading.
func (ix *Index) writeRound(ops []op) {
	par := runtime.GOMAXPROCS(0)
	n := len(ops)
	parts := max((n+ix.opts.BatchSize-1)/ix.opts.BatchSize, min(par, n/minParallelBatch), 1)
	if parts > par && parts%par != 0 {
		// Equal shares for the cores: 3 batches on 2 cores would leave
		// one core idle while the last batch is built.
		parts += par - parts%par
	}
	size := (n + parts - 1) / parts
	type part struct {
		b               *bleve.Batch
		nIndex, nDelete int
	}
	batches := make([]part, 0, parts)
	cur := part{b: ix.bi.NewBatch()}
	set := ix.vocab.current()
	indexed := 0
	defer func() {
		if err := ix.vocab.indexed(indexed); err != nil {
			ix.log.Error("search: common words not updated", "err", err)
		}
	}()
	for _, o := range ops {
		if o.del {
			cur.b.Delete(docID(o.doc.ID))
			cur.nDelete++
		} else {
			if err := cur.b.IndexAdvanced(ix.an.buildDocument(o.doc, set, ix.vocab)); err != nil {
				ix.log.Error("search: build document", "id", o.doc.ID, "err", err)
				continue
			}
			cur.nIndex++
			indexed++
		}
		if cur.b.Size() >= size {
			batches = append(batches, cur)
			cur = part{b: ix.bi.NewBatch()}
		}
	}
	if cur.b.Size() > 0 {
		batches = append(batches, cur)
	}
	write := func(p part) {
		if err := ix.bi.Batch(p.b); err != nil {
			ix.log.Error("search: index batch failed", "ops", p.b.Size(), "err", err)
			ix.met.batchErrors.Inc()
			ix.qmu.Lock()
			ix.dirty = true
			ix.qmu.Unlock()
			return
		}
		ix.met.applied.WithLabelValues("index").Add(float64(p.nIndex))
		ix.met.applied.WithLabelValues("delete").Add(float64(p.nDelete))
	}
	if len(batches) == 1 || par == 1 {
		for _, p := range batches {
			write(p)
		}
		return
	}
	// Each worker writes every par-th batch; writeOps waits for all of them.
	var wg sync.WaitGroup
	for w := range min(par, len(batches)) {
		wg.Go(func() {
			for i := w; i < len(batches); i += par {
				write(batches[i])
			}
		})
	}
	wg.Wait()
}

// Close stops background repair and the indexer (after it writes what is
// queued), closes the index and, if nothing was lost, marks it clean so the
// next Open skips repair. Close is idempotent.
func (ix *Index) Close() error {
	ix.once.Do(func() {
		ix.bgCancel()
		ix.bg.Wait()
		ix.qmu.Lock()
		ix.closed = true
		ix.qmu.Unlock()
		close(ix.stop)
		<-ix.indexerDone
		ix.mu.Lock()
		defer ix.mu.Unlock()
		persisted := ix.waitPersisted()
		if err := ix.bi.Close(); err != nil {
			ix.closeErr = fmt.Errorf("search: close: %w", err)
			return
		}
		ix.qmu.Lock()
		clean := ix.consistent && !ix.dirty && persisted
		ix.qmu.Unlock()
		ix.closeErr = ix.writeManifest(clean)
	})
	return ix.closeErr
}

// closePersistTimeout bounds how long Close waits for the index to reach
// disk before giving up and leaving the index marked for repair.
const closePersistTimeout = 30 * time.Second

// waitPersisted writes a last, empty batch and waits until the engine
// reports it (and so every earlier batch) persisted. Batches do not wait for
// disk (see scorchConfig), so this is what makes a clean Close durable.
func (ix *Index) waitPersisted() bool {
	done := make(chan error, 1)
	b := ix.bi.NewBatch()
	b.SetInternal([]byte("hearth_closed_at"), []byte(time.Now().UTC().Format(time.RFC3339)))
	b.SetPersistedCallback(func(err error) {
		select {
		case done <- err:
		default:
		}
	})
	if err := ix.bi.Batch(b); err != nil {
		ix.log.Error("search: final batch", "err", err)
		return false
	}
	select {
	case err := <-done:
		if err != nil {
			ix.log.Error("search: persisting index", "err", err)
		}
		return err == nil
	case <-time.After(closePersistTimeout):
		ix.log.Error("search: index not persisted in time, it will be repaired on next start")
		return false
	}
}

// DocCount returns the number of messages in the index (applied operations
// only).
func (ix *Index) DocCount() (uint64, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n, err := ix.bi.DocCount()
	if err != nil {
		return 0, fmt.Errorf("search: doc count: %w", err)
	}
	return n, nil
}
