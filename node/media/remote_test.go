package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// storeFetcher is the fake federation layer: it serves blobs out of the
// origin node's Store, can be told to tamper with them, and counts calls.
type storeFetcher struct {
	origin *Store
	calls  atomic.Int32
	gate   chan struct{} // if non-nil, Fetch waits for it to close
	tamper func([]byte) []byte
}

func (f *storeFetcher) Fetch(ctx context.Context, origin string, h Hash, size int64) (io.ReadCloser, error) {
	f.calls.Add(1)
	if origin != "node-a" {
		return nil, fmt.Errorf("unknown origin %q", origin)
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	file, _, err := f.origin.OpenBlob(ctx, h)
	if err != nil {
		return nil, err
	}
	if f.tamper == nil {
		return file, nil
	}
	defer file.Close()
	b, err := io.ReadAll(file)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(f.tamper(b))), nil
}

func TestRemoteFetchVerifiesAndCaches(t *testing.T) {
	checkNoLeak(t)
	a, _ := newTestStore(t, Options{})
	img := pngBytes(t, 600, 300, true)
	blob := mustPut(t, a, img, "pic.png", "image/png", 1)
	fetcher := &storeFetcher{origin: a, gate: make(chan struct{})}
	b, _ := newTestStore(t, Options{Fetcher: fetcher})
	if err := b.AddRemote(blob.Hash, blob.Size, "node-a"); err != nil {
		t.Fatal(err)
	}
	if st, err := b.Stat(blob.Hash); err != nil || st.Size != blob.Size || st.ContentType != "" {
		t.Errorf("Stat before fetch = %+v, %v", st, err)
	}
	h := b.Handler()
	url := b.SignURL(blob.Hash, "pic.png", time.Hour)

	// Concurrent first requests share one fetch.
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() { codes[i] = get(t, h, "GET", url).Code })
	}
	waitFor(t, 5*time.Second, func() string {
		if fetcher.calls.Load() == 0 {
			return "no fetch started"
		}
		return ""
	})
	close(fetcher.gate)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	if n := fetcher.calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	w := get(t, h, "GET", url)
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), img) || w.Header().Get("Content-Type") != "image/png" {
		t.Errorf("cached GET: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if w := get(t, h, "GET", b.SignThumbnailURL(blob.Hash, "pic.png", time.Hour)); w.Code != 200 {
		t.Errorf("thumbnail of fetched blob: %d", w.Code)
	}
	if n := fetcher.calls.Load(); n != 1 {
		t.Errorf("%d fetches after cache hits, want 1", n)
	}
	if st, _ := b.Stat(blob.Hash); st != blob {
		t.Errorf("Stat after fetch = %+v, want %+v", st, blob)
	}
}

func TestRemoteFetchRejectsBadBytes(t *testing.T) {
	a, _ := newTestStore(t, Options{})
	blob := mustPut(t, a, []byte("the real content"), "r.txt", "", 1)
	tests := []struct {
		name   string
		tamper func([]byte) []byte
		size   int64
	}{
		{"flipped byte", func(b []byte) []byte { b[0] ^= 1; return b }, blob.Size},
		{"longer", func(b []byte) []byte { return append(b, '!') }, blob.Size},
		{"shorter", func(b []byte) []byte { return b[1:] }, blob.Size},
		{"wrong size announced", nil, blob.Size - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &storeFetcher{origin: a, tamper: tt.tamper}
			b, _ := newTestStore(t, Options{Fetcher: f})
			if err := b.AddRemote(blob.Hash, tt.size, "node-a"); err != nil {
				t.Fatal(err)
			}
			_, _, err := b.OpenBlob(context.Background(), blob.Hash)
			if !errors.Is(err, ErrVerify) || StatusCode(err) != 502 {
				t.Fatalf("err = %v, want ErrVerify", err)
			}
			if got := tmpFiles(t, b); len(got) != 0 {
				t.Errorf("temporary files left: %v", got)
			}
			if m, _ := b.meta(blob.Hash); m.Present {
				t.Error("tampered blob marked present")
			}
		})
	}
}

func TestRemoteWithoutFetcherOrTooLarge(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxFileSize: 100})
	h := hashOf([]byte("remote"))
	if err := s.AddRemote(h, 101, "node-a"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("AddRemote(101 bytes) err = %v, want ErrTooLarge", err)
	}
	if err := s.AddRemote(h, 6, "node-a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.OpenBlob(context.Background(), h); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenBlob without fetcher err = %v, want ErrNotFound", err)
	}
	// Uploading the same bytes locally makes the blob present.
	mustPut(t, s, []byte("remote"), "r", "", 1)
	if f, _, err := s.OpenBlob(context.Background(), h); err != nil {
		t.Errorf("after local upload: %v", err)
	} else {
		f.Close()
	}
}

func TestRemoteFetchWaiterGivesUp(t *testing.T) {
	a, _ := newTestStore(t, Options{})
	blob := mustPut(t, a, []byte("slow"), "s", "", 1)
	f := &storeFetcher{origin: a, gate: make(chan struct{})}
	b, _ := newTestStore(t, Options{Fetcher: f})
	if err := b.AddRemote(blob.Hash, blob.Size, "node-a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := b.OpenBlob(ctx, blob.Hash); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// The fetch itself goes on for later callers.
	close(f.gate)
	file, _, err := b.OpenBlob(context.Background(), blob.Hash)
	if err != nil {
		t.Fatal(err)
	}
	file.Close()
}
