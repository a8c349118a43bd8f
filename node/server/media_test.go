package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/hearth-chat/hearth/node/testnode"
)

// upload posts a multipart message with one file and returns the status and decoded body.
func upload(t *testing.T, c *testnode.Client, channel, filename string, data []byte, payload string) (int, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if payload != "" {
		_ = w.WriteField("payload_json", payload)
	}
	fw, _ := w.CreateFormFile("files[0]", filename)
	_, _ = fw.Write(data)
	_ = w.Close()
	req, _ := http.NewRequest("POST", c.Node.URL+"/api/v10/channels/"+channel+"/messages", &buf)
	req.Header.Set("Authorization", c.Token)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAttachments(t *testing.T) {
	_, alice, bob, g, _, bg := setup(t)
	ch := g.text(t)
	content := []byte("hello, this is a plain text file\n")
	st, m := upload(t, alice, ch, "../../etc/notes.txt", content, `{"content":"see attached"}`)
	if st != 200 {
		t.Fatalf("upload: %d %v", st, m)
	}
	atts, _ := m["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("attachments = %v", m["attachments"])
	}
	a := atts[0].(map[string]any)
	if a["filename"] == "../../etc/notes.txt" || a["size"].(float64) != float64(len(content)) || a["url"] == "" {
		t.Fatalf("attachment = %v", a)
	}
	var created message
	bg.Wait("MESSAGE_CREATE").Decode(t, &created)

	// The signed URL serves the bytes; without the signature it is refused.
	url := a["url"].(string)
	resp, err := http.Get(alice.Node.URL + url)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, content) || resp.Header.Get("ETag") == "" {
		t.Fatalf("download: %d %q etag=%q", resp.StatusCode, got, resp.Header.Get("ETag"))
	}
	unsigned := url[:bytes.IndexByte([]byte(url), '?')]
	if resp, err := http.Get(alice.Node.URL + unsigned); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("unsigned download: %d, want 403", resp.StatusCode)
		}
	}

	// A file alone (no content) is a message; a missing ATTACH_FILES permission is refused.
	if st, _ := upload(t, bob, ch, "a.txt", []byte("x"), ""); st != 200 {
		t.Fatalf("file-only message: %d", st)
	}
	alice.Must("PUT", "/channels/"+ch+"/permissions/"+bob.UserID, map[string]any{"type": 1, "allow": "0", "deny": "32768"}, nil)
	if st, _ := upload(t, bob, ch, "b.txt", []byte("y"), ""); st != 403 {
		t.Fatalf("upload without ATTACH_FILES: %d, want 403", st)
	}
	// Too large: refused with 413 and Discord's code.
	big := make([]byte, 26<<20)
	if st, body := upload(t, alice, ch, "big.bin", big, ""); st != 413 || body["code"].(float64) != 40005 {
		t.Fatalf("oversized upload: %d %v", st, body)
	}
}
