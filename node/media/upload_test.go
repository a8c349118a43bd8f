package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
)

type part struct {
	name, filename, contentType, body string
}

func multipartBody(t testing.TB, parts ...part) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name="%s"`, p.name)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename="%s"`, p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p.body)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func uploadRequest(t testing.TB, parts ...part) *http.Request {
	body, ct := multipartBody(t, parts...)
	r := httptest.NewRequest("POST", "/api/v10/channels/1/messages", body)
	r.Header.Set("Content-Type", ct)
	return r
}

func TestParseMessageUpload(t *testing.T) {
	checkNoLeak(t)
	s, _ := newTestStore(t, Options{})
	img := string(pngBytes(t, 8, 4, true))
	r := uploadRequest(t,
		part{name: "payload_json", body: `{"content":"hi","attachments":[{"id":0},{"id":3}]}`},
		part{name: "files[0]", filename: "../../evil name.png", contentType: "text/html", body: img},
		part{name: "content", body: "ignored field"},
		part{name: "files[3]", filename: "notes.txt", contentType: "text/plain", body: "some notes"},
	)
	payload, files, err := s.ParseMessageUpload(r, 42, UploadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if string(payload) != `{"content":"hi","attachments":[{"id":0},{"id":3}]}` {
		t.Errorf("payload = %s", payload)
	}
	if len(files) != 2 {
		t.Fatalf("%d files, want 2", len(files))
	}
	want := []struct {
		index    int
		filename string
		ct       string
		w, h     int
	}{
		{0, "evil_name.png", "image/png", 8, 4},
		{3, "notes.txt", "text/plain; charset=utf-8", 0, 0},
	}
	var total int64
	for i, w := range want {
		f := files[i]
		if f.Index != w.index || f.Filename != w.filename || f.ContentType != w.ct || f.Width != w.w || f.Height != w.h {
			t.Errorf("file %d = %+v, want %+v", i, f, w)
		}
		total += f.Size
	}
	if got, _ := s.Usage(42); got != total {
		t.Errorf("usage = %d, want %d", got, total)
	}
}

// failReader fails the test if anything reads it.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("body read although Content-Length was over the limit")
	return 0, io.EOF
}

func TestParseMessageUploadRefusesContentLengthBeforeReading(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxFileSize: 100})
	r := httptest.NewRequest("POST", "/", failReader{t})
	r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	r.ContentLength = 10*100 + 1<<20 + 1
	_, _, err := s.ParseMessageUpload(r, 1, UploadLimits{})
	if !errors.Is(err, ErrTooLarge) || StatusCode(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("err = %v (status %d), want ErrTooLarge/413", err, StatusCode(err))
	}
}

func TestParseMessageUploadErrors(t *testing.T) {
	big := strings.Repeat("b", 200)
	small := "small file"
	tests := []struct {
		name       string
		parts      []part
		lim        UploadLimits
		mutate     func(*http.Request)
		wantErr    error
		wantStatus int
	}{
		{"file over per-file limit", []part{{name: "files[0]", filename: "s", body: small}, {name: "files[1]", filename: "b", body: big}}, UploadLimits{}, nil, ErrTooLarge, 413},
		{"body over request limit while streaming", []part{{name: "files[0]", filename: "s", body: small}, {name: "files[1]", filename: "c", body: big[:150]}}, UploadLimits{MaxRequestBytes: 300}, func(r *http.Request) { r.ContentLength = -1 }, ErrTooLarge, 413},
		{"quota exceeded on second file", []part{{name: "files[0]", filename: "s", body: big[:150]}, {name: "files[1]", filename: "t", body: strings.Repeat("t", 150)}}, UploadLimits{}, nil, ErrQuotaExceeded, 413},
		{"too many files", []part{{name: "files[0]", body: "a"}, {name: "files[1]", body: "b"}, {name: "files[2]", body: "c"}}, UploadLimits{MaxFiles: 2}, nil, ErrBadUpload, 400},
		{"duplicate index", []part{{name: "files[0]", body: "a"}, {name: "files[0]", body: "b"}}, UploadLimits{}, nil, ErrBadUpload, 400},
		{"bad index", []part{{name: "files[x]", body: "a"}}, UploadLimits{}, nil, ErrBadUpload, 400},
		{"leading zero index", []part{{name: "files[01]", body: "a"}}, UploadLimits{}, nil, ErrBadUpload, 400},
		{"negative index", []part{{name: "files[-1]", body: "a"}}, UploadLimits{}, nil, ErrBadUpload, 400},
		{"payload not JSON", []part{{name: "files[0]", body: "a"}, {name: "payload_json", body: "{nope"}}, UploadLimits{}, nil, ErrBadUpload, 400},
		{"payload too large", []part{{name: "payload_json", body: `"` + big + `"`}}, UploadLimits{MaxPayloadJSON: 100}, nil, ErrTooLarge, 413},
		{"payload repeated", []part{{name: "payload_json", body: "{}"}, {name: "payload_json", body: "{}"}}, UploadLimits{}, nil, ErrBadUpload, 400},
		{"not multipart", []part{{name: "files[0]", body: "a"}}, UploadLimits{}, func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }, ErrBadUpload, 400},
		{"truncated body", []part{{name: "files[0]", filename: "s", body: small}, {name: "files[1]", filename: "t", body: strings.Repeat("t", 90)}}, UploadLimits{}, func(r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b[:len(b)-60]))
			r.ContentLength = int64(len(b) - 60)
		}, ErrBadUpload, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t, Options{MaxFileSize: 160, OwnerQuota: 200})
			r := uploadRequest(t, tt.parts...)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			_, files, err := s.ParseMessageUpload(r, 7, tt.lim)
			if !errors.Is(err, tt.wantErr) || StatusCode(err) != tt.wantStatus {
				t.Fatalf("err = %v (status %d), want %v (%d)", err, StatusCode(err), tt.wantErr, tt.wantStatus)
			}
			if files != nil {
				t.Errorf("files returned with an error: %+v", files)
			}
			if got, _ := s.Usage(7); got != 0 {
				t.Errorf("owner still charged %d bytes after a failed upload", got)
			}
			if got := tmpFiles(t, s); len(got) != 0 {
				t.Errorf("temporary files left: %v", got)
			}
		})
	}
}

func FuzzParseMessageUpload(f *testing.F) {
	seed, ct := multipartBody(f,
		part{name: "payload_json", body: `{"content":"x"}`},
		part{name: "files[0]", filename: "a.png", contentType: "image/png", body: string(pngBytes(f, 2, 2, false))},
		part{name: "files[1]", filename: "b", body: "bbb"},
	)
	_, boundary, _ := strings.Cut(ct, "boundary=")
	f.Add(seed.Bytes(), boundary)
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"files[0]\"\r\n\r\nabc\r\n--x--\r\n"), "x")
	s, _ := newTestStore(f, Options{MaxFileSize: 1 << 10, OwnerQuota: 4 << 10})
	var owner atomic.Uint64
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		o := owner.Add(1)
		_, files, err := s.ParseMessageUpload(r, o, UploadLimits{MaxFiles: 3, MaxRequestBytes: 8 << 10, MaxPayloadJSON: 256})
		used, _ := s.Usage(o)
		if err != nil {
			if used != 0 || files != nil {
				t.Fatalf("failed upload left usage %d, files %v: %v", used, files, err)
			}
			if code := StatusCode(err); code != 400 && code != 413 {
				t.Fatalf("status %d for %v", code, err)
			}
			return
		}
		if len(files) > 3 {
			t.Fatalf("%d files accepted, limit 3", len(files))
		}
		for _, f := range files {
			if f.Filename != SanitizeFilename(f.Filename) {
				t.Fatalf("unsanitised filename %q", f.Filename)
			}
		}
	})
}
