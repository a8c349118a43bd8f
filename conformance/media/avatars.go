package media

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// dataURI is a base64 data URI of data declared as ctype.
func dataURI(ctype string, data []byte) string {
	return "data:" + ctype + ";base64," + base64.StdEncoding.EncodeToString(data)
}

// MEDIA-090: a PNG, JPEG, GIF or WebP data URI sets the avatar (icon) to the
// blob's hash. MEDIA-091: null removes it. MEDIA-093: GET /avatars/{user}/{hash}.{ext}
// and /icons/{guild}/{hash}.{ext} serve it without authorisation, with its type,
// nosniff, a strong ETag and public immutable caching; any other hash is 404.
func avatarsAndIcons(t *T) {
	u, g := setup(t)
	img := pngBytes(6, 5)
	var me Obj
	t.Must(u.Client, 200, "PATCH", "/users/@me", Obj{"avatar": dataURI("image/png", img)}, &me)
	if h := str(me["avatar"]); h != hashOf(img) {
		t.Errorf("MEDIA-090: avatar %q, expected the blob's hash %s", h, hashOf(img))
	}
	check := func(what, path string) {
		r := get(t, "GET", u.Node.BaseURL+path)
		if r.Status != 200 || !bytes.Equal(r.Body, img) {
			t.Errorf("MEDIA-093: GET %s (no token): %d with %d bytes", path, r.Status, len(r.Body))
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "image/png" {
			t.Errorf("MEDIA-093: %s served as %q", what, ct)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("MEDIA-093: %s lacks X-Content-Type-Options: nosniff", what)
		}
		if et := r.Header.Get("ETag"); et == "" || strings.HasPrefix(et, "W/") {
			t.Errorf("MEDIA-093: %s ETag %q is not strong", what, et)
		}
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "public") || !strings.Contains(cc, "immutable") {
			t.Errorf("MEDIA-093: %s Cache-Control %q", what, cc)
		}
	}
	check("an avatar", "/avatars/"+u.ID+"/"+hashOf(img)+".png")
	check("an avatar (other extension)", "/avatars/"+u.ID+"/"+hashOf(img)+".webp")
	other := t.NewUser()
	if r := get(t, "GET", u.Node.BaseURL+"/avatars/"+other.ID+"/"+hashOf(img)+".png"); r.Status != 404 {
		t.Errorf("MEDIA-093: the avatar's hash under another user answered %d, expected 404", r.Status)
	}

	var gg Obj
	t.Must(u.Client, 200, "PATCH", "/guilds/"+g.ID, Obj{"icon": dataURI("image/png", img)}, &gg)
	if h := str(gg["icon"]); h != hashOf(img) {
		t.Errorf("MEDIA-090: icon %q, expected %s", h, hashOf(img))
	}
	check("an icon", "/icons/"+g.ID+"/"+hashOf(img)+".png")

	t.Must(u.Client, 200, "PATCH", "/users/@me", Obj{"avatar": nil}, &me)
	if me["avatar"] != nil {
		t.Errorf("MEDIA-091: avatar after null is %v", me["avatar"])
	}
	if r := get(t, "GET", u.Node.BaseURL+"/avatars/"+u.ID+"/"+hashOf(img)+".png"); r.Status != 404 {
		t.Errorf("MEDIA-091/MEDIA-093: a removed avatar is still served (%d)", r.Status)
	}
	t.Must(u.Client, 200, "PATCH", "/guilds/"+g.ID, Obj{"icon": nil}, &gg)
	if gg["icon"] != nil {
		t.Errorf("MEDIA-091: icon after null is %v", gg["icon"])
	}
}

// MEDIA-092: "A node MUST answer 400 (code 50035) for a value that is not a base64
// data URI or whose bytes are not one of those image types, whatever type the URI
// declares, and store nothing."
func badAvatars(t *T) {
	u, _ := setup(t)
	html := []byte("<html><script>alert(1)</script></html>")
	for what, v := range map[string]any{
		"HTML declared as PNG": dataURI("image/png", html),
		"a URL":                "https://example.org/a.png",
		"broken base64":        "data:image/png;base64,@@@",
		"a number":             42,
		"plain text as text":   dataURI("text/plain", []byte("hello")),
	} {
		if t.ErrorBody(t.Call(u.Client, "PATCH", "/users/@me", Obj{"avatar": v}), 400, 50035) == nil {
			t.Logf("the refused value: %s", what)
		}
	}
	if r := get(t, "GET", u.Node.BaseURL+"/avatars/"+u.ID+"/"+hashOf(html)+".png"); r.Status != 404 {
		t.Errorf("a refused avatar is served (%d)", r.Status)
	}
	var me Obj
	t.Must(u.Client, 200, "GET", "/users/@me", nil, &me)
	if me["avatar"] != nil {
		t.Errorf("a refused avatar was set: %v", me["avatar"])
	}
}
