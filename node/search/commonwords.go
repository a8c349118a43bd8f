package search

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Phrases are answered from the words' postings, confirmed against each
// candidate's stored word sequence (phrase.go). Confirming costs about a
// microsecond a candidate, so a phrase must never have to confirm the
// documents holding two very common words: the index holds, as extra terms
// of the content field, the adjacent pairs of *common* words ("of the"),
// and a phrase with a rare word confirms at most the few documents holding
// that word. Indexing every pair instead made nearly every pair a term of
// its own and cost 44% of indexing.
//
// Which words are common is learnt while indexing: a word becomes common
// once about commonDF documents hold it, and from then on the documents
// indexed carry its pairs. Documents indexed before that do not, so each
// document carries the epoch of the common set it was indexed with (a
// filter term), and a phrase of two common words confirms only the
// documents of epochs before the later word became common: at most about
// commonDF of them hold that word.

// commonDF is the number of documents holding a word after which its
// adjacent pairs are indexed.
const commonDF = 4096

// waveDocs is the fewest documents indexed between two changes of the
// common set (epochs), which keeps epochs few.
const waveDocs = 8192

// dfSlots is the number of counters of the document frequencies of words
// not yet common. Words share counters by hash, so a count may be too high
// (a rare word made common early: a few more pair terms), never too low.
const dfSlots = 1 << 18

// commonSet is the set of common words at one epoch. It is immutable.
type commonSet struct {
	Epoch uint32 `json:"epoch"`
	// Words maps each common word to the first epoch whose documents
	// carry its pairs.
	Words map[string]uint32 `json:"words"`
}

// since returns the first epoch whose documents carry the pairs of a and
// b, and whether there is one.
func (s *commonSet) since(a, b string) (uint32, bool) {
	ea, ok1 := s.Words[a]
	eb, ok2 := s.Words[b]
	return max(ea, eb), ok1 && ok2
}

func (s *commonSet) common(w string) bool {
	_, ok := s.Words[w]
	return ok
}

// vocab learns the common words of one index generation and keeps them in
// a file beside it (Index.vocabPath): the set is written (synced) before any document of a
// new epoch is indexed, so every epoch a document names is in the file.
// Counts are not kept across restarts; a word's count starts again from
// zero, which only delays making it common.
type vocab struct {
	path   string
	df     uint32 // commonDF
	every  int    // waveDocs
	seed   maphash.Seed
	cur    atomic.Pointer[commonSet]
	counts []atomic.Uint32

	mu        sync.Mutex
	pending   map[string]struct{} // words whose count reached commonDF
	sinceWave int                 // documents indexed since the last epoch
}

// openVocab loads the common words kept in path (none if the file does not
// exist); df and every replace commonDF and waveDocs.
func openVocab(path string, df, every int) (*vocab, error) {
	v := &vocab{
		path:    path,
		df:      uint32(df),
		every:   every,
		seed:    maphash.MakeSeed(),
		counts:  make([]atomic.Uint32, dfSlots),
		pending: make(map[string]struct{}),
	}
	set := &commonSet{Words: map[string]uint32{}}
	b, err := os.ReadFile(v.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("search: common words: %w", err)
	default:
		if err := json.Unmarshal(b, set); err != nil || set.Words == nil {
			return nil, fmt.Errorf("search: common words: %s is damaged", v.path)
		}
	}
	v.cur.Store(set)
	return v, nil
}

// current returns the common set documents are indexed with now.
func (v *vocab) current() *commonSet { return v.cur.Load() }

// count adds one document holding each of terms (distinct) to the
// counters, noting the words that become common. It is called from the
// engine's analysis workers, concurrently.
func (v *vocab) count(set *commonSet, terms func(yield func(string) bool)) {
	for t := range terms {
		if set.common(t) {
			continue
		}
		slot := maphash.String(v.seed, t) % dfSlots
		if v.counts[slot].Add(1) >= v.df {
			v.mu.Lock()
			v.pending[t] = struct{}{}
			v.mu.Unlock()
		}
	}
}

// indexed records that n more documents were indexed, and when enough
// were since the last epoch and words reached commonDF, starts a new epoch
// with them: the set is written to disk first, then used.
func (v *vocab) indexed(n int) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sinceWave += n
	if v.sinceWave < v.every || len(v.pending) == 0 {
		return nil
	}
	old := v.cur.Load()
	next := &commonSet{Epoch: old.Epoch + 1, Words: maps.Clone(old.Words)}
	for w := range v.pending {
		if _, ok := next.Words[w]; !ok {
			next.Words[w] = next.Epoch
		}
	}
	if err := writeFileSync(v.path, next); err != nil {
		return fmt.Errorf("search: common words: %w", err)
	}
	clear(v.pending)
	v.sinceWave = 0
	v.cur.Store(next)
	return nil
}

// writeFileSync writes val as JSON to path durably: a synced temporary
// file renamed over path, and the directory synced.
func writeFileSync(path string, val any) error {
	b, err := json.Marshal(val)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	return err
}
