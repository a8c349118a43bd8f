package search

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSource is an in-memory Source. hook, if set, runs before each doc is
// passed on, to inject live operations in the middle of a scan.
type memSource struct {
	mu   sync.Mutex
	docs map[uint64]Doc
	hook func(d Doc)
}

func newMemSource(docs ...Doc) *memSource {
	s := &memSource{docs: make(map[uint64]Doc)}
	for _, d := range docs {
		s.docs[d.ID] = d
	}
	return s
}

func (s *memSource) put(d Doc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[d.ID] = d
}

func (s *memSource) Count(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.docs), nil
}

func (s *memSource) Scan(ctx context.Context, fn func(Doc) error) error {
	s.mu.Lock()
	ids := make([]uint64, 0, len(s.docs))
	for id := range s.docs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		s.mu.Lock()
		d, ok := s.docs[id]
		s.mu.Unlock()
		if !ok {
			continue
		}
		if s.hook != nil {
			s.hook(d)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// sf builds a snowflake for day d (0 = 2026-01-01) plus seq.
func sf(day int, seq uint64) uint64 {
	t := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, day)
	return SnowflakeAt(t) | seq
}

// openTest opens an index in a temporary directory and closes it when the
// test ends, checking that no goroutine outlives it.
func openTest(t testing.TB, opts Options) (*Index, string) {
	t.Helper()
	dir := t.TempDir()
	return openAt(t, dir, opts), dir
}

func openAt(t testing.TB, dir string, opts Options) *Index {
	t.Helper()
	before := runtime.NumGoroutine()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ix, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := ix.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		waitFor(t, 5*time.Second, func() string {
			if n := runtime.NumGoroutine(); n > before {
				return fmt.Sprintf("%d goroutines, %d before Open", n, before)
			}
			return ""
		})
	})
	return ix
}

// waitFor polls cond until it returns "" or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("timed out: %s\n%s", why, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func flush(t testing.TB, ix *Index) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ix.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// mustParse parses text as a search in guildA.
func mustParse(t testing.TB, text string) Query {
	t.Helper()
	q, err := ParseQuery(text)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", text, err)
	}
	q.GuildID = guildA
	return q
}

func ids(hits []Hit) []uint64 {
	out := make([]uint64, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func fmtIDs(v []uint64) string {
	var b strings.Builder
	for i, id := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, id)
	}
	return b.String()
}
