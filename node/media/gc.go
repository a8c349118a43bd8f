package media

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// GCStats reports what one GC pass removed.
type GCStats struct {
	// Blobs is how many unreferenced blobs were removed from the index.
	Blobs int
	// Bytes is the size of the removed blobs that were on local disk.
	Bytes int64
	// Stray is how many leftover files (temporary files of interrupted
	// uploads, files the index does not know) were removed.
	Stray int
}

// gcBatch is how many index entries GC reads per transaction.
const gcBatch = 1024

// GC removes every blob that referenced reports false for and that has not
// been uploaded or announced (AddRemote) within Options.GCGrace, with its
// thumbnail and its owners' charges; and removes temporary and unknown
// files older than the grace. referenced is the node's answer to "does any
// stored message, avatar or icon still use this hash?"; it is called
// without any Store lock held and may be called concurrently with uploads.
// A blob uploaded again while GC runs is kept. GC stops early, with ctx's
// error, when ctx ends; what it removed so far is reported.
func (s *Store) GC(ctx context.Context, referenced func(Hash) bool) (GCStats, error) {
	var st GCStats
	cutoff := s.opts.Now().Add(-s.opts.GCGrace)
	start := []byte(prefixBlob)
	for {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("media: gc: %w", err)
		}
		var batch []Hash
		var next []byte
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: []byte(prefixBlob)})
			defer it.Close()
			for it.Seek(start); it.Valid(); it.Next() {
				item := it.Item()
				if len(batch) == gcBatch {
					next = item.KeyCopy(nil)
					return nil
				}
				var h Hash
				copy(h[:], item.Key()[len(prefixBlob):])
				m, _, err := getMeta(txn, h)
				if err != nil {
					return err
				}
				if time.Unix(0, m.Touched).Before(cutoff) {
					batch = append(batch, h)
				}
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("media: gc: scan: %w", err)
		}
		for _, h := range batch {
			if referenced(h) {
				continue
			}
			size, removed, err := s.collect(h, cutoff)
			if err != nil {
				return st, fmt.Errorf("media: gc: %w", err)
			}
			if removed {
				st.Blobs++
				st.Bytes += size
			}
		}
		if next == nil {
			break
		}
		start = next
	}
	n, err := s.sweep(ctx, cutoff)
	st.Stray = n
	if err != nil {
		return st, fmt.Errorf("media: gc: sweep: %w", err)
	}
	return st, nil
}

// collect removes blob h if it is still untouched since cutoff, returning
// the bytes freed on disk.
func (s *Store) collect(h Hash, cutoff time.Time) (int64, bool, error) {
	unlock := s.lock(h)
	defer unlock()
	var m meta
	var removed bool
	err := update(s.db, func(txn *badger.Txn) error {
		var found bool
		var err error
		m, found, err = getMeta(txn, h)
		removed = false
		if err != nil || !found || !time.Unix(0, m.Touched).Before(cutoff) {
			return err
		}
		var owners [][]byte
		prefix := append([]byte(prefixRef), h[:]...)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		for it.Rewind(); it.Valid(); it.Next() {
			owners = append(owners, it.Item().KeyCopy(nil))
		}
		it.Close()
		for _, k := range owners {
			owner := binary.BigEndian.Uint64(k[len(prefix):])
			if err := txn.Delete(k); err != nil {
				return err
			}
			if err := addUsage(txn, owner, -m.Size); err != nil {
				return err
			}
		}
		removed = true
		return txn.Delete(blobKey(h))
	})
	if err != nil || !removed {
		return 0, false, err
	}
	removeFile(s.thumbPath(h))
	if !m.Present {
		return 0, true, nil
	}
	if err := os.Remove(s.blobPath(h)); err != nil && !os.IsNotExist(err) {
		return 0, true, err
	}
	return m.Size, true, nil
}

// sweep removes temporary files and blob or thumbnail files unknown to the
// index, if last modified before cutoff: what a crash between writing a
// file and committing the index leaves behind.
func (s *Store) sweep(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	old := func(e os.DirEntry) bool {
		info, err := e.Info()
		return err == nil && info.Mode().IsRegular() && info.ModTime().Before(cutoff)
	}
	tmp := filepath.Join(s.dir, dirTmp)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return n, err
	}
	for _, e := range entries {
		if old(e) && os.Remove(filepath.Join(tmp, e.Name())) == nil {
			n++
		}
	}
	for _, d := range []string{dirBlobs, dirThumbs} {
		shards, err := os.ReadDir(filepath.Join(s.dir, d))
		if err != nil {
			return n, err
		}
		for _, sh := range shards {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if !sh.IsDir() {
				continue
			}
			shard := filepath.Join(s.dir, d, sh.Name())
			entries, err := os.ReadDir(shard)
			if err != nil {
				return n, err
			}
			for _, e := range entries {
				if !old(e) {
					continue
				}
				h, err := ParseHash(e.Name())
				if err != nil || h.String()[:2] != sh.Name() {
					continue // not ours; leave it
				}
				removed, err := s.removeIfUnknown(h, filepath.Join(shard, e.Name()))
				if err != nil {
					return n, err
				}
				if removed {
					n++
				}
			}
		}
	}
	return n, nil
}

func (s *Store) removeIfUnknown(h Hash, path string) (bool, error) {
	unlock := s.lock(h)
	defer unlock()
	var found bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		found, err = exists(txn, blobKey(h))
		return err
	})
	if err != nil || found {
		return false, err
	}
	return os.Remove(path) == nil, nil
}
