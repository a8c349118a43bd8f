package clientweb

import (
	"io/fs"
	"strings"
	"testing"
)

// TestFSHasApp checks that the embedded build holds index.html and that every asset it names exists.
func TestFSHasApp(t *testing.T) {
	f := FS()
	html, err := fs.ReadFile(f, "index.html")
	if err != nil {
		t.Fatalf("read index.html: %v", err)
	}
	for _, part := range strings.Split(string(html), `"/`)[1:] {
		name := part[:strings.IndexByte(part, '"')]
		if !strings.HasPrefix(name, "assets/") {
			continue
		}
		if _, err := fs.Stat(f, name); err != nil {
			t.Errorf("index.html names %s, which is not embedded: %v", name, err)
		}
	}
	if !strings.Contains(string(html), `src="/assets/app-`) {
		t.Errorf("index.html does not load the app bundle:\n%s", html)
	}
}
