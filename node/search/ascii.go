package search

import (
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis"
)

// Most chat text is ASCII, and for ASCII text several steps of the text
// analyzer do nothing but cost: the accent-folding character filter, the
// CJK width and bigram filters, and the Unicode word segmenter's tables
// and allocations. The wrappers here skip them or replace them by a
// direct scan for ASCII input, and give exactly the tokens the wrapped
// step gives (FuzzASCIITokenizer checks the tokenizer against Bleve's).

// isASCII reports whether b holds only ASCII bytes.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// asciiSkipped is a character filter that leaves ASCII text alone: the
// text analyzer's one character filter folds accented letters to ASCII,
// which does nothing to ASCII text but still copied it twice.
type asciiSkipped struct{ analysis.CharFilter }

func (f asciiSkipped) Filter(input []byte) []byte {
	if isASCII(input) {
		return input
	}
	return f.CharFilter.Filter(input)
}

// asciiTokensSkipped is a token filter that leaves a stream of ASCII
// tokens alone: the CJK width filter rewrites full-width and half-width
// forms (never ASCII) but copied every token twice, and the CJK bigram
// filter joins ideographs (never ASCII) but rebuilt the stream.
type asciiTokensSkipped struct{ analysis.TokenFilter }

func (f asciiTokensSkipped) Filter(input analysis.TokenStream) analysis.TokenStream {
	for _, tok := range input {
		if !isASCII(tok.Term) {
			return f.TokenFilter.Filter(input)
		}
	}
	return input
}

// asciiTokenizer splits ASCII text into words by the rules of Unicode word
// segmentation (UAX #29) restricted to ASCII, as Bleve's Unicode tokenizer
// does, with two allocations per text; other text goes to the wrapped
// tokenizer.
type asciiTokenizer struct{ analysis.Tokenizer }

// The ASCII classes of UAX #29 word segmentation that join words.
const (
	wbOther   = iota
	wbLetter  // ALetter
	wbDigit   // Numeric
	wbExtend  // ExtendNumLet: '_'
	wbMidLet  // MidLetter: ':'
	wbMidNum  // MidNum: ',' ';'
	wbMidBoth // MidNumLet and Single_Quote: '.' '\''
)

var wbClass = func() (t [utf8.RuneSelf]byte) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = wbLetter, wbLetter
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = wbDigit
	}
	t['_'], t[':'], t[','], t[';'], t['.'], t['\''] = wbExtend, wbMidLet, wbMidNum, wbMidNum, wbMidBoth, wbMidBoth
	return t
}()

// isWordChar reports whether class c starts or continues a word by itself.
func isWordChar(c byte) bool { return c == wbLetter || c == wbDigit || c == wbExtend }

// nextWord returns the bounds of the first word of s at or after i
// (start == len(s) if none) and whether it holds a letter or only digits
// and underscores. A word is a run of letters, digits and underscores
// that also continues over one middle character between two letters (':'
// '.' '\”) or two digits (',' ';' '.' '\”), which are rules WB5 to
// WB13b of UAX #29.
func nextWord(s []byte, i int) (start, end int, letters, digits bool) {
	for i < len(s) && !isWordChar(wbClass[s[i]]) {
		i++
	}
	start = i
	for i < len(s) {
		c := wbClass[s[i]]
		switch {
		case isWordChar(c):
			letters = letters || c == wbLetter
			digits = digits || c == wbDigit
			i++
			continue
		case i > start && i+1 < len(s):
			prev, next := wbClass[s[i-1]], wbClass[s[i+1]]
			if (prev == wbLetter && next == wbLetter && (c == wbMidLet || c == wbMidBoth)) ||
				(prev == wbDigit && next == wbDigit && (c == wbMidNum || c == wbMidBoth)) {
				i += 2
				continue
			}
		}
		break
	}
	return start, i, letters, digits
}

func (t asciiTokenizer) Tokenize(input []byte) analysis.TokenStream {
	if !isASCII(input) {
		return t.Tokenizer.Tokenize(input)
	}
	n := 0
	for i := 0; ; n++ {
		start, end, _, _ := nextWord(input, i)
		if start == len(input) {
			break
		}
		i = end
	}
	toks := make([]analysis.Token, n)
	rv := make(analysis.TokenStream, n)
	i := 0
	for k := range toks {
		start, end, letters, digits := nextWord(input, i)
		typ := analysis.AlphaNumeric
		if digits && !letters {
			typ = analysis.Numeric
		}
		toks[k] = analysis.Token{Term: input[start:end:end], Start: start, End: end, Position: k + 1, Type: typ}
		rv[k] = &toks[k]
		i = end
	}
	return rv
}
