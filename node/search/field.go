package search

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"reflect"
	"sync"

	"github.com/blevesearch/bleve/v2/analysis"
	index "github.com/blevesearch/bleve_index_api"
)

// lazyField is an index field whose terms are computed when the engine
// analyses the document (in its analysis workers, in parallel), by a
// function of ours instead of a Bleve analyzer: the content's words, the
// pairs of common words and the stored word sequence come from one
// analysis, and all filter terms go in as one field instead of one Bleve
// field each.
type lazyField struct {
	src    *docSource // the message, and its other fields
	name   string
	opts   index.FieldIndexingOptions
	plain  uint64
	length int
	freqs  index.TokenFrequencies
	value  []byte // stored value, for a stored field
}

var lazyFieldSize = int(reflect.TypeFor[lazyField]().Size())

func (f *lazyField) Name() string                        { return f.name }
func (f *lazyField) ArrayPositions() []uint64            { return nil }
func (f *lazyField) Options() index.FieldIndexingOptions { return f.opts }
func (f *lazyField) Value() []byte                       { return f.value }
func (f *lazyField) NumPlainTextBytes() uint64           { return f.plain }
func (f *lazyField) EncodedFieldType() byte              { return 't' }
func (f *lazyField) AnalyzedLength() int                 { return f.length }
func (f *lazyField) AnalyzedTokenFrequencies() index.TokenFrequencies {
	return f.freqs
}

// Analyze computes the field's terms (and stored value); the engine calls
// it once, before it reads AnalyzedLength, AnalyzedTokenFrequencies and
// Value.
func (f *lazyField) Analyze() {
	s := f.src
	switch f.name {
	case fContent:
		s.a.analyzeContent(f, s.d.Content, fingerprint(s.d), s.set, s.v)
	case fChannel:
		f.length, f.freqs = keywordFreqs([]string{channelTerm(s.d.GuildID, s.d.ChannelID)})
	case fFilter:
		f.length, f.freqs = keywordFreqs(filterTerms(s.d, s.set.Epoch))
	}
}

// Size estimates the field's memory, for the engine's statistics: a rough
// figure per term, because an exact one costs a walk over every term.
func (f *lazyField) Size() int {
	return lazyFieldSize + len(f.name) + len(f.value) + len(f.freqs)*termSizeEstimate
}

// termSizeEstimate is about what one analysed term takes.
const termSizeEstimate = 64

// fpLen is the length of the fingerprint that starts the content's stored
// value.
const fpLen = 8

// storedWords splits the content's stored value into the fingerprint and
// the word sequence; ok is false if it is too short.
func storedWords(v []byte) (fp uint64, words []byte, ok bool) {
	if len(v) < fpLen {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(v), v[fpLen:], true
}

// wordSep separates the words of the stored word sequence; it never occurs
// in UTF-8 text.
const wordSep = 0xFF

// pairSep joins the two words of a pair term; words never hold it (the
// tokenizer splits on spaces), so a pair term is never a word term.
const pairSep = " "

// analyzeContent fills f, the content field, from one analysis of content:
// each word once with its frequency (no positions), the pair term of each
// two adjacent words that are both common in set, and as stored value the
// message's fingerprint (8 bytes, big-endian: repair compares it) followed
// by the word sequence (the words joined by wordSep), which confirms
// phrases. The field's length is the number of words. v (nil for none)
// counts the words' document frequencies.
func (a *analyzers) analyzeContent(f *lazyField, content string, fp uint64, set *commonSet, v *vocab) {
	words := a.text.Analyze([]byte(content))
	freqs := make(index.TokenFrequencies, len(words))
	slab := make([]index.TokenFreq, len(words)) // one allocation for all
	size := 0
	for i, tok := range words {
		size += len(tok.Term) + 1
		if tf := freqs[string(tok.Term)]; tf != nil {
			tf.SetFrequency(tf.Frequency() + 1)
			continue
		}
		tf := &slab[i]
		tf.Term = tok.Term
		tf.SetFrequency(1)
		freqs[string(tok.Term)] = tf
	}
	if v != nil {
		v.count(set, maps.Keys(freqs))
	}
	stored := binary.BigEndian.AppendUint64(make([]byte, 0, fpLen+size), fp)
	prevCommon := false
	for i, tok := range words {
		if i > 0 {
			stored = append(stored, wordSep)
		}
		stored = append(stored, tok.Term...)
		common := set.common(string(tok.Term))
		if common && prevCommon {
			pair := string(words[i-1].Term) + pairSep + string(tok.Term)
			if tf := freqs[pair]; tf != nil {
				tf.SetFrequency(tf.Frequency() + 1)
			} else {
				tf := &index.TokenFreq{Term: []byte(pair)}
				tf.SetFrequency(1)
				freqs[pair] = tf
			}
		}
		prevCommon = common
	}
	f.length, f.freqs, f.value = len(words), freqs, stored
}

// keywordFreqs is the frequencies of a field holding the given terms, each
// as one untouched token (a term given twice has frequency 2), as Bleve's
// keyword analyzer would give them.
func keywordFreqs(terms []string) (int, index.TokenFrequencies) {
	freqs := make(index.TokenFrequencies, len(terms))
	slab := make([]index.TokenFreq, len(terms)) // one allocation for all
	size := 0
	for _, t := range terms {
		size += len(t)
	}
	bytes := make([]byte, 0, size) // the terms' bytes, one allocation
	for i, t := range terms {
		tf := freqs[t]
		if tf == nil {
			tf = &slab[i]
			bytes = append(bytes, t...)
			tf.Term = bytes[len(bytes)-len(t):]
			freqs[t] = tf
		}
		tf.SetFrequency(tf.Frequency() + 1)
	}
	return len(terms), freqs
}

// stemCache is the English (Snowball) stemmer of the text analyzer with a
// memory of the stems it computed: chat text repeats the same few
// thousand words, and stemming each occurrence again was a twentieth of
// indexing. It is a token filter safe for concurrent use; the stems it
// hands out are shared and must not be modified. It stops remembering at
// maxStems words.
type stemCache struct {
	stem   analysis.TokenFilter
	shards [stemShards]stemShard
}

const (
	stemShards = 16
	maxStems   = 1 << 17 // per shard at most maxStems/stemShards
)

type stemShard struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newStemCache(stem analysis.TokenFilter) *stemCache {
	c := &stemCache{stem: stem}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]byte)
	}
	return c
}

// Filter stems every token of input in place.
func (c *stemCache) Filter(input analysis.TokenStream) analysis.TokenStream {
	for _, tok := range input {
		sh := &c.shards[maphash.Bytes(stemSeed, tok.Term)%stemShards]
		sh.mu.RLock()
		s, ok := sh.m[string(tok.Term)]
		sh.mu.RUnlock()
		if ok {
			tok.Term = s
			continue
		}
		word := string(tok.Term)
		c.stem.Filter(analysis.TokenStream{tok})
		sh.mu.Lock()
		if len(sh.m) < maxStems/stemShards {
			sh.m[word] = tok.Term
		}
		sh.mu.Unlock()
	}
	return input
}

var stemSeed = maphash.MakeSeed()
