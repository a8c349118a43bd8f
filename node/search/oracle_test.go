package search

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSearchMatchesOracle compares Search with a brute-force evaluation over
// random queries, on enough documents to exercise the windowed time order,
// partial days at ID bounds, paging, and every form of the channel clause.
// Phrases are checked with no common words (every candidate confirmed from
// its stored words) and with words becoming common while the index is
// written, so that documents of several epochs hold pair terms or not.
//
// Searches get a minute rather than the default 2 s: the reference evaluation by Bleve's
// searchers is slow under the race detector on a busy machine, and a partial answer would
// not be comparable.
func TestSearchMatchesOracle(t *testing.T) {
	t.Run("rare", func(t *testing.T) {
		// A cache of three blocks of IDs: it overflows and refills all along.
		ix, _ := openTest(t, Options{BatchSize: 500, IDCacheSize: 3 * idChunk, QueryTimeout: time.Minute})
		checkOracle(t, ix, false)
	})
	t.Run("common", func(t *testing.T) {
		ix, _ := openTest(t, Options{BatchSize: 500, IDCacheSize: 3 * idChunk, commonDF: 300, waveDocs: 600, QueryTimeout: time.Minute})
		checkOracle(t, ix, true)
	})
}

func checkOracle(t *testing.T, ix *Index, common bool) {
	rng := rand.New(rand.NewPCG(3, 4))
	vocab := []string{"alpha", "bravo", "delta", "echo", "golf", "hotel"}
	channels := []uint64{11, 12, 13, 14, 15}
	var docs []Doc
	for i := range 6000 {
		day := i / 15 // 400 days
		d := Doc{
			ID:        sf(day-200, uint64(rng.IntN(1<<20))<<2|uint64(i%4)),
			GuildID:   guildA,
			ChannelID: channels[rng.IntN(len(channels))],
			AuthorID:  uint64(1 + rng.IntN(3)),
		}
		if rng.IntN(10) == 0 {
			d.GuildID, d.ChannelID = guildB, 21
		}
		var words []string
		for range 1 + rng.IntN(4) {
			// Skewed, so that words become common at different times.
			r := rng.Float64()
			words = append(words, vocab[int(r*r*r*float64(len(vocab)))])
		}
		d.Content = strings.Join(words, " ")
		docs = append(docs, d)
	}
	slices.SortFunc(docs, func(a, b Doc) int { return compareU64(a.ID, b.ID) })
	docs = slices.CompactFunc(docs, func(a, b Doc) bool { return a.ID == b.ID })
	for i, d := range docs {
		if err := ix.Index(d); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 { // batches of 500: words become common one wave at a time
			flush(t, ix)
		}
	}
	flush(t, ix)
	// Edits and deletes leave deleted documents in the earlier segments,
	// which every count and window must skip.
	for range 2 {
		for range 300 {
			i := rng.IntN(len(docs))
			docs[i].Content = vocab[rng.IntN(len(vocab))] + " " + vocab[rng.IntN(len(vocab))]
			if err := ix.Index(docs[i]); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, ix)
	}
	for range 300 {
		i := rng.IntN(len(docs))
		if err := ix.Delete(docs[i].ID); err != nil {
			t.Fatal(err)
		}
		docs = slices.Delete(docs, i, i+1)
	}
	flush(t, ix)
	if set := ix.vocab.current(); common && (set.Epoch < 2 || len(set.Words) != len(vocab) || set.Words["alpha"] == set.Words["hotel"]) {
		t.Fatalf("common words: epoch %d, %v; want every word, in several epochs", set.Epoch, set.Words)
	} else if !common && len(set.Words) > 0 {
		t.Fatalf("common words %v", set.Words)
	}
	for n := range 300 {
		q := Query{GuildID: guildA, Offset: rng.IntN(40), Limit: 1 + rng.IntN(MaxLimit)}
		switch rng.IntN(6) {
		case 0:
			q.AuthorIDs = []uint64{uint64(1 + rng.IntN(3))}
		case 1: // a phrase of two words or three
			words := []string{vocab[rng.IntN(len(vocab))], vocab[rng.IntN(len(vocab))]}
			if rng.IntN(2) == 0 {
				words = append(words, vocab[rng.IntN(len(vocab))])
			}
			q.Phrases = []string{strings.Join(words, " ")}
		default:
			q.Words = []string{vocab[rng.IntN(len(vocab))]}
		}
		if rng.IntN(2) == 0 {
			q.MinID = docs[rng.IntN(len(docs))].ID + uint64(rng.IntN(3)) - 1
		}
		if rng.IntN(2) == 0 {
			q.MaxID = docs[rng.IntN(len(docs))].ID + uint64(rng.IntN(3)) - 1
		}
		if q.MaxID != 0 && q.MaxID <= q.MinID+1 {
			q.MinID = 0
		}
		if rng.IntN(2) == 0 {
			q.SortOrder = SortAsc
		}
		if rng.IntN(8) == 0 {
			q.ChannelIDs = []uint64{channels[rng.IntN(len(channels))]}
		}
		var readable []uint64
		switch rng.IntN(3) {
		case 0:
			readable = channels
		case 1:
			readable = channels[:4] // guild minus one channel
		default:
			readable = channels[:1+rng.IntN(2)]
		}
		var want []uint64
		for _, d := range docs {
			if d.GuildID != guildA || !slices.Contains(readable, d.ChannelID) ||
				d.ID <= q.MinID || (q.MaxID != 0 && d.ID >= q.MaxID) {
				continue
			}
			if len(q.ChannelIDs) > 0 && !slices.Contains(q.ChannelIDs, d.ChannelID) {
				continue
			}
			if len(q.Words) > 0 && !slices.Contains(strings.Fields(d.Content), q.Words[0]) {
				continue
			}
			if len(q.Phrases) > 0 && !strings.Contains(" "+d.Content+" ", " "+q.Phrases[0]+" ") {
				continue
			}
			if len(q.AuthorIDs) > 0 && d.AuthorID != q.AuthorIDs[0] {
				continue
			}
			want = append(want, d.ID)
		}
		total := len(want)
		if q.SortOrder == SortDesc {
			slices.Reverse(want)
		}
		want = want[min(q.Offset, len(want)):]
		want = want[:min(q.Limit, len(want))]
		res, err := ix.Search(context.Background(), q, readable)
		if err != nil {
			t.Fatalf("query %d %+v: %v", n, q, err)
		}
		if got := ids(res.Hits); res.Total != total || !slices.Equal(got, want) && len(want)+len(got) > 0 {
			t.Fatalf("query %d %+v readable %v:\n total %d, want %d\n got  %s\n want %s",
				n, q, readable, res.Total, total, fmtIDs(got), fmtIDs(want))
		}
		// Relevance ranks the same set, and consecutive pages neither
		// overlap nor skip.
		q.SortBy = SortRelevance
		q.Words = append(q.Words, vocab[rng.IntN(len(vocab))])
		q.AuthorIDs, q.Phrases = nil, nil
		var pages [][]uint64
		for _, off := range []int{0, 10} {
			q.Offset, q.Limit = off, 10
			res, err := ix.Search(context.Background(), q, readable)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, ids(res.Hits))
		}
		q.Offset, q.Limit = 0, 20
		res, err = ix.Search(context.Background(), q, readable)
		if err != nil {
			t.Fatal(err)
		}
		if joined := append(pages[0], pages[1]...); !slices.Equal(joined, ids(res.Hits)) {
			t.Fatalf("query %d by relevance: pages %v and %v, one page of 20 %v", n, pages[0], pages[1], ids(res.Hits))
		}
		// Bleve's scored searchers rank the same way as the bitmap
		// evaluation (their scores differ by a per-query factor).
		ix.noBitmaps = true
		ref, err := ix.Search(context.Background(), q, readable)
		ix.noBitmaps = false
		if err != nil {
			t.Fatal(err)
		}
		if ref.Total != res.Total || !slices.Equal(ids(ref.Hits), ids(res.Hits)) {
			t.Fatalf("query %d by relevance: total %d hits %v, Bleve's searchers: total %d hits %v",
				n, res.Total, ids(res.Hits), ref.Total, ids(ref.Hits))
		}
	}
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
