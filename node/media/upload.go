package media

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
)

// ErrBadUpload means a message upload is malformed: not multipart, a bad
// or repeated part name, too many files, or invalid payload_json.
var ErrBadUpload = errors.New("media: bad upload")

// UploadLimits bound one message upload. The zero value selects the
// defaults.
type UploadLimits struct {
	// MaxFiles is how many files[n] parts one request may carry. Zero means
	// 10, Discord's limit.
	MaxFiles int
	// MaxRequestBytes bounds the whole request body, checked against
	// Content-Length before reading and enforced while streaming. Zero means
	// MaxFiles × Options.MaxFileSize + 1 MiB for the other parts and
	// multipart framing.
	MaxRequestBytes int64
	// MaxPayloadJSON bounds the payload_json part, the only part held in
	// memory. Zero means 64 KiB.
	MaxPayloadJSON int64
}

// maxFileIndex bounds n in files[n].
const maxFileIndex = 9999

func (l UploadLimits) withDefaults(maxFile int64) UploadLimits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = 10
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = int64(l.MaxFiles)*maxFile + 1<<20
	}
	if l.MaxPayloadJSON <= 0 {
		l.MaxPayloadJSON = 64 << 10
	}
	return l
}

// Upload is one file of a message upload, stored.
type Upload struct {
	// Index is n of the files[n] part; payload_json's attachments[].id
	// refers to it.
	Index int
	// Filename is the sanitised file name of the part (SanitizeFilename).
	Filename string
	Blob
	// charged says the uploader was newly charged for the blob, so that
	// Abandon can undo exactly that.
	charged bool
}

// ParseMessageUpload reads a multipart/form-data request in Discord's shape
// (POST /channels/{id}/messages with payload_json and files[n] parts),
// streaming every file part into the Store as a blob owned by owner. It
// returns the raw payload_json (nil if absent), checked to be valid JSON,
// and the stored files in request order.
//
// A Content-Length over lim.MaxRequestBytes is refused before anything is
// read; a body that turns out longer, or a file over Options.MaxFileSize,
// stops the read at the limit. Errors wrap ErrTooLarge, ErrQuotaExceeded or
// ErrBadUpload (see StatusCode); on error the owner is charged nothing for
// this request. Parts with other names are read and ignored, as Discord
// ignores unknown fields. If creating the message fails afterwards, the
// caller should call Abandon with the returned files.
func (s *Store) ParseMessageUpload(r *http.Request, owner uint64, lim UploadLimits) (payloadJSON []byte, files []Upload, err error) {
	lim = lim.withDefaults(s.opts.MaxFileSize)
	if r.ContentLength > lim.MaxRequestBytes {
		return nil, nil, fmt.Errorf("media: upload: %w: Content-Length %d over %d", ErrTooLarge, r.ContentLength, lim.MaxRequestBytes)
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, nil, fmt.Errorf("media: upload: %w: want multipart/form-data", ErrBadUpload)
	}
	defer func() {
		if err != nil {
			if aerr := s.Abandon(owner, files); aerr != nil {
				s.log.Error("abandon upload", "owner", owner, "err", aerr)
			}
			files = nil
		}
	}()
	body := &limitReader{r: r.Body, n: lim.MaxRequestBytes}
	mr := multipart.NewReader(body, params["boundary"])
	seen := make(map[int]bool)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, files, uploadErr(body, err, err)
		}
		pr := &recordingReader{r: part}
		name := part.FormName()
		switch {
		case name == "payload_json":
			if payloadJSON != nil {
				return nil, files, fmt.Errorf("media: upload: %w: payload_json repeated", ErrBadUpload)
			}
			payloadJSON, err = io.ReadAll(io.LimitReader(pr, lim.MaxPayloadJSON+1))
			if err != nil {
				return nil, files, uploadErr(body, pr.err, err)
			}
			if int64(len(payloadJSON)) > lim.MaxPayloadJSON {
				return nil, files, fmt.Errorf("media: upload: %w: payload_json over %d bytes", ErrTooLarge, lim.MaxPayloadJSON)
			}
			if !json.Valid(payloadJSON) {
				return nil, files, fmt.Errorf("media: upload: %w: payload_json is not JSON", ErrBadUpload)
			}
		case strings.HasPrefix(name, "files["):
			n, ok := fileIndex(name)
			if !ok || seen[n] {
				return nil, files, fmt.Errorf("media: upload: %w: part name %q", ErrBadUpload, name)
			}
			if len(files) == lim.MaxFiles {
				return nil, files, fmt.Errorf("media: upload: %w: more than %d files", ErrBadUpload, lim.MaxFiles)
			}
			seen[n] = true
			filename := SanitizeFilename(part.FileName())
			b, charged, err := s.put(r.Context(), pr, filename, part.Header.Get("Content-Type"), owner)
			if err != nil {
				return nil, files, uploadErr(body, pr.err, err)
			}
			files = append(files, Upload{Index: n, Filename: filename, Blob: b, charged: charged})
		default:
			if _, err := io.Copy(io.Discard, pr); err != nil {
				return nil, files, uploadErr(body, pr.err, err)
			}
		}
	}
	return payloadJSON, files, nil
}

// fileIndex parses n out of "files[n]": decimal, no sign or leading zeros.
func fileIndex(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "files[")
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, "]")
	if !ok || digits == "" || len(digits) > 4 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n > maxFileIndex || strconv.Itoa(n) != digits {
		return 0, false
	}
	return n, true
}

// uploadErr classifies the error err of a step that read the request:
// hitting the request limit is ErrTooLarge, a failure to read or parse the
// body (readErr, the client's fault) ErrBadUpload; the Store's own errors
// pass through.
func uploadErr(body *limitReader, readErr, err error) error {
	switch {
	case body.exceeded:
		return fmt.Errorf("media: upload: %w: body over %d bytes", ErrTooLarge, body.n)
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrQuotaExceeded), errors.Is(err, ErrClosed):
		return err
	case readErr != nil:
		return fmt.Errorf("media: upload: %w: %v", ErrBadUpload, readErr)
	}
	return fmt.Errorf("media: upload: %w", err)
}

// recordingReader remembers the first read error other than io.EOF, so a
// failure can be blamed on the request rather than the Store.
type recordingReader struct {
	r   io.Reader
	err error
}

func (rr *recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	if err != nil && err != io.EOF && rr.err == nil {
		rr.err = err
	}
	return n, err
}

// Abandon releases the charges ParseMessageUpload made for files, for when
// the message they were uploaded for is not created. Blobs the owner held
// before the upload stay charged.
func (s *Store) Abandon(owner uint64, files []Upload) error {
	var errs []error
	for _, f := range files {
		if f.charged {
			errs = append(errs, s.Release(f.Hash, owner))
		}
	}
	return errors.Join(errs...)
}

// limitReader reads at most n bytes and then fails, remembering that it
// did, so that the error can become a 413 rather than a parse error.
type limitReader struct {
	r        io.Reader
	n        int64
	read     int64
	exceeded bool
}

var errBodyTooLarge = errors.New("request body too large")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.read >= l.n {
		// Probe for one more byte: only a body that is really longer than
		// the limit is refused.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.exceeded = true
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if rem := l.n - l.read; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}
