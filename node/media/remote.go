package media

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"
)

// Fetcher gets the bytes of a blob from the node that announced it. The
// federation layer implements it over a libp2p stream; the Store verifies
// what it returns (exact size, SHA-256), so a Fetcher need not.
type Fetcher interface {
	// Fetch returns a stream of blob h (size bytes) as held by origin, the
	// node named in the event that referenced it. The Store closes the
	// stream. ctx bounds the whole transfer.
	Fetch(ctx context.Context, origin string, h Hash, size int64) (io.ReadCloser, error)
}

// ErrVerify means fetched bytes did not match the announced hash or size;
// they were discarded.
var ErrVerify = errors.New("media: fetched bytes do not match reference")

// AddRemote records that an event from another node references blob h of
// size bytes held by origin, so that the blob can be served (fetched on
// first use through Options.Fetcher, verified, and cached) and is kept by GC
// like any other blob. The node calls it when it accepts a federated message
// with attachments. If the blob is already known, AddRemote only refreshes
// its GC grace. Sizes over Options.MaxFileSize are refused with ErrTooLarge.
func (s *Store) AddRemote(h Hash, size int64, origin string) error {
	if size < 0 || size > s.opts.MaxFileSize {
		return fmt.Errorf("media: add remote %v: %w: %d bytes", h, ErrTooLarge, size)
	}
	if h.IsZero() || origin == "" {
		return fmt.Errorf("media: add remote: %w", ErrNotFound)
	}
	now := s.opts.Now().UnixNano()
	err := update(s.db, func(txn *badger.Txn) error {
		m, found, err := getMeta(txn, h)
		if err != nil {
			return err
		}
		if !found {
			m = meta{Size: size, Origin: origin}
		}
		m.Touched = now
		return setMeta(txn, h, m)
	})
	if err != nil {
		return fmt.Errorf("media: add remote %v: %w", h, err)
	}
	return nil
}

// ensure returns the meta of h once its bytes are on local disk, fetching a
// remote blob first. Concurrent callers for one blob share a single fetch,
// which is bounded by Options.FetchTimeout and Close, not by any caller's
// ctx; a caller whose ctx ends stops waiting.
func (s *Store) ensure(ctx context.Context, h Hash) (meta, error) {
	m, err := s.meta(h)
	if err != nil || m.Present {
		return m, err
	}
	if s.opts.Fetcher == nil {
		return meta{}, fmt.Errorf("media: %v is remote and no fetcher is set: %w", h, ErrNotFound)
	}
	ch := s.flight.DoChan("f"+h.String(), func() (any, error) {
		if !s.track() {
			return nil, ErrClosed
		}
		defer s.wg.Done()
		return s.fetch(h, m)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return meta{}, res.Err
		}
		return res.Val.(meta), nil
	case <-ctx.Done():
		return meta{}, fmt.Errorf("media: fetch %v: %w", h, ctx.Err())
	}
}

func (s *Store) fetch(h Hash, m meta) (meta, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.FetchTimeout)
	defer cancel()
	rc, err := s.opts.Fetcher.Fetch(ctx, m.Origin, h, m.Size)
	if err != nil {
		return meta{}, fmt.Errorf("media: fetch %v from %s: %w", h, m.Origin, err)
	}
	defer rc.Close()
	sp, err := s.spool(ctx, rc, m.Size)
	if errors.Is(err, ErrTooLarge) {
		err = fmt.Errorf("%w: longer than %d bytes", ErrVerify, m.Size)
	}
	if err != nil {
		return meta{}, fmt.Errorf("media: fetch %v from %s: %w", h, m.Origin, err)
	}
	if sp.size != m.Size || sp.hash != h {
		removeFile(sp.path)
		return meta{}, fmt.Errorf("media: fetch %v from %s: %w: got %d bytes, hash %v",
			h, m.Origin, ErrVerify, sp.size, sp.hash)
	}
	stored, _, err := s.place(sp, s.describe(sp, "", ""), 0)
	if err != nil {
		return meta{}, fmt.Errorf("media: fetch %v: %w", h, err)
	}
	return stored, nil
}
