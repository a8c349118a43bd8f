package media

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t testing.TB, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServeAttachment(t *testing.T) {
	s, clk := newTestStore(t, Options{})
	h := s.Handler()
	img := pngBytes(t, 16, 16, true)
	pb := mustPut(t, s, img, "a.png", "image/png", 1)
	html := mustPut(t, s, []byte("<html><script>alert(document.cookie)</script>"), "x.png", "image/png", 1)
	svg := mustPut(t, s, []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "x.svg", "image/svg+xml", 1)
	pngURL := s.SignURL(pb.Hash, "a.png", time.Hour)
	unknown := hashOf([]byte("never stored"))

	tests := []struct {
		name       string
		method     string
		target     string
		hdr        []string
		wantStatus int
		wantHdr    map[string]string
		wantBody   string
	}{
		{"png", "GET", pngURL, nil, 200, map[string]string{
			"Content-Type":            "image/png",
			"X-Content-Type-Options":  "nosniff",
			"Content-Security-Policy": "default-src 'none'; sandbox",
			"Content-Disposition":     `inline; filename=a.png`,
			"ETag":                    `"` + pb.Hash.String() + `"`,
			"Cache-Control":           "public, max-age=3600, immutable",
			"Accept-Ranges":           "bytes",
		}, string(img)},
		{"head", "HEAD", pngURL, nil, 200, map[string]string{"Content-Length": strconv.Itoa(len(img))}, ""},
		{"range", "GET", pngURL, []string{"Range", "bytes=1-3"}, 206, map[string]string{"Content-Range": "bytes 1-3/" + strconv.Itoa(len(img))}, string(img[1:4])},
		{"if-none-match", "GET", pngURL, []string{"If-None-Match", `"` + pb.Hash.String() + `"`}, 304, nil, ""},
		{"if-range stale", "GET", pngURL, []string{"Range", "bytes=1-3", "If-Range", `"other"`}, 200, nil, string(img)},
		{"html is downloaded", "GET", s.SignURL(html.Hash, "x.png", time.Hour), nil, 200, map[string]string{
			"Content-Type":        "text/html; charset=utf-8",
			"Content-Disposition": "attachment; filename=x.png",
		}, ""},
		{"svg is downloaded", "GET", s.SignURL(svg.Hash, "x.svg", time.Hour), nil, 200, map[string]string{
			"Content-Type":        "image/svg+xml",
			"Content-Disposition": "attachment; filename=x.svg",
		}, ""},
		{"unicode filename", "GET", s.SignURL(pb.Hash, "ünï.png", time.Hour), nil, 200, map[string]string{
			"Content-Disposition": "inline; filename*=utf-8''%C3%BCn%C3%AF.png",
		}, ""},
		{"no signature", "GET", strings.Split(pngURL, "?")[0], nil, 403, map[string]string{"Cache-Control": "no-store"}, ""},
		{"renamed", "GET", strings.Replace(pngURL, "a.png", "a.html", 1), nil, 403, nil, ""},
		{"unknown blob", "GET", s.SignURL(unknown, "a", time.Hour), nil, 404, nil, ""},
		{"malformed hash", "GET", "/attachments/ABC/a.png?ex=1&sig=x", nil, 404, nil, ""},
		{"method", "POST", pngURL, nil, 405, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, h, tt.method, tt.target, tt.hdr...)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			for k, v := range tt.wantHdr {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.wantBody != "" && w.Body.String() != tt.wantBody {
				t.Errorf("body differs (%d bytes, want %d)", w.Body.Len(), len(tt.wantBody))
			}
			if tt.method == "HEAD" && w.Body.Len() != 0 {
				t.Error("HEAD has a body")
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		clk.Advance(time.Hour)
		if w := get(t, h, "GET", pngURL); w.Code != 403 {
			t.Errorf("status = %d, want 403", w.Code)
		}
	})
}

// bombPNG returns a tiny PNG whose header declares w×h pixels.
func bombPNG(t testing.TB, w, h uint32) []byte {
	b := pngBytes(t, 1, 1, true)
	// IHDR data starts after the 8-byte signature, 4-byte length and 4-byte type.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func TestThumbnails(t *testing.T) {
	checkNoLeak(t)
	s, _ := newTestStore(t, Options{})
	h := s.Handler()
	big := mustPut(t, s, pngBytes(t, 1000, 500, true), "big.png", "", 1)
	alpha := mustPut(t, s, pngBytes(t, 40, 80, false), "alpha.png", "", 1)
	bomb := mustPut(t, s, bombPNG(t, 100_000, 100_000), "bomb.png", "", 1)
	text := mustPut(t, s, []byte("not an image"), "t.txt", "", 1)
	if bomb.Width != 100_000 {
		t.Fatalf("bomb dims = %dx%d", bomb.Width, bomb.Height)
	}
	// The background worker renders queued images without anyone asking.
	waitFor(t, 10*time.Second, func() string {
		if m, _ := s.meta(big.Hash); m.Thumb != thumbReady {
			return "big.png thumbnail not rendered in the background"
		}
		return ""
	})
	tests := []struct {
		name       string
		b          Blob
		wantStatus int
		wantType   string
		wantW      int
		wantH      int
	}{
		{"scaled jpeg", big, 200, "image/jpeg", 512, 256},
		{"alpha keeps png", alpha, 200, "image/png", 40, 80},
		{"bomb refused", bomb, 404, "", 0, 0},
		{"not an image", text, 404, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, h, "GET", s.SignThumbnailURL(tt.b.Hash, "f", time.Hour))
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
			}
			if et := w.Header().Get("ETag"); et != `"`+tt.b.Hash.String()+`.thumb"` {
				t.Errorf("ETag = %q", et)
			}
			cfg, _, err := image.DecodeConfig(bytes.NewReader(w.Body.Bytes()))
			if err != nil || cfg.Width != tt.wantW || cfg.Height != tt.wantH {
				t.Errorf("thumbnail = %dx%d, %v; want %dx%d", cfg.Width, cfg.Height, err, tt.wantW, tt.wantH)
			}
		})
	}
	if m, _ := s.meta(bomb.Hash); m.Thumb != thumbFailed {
		t.Errorf("bomb thumb state = %d, want failed (never retried)", m.Thumb)
	}
}
