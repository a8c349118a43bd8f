package search

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// commonOpts makes words common after 40 documents, in waves of at least
// 100 documents, written 100 at a time. Searches get a minute: a partial
// answer on a busy machine would not be comparable.
var commonOpts = Options{BatchSize: 100, commonDF: 40, waveDocs: 100, QueryTimeout: time.Minute}

// indexRounds indexes rounds of 100 documents whose words are drawn from
// words (skewed towards the first), flushing after each round so that the
// common set grows a wave at a time, and returns them.
func indexRounds(t *testing.T, ix *Index, rng *rand.Rand, next *int, rounds int, words []string) []Doc {
	t.Helper()
	var docs []Doc
	for range rounds {
		for range 100 {
			*next++
			var content []string
			for range 2 + rng.IntN(4) {
				r := rng.Float64()
				content = append(content, words[int(r*r*float64(len(words)))])
			}
			d := Doc{ID: sf(*next/50, uint64(*next)), GuildID: guildA, ChannelID: general, AuthorID: alice, Content: strings.Join(content, " ")}
			if err := ix.Index(d); err != nil {
				t.Fatal(err)
			}
			docs = append(docs, d)
		}
		flush(t, ix)
	}
	return docs
}

// checkPhrases compares the count of every two-word phrase of words with a
// brute-force count over docs.
func checkPhrases(t *testing.T, ix *Index, docs []Doc, words []string) {
	t.Helper()
	for _, a := range words {
		for _, b := range words {
			want := 0
			for _, d := range docs {
				if strings.Contains(" "+d.Content+" ", " "+a+" "+b+" ") {
					want++
				}
			}
			res, err := ix.Search(context.Background(), Query{GuildID: guildA, Phrases: []string{a + " " + b}}, []uint64{general})
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != want {
				t.Errorf("%q: %d results, want %d", a+" "+b, res.Total, want)
			}
		}
	}
}

// TestCommonWordsAcrossRestart checks that the common words and their
// epochs outlive a restart, that words becoming common afterwards get new
// epochs, and that phrases stay exact over documents of every epoch.
func TestCommonWordsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 8))
	before := []string{"red", "green", "blue", "cyan"}
	after := append([]string{"pink", "grey"}, before...)
	next := 0

	ix, err := Open(dir, withLogger(commonOpts, quiet))
	if err != nil {
		t.Fatal(err)
	}
	docs := indexRounds(t, ix, rng, &next, 8, before)
	set := ix.vocab.current()
	if set.Epoch < 2 || len(set.Words) != len(before) {
		t.Fatalf("common set before the restart: %+v", set)
	}
	checkPhrases(t, ix, docs, before)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ix = openAt(t, dir, commonOpts)
	if got := ix.vocab.current(); got.Epoch != set.Epoch || !maps.Equal(got.Words, set.Words) {
		t.Fatalf("common set after the restart: %+v, want %+v", got, set)
	}
	docs = append(docs, indexRounds(t, ix, rng, &next, 12, after)...)
	got := ix.vocab.current()
	for _, w := range after[:2] {
		if e, ok := got.Words[w]; !ok || e <= set.Epoch {
			t.Errorf("%q: epoch %d, common %v; want an epoch after %d", w, e, ok, set.Epoch)
		}
	}
	checkPhrases(t, ix, docs, after)
}

// TestDamagedCommonWordsRebuild checks that an index whose common words
// cannot be read is rebuilt from the source: its documents name epochs
// the node no longer knows.
func TestDamagedCommonWordsRebuild(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 10))
	words := []string{"red", "green", "blue"}
	next := 0
	ix, err := Open(dir, withLogger(commonOpts, quiet))
	if err != nil {
		t.Fatal(err)
	}
	docs := indexRounds(t, ix, rng, &next, 4, words)
	gen := ix.gen
	if ix.vocab.current().Epoch == 0 {
		t.Fatal("no word became common")
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ix.vocabPath(gen), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := commonOpts
	opts.Source = newMemSource(docs...)
	ix = openAt(t, dir, opts)
	waitFor(t, 10*time.Second, func() string {
		if n, _ := ix.DocCount(); n != uint64(len(docs)) {
			return fmt.Sprintf("%d docs, want %d", n, len(docs))
		}
		if ix.rebuilding.Load() {
			return "still rebuilding"
		}
		return ""
	})
	if ix.gen == gen {
		t.Errorf("generation %d kept", gen)
	}
	checkPhrases(t, ix, docs, words)
}

func withLogger(o Options, l *slog.Logger) Options {
	o.Logger = l
	return o
}

func TestHasPhrase(t *testing.T) {
	seq := string(bytesJoin([]string{"a", "bb", "a", "bbb", "c"}))
	for _, c := range []struct {
		terms []string
		want  bool
	}{
		{[]string{"a", "bb"}, true},
		{[]string{"a", "bbb"}, true},
		{[]string{"a", "bbb", "c"}, true},
		{[]string{"bb", "a", "bbb", "c"}, true},
		{[]string{"a", "b"}, false},
		{[]string{"b", "a"}, false},
		{[]string{"bb", "bbb"}, false},
		{[]string{"c", "a"}, false},
		{[]string{"bbb", "c", "d"}, false},
	} {
		if got := hasPhrase([]byte(seq), c.terms); got != c.want {
			t.Errorf("%q in %q: %v, want %v", c.terms, seq, got, c.want)
		}
	}
}
