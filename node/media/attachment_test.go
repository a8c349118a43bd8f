package media

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAttachment(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	h := s.Handler()
	img := mustPut(t, s, pngBytes(t, 30, 10, true), "a.png", "", 1)
	txt := mustPut(t, s, []byte("plain words"), "n o.txt", "", 1)
	tests := []struct {
		name     string
		b        Blob
		filename string
		wantJSON string // fields other than the URLs
		thumb    bool
	}{
		{"image", img, "a.png", `{"id":"42","filename":"a.png","content_type":"image/png","size":` + itoa64(img.Size) + `,"width":30,"height":10}`, true},
		{"text", txt, "n_o.txt", `{"id":"42","filename":"n_o.txt","content_type":"text/plain; charset=utf-8","size":11}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.Attachment("https://chat.example.org/", 42, tt.filename, tt.b, time.Hour)
			for _, u := range []string{a.URL, a.ProxyURL} {
				if !strings.HasPrefix(u, "https://chat.example.org/") {
					t.Fatalf("URL %q lacks the base", u)
				}
				pu, err := url.Parse(u)
				if err != nil {
					t.Fatal(err)
				}
				if w := get(t, h, "GET", pu.RequestURI()); w.Code != 200 {
					t.Errorf("GET %s: %d", pu.RequestURI(), w.Code)
				}
			}
			if isThumb := strings.Contains(a.ProxyURL, ThumbnailsPrefix); isThumb != tt.thumb || (!tt.thumb && a.ProxyURL != a.URL) {
				t.Errorf("proxy_url = %q", a.ProxyURL)
			}
			a.URL, a.ProxyURL = "", ""
			got, _ := json.Marshal(a)
			var m map[string]any
			json.Unmarshal(got, &m)
			delete(m, "url")
			delete(m, "proxy_url")
			got, _ = json.Marshal(m)
			var want map[string]any
			json.Unmarshal([]byte(tt.wantJSON), &want)
			wantB, _ := json.Marshal(want)
			if string(got) != string(wantB) {
				t.Errorf("JSON = %s, want %s", got, wantB)
			}
		})
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
