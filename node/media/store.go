package media

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sync/singleflight"

	"github.com/hearth-chat/hearth/node/media/thumb"
)

// Errors of the Store; compare with errors.Is. StatusCode maps them to HTTP.
var (
	// ErrTooLarge means a file or request exceeds a size limit.
	ErrTooLarge = errors.New("media: too large")
	// ErrQuotaExceeded means storing the file would take its owner past
	// Options.OwnerQuota.
	ErrQuotaExceeded = errors.New("media: owner quota exceeded")
	// ErrNotFound means the index knows no such blob, or it is remote and
	// cannot be fetched.
	ErrNotFound = errors.New("media: not found")
	// ErrClosed means the Store has been closed.
	ErrClosed = errors.New("media: store closed")
)

// Blob describes stored content.
type Blob struct {
	// Hash is the SHA-256 of the bytes.
	Hash Hash
	// Size is the length in bytes.
	Size int64
	// ContentType is the detected type (see DetectContentType) with which
	// the blob is served. Empty for a remote blob not fetched yet.
	ContentType string
	// Width and Height are an image's pixel dimensions; zero if the blob is
	// not an image the node decodes (PNG, JPEG, GIF, WebP) or not fetched.
	Width, Height int
}

// Store is the content-addressed media store of a node: blobs named by
// their SHA-256 under dir, deduplicated, with an index and per-owner quota in
// Badger, background thumbnails, and fetching of other nodes' media.
//
// Open starts the thumbnail workers; Close stops them and must be called
// once the Store is no longer used. All methods are safe for concurrent use.
type Store struct {
	dir    string
	opts   Options
	db     *badger.DB
	ownDB  bool
	signer *Signer
	log    *slog.Logger

	// locks serialise, per hash stripe, the steps that must agree between
	// disk and index: placing a file and recording it (Put, fetch) against
	// deleting both (GC).
	locks  [256]sync.Mutex
	flight singleflight.Group

	thumbQ chan Hash
	ctx    context.Context // ends at Close; parent of background work
	cancel context.CancelFunc
	// wg counts background goroutines (thumbnail workers, shared fetches
	// and renders); Close waits for them. Add only through track.
	wg        sync.WaitGroup
	mu        sync.Mutex
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

const (
	dirBlobs  = "blobs"
	dirThumbs = "thumbs"
	dirTmp    = "tmp"
	dirIndex  = "index"
	keyFile   = "url.key"
)

// Open opens (creating if needed) the media store rooted at dir, which
// should be a folder of the node's data dir (for example data/media). See
// Options for what zero fields mean.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{dir: dir, opts: opts, db: opts.DB, log: opts.Logger.With("component", "media")}
	for _, d := range []string{dirBlobs, dirThumbs, dirTmp} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			return nil, fmt.Errorf("media: open: %w", err)
		}
	}
	key := opts.SigningKey
	if key == nil {
		var err error
		if key, err = loadOrCreateKey(filepath.Join(dir, keyFile)); err != nil {
			return nil, fmt.Errorf("media: open: %w", err)
		}
	}
	signer, err := NewSigner(key)
	if err != nil {
		return nil, fmt.Errorf("media: open: %w", err)
	}
	s.signer = signer
	if s.db == nil {
		bo := badger.DefaultOptions(filepath.Join(dir, dirIndex)).WithSyncWrites(true).WithLogger(nil)
		if s.db, err = badger.Open(bo); err != nil {
			return nil, fmt.Errorf("media: open index: %w", err)
		}
		s.ownDB = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.thumbQ = make(chan Hash, 1024)
	for range opts.ThumbWorkers {
		s.track()
		go s.thumbWorker()
	}
	return s, nil
}

// Close stops background work, waits for it, and closes the private index
// database if Open opened one. Uploads and requests still running fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
		if s.ownDB {
			if err := s.db.Close(); err != nil {
				s.closeErr = fmt.Errorf("media: close index: %w", err)
			}
		}
	})
	return s.closeErr
}

// track registers one background goroutine with Close, or reports false if
// the Store is closed and the goroutine must not start its work.
func (s *Store) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func loadOrCreateKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	key = make([]byte, 32)
	rand.Read(key)
	if err := writeFileSync(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	return key, nil
}

// writeFileSync writes data to path atomically: temp file, fsync, rename,
// fsync of the folder.
func writeFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// ensureDir creates the shard folder dir if missing, durably (fsync of its
// parent), so that a file renamed into it survives a crash.
func ensureDir(dir string) error {
	err := os.Mkdir(dir, 0o750)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) blobPath(h Hash) string {
	x := h.String()
	return filepath.Join(s.dir, dirBlobs, x[:2], x)
}

func (s *Store) thumbPath(h Hash) string {
	x := h.String()
	return filepath.Join(s.dir, dirThumbs, x[:2], x)
}

func (s *Store) lock(h Hash) func() {
	m := &s.locks[h[0]]
	m.Lock()
	return m.Unlock
}

// spooled is an upload written to a temporary file and hashed.
type spooled struct {
	path string
	hash Hash
	size int64
	head []byte // first bytes, for content detection
}

// spool streams r into a synced temporary file, hashing it, and refuses
// (ErrTooLarge) more than limit bytes. Memory use is a fixed 32 KiB buffer
// whatever the size. On error nothing is left on disk.
func (s *Store) spool(ctx context.Context, r io.Reader, limit int64) (sp spooled, err error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, dirTmp), "up-*")
	if err != nil {
		return sp, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	hw := sha256.New()
	lr := &io.LimitedReader{R: &ctxReader{ctx: ctx, r: r}, N: limit + 1}
	buf := make([]byte, 32<<10)
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(lr, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return sp, err
	}
	head = head[:n]
	w := io.MultiWriter(f, hw)
	if _, err := w.Write(head); err != nil {
		return sp, err
	}
	rest, err := io.CopyBuffer(w, lr, buf)
	if err != nil {
		return sp, err
	}
	sp.size = int64(n) + rest
	if sp.size > limit {
		return sp, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
	}
	if err := f.Sync(); err != nil {
		return sp, err
	}
	if err := f.Close(); err != nil {
		return sp, err
	}
	sp.path, sp.head = f.Name(), head
	hw.Sum(sp.hash[:0])
	return sp, nil
}

// describe fills in the content type and, for images, the dimensions of a
// spooled file.
func (s *Store) describe(sp spooled, declared, filename string) meta {
	m := meta{Size: sp.size, Present: true, Type: DetectContentType(sp.head, declared, filename)}
	if !thumbnailTypes[baseType(m.Type)] {
		return m
	}
	m.Thumb = thumbPending
	f, err := os.Open(sp.path)
	if err != nil {
		return m
	}
	defer f.Close()
	if _, w, h, err := thumb.Config(f); err == nil {
		m.Width, m.Height = w, h
	}
	return m
}

// Put stores the bytes read from r as a blob owned by owner and returns it.
// The bytes go through a temporary file, are hashed while streaming and are
// renamed into place after fsync; identical content is stored once. filename
// and declaredType are hints for content detection (DetectContentType).
//
// owner is charged the blob's size unless it already holds the same blob; 0
// means no owner (nothing is charged). Put fails with ErrTooLarge after
// reading Options.MaxFileSize+1 bytes, and with ErrQuotaExceeded if the
// owner's usage would pass Options.OwnerQuota; in both cases, and when r
// fails or ctx ends, nothing is kept.
func (s *Store) Put(ctx context.Context, r io.Reader, filename, declaredType string, owner uint64) (Blob, error) {
	b, _, err := s.put(ctx, r, filename, declaredType, owner)
	return b, err
}

func (s *Store) put(ctx context.Context, r io.Reader, filename, declaredType string, owner uint64) (Blob, bool, error) {
	if s.ctx.Err() != nil {
		return Blob{}, false, ErrClosed
	}
	if s.opts.Space != nil {
		if err := s.opts.Space(); err != nil {
			return Blob{}, false, fmt.Errorf("media: put: %w", err)
		}
	}
	if owner != 0 && s.opts.OwnerQuota >= 0 {
		used, err := s.Usage(owner)
		if err != nil {
			return Blob{}, false, fmt.Errorf("media: put: %w", err)
		}
		if used >= s.opts.OwnerQuota {
			return Blob{}, false, fmt.Errorf("media: put: %w", ErrQuotaExceeded)
		}
	}
	sp, err := s.spool(ctx, r, s.opts.MaxFileSize)
	if err != nil {
		return Blob{}, false, fmt.Errorf("media: put: %w", err)
	}
	m, charged, err := s.place(sp, s.describe(sp, declaredType, filename), owner)
	if err != nil {
		return Blob{}, false, fmt.Errorf("media: put: %w", err)
	}
	return m.blob(sp.hash), charged, nil
}

// place moves a spooled file to its content address and records it in the
// index (with m as its meta if it is new), charging owner. It reports
// whether owner was newly charged. The temporary file is consumed.
func (s *Store) place(sp spooled, m meta, owner uint64) (meta, bool, error) {
	defer os.Remove(sp.path) // no-op once renamed
	unlock := s.lock(sp.hash)
	defer unlock()
	final := s.blobPath(sp.hash)
	_, statErr := os.Stat(final)
	onDisk := statErr == nil
	if !onDisk {
		if err := ensureDir(filepath.Dir(final)); err != nil {
			return meta{}, false, err
		}
		if err := os.Rename(sp.path, final); err != nil {
			return meta{}, false, err
		}
		if err := syncDir(filepath.Dir(final)); err != nil {
			os.Remove(final)
			return meta{}, false, err
		}
	}
	m.Touched = s.opts.Now().UnixNano()
	var stored meta
	var charged bool
	err := update(s.db, func(txn *badger.Txn) error {
		stored, charged = m, false
		old, found, err := getMeta(txn, sp.hash)
		if err != nil {
			return err
		}
		if found && old.Present {
			stored = old
			stored.Touched = m.Touched
		}
		if owner != 0 {
			has, err := exists(txn, refKey(sp.hash, owner))
			if err != nil {
				return err
			}
			if !has {
				used, err := getUsage(txn, owner)
				if err != nil {
					return err
				}
				if s.opts.OwnerQuota >= 0 && used+stored.Size > s.opts.OwnerQuota {
					return ErrQuotaExceeded
				}
				if err := txn.Set(refKey(sp.hash, owner), nil); err != nil {
					return err
				}
				if err := addUsage(txn, owner, stored.Size); err != nil {
					return err
				}
				charged = true
			}
		}
		return setMeta(txn, sp.hash, stored)
	})
	if err != nil {
		if !onDisk {
			os.Remove(final)
		}
		return meta{}, false, err
	}
	if stored.Thumb == thumbPending {
		select {
		case s.thumbQ <- sp.hash:
		default: // queue full: rendered on first request instead
		}
	}
	return stored, charged, nil
}

// Usage returns the bytes charged to owner.
func (s *Store) Usage(owner uint64) (int64, error) {
	var n int64
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		n, err = getUsage(txn, owner)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("media: usage: %w", err)
	}
	return n, nil
}

// Release stops charging owner for blob h, typically because the message
// an upload was for could not be created (see Abandon). The blob stays until
// GC finds it unreferenced. Releasing what owner does not hold is a no-op.
func (s *Store) Release(h Hash, owner uint64) error {
	err := update(s.db, func(txn *badger.Txn) error {
		has, err := exists(txn, refKey(h, owner))
		if err != nil || !has {
			return err
		}
		m, found, err := getMeta(txn, h)
		if err != nil {
			return err
		}
		if err := txn.Delete(refKey(h, owner)); err != nil {
			return err
		}
		if !found {
			return nil
		}
		return addUsage(txn, owner, -m.Size)
	})
	if err != nil {
		return fmt.Errorf("media: release %v: %w", h, err)
	}
	return nil
}

// Stat returns what the index knows of blob h, or ErrNotFound. For a remote
// blob not fetched yet only Hash and Size are set.
func (s *Store) Stat(h Hash) (Blob, error) {
	m, err := s.meta(h)
	if err != nil {
		return Blob{}, err
	}
	return m.blob(h), nil
}

func (s *Store) meta(h Hash) (meta, error) {
	var m meta
	err := s.db.View(func(txn *badger.Txn) error {
		var found bool
		var err error
		m, found, err = getMeta(txn, h)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return meta{}, fmt.Errorf("media: stat %v: %w", h, err)
	}
	return m, nil
}

// OpenBlob opens the bytes of blob h for reading, first fetching them from
// their origin node if the blob is remote and not cached yet (see AddRemote).
// The caller closes the file. An open file stays readable even if GC removes
// the blob meanwhile.
func (s *Store) OpenBlob(ctx context.Context, h Hash) (*os.File, Blob, error) {
	m, err := s.ensure(ctx, h)
	if err != nil {
		return nil, Blob{}, err
	}
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Blob{}, fmt.Errorf("media: open %v: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, Blob{}, fmt.Errorf("media: open %v: %w", h, err)
	}
	return f, m.blob(h), nil
}

// ctxReader fails reads once its context has ended, so that a slow client
// or peer cannot keep an upload or fetch alive after its deadline.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
