package media

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// genReader yields size pseudo-random bytes without holding them: a fixed
// 1 MiB random block repeated, its first 8 bytes replaced by seed so that
// every seed gives a different blob.
type genReader struct {
	block []byte
	seed  uint64
	off   int64
	size  int64
}

var genBlock = sync.OnceValue(func() []byte {
	b := make([]byte, 1<<20)
	rand.Read(b)
	return b
})

func newGen(seed uint64, size int64) *genReader {
	return &genReader{block: genBlock(), seed: seed, size: size}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.size-g.off)]
	n := 0
	for n < len(p) {
		i := int((g.off + int64(n)) % int64(len(g.block)))
		n += copy(p[n:], g.block[i:])
	}
	if g.off < 8 {
		var s [8]byte
		binary.BigEndian.PutUint64(s[:], g.seed)
		copy(p, s[g.off:])
	}
	g.off += int64(n)
	return n, nil
}

// heapPeak samples live heap bytes every millisecond until stopped and
// reports the peak above the level at start.
type heapPeak struct {
	base, peak atomic.Uint64
	stop       chan struct{}
	done       sync.WaitGroup
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	p := &heapPeak{stop: make(chan struct{})}
	p.base.Store(liveHeap())
	p.done.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				if h := liveHeap(); h > p.peak.Load() {
					p.peak.Store(h)
				}
			}
		}
	})
	return p
}

// MB stops sampling and returns the peak growth in MiB.
func (p *heapPeak) MB() float64 {
	close(p.stop)
	p.done.Wait()
	peak, base := p.peak.Load(), p.base.Load()
	if peak < base {
		return 0
	}
	return float64(peak-base) / (1 << 20)
}

var benchSizes = []int64{1 << 20, 100 << 20}

// BenchmarkUpload measures multipart uploads over loopback HTTP into the
// store (hash, write, fsync, rename, index), and the heap growth while
// doing it.
func BenchmarkUpload(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			s, _ := newTestStore(b, Options{MaxFileSize: 200 << 20, OwnerQuota: -1})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, _, err := s.ParseMessageUpload(r, 1, UploadLimits{}); err != nil {
					http.Error(w, err.Error(), StatusCode(err))
				}
			}))
			defer srv.Close()
			var seed uint64
			b.SetBytes(size)
			peak := startHeapPeak()
			for b.Loop() {
				seed++
				pr, pw := io.Pipe()
				mw := multipart.NewWriter(pw)
				go func() {
					part, _ := mw.CreateFormFile("files[0]", "big.bin")
					if _, err := io.Copy(part, newGen(seed, size)); err != nil {
						pw.CloseWithError(err)
						return
					}
					pw.CloseWithError(mw.Close())
				}()
				resp, err := http.Post(srv.URL, mw.FormDataContentType(), pr)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.ReportMetric(peak.MB(), "peak-heap-MiB")
		})
	}
}

// BenchmarkDownload measures signed GETs of a stored blob over loopback.
func BenchmarkDownload(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			s, _ := newTestStore(b, Options{MaxFileSize: 200 << 20, OwnerQuota: -1})
			blob, err := s.Put(context.Background(), newGen(1, size), "big.bin", "", 1)
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			url := srv.URL + s.SignURL(blob.Hash, "big.bin", time.Hour)
			b.SetBytes(size)
			peak := startHeapPeak()
			for b.Loop() {
				resp, err := http.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || n != size {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
			b.ReportMetric(peak.MB(), "peak-heap-MiB")
		})
	}
}

// BenchmarkThumbnailTTFB measures time to first byte of an already
// rendered thumbnail over loopback HTTP with keep-alive, and reports its
// p50 and p99.
func BenchmarkThumbnailTTFB(b *testing.B) {
	s, _ := newTestStore(b, Options{})
	blob := mustPut(b, s, pngBytes(b, 1600, 1200, true), "photo.png", "", 1)
	if _, err := s.thumbnail(context.Background(), blob.Hash); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	url := srv.URL + s.SignThumbnailURL(blob.Hash, "photo.png", time.Hour)
	client := srv.Client()
	var ttfb []time.Duration
	for b.Loop() {
		var start, first time.Time
		trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
		start = time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		ttfb = append(ttfb, first.Sub(start))
	}
	slices.Sort(ttfb)
	q := func(p float64) float64 {
		return float64(ttfb[int(p*float64(len(ttfb)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// TestUploadMemoryIndependentOfSize checks MEDIA-005: the bytes allocated
// to store a 64 MiB file are a small constant, not proportional to size.
func TestUploadMemoryIndependentOfSize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB")
	}
	s, _ := newTestStore(t, Options{MaxFileSize: 100 << 20})
	alloc := func(size int64, seed uint64) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := s.Put(context.Background(), newGen(seed, size), "f", "", 0); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := alloc(1<<20, 1), alloc(64<<20, 2)
	t.Logf("allocated: 1 MiB file %d bytes, 64 MiB file %d bytes", small, large)
	if large > 8<<20 {
		t.Errorf("storing 64 MiB allocated %d bytes (1 MiB: %d); memory grows with size", large, small)
	}
}
