package search

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/RoaringBitmap/roaring/v2"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// phraseBits returns the documents of cand in which terms (two or more)
// occur adjacent and in order. cand holds documents of seg that hold every
// one of terms; it is not modified.
//
// An adjacent pair of common words (commonwords.go) narrows cand to the
// documents holding the pair term or indexed before the pair was (older
// epochs). A two-word phrase of common words is then exact for the
// documents holding the pair term; every other candidate is confirmed
// against its stored word sequence. Confirming is thus limited to
// documents holding a word that is not common (about commonDF of them at
// most) or indexed before it became common.
func phraseBits(ctx context.Context, seg segment.Segment, sc *segCache, cand *roaring.Bitmap, terms []string, set *commonSet) (*roaring.Bitmap, error) {
	var sure *roaring.Bitmap
	check := cand
	for i := 1; i < len(terms); i++ {
		since, ok := set.since(terms[i-1], terms[i])
		if !ok {
			continue
		}
		pair, err := setBitmap(seg, termSet{field: fContent, terms: []string{terms[i-1] + pairSep + terms[i]}})
		if err != nil {
			return nil, err
		}
		old, err := sc.epochsBefore(since)
		if err != nil {
			return nil, err
		}
		if len(terms) == 2 {
			if pair != nil {
				sure = roaring.And(check, pair)
			}
			if old == nil {
				return orEmpty(sure), nil
			}
			check = roaring.And(check, old)
			break
		}
		switch {
		case pair == nil && old == nil:
			return nil, nil
		case pair == nil:
			check = roaring.And(check, old)
		case old == nil:
			check = roaring.And(check, pair)
		default:
			check = roaring.And(check, roaring.Or(pair, old))
		}
	}
	out := roaring.New()
	it := check.Iterator()
	k := 0
	defer func() { sc.storedRead.Add(int64(k)) }()
	for ; it.HasNext(); k++ {
		if k%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		num := it.Next()
		ok, err := storedHasPhrase(seg, num, terms)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Add(num)
		}
	}
	if sure != nil {
		out.Or(sure)
	}
	return orEmpty(out), nil
}

func orEmpty(bm *roaring.Bitmap) *roaring.Bitmap {
	if bm == nil || bm.IsEmpty() {
		return nil
	}
	return bm
}

// storedHasPhrase reports whether the stored word sequence of document num
// holds terms adjacent and in order.
func storedHasPhrase(seg segment.Segment, num uint32, terms []string) (bool, error) {
	found := false
	err := seg.VisitStoredFields(uint64(num), func(field string, _ byte, value []byte, _ []uint64) bool {
		if field == fContent {
			_, words, ok := storedWords(value)
			found = ok && hasPhrase(words, terms)
		}
		return true
	})
	if err != nil {
		return false, fmt.Errorf("search: stored words: %w", err)
	}
	return found, nil
}

// hasPhrase reports whether seq, words joined by wordSep, holds terms as
// consecutive words.
func hasPhrase(seq []byte, terms []string) bool {
	for {
		if startsWith(seq, terms) {
			return true
		}
		i := bytes.IndexByte(seq, wordSep)
		if i < 0 {
			return false
		}
		seq = seq[i+1:]
	}
}

// startsWith reports whether the first words of seq are terms.
func startsWith(seq []byte, terms []string) bool {
	for k, t := range terms {
		if len(seq) < len(t) || string(seq[:len(t)]) != t {
			return false
		}
		seq = seq[len(t):]
		if k == len(terms)-1 {
			return len(seq) == 0 || seq[0] == wordSep
		}
		if len(seq) == 0 || seq[0] != wordSep {
			return false
		}
		seq = seq[1:]
	}
	return true
}

// epochsBefore returns the documents of the segment indexed at an epoch
// before e (nil when none), deleted ones included. The result is shared:
// read only.
func (sc *segCache) epochsBefore(e uint32) (*roaring.Bitmap, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if bm, ok := sc.oldEpochs[e]; ok {
		return bm, nil
	}
	if sc.epochs == nil {
		terms, err := prefixTerms(sc.seg, fFilter, pEpoch)
		if err != nil {
			return nil, err
		}
		sc.epochs = []uint32{}
		for _, t := range terms {
			if n, err := strconv.ParseUint(t[len(pEpoch):], 16, 32); err == nil {
				sc.epochs = append(sc.epochs, uint32(n))
			}
		}
	}
	var terms []string
	for _, n := range sc.epochs {
		if n < e {
			terms = append(terms, epochTerm(n))
		}
	}
	bm, err := setBitmap(sc.seg, termSet{field: fFilter, terms: terms})
	if err != nil {
		return nil, err
	}
	if sc.oldEpochs == nil {
		sc.oldEpochs = make(map[uint32]*roaring.Bitmap)
	}
	sc.oldEpochs[e] = bm
	return bm, nil
}
