package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"

	"github.com/hearth-chat/hearth/node/media/thumb"
)

// thumbWorker renders queued thumbnails until Close.
func (s *Store) thumbWorker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case h := <-s.thumbQ:
			if _, err := s.thumbnail(s.ctx, h); err != nil && s.ctx.Err() == nil {
				s.log.Warn("thumbnail", "hash", h, "err", err)
			}
		}
	}
}

// thumbnail returns the meta of h once its thumbnail has been rendered,
// rendering it now if it is still pending; a blob has its thumbnail rendered
// at most once, whoever asks. It returns ErrNotFound for blobs without a
// thumbnail (not an image, or rendering failed).
func (s *Store) thumbnail(ctx context.Context, h Hash) (meta, error) {
	m, err := s.ensure(ctx, h)
	if err != nil {
		return meta{}, err
	}
	switch m.Thumb {
	case thumbReady:
		return m, nil
	case thumbPending:
	default:
		return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, ErrNotFound)
	}
	ch := s.flight.DoChan("t"+h.String(), func() (any, error) {
		if !s.track() {
			return nil, ErrClosed
		}
		defer s.wg.Done()
		return s.render(h)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return meta{}, res.Err
		}
		return res.Val.(meta), nil
	case <-ctx.Done():
		return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, ctx.Err())
	}
}

// render renders the thumbnail of h and records the outcome. Only a
// rendering failure marks the blob failed for good; errors of the node
// itself (disk, index, Close) leave it pending for a later attempt.
func (s *Store) render(h Hash) (meta, error) {
	m, err := s.meta(h)
	if err != nil {
		return meta{}, err
	}
	if m.Thumb != thumbPending {
		if m.Thumb == thumbReady {
			return m, nil
		}
		return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, ErrNotFound)
	}
	src, err := os.Open(s.blobPath(h))
	if err != nil {
		return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Join(s.dir, dirTmp), "th-*")
	if err != nil {
		return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, err)
	}
	defer removeFile(tmp.Name())
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.ThumbTimeout)
	res, rerr := thumb.Render(ctx, src, s.opts.Thumb, tmp)
	cancel()
	if rerr == nil {
		rerr = tmp.Sync()
	}
	if cerr := tmp.Close(); rerr == nil {
		rerr = cerr
	}
	if s.ctx.Err() != nil {
		return meta{}, ErrClosed
	}
	var renderErr error
	if rerr != nil {
		var pathErr *os.PathError
		if errors.As(rerr, &pathErr) {
			return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, rerr)
		}
		renderErr = fmt.Errorf("media: thumbnail %v: %w: %w", h, ErrNotFound, rerr)
	}
	unlock := s.lock(h)
	defer unlock()
	if renderErr == nil {
		if err := ensureDir(filepath.Dir(s.thumbPath(h))); err != nil {
			return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, err)
		}
		if err := os.Rename(tmp.Name(), s.thumbPath(h)); err != nil {
			return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, err)
		}
		if err := syncDir(filepath.Dir(s.thumbPath(h))); err != nil {
			return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, err)
		}
	}
	var stored meta
	err = update(s.db, func(txn *badger.Txn) error {
		cur, found, err := getMeta(txn, h)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound // collected meanwhile
		}
		if renderErr != nil {
			cur.Thumb = thumbFailed
		} else {
			cur.Thumb, cur.ThumbType = thumbReady, res.ContentType
		}
		stored = cur
		return setMeta(txn, h, cur)
	})
	if err != nil {
		return meta{}, fmt.Errorf("media: thumbnail %v: %w", h, err)
	}
	if renderErr != nil {
		return meta{}, renderErr
	}
	return stored, nil
}

// removeFile deletes a file whose absence is all that matters.
func removeFile(path string) { _ = os.Remove(path) }
