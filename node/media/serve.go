package media

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// URL path prefixes the Handler serves.
const (
	AttachmentsPrefix = "/attachments/"
	ThumbnailsPrefix  = "/thumbnails/"
)

// maxCacheAge caps Cache-Control max-age (one year, the conventional
// "forever" for immutable content).
const maxCacheAge = 365 * 24 * time.Hour

// SignURL returns the path and query ("/attachments/<hash>/<filename>?ex=…&sig=…")
// that lets its holder download blob h, under filename, for ttl. filename
// should already be sanitised (SanitizeFilename); it is path-escaped here.
// The node prefixes its public base URL to make an absolute URL.
func (s *Store) SignURL(h Hash, filename string, ttl time.Duration) string {
	return s.signedPath(AttachmentsPrefix, h, filename, ttl)
}

// SignThumbnailURL is SignURL for the blob's thumbnail, the "proxy_url" of
// an image attachment.
func (s *Store) SignThumbnailURL(h Hash, filename string, ttl time.Duration) string {
	return s.signedPath(ThumbnailsPrefix, h, filename, ttl)
}

func (s *Store) signedPath(prefix string, h Hash, filename string, ttl time.Duration) string {
	exp := s.opts.Now().Add(ttl)
	return prefix + h.String() + "/" + url.PathEscape(filename) + "?" + s.signer.Query(h, filename, exp)
}

// Handler returns the HTTP handler for GET and HEAD of
// /attachments/{hash}/{filename} and /thumbnails/{hash}/{filename}, each
// with the ex and sig query parameters of a signed URL. The node mounts it
// at both prefixes of its public listener. Responses carry a strong ETag,
// Cache-Control immutable until the URL expires, range support,
// X-Content-Type-Options: nosniff, a sandboxing Content-Security-Policy,
// and Content-Disposition: attachment for every type a browser could run.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AttachmentsPrefix+"{hash}/{filename}", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, false)
	})
	mux.HandleFunc("GET "+ThumbnailsPrefix+"{hash}/{filename}", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, true)
	})
	return mux
}

func (s *Store) serve(w http.ResponseWriter, r *http.Request, thumbnail bool) {
	h, err := ParseHash(r.PathValue("hash"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	filename := r.PathValue("filename")
	now := s.opts.Now()
	exp, err := s.signer.Verify(h, filename, r.URL.Query(), now)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var (
		f           *os.File
		contentType string
		etag        string
		disposition = "inline"
	)
	if thumbnail {
		var m meta
		if m, err = s.thumbnail(r.Context(), h); err == nil {
			f, err = os.Open(s.thumbPath(h))
			if errors.Is(err, os.ErrNotExist) {
				err = ErrNotFound
			}
		}
		contentType, etag = m.ThumbType, `"`+h.String()+`.thumb"`
	} else {
		var b Blob
		f, b, err = s.OpenBlob(r.Context(), h)
		contentType, etag = b.ContentType, `"`+h.String()+`"`
		if !isInline(contentType) {
			disposition = "attachment"
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer f.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if cd := mime.FormatMediaType(disposition, map[string]string{"filename": filename}); cd != "" {
		hdr.Set("Content-Disposition", cd)
	} else {
		hdr.Set("Content-Disposition", disposition)
	}
	hdr.Set("ETag", etag)
	age := min(exp.Sub(now), maxCacheAge)
	hdr.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(age/time.Second), 10)+", immutable")
	http.ServeContent(w, r, "", time.Time{}, f)
}

func (s *Store) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := StatusCode(err)
	if code >= 500 && r.Context().Err() == nil {
		s.log.Error("serve media", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(code), code)
}

// StatusCode maps an error of this package to the HTTP status a handler
// should answer with: 413 for ErrTooLarge and ErrQuotaExceeded, 400 for
// ErrBadUpload, 403 for ErrBadSignature and ErrExpired, 404 for ErrNotFound
// and ErrBadHash, 502 for ErrVerify, 504 for a timed-out fetch, 503 for
// ErrClosed, and 500 for anything else.
func StatusCode(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrQuotaExceeded):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBadUpload):
		return http.StatusBadRequest
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrExpired):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrBadHash):
		return http.StatusNotFound
	case errors.Is(err, ErrVerify):
		return http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
