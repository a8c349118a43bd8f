package search

import (
	"reflect"

	"github.com/blevesearch/bleve/v2/analysis"
	index "github.com/blevesearch/bleve_index_api"
)

// lazyField is an index field whose terms are computed when the engine
// analyses the document (in its analysis workers, in parallel), by a
// function of ours instead of a Bleve analyzer. It lets one analysis of the
// message text feed two fields (words and word pairs), and all filter terms
// go in as one field instead of one Bleve field each.
type lazyField struct {
	name    string
	opts    index.FieldIndexingOptions
	plain   uint64
	analyze func() (length int, freqs index.TokenFrequencies)
	length  int
	freqs   index.TokenFrequencies
}

var lazyFieldSize = int(reflect.TypeFor[lazyField]().Size())

func (f *lazyField) Name() string                        { return f.name }
func (f *lazyField) ArrayPositions() []uint64            { return nil }
func (f *lazyField) Options() index.FieldIndexingOptions { return f.opts }
func (f *lazyField) Value() []byte                       { return nil }
func (f *lazyField) NumPlainTextBytes() uint64           { return f.plain }
func (f *lazyField) EncodedFieldType() byte              { return 't' }
func (f *lazyField) AnalyzedLength() int                 { return f.length }
func (f *lazyField) AnalyzedTokenFrequencies() index.TokenFrequencies {
	return f.freqs
}

// Analyze computes the field's terms; the engine calls it once, before it
// reads AnalyzedLength and AnalyzedTokenFrequencies.
func (f *lazyField) Analyze() { f.length, f.freqs = f.analyze() }

// Size estimates the field's memory, for the engine's statistics: a rough
// figure per term, because an exact one costs a walk over every term.
func (f *lazyField) Size() int {
	return lazyFieldSize + len(f.name) + len(f.freqs)*termSizeEstimate
}

// termSizeEstimate is about what one analysed term with one location takes.
const termSizeEstimate = 96

// textTerms analyses a message's content once for both text fields: the
// words (with positions, for phrases of three words or more) and the
// adjacent word pairs.
type textTerms struct {
	a       *analyzers
	content string
	done    bool
	words   analysis.TokenStream
	pairs   analysis.TokenStream
}

func (t *textTerms) run() {
	if t.done {
		return
	}
	t.done = true
	t.words = t.a.text.Analyze([]byte(t.content))
	t.pairs = t.a.shingle.Filter(t.words)
}

func (t *textTerms) wordFreqs() (int, index.TokenFrequencies) {
	t.run()
	return len(t.words), analysis.TokenFrequency(t.words, nil, index.IndexField|index.IncludeTermVectors)
}

func (t *textTerms) pairFreqs() (int, index.TokenFrequencies) {
	t.run()
	return len(t.pairs), analysis.TokenFrequency(t.pairs, nil, index.IndexField)
}

// keywordFreqs is the frequencies of a field holding the given terms, each
// as one untouched token (a term given twice has frequency 2), as Bleve's
// keyword analyzer would give them.
func keywordFreqs(terms []string) (int, index.TokenFrequencies) {
	freqs := make(index.TokenFrequencies, len(terms))
	for _, t := range terms {
		tf := freqs[t]
		if tf == nil {
			tf = &index.TokenFreq{Term: []byte(t)}
			freqs[t] = tf
		}
		tf.SetFrequency(tf.Frequency() + 1)
	}
	return len(terms), freqs
}
