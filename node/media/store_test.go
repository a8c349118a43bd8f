package media

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestPutStoresContentAddressed(t *testing.T) {
	checkNoLeak(t)
	s, _ := newTestStore(t, Options{})
	data := []byte("hello, hearth")
	b := mustPut(t, s, data, "hello.txt", "text/plain", 1)
	if b.Hash != hashOf(data) || b.Size != int64(len(data)) {
		t.Fatalf("blob = %+v, want hash %v size %d", b, hashOf(data), len(data))
	}
	if b.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("content type = %q", b.ContentType)
	}
	got, err := os.ReadFile(s.blobPath(b.Hash))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file = %q, %v", got, err)
	}
	f, ob, err := s.OpenBlob(context.Background(), b.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ob != b {
		t.Errorf("OpenBlob blob = %+v, want %+v", ob, b)
	}
	if st, err := s.Stat(b.Hash); err != nil || st != b {
		t.Errorf("Stat = %+v, %v", st, err)
	}
	if _, err := s.Stat(hashOf([]byte("other"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stat(unknown) err = %v, want ErrNotFound", err)
	}
}

func TestPutImageDimensions(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	b := mustPut(t, s, pngBytes(t, 30, 20, true), "a.png", "", 1)
	if b.ContentType != "image/png" || b.Width != 30 || b.Height != 20 {
		t.Errorf("blob = %+v, want image/png 30x20", b)
	}
}

func TestPutDeduplicatesAndChargesOncePerOwner(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	data := bytes.Repeat([]byte("x"), 1000)
	a := mustPut(t, s, data, "a", "", 1)
	b := mustPut(t, s, data, "b", "", 1)
	c := mustPut(t, s, data, "c", "", 2)
	if a.Hash != b.Hash || b.Hash != c.Hash {
		t.Fatal("same bytes gave different hashes")
	}
	for owner, want := range map[uint64]int64{1: 1000, 2: 1000, 3: 0} {
		if got, err := s.Usage(owner); err != nil || got != want {
			t.Errorf("Usage(%d) = %d, %v; want %d", owner, got, err, want)
		}
	}
	if got := tmpFiles(t, s); len(got) != 0 {
		t.Errorf("temporary files left: %v", got)
	}
}

func TestPutLimits(t *testing.T) {
	tests := []struct {
		name    string
		quota   int64
		before  int // bytes the owner already stored
		size    int
		wantErr error
	}{
		{"at file limit", 0, 0, 100, nil},
		{"over file limit", 0, 0, 101, ErrTooLarge},
		{"within quota", 150, 50, 100, nil},
		{"over quota", 150, 60, 100, ErrQuotaExceeded},
		{"quota already used", 150, 100, 1, nil},
		{"unlimited quota", -1, 100, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t, Options{MaxFileSize: 100, OwnerQuota: tt.quota})
			if tt.before > 0 {
				mustPut(t, s, bytes.Repeat([]byte("a"), tt.before), "a", "", 9)
			}
			_, err := s.Put(context.Background(), bytes.NewReader(bytes.Repeat([]byte("b"), tt.size)), "b", "", 9)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put err = %v, want %v", err, tt.wantErr)
			}
			want := int64(tt.before)
			if err == nil {
				want += int64(tt.size)
			}
			if got, _ := s.Usage(9); got != want {
				t.Errorf("usage = %d, want %d", got, want)
			}
			if err != nil {
				if _, serr := s.Stat(hashOf(bytes.Repeat([]byte("b"), tt.size))); !errors.Is(serr, ErrNotFound) {
					t.Errorf("refused blob is indexed: %v", serr)
				}
				if _, serr := os.Stat(s.blobPath(hashOf(bytes.Repeat([]byte("b"), tt.size)))); !os.IsNotExist(serr) {
					t.Errorf("refused blob is on disk: %v", serr)
				}
			}
			if got := tmpFiles(t, s); len(got) != 0 {
				t.Errorf("temporary files left: %v", got)
			}
		})
	}
}

func TestPutOwnerZeroIsNotCharged(t *testing.T) {
	s, _ := newTestStore(t, Options{OwnerQuota: 1})
	mustPut(t, s, []byte("more than one byte"), "x", "", 0)
	if got, _ := s.Usage(0); got != 0 {
		t.Errorf("usage of owner 0 = %d", got)
	}
}

func TestPutTruncatedUploadLeavesNothing(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	r := io.MultiReader(strings.NewReader(strings.Repeat("z", 100_000)), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := s.Put(context.Background(), r, "z", "", 1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, strings.NewReader("abc"), "z", "", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if got := tmpFiles(t, s); len(got) != 0 {
		t.Errorf("temporary files left: %v", got)
	}
	if got, _ := s.Usage(1); got != 0 {
		t.Errorf("usage = %d after failed uploads", got)
	}
}

func TestPutConcurrentQuotaIsExact(t *testing.T) {
	s, _ := newTestStore(t, Options{OwnerQuota: 10 * 100})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 25 {
		wg.Go(func() {
			data := bytes.Repeat([]byte{byte(i)}, 100)
			if _, err := s.Put(context.Background(), bytes.NewReader(data), "f", "", 5); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, ErrQuotaExceeded) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 10 {
		t.Errorf("%d uploads accepted, want exactly 10", ok)
	}
	if got, _ := s.Usage(5); got != 1000 {
		t.Errorf("usage = %d, want 1000", got)
	}
}

func TestReleaseAndAbandon(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	old := mustPut(t, s, []byte("held before"), "a", "", 1)
	_, charged, err := s.put(context.Background(), strings.NewReader("held before"), "a", "", 1)
	if err != nil || charged {
		t.Fatalf("re-put charged=%v err=%v, want not charged", charged, err)
	}
	nb, charged, err := s.put(context.Background(), strings.NewReader("new one"), "b", "", 1)
	if err != nil || !charged {
		t.Fatalf("put charged=%v err=%v", charged, err)
	}
	files := []Upload{{Blob: old}, {Blob: nb, charged: true}}
	if err := s.Abandon(1, files); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Usage(1); got != old.Size {
		t.Errorf("usage = %d, want %d (only the blob held before)", got, old.Size)
	}
	if err := s.Release(old.Hash, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(old.Hash, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Usage(1); got != 0 {
		t.Errorf("usage = %d, want 0", got)
	}
}

func TestOpenPersistsIndexAndKey(t *testing.T) {
	dir := t.TempDir()
	// A fixed clock: signed URLs carry their expiry second, so two signings
	// straddling a second boundary would differ even with the same key.
	at := time.Unix(1_800_000_000, 0)
	opts := Options{Now: func() time.Time { return at }}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	b := mustPut(t, s, []byte("persist me"), "p.txt", "", 3)
	url := s.SignURL(b.Hash, "p.txt", 3600e9)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, err := s.Stat(b.Hash); err != nil || st != b {
		t.Errorf("after reopen Stat = %+v, %v; want %+v", st, err, b)
	}
	if got, _ := s.Usage(3); got != b.Size {
		t.Errorf("after reopen usage = %d", got)
	}
	if again := s.SignURL(b.Hash, "p.txt", 3600e9); again != url {
		t.Errorf("signing key changed across restart: %s vs %s", again, url)
	}
	info, err := os.Stat(dir + "/" + keyFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v", info.Mode(), err)
	}
}

func TestOpenRejectsShortKey(t *testing.T) {
	if _, err := Open(t.TempDir(), Options{SigningKey: []byte("short")}); err == nil {
		t.Fatal("Open accepted a 5-byte signing key")
	}
}

func TestClosedStoreRefusesPut(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Open(t.TempDir(), Options{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Put(context.Background(), strings.NewReader("x"), "x", "", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
	if err := db.View(func(*badger.Txn) error { return nil }); err != nil {
		t.Errorf("Close closed the caller's DB: %v", err)
	}
}
