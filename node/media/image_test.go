package media

import (
	"context"
	"encoding/base64"
	"sync/atomic"
	"testing"
)

// FuzzPutImage: whatever a client sends as an avatar, PutImage stores an image or refuses with
// 400/413 and leaves no charge behind.
func FuzzPutImage(f *testing.F) {
	png := pngBytes(f, 2, 2, false)
	f.Add("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	f.Add("data:image/png;base64,aGVsbG8=")
	f.Add("data:text/html;base64," + base64.StdEncoding.EncodeToString([]byte("<script>alert(1)</script>")))
	f.Add("data:image/png,plain")
	f.Add("https://example.com/x.png")
	s, _ := newTestStore(f, Options{MaxFileSize: 1 << 12, OwnerQuota: 1 << 14})
	var owner atomic.Uint64
	f.Fuzz(func(t *testing.T, uri string) {
		o := owner.Add(1)
		b, err := s.PutImage(context.Background(), uri, o)
		used, _ := s.Usage(o)
		if err != nil {
			if code := StatusCode(err); code != 400 && code != 413 {
				t.Fatalf("status %d for %v", code, err)
			}
			if used != 0 {
				t.Fatalf("a refused image left a charge of %d bytes: %v", used, err)
			}
			return
		}
		if !imageTypes[b.ContentType] {
			t.Fatalf("stored %s as an image", b.ContentType)
		}
	})
}
