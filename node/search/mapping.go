package search

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/char/asciifolding"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	index "github.com/blevesearch/bleve_index_api"
)

// IndexFormat names the on-disk layout and analysis of the index. An index
// written with another format is discarded and rebuilt on Open.
const IndexFormat = "hearth-search-index/5"

// textAnalyzer is the analyzer of message content: accents folded to ASCII,
// Unicode word segmentation, full-width forms normalised, lower case, English
// possessives removed, CJK runs turned into overlapping bigrams, and English
// (Snowball) stemming. Stop words are kept so that phrases match exactly.
const textAnalyzer = "hearth_text"

// Field names inside the index. They are short because every document
// carries them.
const (
	fContent = "content" // analyzed words, pairs of common words (commonwords.go); stored: the word sequence
	fChannel = "ch"      // pair16(guild, channel), doc values: the readable check
	fFilter  = "f"       // every filter value, as prefix + value (below)
)

// Prefixes of the terms of fFilter. One keyword field for all filters,
// rather than one field each, makes indexing markedly cheaper: the segment
// builder's cost grows with the number of fields per document.
const (
	pAuthor  = "a" // hex(author)
	pMention = "m" // hex(user) per mention, and "everyone"
	pHas     = "h" // has: names
	pPinned  = "p" // "t" for pinned messages; others have none
	pTime    = "t" // day buckets (see bucketTerm)
	pEpoch   = "e" // hex(epoch of the common words, commonwords.go)
)

func newMapping() (*mapping.IndexMappingImpl, error) {
	m := bleve.NewIndexMapping()
	err := m.AddCustomAnalyzer(textAnalyzer, map[string]any{
		"type":         custom.Name,
		"char_filters": []string{asciifolding.Name},
		"tokenizer":    unicode.Name,
		"token_filters": []string{
			cjk.WidthName, lowercase.Name, en.PossessiveName, cjk.BigramName, en.SnowballStemmerName,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("search: mapping: %w", err)
	}
	dm := bleve.NewDocumentStaticMapping()
	text := bleve.NewTextFieldMapping()
	text.Analyzer = textAnalyzer
	text.Store, text.IncludeInAll, text.DocValues, text.IncludeTermVectors = true, false, false, false
	dm.AddFieldMappingsAt(fContent, text)
	for _, f := range []string{fChannel, fFilter} {
		kw := bleve.NewKeywordFieldMapping()
		kw.Store, kw.IncludeInAll, kw.IncludeTermVectors = false, false, false
		kw.DocValues = f == fChannel
		dm.AddFieldMappingsAt(f, kw)
	}
	m.DefaultMapping = dm
	m.DefaultAnalyzer = textAnalyzer
	m.StoreDynamic, m.IndexDynamic, m.DocValuesDynamic = false, false, false
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("search: mapping: %w", err)
	}
	return m, nil
}

// analyzers holds the analysis documents are built with, looked up once.
type analyzers struct {
	text analysis.Analyzer
}

// newAnalyzers returns the mapping's text analyzer with its last filter,
// the stemmer, remembering its stems (stemCache), and with fast paths for
// ASCII text (ascii.go) that give the same tokens.
func newAnalyzers(m mapping.IndexMapping) (analyzers, error) {
	da, ok := m.AnalyzerNamed(textAnalyzer).(*analysis.DefaultAnalyzer)
	if ok && len(da.TokenFilters) > 0 {
		_, ok = da.TokenFilters[len(da.TokenFilters)-1].(*en.EnglishStemmerFilter)
	}
	if !ok {
		return analyzers{}, fmt.Errorf("search: text analyzer missing from mapping")
	}
	filters := slices.Clone(da.TokenFilters)
	for i, tf := range filters {
		switch tf.(type) {
		case *cjk.CJKWidthFilter, *cjk.CJKBigramFilter:
			filters[i] = asciiTokensSkipped{tf}
		}
	}
	filters[len(filters)-1] = newStemCache(filters[len(filters)-1])
	chars := make([]analysis.CharFilter, len(da.CharFilters))
	for i, cf := range da.CharFilters {
		chars[i] = asciiSkipped{cf}
	}
	return analyzers{text: &analysis.DefaultAnalyzer{CharFilters: chars, Tokenizer: asciiTokenizer{da.Tokenizer}, TokenFilters: filters}}, nil
}

func hex16(v uint64) string { return string(appendHex16(nil, v)) }

func appendHex16(b []byte, v uint64) []byte {
	var h [16]byte
	putHex(h[:], v)
	return append(b, h[:]...)
}

const hexDigits = "0123456789abcdef"

func putHex(b []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[v&15]
		v >>= 4
	}
}

// docID is the index's document ID for a message: fixed-width hex, so that
// the index's ID order is the snowflake order. Search reads message IDs
// back from it (parseDocID): the engine keeps it uncompressed.
func docID(id uint64) string { return hex16(id) }

// parseDocID reverses docID; ok is false for a malformed ID.
func parseDocID(b []byte) (uint64, bool) {
	if len(b) != 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// fingerprint hashes everything the index stores about a message, so that
// repair can tell a stale document from a current one.
func fingerprint(d Doc) uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	put(d.ID)
	put(d.GuildID)
	put(d.ChannelID)
	put(d.AuthorID)
	put(uint64(len(d.Content)))
	h.Write([]byte(d.Content))
	put(uint64(len(d.Mentions)))
	for _, m := range d.Mentions {
		put(m)
	}
	var flags uint64 = uint64(d.Has) << 2
	if d.MentionsEveryone {
		flags |= 1
	}
	if d.Pinned {
		flags |= 2
	}
	put(flags)
	return h.Sum64()
}

// buildDocument turns a Doc into the index document, bypassing bleve's
// reflection-based mapping (a large share of indexing time otherwise). The
// fields' terms are computed by the engine's analysis workers (see
// lazyField): the content is analysed once for its words, the pairs of
// words common in set, and the stored word sequence, and every filter value
// (with set's epoch) is one term of a single field. v (nil for none) counts
// the words' document frequencies. The document, its fields and what they
// need are one allocation.
func (a *analyzers) buildDocument(d Doc, set *commonSet, v *vocab) *document.Document {
	src := &docSource{a: a, d: d, set: set, v: v}
	src.doc.SetID(docID(d.ID))
	src.fields = [3]lazyField{
		{src: src, name: fContent, opts: index.IndexField | index.StoreField, plain: uint64(len(d.Content))},
		{src: src, name: fChannel, opts: index.IndexField | index.DocValues},
		{src: src, name: fFilter, opts: index.IndexField},
	}
	// Room for the ID field the engine adds.
	src.doc.Fields = append(src.fieldList[:0], &src.fields[0], &src.fields[1], &src.fields[2])
	return &src.doc
}

// docSource is a message being indexed: its document, fields, and what
// they are computed from.
type docSource struct {
	a         *analyzers
	d         Doc
	set       *commonSet
	v         *vocab
	doc       document.Document
	fields    [3]lazyField
	fieldList [4]document.Field
}

// pinnedTerm is the filter term of pinned messages.
const pinnedTerm = pPinned + "t"

// epochTerm is the filter term of documents indexed at epoch e.
func epochTerm(e uint32) string { return string(appendEpochTerm(nil, e)) }

func appendEpochTerm(b []byte, e uint32) []byte {
	return strconv.AppendUint(append(b, pEpoch...), uint64(e), 16)
}

// filterTerms returns the terms of fFilter for d, indexed at epoch. They
// are substrings of one string, built in one buffer.
func filterTerms(d Doc, epoch uint32) []string {
	var arr [160]byte
	b := arr[:0]
	ends := make([]int, 0, 8+len(d.Mentions))
	b = appendHex16(append(b, pAuthor...), d.AuthorID)
	ends = append(ends, len(b))
	for _, m := range d.Mentions {
		b = appendHex16(append(b, pMention...), m)
		ends = append(ends, len(b))
	}
	if d.MentionsEveryone {
		b = append(b, pMention+everyoneMentionID...)
		ends = append(ends, len(b))
	}
	for _, h := range d.Has.names() {
		b = append(append(b, pHas...), h...)
		ends = append(ends, len(b))
	}
	if d.Pinned {
		b = append(b, pinnedTerm...)
		ends = append(ends, len(b))
	}
	day := snowflakeDay(d.ID)
	for level := range bucketLevels {
		b = appendBucketTerm(b, level, day>>(3*level))
		ends = append(ends, len(b))
	}
	b = appendEpochTerm(b, epoch)
	ends = append(ends, len(b))
	all := string(b)
	terms := make([]string, len(ends))
	start := 0
	for i, end := range ends {
		terms[i] = all[start:end]
		start = end
	}
	return terms
}

// channelTerm is the indexed channel value: the guild first, so that the
// channels of a guild are one prefix of the term dictionary.
func channelTerm(guild, channel uint64) string { return pair16(guild, channel) }

// pair16 packs two numbers into 20 bytes, seven bits a byte, most
// significant first: the form of the doc value field fChannel (guild,
// channel). It is small because search
// decompresses doc values a block at a time, and it never holds the byte
// 0xFF, which separates values inside the engine's doc value format.
func pair16(a, b uint64) string {
	var k [pairLen]byte
	put7(k[:pairLen/2], a)
	put7(k[pairLen/2:], b)
	return string(k[:])
}

const pairLen = 20

func put7(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v & 0x7f)
		v >>= 7
	}
}

func get7(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		if c > 0x7f {
			return 0, false
		}
		v = v<<7 | uint64(c)
	}
	return v, true
}

// unpair16 reverses pair16; ok is false for a malformed value.
func unpair16(t []byte) (a, b uint64, ok bool) {
	if len(t) != pairLen {
		return 0, 0, false
	}
	a, ok1 := get7(t[:pairLen/2])
	b, ok2 := get7(t[pairLen/2:])
	return a, b, ok1 && ok2
}

// Time is indexed as day buckets at bucketLevels levels: days, 8 days, 64
// days and 512 days since the Discord epoch. Any day range is the union of
// at most a few dozen buckets (see coverDays), so a date filter costs a small
// disjunction, and a document carries four time terms where a numeric field
// carries sixteen.
const bucketLevels = 4

const dayMillis = 24 * 60 * 60 * 1000

// maxDay is the last day a snowflake can name.
const maxDay = maxSnowflakeMillis / dayMillis

func snowflakeDay(id uint64) uint64 { return (id >> 22) / dayMillis }

// firstID returns the smallest snowflake of day.
func firstID(day uint64) uint64 { return day * dayMillis << 22 }

func bucketTerm(level int, n uint64) string { return string(appendBucketTerm(nil, level, n)) }

func appendBucketTerm(b []byte, level int, n uint64) []byte {
	return strconv.AppendUint(append(append(b, pTime...), byte('a'+level)), n, 16)
}

// coverDays returns the bucket terms whose union is exactly the days
// lo..hi (inclusive), using the largest buckets that fit.
func coverDays(lo, hi uint64) []string {
	var out []string
	for lo <= hi {
		level := bucketLevels - 1
		for ; level > 0; level-- {
			size := uint64(1) << (3 * level)
			if lo%size == 0 && lo+size-1 <= hi {
				break
			}
		}
		out = append(out, bucketTerm(level, lo>>(3*level)))
		lo += 1 << (3 * level)
	}
	return out
}
