package search

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/document"
	index "github.com/blevesearch/bleve_index_api"
)

// TestCoverDays checks that the buckets chosen for a day range hold exactly
// the days of the range, and stay few.
func TestCoverDays(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dayTerms := func(day uint64) map[string]bool {
		m := make(map[string]bool)
		for level := range bucketLevels {
			m[bucketTerm(level, day>>(3*level))] = true
		}
		return m
	}
	for range 500 {
		lo := uint64(rng.IntN(3000))
		hi := lo + uint64(rng.IntN(2000))
		terms := coverDays(lo, hi)
		if len(terms) > 60 {
			t.Errorf("%d..%d: %d terms", lo, hi, len(terms))
		}
		for day := lo - min(lo, 600); day < hi+600; day++ {
			in := false
			for term := range dayTerms(day) {
				for _, c := range terms {
					in = in || c == term
				}
			}
			if want := day >= lo && day <= hi; in != want {
				t.Fatalf("%d..%d: day %d covered = %v", lo, hi, day, in)
			}
		}
	}
	if n := len(coverDays(0, maxDay)); n > 120 {
		t.Errorf("the whole snowflake range takes %d terms", n)
	}
}

func TestSnowflakeTime(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.UTC)
	id := SnowflakeAt(at) | 12345
	if got := SnowflakeTime(id); !got.Equal(at) {
		t.Errorf("SnowflakeTime = %v, want %v", got, at)
	}
	if SnowflakeAt(time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)) != 0 {
		t.Error("time before the epoch is not 0")
	}
	if d := snowflakeDay(^uint64(0)); d != maxDay || lastID(d) != ^uint64(0) {
		t.Errorf("last day %d, last ID %d", d, lastID(d))
	}
	if firstID(snowflakeDay(id)) > id || lastID(snowflakeDay(id)) < id {
		t.Error("day bounds do not hold the ID")
	}
}

// TestDocumentFieldsMatchAnalyzers checks that the fields buildDocument
// makes hold exactly the terms (with frequencies, positions and lengths)
// that the mapping's analyzers give, as Bleve's own text fields would: the
// on-disk format does not depend on which of the two built the document.
func TestDocumentFieldsMatchAnalyzers(t *testing.T) {
	m, err := newMapping()
	if err != nil {
		t.Fatal(err)
	}
	an, err := newAnalyzers(m)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{
		"", "hello", "The quick brown fox's jumps over the lazy dogs",
		"Crème brûlée, naïve café!", "東京タワーに行きました", "mixed 東京 words and ＡＢＣ full width",
		"http://example.com/a?b=c foo:bar", "  spaces   and\ttabs\nnewlines  ", "repeat repeat repeat repeat",
		"running runs ran runner's", "emoji 🎉 party 🎉", "punctuation... only!!! ???",
	}
	// Some words are common (their adjacent pairs are indexed); "quick"
	// only since a later epoch, which changes nothing for the document.
	set := &commonSet{Epoch: 3, Words: map[string]uint32{"the": 1, "quick": 3, "brown": 1, "repeat": 2, "東京": 1, "京タ": 1}}
	// Twice: the second time the stems come from the analyzer's cache.
	for _, text := range append(slices.Clone(texts), texts...) {
		d := Doc{ID: 42, GuildID: 7, ChannelID: 9, AuthorID: 3, Content: text, Mentions: []uint64{5, 5},
			MentionsEveryone: true, Has: HasLink | HasFile, Pinned: true}
		doc := an.buildDocument(d, set, nil)
		got := map[string]index.Field{}
		doc.VisitFields(func(f index.Field) {
			f.Analyze()
			got[f.Name()] = f
		})
		ref := document.NewTextFieldCustom(fContent, nil, []byte(text), index.IndexField|index.StoreField, m.AnalyzerNamed(textAnalyzer))
		ref.Analyze()
		f := got[fContent]
		if f == nil {
			t.Fatalf("%q: no content field", text)
		}
		if f.AnalyzedLength() != ref.AnalyzedLength() || f.Options() != ref.Options() {
			t.Errorf("%q: length %d options %v, want %d %v", text,
				f.AnalyzedLength(), f.Options(), ref.AnalyzedLength(), ref.Options())
		}
		// The words as Bleve's text field has them, plus the pairs of
		// adjacent common words; the stored value is the word sequence.
		want := ref.AnalyzedTokenFrequencies()
		var words []string
		for _, tok := range m.AnalyzerNamed(textAnalyzer).Analyze([]byte(text)) {
			words = append(words, string(tok.Term))
		}
		for i := 1; i < len(words); i++ {
			if set.common(words[i-1]) && set.common(words[i]) {
				pair := words[i-1] + pairSep + words[i]
				if want[pair] == nil {
					want[pair] = &index.TokenFreq{Term: []byte(pair)}
				}
				want[pair].SetFrequency(want[pair].Frequency() + 1)
			}
		}
		if g, w := fmtFreqs(f.AnalyzedTokenFrequencies()), fmtFreqs(want); g != w {
			t.Errorf("%q content:\n got  %s\n want %s", text, g, w)
		}
		if fp, g, ok := storedWords(f.Value()); !ok || fp != fingerprint(d) || !bytes.Equal(g, bytesJoin(words)) {
			t.Errorf("%q stored: fingerprint %x words %q, want %x %q", text, fp, g, fingerprint(d), bytesJoin(words))
		}
		if g, w := fmtFreqs(got[fFilter].AnalyzedTokenFrequencies()), fmtTerms(filterTerms(d, set.Epoch)); g != w {
			t.Errorf("%q filter terms:\n got  %s\n want %s", text, g, w)
		}
	}
	if !strings.Contains(fmtTerms(filterTerms(Doc{ID: 1}, 3)), strconv.Quote(epochTerm(3))) {
		t.Error("no epoch term among the filter terms")
	}
}

// bytesJoin joins words with wordSep.
func bytesJoin(words []string) []byte {
	var b []byte
	for i, w := range words {
		if i > 0 {
			b = append(b, wordSep)
		}
		b = append(b, w...)
	}
	return b
}

func fmtFreqs(tf index.TokenFrequencies) string {
	var out []string
	for term, f := range tf {
		s := fmt.Sprintf("%q×%d", term, f.Frequency())
		for _, l := range f.Locations {
			s += fmt.Sprintf(" @%d[%d:%d]", l.Position, l.Start, l.End)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func fmtTerms(terms []string) string {
	tf := index.TokenFrequencies{}
	for _, t := range terms {
		if tf[t] == nil {
			tf[t] = &index.TokenFreq{Term: []byte(t)}
		}
		tf[t].SetFrequency(tf[t].Frequency() + 1)
	}
	return fmtFreqs(tf)
}

// FuzzASCIITokenizer checks that asciiTokenizer gives exactly the tokens
// (terms, offsets, positions and types) of Bleve's Unicode tokenizer.
func FuzzASCIITokenizer(f *testing.F) {
	for _, s := range []string{
		"", "hello world", "a:b 1:2 a.b 1.2 1,2 a,b a'b 1'2 a.1 1.a a1 1a _ __ _1 1_ a_b_1 a;b 1;2",
		"a..b a. .a x' 'x \"a\" a\"b", "a\r\nb\tc\vd\fe", "http://example.com/a?b=c&d=1.5 foo:bar",
		"it's 3.14, or 1,000,000; isn't it?", "...!!! ???", "東京 café", "x:", ":x", "1.", "1'",
	} {
		f.Add(s)
	}
	m, err := newMapping()
	if err != nil {
		f.Fatal(err)
	}
	an := m.AnalyzerNamed(textAnalyzer).(*analysis.DefaultAnalyzer)
	fast := asciiTokenizer{an.Tokenizer}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := fast.Tokenize([]byte(s)), an.Tokenizer.Tokenize([]byte(s))
		if g, w := fmtTokens(got), fmtTokens(want); g != w {
			t.Errorf("%q:\n got  %s\n want %s", s, g, w)
		}
	})
}

func fmtTokens(ts analysis.TokenStream) string {
	var b strings.Builder
	for _, tok := range ts {
		fmt.Fprintf(&b, "%q/%d[%d:%d]@%d ", tok.Term, tok.Type, tok.Start, tok.End, tok.Position)
	}
	return b.String()
}

// TestASCIITokenizerRandom compares asciiTokenizer with Bleve's Unicode
// tokenizer on random strings over the characters whose rules differ.
func TestASCIITokenizerRandom(t *testing.T) {
	m, err := newMapping()
	if err != nil {
		t.Fatal(err)
	}
	an := m.AnalyzerNamed(textAnalyzer).(*analysis.DefaultAnalyzer)
	fast := asciiTokenizer{an.Tokenizer}
	const alphabet = "aZ09_:.,;' \"\r\n\t-/?!@#$%&*()[]{}<>=+~`^|\\\x00\x1f\x7f"
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if g, w := fmtTokens(fast.Tokenize(b)), fmtTokens(an.Tokenizer.Tokenize(b)); g != w {
			t.Fatalf("%q:\n got  %s\n want %s", b, g, w)
		}
	}
}
