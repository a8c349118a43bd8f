package search

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
)

// channelClauseMax is the largest readable set put into the index query as
// a channel disjunction; larger sets are only checked per hit, which is
// cheaper than a disjunction over many terms.
const channelClauseMax = 16

// checkEvery is how many hits pass between deadline checks.
const checkEvery = 256

// Search runs q over the messages of the channels in readable, the set the
// searcher may read at query time as computed by the node. There is no way
// to search without it: an empty readable set matches nothing. A query that
// reaches its deadline (the context's or Options.QueryTimeout) returns what
// it found with Partial set; a cancelled context returns an error. Query
// problems are *QueryError (errors.Is(err, ErrBadQuery)).
func (ix *Index) Search(ctx context.Context, q Query, readable []uint64) (Result, error) {
	start := time.Now()
	defer func() { ix.met.querySeconds.Observe(time.Since(start).Seconds()) }()
	if q.unresolved() {
		return Result{}, ErrUnresolved
	}
	if err := q.check(); err != nil {
		return Result{}, err
	}
	if len(readable) > MaxReadable {
		return Result{}, fmt.Errorf("search: %d readable channels, the limit is %d", len(readable), MaxReadable)
	}
	allowed := make(map[uint64]struct{}, len(readable))
	for _, c := range readable {
		allowed[c] = struct{}{}
	}
	channels := readable
	if len(q.ChannelIDs) > 0 {
		channels = nil
		for _, c := range q.ChannelIDs {
			if _, ok := allowed[c]; ok {
				channels = append(channels, c)
			}
		}
		// Only the channels asked for may appear.
		allowed = make(map[uint64]struct{}, len(channels))
		for _, c := range channels {
			allowed[c] = struct{}{}
		}
	}
	res := Result{Hits: []Hit{}, Partial: ix.rebuilding.Load()}
	if len(channels) == 0 || q.nothing {
		return res, nil
	}
	bq, err := ix.buildQuery(q, channels)
	if err != nil {
		return Result{}, err
	}
	if bq == nil { // the words analyse to nothing, e.g. only punctuation
		return res, nil
	}

	ctx, cancel := context.WithTimeout(ctx, ix.opts.QueryTimeout)
	defer cancel()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.qmu.Lock()
	closed := ix.closed
	ix.qmu.Unlock()
	if closed {
		return Result{}, ErrClosed
	}
	bidx, err := ix.bi.Advanced()
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	reader, err := bidx.Reader()
	if err != nil {
		return Result{}, fmt.Errorf("search: reader: %w", err)
	}
	defer reader.Close()
	scoring := "none"
	if q.SortBy == SortRelevance {
		scoring = ""
	}
	searcher, err := bq.Searcher(ctx, reader, ix.m, search.SearcherOptions{Score: scoring})
	if err != nil {
		return Result{}, fmt.Errorf("search: searcher: %w", err)
	}
	defer searcher.Close()
	dv, err := reader.DocValueReader([]string{fKey, fChannel})
	if err != nil {
		return Result{}, fmt.Errorf("search: doc values: %w", err)
	}

	window := q.Offset + q.limit()
	top := &hitHeap{less: hitLess(q.SortBy, q.SortOrder)}
	var cur Hit
	var ok bool
	visit := func(field string, term []byte) {
		switch field {
		case fKey:
			if len(term) == 32 {
				cur.ID, ok = parseHex16(term[:16])
			}
		case fChannel:
			cur.ChannelID, _ = parseHex16(term)
		}
	}
	sctx := &search.SearchContext{
		DocumentMatchPool: search.NewDocumentMatchPool(searcher.DocumentMatchPoolSize()+1, 0),
		IndexReader:       reader,
	}
	seen := 0
	for {
		if seen%checkEvery == 0 && ctx.Err() != nil {
			break
		}
		seen++
		dm, err := searcher.Next(sctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return Result{}, fmt.Errorf("search: next: %w", err)
		}
		if dm == nil {
			break
		}
		cur, ok = Hit{Score: dm.Score}, false
		if err := dv.VisitDocValues(dm.IndexInternalID, visit); err != nil {
			return Result{}, fmt.Errorf("search: doc values: %w", err)
		}
		sctx.DocumentMatchPool.Put(dm)
		if !ok || cur.ID <= q.MinID || (q.MaxID != 0 && cur.ID >= q.MaxID) {
			continue
		}
		if _, ok := allowed[cur.ChannelID]; !ok {
			continue
		}
		if q.SortBy != SortRelevance {
			cur.Score = 0
		}
		res.Total++
		top.offer(cur, window)
	}
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.Canceled) {
			return Result{}, fmt.Errorf("search: %w", err)
		}
		res.Partial = true
		ix.met.partial.Inc()
	}
	res.Hits = top.page(q.Offset)
	return res, nil
}

func (q *Query) limit() int {
	if q.Limit == 0 {
		return DefaultLimit
	}
	return q.Limit
}

// buildQuery turns q into a Bleve query. Words and phrases are analysed
// here and become term and phrase queries, so no query string syntax, fuzzy
// or wildcard matching is ever run. It returns nil when nothing can match.
func (ix *Index) buildQuery(q Query, channels []uint64) (query.Query, error) {
	var must []query.Query
	contentClauses := 0
	for _, text := range append(slices.Clone(q.Words), q.Phrases...) {
		terms := ix.analyze(text)
		switch len(terms) {
		case 0:
			continue
		case 1:
			must = append(must, term(fContent, terms[0]))
		default:
			must = append(must, query.NewPhraseQuery(terms, fContent))
		}
		contentClauses++
	}
	if contentClauses == 0 && !q.hasFilter() {
		return nil, nil
	}
	ids := func(field string, vals []uint64) {
		if len(vals) == 0 {
			return
		}
		var any []query.Query
		for _, v := range vals {
			any = append(any, term(field, hex16(v)))
		}
		if len(any) == 1 {
			must = append(must, any[0])
		} else {
			must = append(must, query.NewDisjunctionQuery(any))
		}
	}
	ids(fAuthor, q.AuthorIDs)
	ids(fMention, q.MentionIDs)
	if q.MentionsEveryone {
		must = append(must, term(fMention, everyoneMentionID))
	}
	for _, h := range q.Has.names() {
		must = append(must, term(fHas, h))
	}
	if q.Pinned != nil {
		v := "f"
		if *q.Pinned {
			v = "t"
		}
		must = append(must, term(fPinned, v))
	}
	if q.MinID != 0 || q.MaxID != 0 {
		// Milliseconds bound the range coarsely; the exact bounds are
		// applied per hit.
		lo, hi := float64(q.MinID>>22), float64(maxSnowflakeMillis)
		if q.MaxID != 0 {
			hi = float64(q.MaxID >> 22)
		}
		yes := true
		r := query.NewNumericRangeInclusiveQuery(&lo, &hi, &yes, &yes)
		r.SetField(fTime)
		must = append(must, r)
	}
	if len(q.ChannelIDs) > 0 || len(channels) <= channelClauseMax || q.GuildID == 0 {
		ids(fChannel, channels)
	}
	if len(must) == 0 {
		must = append(must, term(fGuild, hex16(q.GuildID)))
	}
	if len(must) == 1 {
		return must[0], nil
	}
	return query.NewConjunctionQuery(must), nil
}

func term(field, v string) *query.TermQuery {
	t := query.NewTermQuery(v)
	t.SetField(field)
	return t
}

// analyze returns the index terms of text, in order.
func (ix *Index) analyze(text string) []string {
	var out []string
	for _, tok := range ix.an.text.Analyze([]byte(text)) {
		out = append(out, string(tok.Term))
	}
	return out
}

// hitLess reports whether a ranks before b.
func hitLess(by SortBy, order SortOrder) func(a, b Hit) bool {
	if by == SortRelevance {
		if order == SortAsc {
			return func(a, b Hit) bool {
				if a.Score != b.Score {
					return a.Score < b.Score
				}
				return a.ID < b.ID
			}
		}
		return func(a, b Hit) bool {
			if a.Score != b.Score {
				return a.Score > b.Score
			}
			return a.ID > b.ID
		}
	}
	if order == SortAsc {
		return func(a, b Hit) bool { return a.ID < b.ID }
	}
	return func(a, b Hit) bool { return a.ID > b.ID }
}

// hitHeap keeps the best window hits; its root is the worst of them.
type hitHeap struct {
	hits []Hit
	less func(a, b Hit) bool
}

func (h *hitHeap) Len() int           { return len(h.hits) }
func (h *hitHeap) Less(i, j int) bool { return h.less(h.hits[j], h.hits[i]) }
func (h *hitHeap) Swap(i, j int)      { h.hits[i], h.hits[j] = h.hits[j], h.hits[i] }
func (h *hitHeap) Push(x any)         { h.hits = append(h.hits, x.(Hit)) }
func (h *hitHeap) Pop() any {
	x := h.hits[len(h.hits)-1]
	h.hits = h.hits[:len(h.hits)-1]
	return x
}

func (h *hitHeap) offer(x Hit, window int) {
	if len(h.hits) < window {
		heap.Push(h, x)
		return
	}
	if h.less(x, h.hits[0]) {
		h.hits[0] = x
		heap.Fix(h, 0)
	}
}

// page returns the hits after offset, best first.
func (h *hitHeap) page(offset int) []Hit {
	slices.SortFunc(h.hits, func(a, b Hit) int {
		if h.less(a, b) {
			return -1
		}
		if h.less(b, a) {
			return 1
		}
		return 0
	})
	if offset >= len(h.hits) {
		return []Hit{}
	}
	return h.hits[offset:]
}
