package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// clock is a settable fake time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestStore opens a Store in a temporary dir over an in-memory Badger
// database, with a fake clock, and closes both when the test ends.
func newTestStore(t testing.TB, opts Options) (*Store, *clock) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	opts.DB = db
	if opts.SigningKey == nil {
		opts.SigningKey = bytes.Repeat([]byte{7}, 32)
	}
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return s, c
}

func mustPut(t testing.TB, s *Store, data []byte, name, ct string, owner uint64) Blob {
	t.Helper()
	b, err := s.Put(context.Background(), bytes.NewReader(data), name, ct, owner)
	if err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
	return b
}

func hashOf(b []byte) Hash { return sha256.Sum256(b) }

// pngBytes returns a w×h PNG, opaque or with transparency.
func pngBytes(t testing.TB, w, h int, opaque bool) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if !opaque {
				a = uint8(x % 256)
			}
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 128, a})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tmpFiles lists what is left in the store's temporary folder.
func tmpFiles(t testing.TB, s *Store) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(s.dir, dirTmp))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// waitFor polls cond until it returns "" (true) or the timeout passes,
// failing with cond's last explanation.
func waitFor(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkNoLeak fails the test if goroutines started by the test body, other
// than Badger's and the runtime's, are still running at cleanup.
func checkNoLeak(t *testing.T) {
	t.Cleanup(func() {
		waitFor(t, 5*time.Second, func() string {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			for _, g := range strings.Split(stacks, "\n\n") {
				if strings.Contains(g, "node/media.") && !strings.Contains(g, "checkNoLeak") &&
					!strings.Contains(g, "testing.tRunner") {
					return "leaked goroutine:\n" + g
				}
			}
			return ""
		})
	})
}
