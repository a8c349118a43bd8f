package media

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestGC(t *testing.T) {
	s, clk := newTestStore(t, Options{GCGrace: time.Hour})
	clk.Set(time.Now()) // stray files' real mtimes are compared with this clock
	kept := mustPut(t, s, []byte("referenced"), "k", "", 1)
	gone := mustPut(t, s, pngBytes(t, 20, 20, true), "g.png", "", 1)
	mustPut(t, s, pngBytes(t, 20, 20, true), "g.png", "", 2) // a second owner of the same blob
	remote := hashOf([]byte("announced, never fetched"))
	if err := s.AddRemote(remote, 24, "node-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.thumbnail(context.Background(), gone.Hash); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	young := mustPut(t, s, []byte("just uploaded"), "y", "", 1)

	// Leftovers of a crash: an old temporary file, an old file the index
	// does not know, and a fresh temporary file of an upload in progress.
	old := clk.Now().Add(-48 * time.Hour)
	stray := []string{
		filepath.Join(s.dir, dirTmp, "up-crashed"),
		s.blobPath(hashOf([]byte("orphan"))),
	}
	for _, p := range stray {
		os.MkdirAll(filepath.Dir(p), 0o750)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	fresh := filepath.Join(s.dir, dirTmp, "up-in-progress")
	os.WriteFile(fresh, []byte("x"), 0o600)
	os.Chtimes(fresh, clk.Now(), clk.Now())
	os.Mkdir(filepath.Join(s.dir, dirBlobs, "00"), 0o750)
	foreign := filepath.Join(s.dir, dirBlobs, "00", "README")
	os.WriteFile(foreign, []byte("x"), 0o600)
	os.Chtimes(foreign, old, old)

	st, err := s.GC(context.Background(), func(h Hash) bool { return h == kept.Hash })
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 2 || st.Bytes != gone.Size || st.Stray != 2 {
		t.Errorf("stats = %+v, want 2 blobs (gone, remote), %d bytes, 2 stray", st, gone.Size)
	}
	for _, h := range []Hash{gone.Hash, remote} {
		if _, err := s.Stat(h); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat(%v) after GC: %v", h, err)
		}
	}
	for _, p := range append(stray, s.blobPath(gone.Hash), s.thumbPath(gone.Hash)) {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists", p)
		}
	}
	for _, p := range []string{fresh, foreign, s.blobPath(kept.Hash), s.blobPath(young.Hash)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if got, _ := s.Usage(1); got != kept.Size+young.Size {
		t.Errorf("owner 1 usage = %d, want %d", got, kept.Size+young.Size)
	}
	if got, _ := s.Usage(2); got != 0 {
		t.Errorf("owner 2 usage = %d, want 0", got)
	}
	// A collected blob can be uploaded again.
	again := mustPut(t, s, pngBytes(t, 20, 20, true), "g.png", "", 1)
	if f, _, err := s.OpenBlob(context.Background(), again.Hash); err != nil {
		t.Errorf("re-upload after GC: %v", err)
	} else {
		f.Close()
	}
}

func TestGCKeepsBlobUploadedAgainDuringGC(t *testing.T) {
	s, clk := newTestStore(t, Options{GCGrace: time.Hour})
	data := []byte("uploaded twice")
	b := mustPut(t, s, data, "d", "", 1)
	clk.Advance(2 * time.Hour)
	st, err := s.GC(context.Background(), func(h Hash) bool {
		// The same file is uploaded again between the scan and the removal.
		mustPut(t, s, data, "d", "", 2)
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 0 {
		t.Errorf("GC removed %d blobs, want 0", st.Blobs)
	}
	if f, _, err := s.OpenBlob(context.Background(), b.Hash); err != nil {
		t.Errorf("blob lost: %v", err)
	} else {
		f.Close()
	}
}

func TestGCStopsWithContext(t *testing.T) {
	s, clk := newTestStore(t, Options{})
	mustPut(t, s, []byte("a"), "a", "", 1)
	clk.Advance(2 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.GC(ctx, func(Hash) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want Canceled", err)
	}
}
