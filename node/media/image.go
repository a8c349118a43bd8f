package media

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Avatars and guild icons are blobs too, set the way Discord's API sets them: a data URI in
// the PATCH body ("data:image/png;base64,…"). They are served at stable, unsigned URLs, since
// every member sees them and clients cache them, but only while they are some user's avatar
// or some guild's icon (the node checks that before ServeImage), so the node is still not an
// open file host.

// MaxImageSize bounds an avatar or icon (Discord's limit is 10 MiB).
const MaxImageSize = 10 << 20

// imageTypes are the types an avatar or icon may have.
var imageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// PutImage stores the image of a data URI as a blob charged to owner and returns it. The
// image must be PNG, JPEG, GIF or WebP by its bytes, whatever the URI declares, and at most
// MaxImageSize; otherwise it fails with ErrBadUpload (or ErrTooLarge) and stores nothing.
func (s *Store) PutImage(ctx context.Context, dataURI string, owner uint64) (Blob, error) {
	meta, data, ok := strings.Cut(dataURI, ",")
	if !ok || !strings.HasPrefix(meta, "data:") || !strings.HasSuffix(meta, ";base64") {
		return Blob{}, fmt.Errorf("media: image: %w: not a base64 data URI", ErrBadUpload)
	}
	if base64.StdEncoding.DecodedLen(len(data)) > MaxImageSize+2 {
		return Blob{}, fmt.Errorf("media: image: %w: over %d bytes", ErrTooLarge, MaxImageSize)
	}
	r := base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))
	b, charged, err := s.put(ctx, r, "image", "", owner)
	var corrupt base64.CorruptInputError
	if errors.As(err, &corrupt) || errors.Is(err, io.ErrUnexpectedEOF) { // not base64, or cut short
		return Blob{}, fmt.Errorf("media: image: %w: %v", ErrBadUpload, err)
	}
	if err != nil {
		return Blob{}, fmt.Errorf("media: image: %w", err)
	}
	if !imageTypes[b.ContentType] {
		if charged {
			_ = s.Release(b.Hash, owner)
		}
		return Blob{}, fmt.Errorf("media: image: %w: %s is not an image type", ErrBadUpload, b.ContentType)
	}
	return b, nil
}

// ServeImage answers GET of an avatar or icon URL with the bytes of blob h (fetching a
// remote one first). The caller has checked that h is the avatar or icon the URL names.
// The URL changes with the image, so the response is cacheable for a year.
func (s *Store) ServeImage(w http.ResponseWriter, r *http.Request, h Hash) {
	f, b, err := s.OpenBlob(r.Context(), h)
	if err == nil && !imageTypes[b.ContentType] {
		f.Close()
		err = fmt.Errorf("media: %v is not an image: %w", h, ErrNotFound)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer f.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", b.ContentType)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hdr.Set("ETag", `"`+h.String()+`"`)
	hdr.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(maxCacheAge/time.Second), 10)+", immutable")
	http.ServeContent(w, r, "", time.Time{}, f)
}
