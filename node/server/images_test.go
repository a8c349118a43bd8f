package server_test

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"testing"
)

// pngDataURI returns a small PNG of one colour and its data URI.
func pngDataURI(t *testing.T, c color.Color) ([]byte, string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < 64; i++ {
		img.Set(i%8, i/8, c)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}

// TestAvatarsAndIcons: avatars and guild icons are set with data URIs as in Discord, served at
// Discord's CDN paths while they are current, and refused when they are not images.
func TestAvatarsAndIcons(t *testing.T) {
	n, alice, _, g, _, bg := setup(t)
	raw, uri := pngDataURI(t, color.RGBA{200, 80, 20, 255})

	var me struct {
		ID     string
		Avatar *string
	}
	alice.Must("PATCH", "/users/@me", map[string]any{"avatar": uri}, &me)
	if me.Avatar == nil || len(*me.Avatar) != 64 {
		t.Fatalf("avatar = %v, want a 64-hex hash", me.Avatar)
	}
	avatarURL := n.URL + "/avatars/" + me.ID + "/" + *me.Avatar + ".png"
	resp, err := http.Get(avatarURL)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body.Bytes(), raw) || resp.Header.Get("Content-Type") != "image/png" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET avatar: %d %q, %d bytes", resp.StatusCode, resp.Header, body.Len())
	}
	status := func(url string) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Only the current image of that user: another user's path or another hash is 404.
	if st := status(n.URL + "/avatars/" + g.ID + "/" + *me.Avatar + ".png"); st != 404 {
		t.Fatalf("the avatar under another ID: %d, want 404", st)
	}

	bad := []map[string]any{
		{"avatar": "data:text/plain;base64,aGVsbG8gd29ybGQ="}, // not an image
		{"avatar": "https://example.com/a.png"},               // not a data URI
		{"avatar": "data:image/png;base64,@@@@"},              // not base64
	}
	for _, b := range bad {
		if st := alice.Do("PATCH", "/users/@me", b, nil); st != 400 {
			t.Errorf("PATCH %v: %d, want 400", b, st)
		}
	}

	// null removes the avatar, and its URL stops working.
	alice.Must("PATCH", "/users/@me", map[string]any{"avatar": nil}, &me)
	if me.Avatar != nil {
		t.Fatalf("avatar after null = %v", *me.Avatar)
	}
	if st := status(avatarURL); st != 404 {
		t.Fatalf("removed avatar: %d, want 404", st)
	}

	// A guild icon, the same way; members see it in GUILD_UPDATE.
	_, icon := pngDataURI(t, color.RGBA{20, 80, 200, 255})
	var gu struct{ Icon *string }
	alice.Must("PATCH", "/guilds/"+g.ID, map[string]any{"icon": icon}, &gu)
	if gu.Icon == nil {
		t.Fatal("no icon hash")
	}
	bg.Wait("GUILD_UPDATE")
	if st := status(n.URL + "/icons/" + g.ID + "/" + *gu.Icon + ".webp"); st != 200 {
		t.Fatalf("GET icon: %d", st)
	}
}

// TestProfileChangeReachesMembers: a new display name or avatar reaches the other members of
// the user's guilds as GUILD_MEMBER_UPDATE.
func TestProfileChangeReachesMembers(t *testing.T) {
	_, alice, _, _, _, bg := setup(t)
	_, uri := pngDataURI(t, color.RGBA{1, 2, 3, 255})
	alice.Must("PATCH", "/users/@me", map[string]any{"global_name": "Alice the First", "avatar": uri}, nil)
	var m struct {
		User struct {
			GlobalName *string `json:"global_name"`
			Avatar     *string
		}
	}
	bg.Wait("GUILD_MEMBER_UPDATE").Decode(t, &m)
	if m.User.GlobalName == nil || *m.User.GlobalName != "Alice the First" || m.User.Avatar == nil {
		t.Fatalf("member update = %+v", m.User)
	}
}
