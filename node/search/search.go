package search

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// checkEvery is how many hits pass between deadline checks.
const checkEvery = 256

// smallTotal is the match count up to which a time-sorted search reads the
// IDs of all matches instead of searching window by window.
const smallTotal = 1024

// Search runs q over the messages of the channels in readable, the set the
// searcher may read at query time as computed by the node. There is no way
// to search without it: an empty readable set matches nothing, and every hit
// returned is checked against it. A query that reaches its deadline (the
// context's or Options.QueryTimeout) returns what it found with Partial set;
// a cancelled context returns an error. Query problems are *QueryError
// (errors.Is(err, ErrBadQuery)).
//
// Cost: a query is evaluated on the segments' posting bitmaps (bitEval):
// the count is a bitmap cardinality, and message IDs are read (from a
// per-segment cache) only for the hits in day windows near the requested
// end of the time order. Relevance order scores every match from its
// postings and reads IDs only for hits that could rank. A phrase confirms
// from stored words only candidates that pair terms cannot decide
// (phrase.go). No path scans documents that match no clause.
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
	if len(q.ChannelIDs) > 0 {
		asked := make(map[uint64]struct{}, len(q.ChannelIDs))
		for _, c := range q.ChannelIDs {
			if _, ok := allowed[c]; ok {
				asked[c] = struct{}{}
			}
		}
		allowed = asked
	}
	res := Result{Hits: []Hit{}, Partial: ix.rebuilding.Load()}
	if len(allowed) == 0 || q.nothing {
		return res, nil
	}
	p, content, ok := ix.clauses(q)
	if content == 0 {
		q.SortBy = SortTimestamp // all scores would be equal
	}
	if !ok { // the words analyse to nothing, e.g. only punctuation
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
	any, err := channelClause(reader, ix.cache, q, allowed, &p)
	if err != nil {
		return Result{}, err
	}
	if !any {
		return res, nil
	}
	channels, err := reader.DocValueReader(channelField)
	if err != nil {
		return Result{}, fmt.Errorf("search: doc values: %w", err)
	}
	r := &run{
		ix: ix, ctx: ctx, reader: reader, channels: channels, q: q, allowed: allowed,
		base:   p.must,
		window: q.Offset + q.limit(),
		span:   newIDSpan(q),
	}
	snap, isSnap := reader.(*scorch.IndexSnapshot)
	if isSnap && (!ix.noBitmaps || len(p.phrases) > 0) {
		r.bits, err = newBitEval(ctx, snap, ix.cache, p, ix.vocab.current())
		if err = r.stopped(err); err != nil {
			return Result{}, fmt.Errorf("search: %w", err)
		}
	} else if len(p.phrases) > 0 {
		return Result{}, fmt.Errorf("search: phrases need the engine's snapshot, got %T", reader)
	}
	var ranked []cand
	switch {
	case r.cut: // the deadline passed before the search began
	case q.SortBy == SortRelevance && r.bits != nil:
		var docs uint64
		if docs, err = snap.DocCount(); err == nil {
			ranked, err = r.byRelevanceBits(p.scored, docs)
		}
	case q.SortBy == SortRelevance:
		ranked, err = r.byRelevance()
	default:
		ranked, err = r.byTime()
	}
	var hits []Hit
	if err == nil && q.Offset < len(ranked) {
		hits, err = r.page(ranked[q.Offset:])
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return Result{}, fmt.Errorf("search: %w", err)
		}
		return Result{}, err
	}
	res.Total = r.total
	if r.cut {
		res.Partial = true
		ix.met.partial.Inc()
	}
	if hits != nil {
		res.Hits = hits
	}
	return res, nil
}

func (q *Query) limit() int {
	if q.Limit == 0 {
		return DefaultLimit
	}
	return q.Limit
}

// clauses turns the words, phrases and filters of q into Bleve queries that
// must all match. Words and phrases are analysed here and become term and
// phrase queries, so no query string syntax, fuzzy or wildcard matching is
// ever run. ok is false when the query can match nothing.
func (ix *Index) clauses(q Query) (p plan, content int, ok bool) {
	add := func(field string, terms ...string) {
		p.must = append(p.must, anyOf(field, terms))
		p.sets = append(p.sets, termSet{field: field, terms: terms})
		if field != fFilter {
			p.scored = append(p.scored, termSet{field: field, terms: terms})
		}
	}
	for _, text := range append(slices.Clone(q.Words), q.Phrases...) {
		terms := ix.analyze(text)
		if len(terms) == 0 {
			continue
		}
		// Every word must be there; a phrase is then confirmed (phrase.go).
		seen := make(map[string]bool, len(terms))
		for _, t := range terms {
			if !seen[t] {
				seen[t] = true
				add(fContent, t)
			}
		}
		if len(terms) > 1 {
			p.phrases = append(p.phrases, terms)
		}
		content++
	}
	if content == 0 && !q.hasFilter() {
		return plan{}, 0, false
	}
	if len(q.AuthorIDs) > 0 {
		add(fFilter, hexAll(pAuthor, q.AuthorIDs)...)
	}
	if len(q.MentionIDs) > 0 {
		add(fFilter, hexAll(pMention, q.MentionIDs)...)
	}
	if q.MentionsEveryone {
		add(fFilter, pMention+everyoneMentionID)
	}
	for _, h := range q.Has.names() {
		add(fFilter, pHas+h)
	}
	switch {
	case q.Pinned == nil:
	case *q.Pinned:
		add(fFilter, pinnedTerm)
	default: // only pinned messages carry a term
		p.must = append(p.must, query.NewBooleanQuery(nil, nil, []query.Query{term(fFilter, pinnedTerm)}))
		p.mustNot = append(p.mustNot, termSet{field: fFilter, terms: []string{pinnedTerm}})
	}
	return p, content, true
}

// plan is a query's clauses in two forms: Bleve queries (scored searches)
// and term sets (bitmap evaluation), plus the phrases, which only bitmap
// evaluation confirms.
type plan struct {
	must []query.Query
	// sets holds the clauses of must, as term sets.
	sets []termSet
	// mustNot holds term sets no match may hold (the channel clause's
	// exclusions); must already excludes them.
	mustNot []termSet
	// scored holds the term sets (one term each) that relevance scores.
	scored []termSet
	// phrases holds the analysed words of each phrase (and each word that
	// analyses to several terms): they must occur adjacent and in order.
	// must does not hold that condition; only bitmap evaluation checks it.
	phrases [][]string
}

// channelClause adds to p the clause that limits results to the allowed
// channels. For a guild search without explicit channels it reads the
// guild's indexed channels from the term dictionary and picks the cheaper
// form: the guild alone (everything readable), the guild minus the few
// unreadable channels, or the readable channels. any is false when no
// allowed channel has messages.
func channelClause(reader index.IndexReader, caches *segCaches, q Query, allowed map[uint64]struct{}, p *plan) (any bool, err error) {
	either := func(field string, terms []string) {
		p.must = append(p.must, anyOf(field, terms))
		p.sets = append(p.sets, termSet{field: field, terms: terms})
	}
	if q.GuildID == 0 || len(q.ChannelIDs) > 0 {
		var terms []string
		for c := range allowed {
			terms = append(terms, channelTerm(q.GuildID, c))
		}
		slices.Sort(terms)
		either(fChannel, terms)
		return true, nil
	}
	terms, err := guildChannels(reader, caches, channelTerm(q.GuildID, 0)[:pairLen/2])
	if err != nil {
		return false, err
	}
	var yes, no []string
	for _, t := range terms {
		_, c, ok := unpair16([]byte(t))
		if !ok {
			continue
		}
		if _, ok := allowed[c]; ok {
			yes = append(yes, t)
		} else {
			no = append(no, t)
		}
	}
	// The whole guild is one bitmap per segment, kept in its cache.
	guild := termSet{field: fChannel, terms: terms, guild: channelTerm(q.GuildID, 0)[:pairLen/2]}
	switch {
	case len(yes) == 0:
		return false, nil
	case len(no) == 0:
		p.must = append(p.must, anyOf(fChannel, yes))
		p.sets = append(p.sets, guild)
	case len(no) < len(yes):
		p.must = append(p.must, anyOf(fChannel, yes))
		p.sets = append(p.sets, guild)
		p.mustNot = append(p.mustNot, termSet{field: fChannel, terms: no})
	default:
		either(fChannel, yes)
	}
	return true, nil
}

// guildChannels returns the channel terms under prefix (one guild's) in
// the index, sorted: from the segments' caches when the reader is the
// engine's snapshot, else from the merged term dictionary.
func guildChannels(reader index.IndexReader, caches *segCaches, prefix string) ([]string, error) {
	snap, ok := reader.(*scorch.IndexSnapshot)
	if !ok {
		dict, err := reader.FieldDictPrefix(fChannel, []byte(prefix))
		if err != nil {
			return nil, fmt.Errorf("search: channels: %w", err)
		}
		defer dict.Close()
		var terms []string
		for {
			e, err := dict.Next()
			if err != nil {
				return nil, fmt.Errorf("search: channels: %w", err)
			}
			if e == nil {
				return terms, nil
			}
			terms = append(terms, e.Term)
		}
	}
	seen := make(map[string]struct{})
	var terms []string
	for _, sc := range caches.get(segmentsOf(snap.Segments()), true) {
		t, err := sc.channelTerms(prefix)
		if err != nil {
			return nil, fmt.Errorf("search: channels: %w", err)
		}
		for _, term := range t {
			if _, ok := seen[term]; !ok {
				seen[term] = struct{}{}
				terms = append(terms, term)
			}
		}
	}
	slices.Sort(terms)
	return terms, nil
}

// term matches documents whose field holds v. Only content terms score:
// filter terms get boost 0, so that relevance depends on the words alone,
// not on which channel or day a message is in.
func term(field, v string) *query.TermQuery {
	t := query.NewTermQuery(v)
	t.SetField(field)
	if field != fContent {
		t.SetBoost(0)
	}
	return t
}

// anyOf matches documents whose field holds one of terms.
func anyOf(field string, terms []string) query.Query {
	if len(terms) == 1 {
		return term(field, terms[0])
	}
	qs := make([]query.Query, len(terms))
	for i, t := range terms {
		qs[i] = term(field, t)
	}
	d := query.NewDisjunctionQuery(qs)
	d.SetBoost(0)
	return d
}

func hexAll(prefix string, ids []uint64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = prefix + hex16(id)
	}
	return out
}

// analyze returns the index terms of text, in order.
func (ix *Index) analyze(text string) []string {
	var out []string
	for _, tok := range ix.an.text.Analyze([]byte(text)) {
		out = append(out, string(tok.Term))
	}
	return out
}

// idSpan is the query's ID range as days: whole days inside it, and the at
// most two days it covers only in part.
type idSpan struct {
	lo, hi         uint64 // inclusive ID bounds
	loDay, hiDay   uint64 // days of lo and hi
	fullLo, fullHi int64  // whole days; none when fullLo > fullHi
	partial        []uint64
	bounded        bool // the query limits IDs or dates at all
}

func newIDSpan(q Query) idSpan {
	s := idSpan{lo: q.MinID + 1, hi: ^uint64(0), bounded: q.MinID != 0 || q.MaxID != 0}
	if q.MaxID != 0 {
		s.hi = q.MaxID - 1
	}
	s.loDay, s.hiDay = snowflakeDay(s.lo), snowflakeDay(s.hi)
	s.fullLo, s.fullHi = int64(s.loDay), int64(s.hiDay)
	if s.lo != firstID(s.loDay) {
		s.partial = append(s.partial, s.loDay)
		s.fullLo++
	}
	if s.hi < lastID(s.hiDay) {
		if len(s.partial) == 0 || s.partial[0] != s.hiDay {
			s.partial = append(s.partial, s.hiDay)
		}
		s.fullHi--
	}
	return s
}

// lastID returns the largest snowflake of day.
func lastID(day uint64) uint64 {
	if day >= maxDay {
		return ^uint64(0)
	}
	return firstID(day+1) - 1
}

func (s idSpan) hasFull() bool { return s.fullLo <= s.fullHi }

// run is one search in progress.
type run struct {
	ix     *Index
	ctx    context.Context
	reader index.IndexReader
	// channels reads fChannel, for the page.
	channels index.DocValueReader
	q        Query
	allowed  map[uint64]struct{}
	base     []query.Query
	window   int
	span     idSpan
	bits     *bitEval // nil: evaluate with Bleve searchers
	total    int
	cut      bool // stopped by the deadline
}

// withDays returns the base clauses limited to days lo..hi.
func (r *run) withDays(lo, hi uint64) query.Query {
	must := slices.Clone(r.base)
	must = append(must, anyOf(fFilter, coverDays(lo, hi)))
	return query.NewConjunctionQuery(must)
}

func (r *run) all() query.Query {
	if len(r.base) == 1 {
		return r.base[0]
	}
	return query.NewConjunctionQuery(r.base)
}

// each runs bq and calls fn for every match until fn returns false or the
// deadline passes (r.cut).
func (r *run) each(bq query.Query, score bool, fn func(dm *search.DocumentMatch) bool) error {
	if r.cut {
		return nil
	}
	scoring := "none"
	if score {
		scoring = ""
	}
	s, err := bq.Searcher(r.ctx, r.reader, r.ix.m, search.SearcherOptions{Score: scoring})
	if err != nil {
		return fmt.Errorf("search: searcher: %w", err)
	}
	defer s.Close()
	sctx := &search.SearchContext{
		DocumentMatchPool: search.NewDocumentMatchPool(s.DocumentMatchPoolSize()+1, 0),
		IndexReader:       r.reader,
	}
	for n := 0; ; n++ {
		if n%checkEvery == 0 && r.ctx.Err() != nil {
			break
		}
		dm, err := s.Next(sctx)
		if err != nil {
			if r.ctx.Err() != nil {
				break
			}
			return fmt.Errorf("search: next: %w", err)
		}
		if dm == nil {
			return nil
		}
		more := fn(dm)
		sctx.DocumentMatchPool.Put(dm)
		if !more {
			return nil
		}
	}
	if err := r.ctx.Err(); errors.Is(err, context.Canceled) {
		return err
	}
	r.cut = true
	return nil
}

// cand is a hit being ranked: its engine document number, and what is
// known of it so far.
type cand struct {
	Hit
	iid index.IndexInternalID
	// bits is set for candidates found by bitEval, which names them by
	// segment and document number instead of iid.
	bits bool
	seg  int
	num  uint32
}

// id reads a match's message ID; ok is false if it lies outside the ID
// range.
func (r *run) id(iid index.IndexInternalID) (uint64, bool, error) {
	ext, err := r.reader.ExternalID(iid)
	if err != nil {
		return 0, false, fmt.Errorf("search: document ID: %w", err)
	}
	id, ok := parseDocID([]byte(ext))
	return id, ok && id >= r.span.lo && id <= r.span.hi, nil
}

// page reads the IDs and channels of the ranked candidates, in document
// order as doc values require, and returns them in rank order. A hit
// outside the allowed channels (which the channel clause should have
// excluded) is logged and never returned.
func (r *run) page(ranked []cand) ([]Hit, error) {
	order := make([]int, len(ranked))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := &ranked[a], &ranked[b]
		if x.bits {
			if x.seg != y.seg {
				return x.seg - y.seg
			}
			return compareU32(x.num, y.num)
		}
		return bytes.Compare(x.iid, y.iid)
	})
	valid := make([]bool, len(ranked))
	for _, i := range order {
		c := &ranked[i]
		var guild uint64
		var idOK, chOK bool
		visit := func(field string, t []byte) {
			if field == fChannel {
				guild, c.ChannelID, chOK = unpair16(t)
			}
		}
		var err error
		if c.bits {
			var p place
			c.ID, p, idOK, err = r.bits.keyAndPlace(c.seg, c.num)
			guild, c.ChannelID, chOK = p.guild, p.channel, p.channel != 0
		} else if err = r.channels.VisitDocValues(c.iid, visit); err != nil {
			err = fmt.Errorf("search: doc values: %w", err)
		} else {
			var ext string
			if ext, err = r.reader.ExternalID(c.iid); err != nil {
				err = fmt.Errorf("search: document ID: %w", err)
			}
			c.ID, idOK = parseDocID([]byte(ext))
		}
		if err != nil {
			return nil, err
		}
		_, allowed := r.allowed[c.ChannelID]
		valid[i] = idOK && chOK && allowed && guild == r.q.GuildID
		if !valid[i] {
			r.ix.log.Error("search: hit outside the readable set", "id", c.ID, "channel", c.ChannelID, "guild", guild)
		}
	}
	out := make([]Hit, 0, len(ranked))
	for i, c := range ranked {
		if valid[i] {
			out = append(out, c.Hit)
		}
	}
	return out, nil
}

// channelField is the doc value field of the guild and channel.
var channelField = []string{fChannel}

func compareU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// collectDays adds to top every in-range match on days lo..hi (every match
// if all) and returns how many there were.
func (r *run) collectDays(lo, hi uint64, all bool, top *hitHeap) (int, error) {
	if r.bits == nil {
		bq := r.all()
		if !all {
			bq = r.withDays(lo, hi)
		}
		return r.collect(bq, top)
	}
	var days *termSet
	if !all {
		days = &termSet{field: fFilter, terms: coverDays(lo, hi)}
	}
	n := 0
	err := r.bits.each(days, func(seg int, num uint32) (bool, error) {
		id, ok, err := r.bitID(seg, num)
		if ok {
			n++
			top.offer(cand{Hit: Hit{ID: id}, bits: true, seg: seg, num: num}, nil, r.window)
		}
		return err == nil, err
	})
	return n, r.stopped(err)
}

// bitID reads the message ID of document num of segment seg; ok is false if
// it lies outside the ID range.
func (r *run) bitID(seg int, num uint32) (id uint64, ok bool, err error) {
	id, ok, err = r.bits.key(seg, num)
	return id, ok && id >= r.span.lo && id <= r.span.hi, err
}

// stopped turns the deadline into a cut (partial results); other errors,
// cancellation included, pass.
func (r *run) stopped(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && r.ctx.Err() != nil {
		r.cut = true
		return nil
	}
	return err
}

// countBits is count for bitmap evaluation: whole days and unbounded
// queries are bitmap cardinalities.
func (r *run) countBits() error {
	if !r.span.bounded {
		n, err := r.bits.count(nil)
		r.total += n
		return r.stopped(err)
	}
	if r.span.hasFull() {
		n, err := r.bits.count(&termSet{field: fFilter, terms: coverDays(uint64(r.span.fullLo), uint64(r.span.fullHi))})
		r.total += n
		if err != nil {
			return r.stopped(err)
		}
	}
	for _, d := range r.span.partial {
		err := r.bits.each(&termSet{field: fFilter, terms: coverDays(d, d)}, func(seg int, num uint32) (bool, error) {
			_, ok, err := r.bitID(seg, num)
			if ok {
				r.total++
			}
			return err == nil, err
		})
		if err != nil {
			return r.stopped(err)
		}
	}
	return nil
}

// count adds the number of matches to r.total. Whole days are counted from
// posting lists alone; the partial days at the ends of an ID range are
// checked hit by hit.
func (r *run) count() error {
	if !r.span.bounded {
		return r.each(r.all(), false, func(*search.DocumentMatch) bool { r.total++; return true })
	}
	if r.span.hasFull() {
		err := r.each(r.withDays(uint64(r.span.fullLo), uint64(r.span.fullHi)), false, func(*search.DocumentMatch) bool { r.total++; return true })
		if err != nil {
			return err
		}
	}
	for _, d := range r.span.partial {
		var ferr error
		err := r.each(r.withDays(d, d), false, func(dm *search.DocumentMatch) bool {
			_, ok, err := r.id(dm.IndexInternalID)
			if ok {
				r.total++
			}
			ferr = err
			return err == nil
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// collect adds every in-range match of bq to top and returns how many.
func (r *run) collect(bq query.Query, top *hitHeap) (int, error) {
	n := 0
	var ferr error
	err := r.each(bq, false, func(dm *search.DocumentMatch) bool {
		id, ok, err := r.id(dm.IndexInternalID)
		if err != nil {
			ferr = err
			return false
		}
		if ok {
			n++
			top.offer(cand{Hit: Hit{ID: id}}, dm.IndexInternalID, r.window)
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	return n, err
}

// byTime returns the first window hits in time order. After counting, it
// reads IDs window by window from the requested end of the time range,
// widening the window, until it has enough: every hit outside the windows
// read is then further from that end than all hits kept.
func (r *run) byTime() ([]cand, error) {
	count := r.count
	if r.bits != nil {
		count = r.countBits
	}
	if err := count(); err != nil {
		return nil, err
	}
	kept := &hitHeap{less: timeLess(r.q.SortOrder)}
	if r.total == 0 {
		return nil, nil
	}
	if r.total <= smallTotal {
		if _, err := r.collectDays(r.span.loDay, r.span.hiDay, !r.span.bounded, kept); err != nil {
			return nil, err
		}
		return kept.sorted(), nil
	}
	lo, hi := r.span.loDay, r.span.hiDay
	// Guess a width that holds about twice the window, if matches were
	// spread evenly over the last few years; grow it fourfold each round.
	width := max(uint64(2*r.window)*min(hi-lo+1, 3*365)/uint64(r.total), 1)
	found := 0
	if r.q.SortOrder == SortDesc {
		top, bottom := hi, hi
		if r.q.MaxID == 0 { // the first window also takes any future days
			bottom = min(hi, snowflakeDay(SnowflakeAt(time.Now())))
		}
		for !r.cut {
			start := lo
			if bottom-lo+1 > width {
				start = bottom - width + 1
			}
			n, err := r.collectDays(start, top, false, kept)
			if err != nil {
				return nil, err
			}
			found += n
			if found >= r.window || start == lo {
				break
			}
			top, bottom, width = start-1, start-1, width*4
		}
	} else {
		for bottom := lo; !r.cut; {
			end := hi
			if hi-bottom+1 > width {
				end = bottom + width - 1
			}
			n, err := r.collectDays(bottom, end, false, kept)
			if err != nil {
				return nil, err
			}
			found += n
			if found >= r.window || end == hi {
				break
			}
			bottom, width = end+1, width*4
		}
	}
	return kept.sorted(), nil
}

// byRelevance scores every match and keeps the best window by score, ties
// broken by message ID in the sort direction. It reads the ID only of
// matches that score at least as well as the worst one kept, so a query
// with spread-out scores reads few.
func (r *run) byRelevance() ([]cand, error) {
	rk := newRanker(r)
	var ferr error
	// visit handles one match; on a partial day the ID decides whether it
	// counts, elsewhere it always does and the ID is read only if the score
	// could place it among the best.
	visit := func(partial bool) func(dm *search.DocumentMatch) bool {
		return func(dm *search.DocumentMatch) bool {
			if !partial {
				r.total++
				if rk.worse(dm.Score) {
					return true
				}
			}
			id, ok, err := r.id(dm.IndexInternalID)
			if err != nil {
				ferr = err
				return false
			}
			if !ok {
				return true
			}
			if partial {
				r.total++
			}
			rk.insert(cand{Hit: Hit{ID: id, Score: dm.Score}}, dm.IndexInternalID)
			return true
		}
	}
	var err error
	if !r.span.bounded {
		err = r.each(r.all(), true, visit(false))
	} else {
		if r.span.hasFull() {
			err = r.each(r.withDays(uint64(r.span.fullLo), uint64(r.span.fullHi)), true, visit(false))
		}
		for _, d := range r.span.partial {
			if err != nil || ferr != nil {
				break
			}
			err = r.each(r.withDays(d, d), true, visit(true))
		}
	}
	if err == nil {
		err = ferr
	}
	return rk.best, err
}

// ranker keeps the best window of scored candidates: by score, ties broken
// by message ID, in the sort direction.
type ranker struct {
	desc   bool
	window int
	best   []cand // sorted, best first; at most window long
}

func newRanker(r *run) *ranker {
	return &ranker{desc: r.q.SortOrder == SortDesc, window: r.window}
}

func (rk *ranker) better(a, b cand) bool {
	if a.Score != b.Score {
		return (a.Score > b.Score) == rk.desc
	}
	return (a.ID > b.ID) == rk.desc
}

// worse reports whether a match with this score cannot enter the window,
// whatever its ID.
func (rk *ranker) worse(score float64) bool {
	if len(rk.best) < rk.window {
		return false
	}
	worst := rk.best[len(rk.best)-1].Score
	return score != worst && (score > worst) != rk.desc
}

// insert adds c (with engine number iid, reused by the caller, if any) if
// it ranks among the best window.
func (rk *ranker) insert(c cand, iid index.IndexInternalID) {
	if len(rk.best) == rk.window && !rk.better(c, rk.best[len(rk.best)-1]) {
		return
	}
	if iid != nil {
		c.iid = slices.Clone(iid)
	}
	i, _ := slices.BinarySearchFunc(rk.best, c, func(x, y cand) int {
		if rk.better(x, y) {
			return -1
		}
		return 1
	})
	rk.best = slices.Insert(rk.best, i, c)
	if len(rk.best) > rk.window {
		rk.best = rk.best[:rk.window]
	}
}

// byRelevanceBits is byRelevance on bitmaps: it walks the documents of
// the base bitmaps and scores each from the postings of the scored terms
// (term frequency and field norm), reading message IDs from the cache only
// where the ID decides. The score is Bleve's TF-IDF without its per-query
// constant factor: the sum over terms of sqrt(freq) × norm × idf², with
// idf = 1 + ln(documents / (documents holding the term + 1)).
func (r *run) byRelevanceBits(scored []termSet, docTotal uint64) ([]cand, error) {
	b := r.bits
	w := make([]float64, len(scored))
	for k, ts := range scored {
		var df uint64
		for _, seg := range b.segs {
			pl, err := postings(seg.Segment(), ts, seg.Deleted())
			if err != nil {
				return nil, err
			}
			df += pl.Count()
		}
		idf := 1 + math.Log(float64(docTotal)/float64(df+1))
		w[k] = idf * idf
	}
	rk := newRanker(r)
	pass := func(days *termSet, partial bool) error {
		its := make([]segment.PostingsIterator, len(scored))
		cur := -1
		return b.each(days, func(seg int, num uint32) (bool, error) {
			if seg != cur {
				cur = seg
				for k, ts := range scored {
					pl, err := postings(b.segs[seg].Segment(), ts, nil)
					if err != nil {
						return false, err
					}
					its[k] = pl.Iterator(true, true, false, nil)
				}
			}
			score := 0.0
			for k, it := range its {
				p, err := it.Advance(uint64(num))
				if err != nil {
					return false, fmt.Errorf("search: postings: %w", err)
				}
				if p != nil && p.Number() == uint64(num) {
					score += math.Sqrt(float64(p.Frequency())) * p.Norm() * w[k]
				}
			}
			if !partial {
				r.total++
				if rk.worse(score) {
					return true, nil
				}
			}
			id, ok, err := r.bitID(seg, num)
			if err != nil || !ok {
				return err == nil, err
			}
			if partial {
				r.total++
			}
			rk.insert(cand{Hit: Hit{ID: id, Score: score}, bits: true, seg: seg, num: num}, nil)
			return true, nil
		})
	}
	var err error
	if !r.span.bounded {
		err = pass(nil, false)
	} else {
		if r.span.hasFull() {
			err = pass(&termSet{field: fFilter, terms: coverDays(uint64(r.span.fullLo), uint64(r.span.fullHi))}, false)
		}
		for _, d := range r.span.partial {
			if err != nil {
				break
			}
			err = pass(&termSet{field: fFilter, terms: coverDays(d, d)}, true)
		}
	}
	return rk.best, r.stopped(err)
}

// timeLess reports whether a ranks before b in time order.
func timeLess(order SortOrder) func(a, b cand) bool {
	if order == SortAsc {
		return func(a, b cand) bool { return a.ID < b.ID }
	}
	return func(a, b cand) bool { return a.ID > b.ID }
}

// hitHeap keeps the best window candidates; its root is the worst of them.
type hitHeap struct {
	hits []cand
	less func(a, b cand) bool
}

func (h *hitHeap) Len() int           { return len(h.hits) }
func (h *hitHeap) Less(i, j int) bool { return h.less(h.hits[j], h.hits[i]) }
func (h *hitHeap) Swap(i, j int)      { h.hits[i], h.hits[j] = h.hits[j], h.hits[i] }
func (h *hitHeap) Push(x any)         { h.hits = append(h.hits, x.(cand)) }
func (h *hitHeap) Pop() any {
	x := h.hits[len(h.hits)-1]
	h.hits = h.hits[:len(h.hits)-1]
	return x
}

// offer adds the match x (with engine number iid, reused by the caller, if
// any) if it ranks among the best window.
func (h *hitHeap) offer(x cand, iid index.IndexInternalID, window int) {
	if len(h.hits) < window {
		if iid != nil {
			x.iid = slices.Clone(iid)
		}
		heap.Push(h, x)
		return
	}
	if h.less(x, h.hits[0]) {
		if iid != nil {
			x.iid = append(h.hits[0].iid[:0], iid...)
		}
		h.hits[0] = x
		heap.Fix(h, 0)
	}
}

// sorted returns the candidates, best first.
func (h *hitHeap) sorted() []cand {
	slices.SortFunc(h.hits, func(a, b cand) int {
		if h.less(a, b) {
			return -1
		}
		if h.less(b, a) {
			return 1
		}
		return 0
	})
	return h.hits
}
