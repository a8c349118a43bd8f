package server_test

import (
	"net/http"
	"testing"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/testnode"
)

// TestDiskNearlyFull restarts a node whose disk has less free space than its reserve
// (--min-free-disk above anything free): every request that would write answers 507 in the
// error shape [CAPI-165], reads go on, and nothing stored before is lost or changed. Without
// the reserve such a node wrote into its database's memory maps until the kernel killed it.
func TestDiskNearlyFull(t *testing.T) {
	dir := t.TempDir()
	n := testnode.Start(t, testnode.Options{DataDir: dir})
	alice := n.Register(t, "alice")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Full"}, &g)
	var m message
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "before"}, &m)
	n.Stop(t)

	full := testnode.Start(t, testnode.Options{DataDir: dir, Config: func(c *config.Config) { c.MinFreeDisk = 1 << 62 }})
	a := full.Client(t, alice.Token)
	writes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/channels/" + g.text(t) + "/messages", map[string]string{"content": "after"}},
		{"PATCH", "/channels/" + g.text(t) + "/messages/" + m.ID, map[string]string{"content": "edited"}},
		{"POST", "/guilds", map[string]string{"name": "Another"}},
		{"POST", "/auth/register", map[string]string{"username": "carol", "password": "carol password"}},
	}
	for _, w := range writes {
		var e struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
		}
		if st := a.Do(w.method, w.path, w.body, &e); st != http.StatusInsufficientStorage || e.Code == nil || e.Message == "" {
			t.Errorf("%s %s on a full disk: status %d, body %+v; want 507 with code and message", w.method, w.path, st, e)
		}
	}
	var hist []message
	a.Must("GET", "/channels/"+g.text(t)+"/messages", nil, &hist)
	if len(hist) != 1 || hist[0].ID != m.ID || hist[0].Content != "before" {
		t.Fatalf("history on a full disk = %+v, want the one message, unchanged", hist)
	}
}
