// Package media holds the conformance tests of spec/media.md (prefix MEDIA):
// multipart uploads, the attachment object, signed media URLs, response headers
// and thumbnails, all through the public HTTP routes.
package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

type (
	// T is the test context.
	T = harness.T
	// Obj is a decoded JSON object.
	Obj = harness.Obj
)

var str = harness.Str

// Tests are the media tests, in a stable order.
var Tests = []harness.Test{
	{IDs: []string{"MEDIA-090", "MEDIA-091", "MEDIA-093"}, Name: "media/avatars-and-icons", Run: avatarsAndIcons},
	{IDs: []string{"MEDIA-092"}, Name: "media/bad-avatars-refused", Run: badAvatars},
	{IDs: []string{"MEDIA-001", "MEDIA-024"}, Name: "media/hash-and-signed-urls", Run: hashAndURLs},
	{IDs: []string{"MEDIA-003"}, Name: "media/hash-form", Run: hashForm},
	{IDs: []string{"MEDIA-010", "MEDIA-011"}, Name: "media/ten-files", Run: tenFiles},
	{IDs: []string{"MEDIA-012", "MEDIA-017"}, Name: "media/bad-multipart", Run: badMultipart},
	{IDs: []string{"MEDIA-013"}, Name: "media/content-length-over-limit", Run: contentLengthOver},
	{IDs: []string{"MEDIA-014"}, Name: "media/file-over-limit-streaming", Run: fileOverLimit},
	{IDs: []string{"MEDIA-015"}, Name: "media/close-after-413", Run: closeAfter413},
	{IDs: []string{"MEDIA-018"}, Name: "media/filename-sanitised", Run: filenames},
	{IDs: []string{"MEDIA-020", "MEDIA-021"}, Name: "media/content-type-sniffed", Run: sniffing},
	{IDs: []string{"MEDIA-022", "MEDIA-023"}, Name: "media/image-dimensions", Run: dimensions},
	{IDs: []string{"MEDIA-030", "MEDIA-031"}, Name: "media/signature-checked", Run: signatures},
	{IDs: []string{"MEDIA-033"}, Name: "media/methods", Run: methods},
	{IDs: []string{"MEDIA-034"}, Name: "media/urls-survive-restart", Needs: harness.Needs{OwnNode: true, Managed: true}, Run: urlsSurviveRestart},
	{IDs: []string{"MEDIA-040", "MEDIA-041", "MEDIA-042"}, Name: "media/response-headers", Run: headers},
	{IDs: []string{"MEDIA-043", "MEDIA-044"}, Name: "media/etag", Run: etags},
	{IDs: []string{"MEDIA-045"}, Name: "media/ranges", Run: ranges},
	{IDs: []string{"MEDIA-046"}, Name: "media/cache-control", Run: cacheControl},
	{IDs: []string{"MEDIA-050"}, Name: "media/thumbnail", Run: thumbnail},
	{IDs: []string{"MEDIA-051", "MEDIA-053"}, Name: "media/image-bomb-no-thumbnail", Run: bomb},
	{IDs: []string{"MEDIA-052", "MEDIA-053"}, Name: "media/render-time-bound",
		Needs: harness.Needs{OwnNode: true, Managed: true, Args: []string{"--media-thumb-timeout", "1ns"}}, Run: renderBound},
	{IDs: []string{"MEDIA-016", "MEDIA-032", "MEDIA-060", "MEDIA-061"}, Name: "media/quota-and-collection",
		Needs: harness.Needs{OwnNode: true, Managed: true, Args: collectionArgs}, Run: quotaAndCollection},
	{IDs: []string{"MEDIA-002", "MEDIA-019"}, Name: "media/stored-once-not-by-name", Needs: harness.Needs{OwnNode: true, Managed: true}, Run: storedOnce},
	{IDs: []string{"MEDIA-063"}, Name: "media/crash-leftovers-collected", Needs: harness.Needs{OwnNode: true, Managed: true, Args: gcArgs}, Run: crashLeftovers},
}

// file is one files[n] part.
type file struct {
	name, ctype string
	data        []byte
}

// quoteEscaper escapes a file name for a quoted Content-Disposition parameter, as
// mime/multipart does; any other byte, including non-ASCII, is sent as is.
var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"")

// form builds a multipart body: payload_json, then files[0..].
func form(payload Obj, files ...file) (body []byte, ctype string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if payload != nil {
		_ = w.WriteField("payload_json", harness.JSON(payload))
	}
	for i, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="files[%d]"; filename="%s"`, i, quoteEscaper.Replace(f.name)))
		if f.ctype != "" {
			h.Set("Content-Type", f.ctype)
		}
		p, _ := w.CreatePart(h)
		_, _ = p.Write(f.data)
	}
	_ = w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

// post sends a raw request with a content type and returns the answer.
func post(t *T, u *harness.User, path, ctype string, body io.Reader, length int64) *harness.Response {
	req, err := http.NewRequestWithContext(t.Ctx, "POST", u.Node.BaseURL+harness.API+path, body)
	if err != nil {
		t.Fatalf("%v", err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", u.Token)
	return do(t, req)
}

var client = &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *T, req *http.Request) *harness.Response {
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return &harness.Response{Status: resp.StatusCode, Header: resp.Header, Body: data, Close: resp.Close, Req: req.Method + " " + req.URL.Path}
}

// upload posts a message with files and returns its attachments.
func upload(t *T, u *harness.User, channel string, files ...file) []Obj {
	_, att := uploadMessage(t, u, channel, files...)
	return att
}

// uploadMessage posts a message with files and returns its ID and attachments.
func uploadMessage(t *T, u *harness.User, channel string, files ...file) (id string, attachments []Obj) {
	r := postFiles(t, u, channel, files...)
	if r.Status != 200 {
		t.Fatalf("upload: expected 200, got %s", r)
	}
	var m struct {
		ID          string `json:"id"`
		Attachments []Obj  `json:"attachments"`
	}
	if err := r.JSON(&m); err != nil {
		t.Fatalf("%v", err)
	}
	if len(m.Attachments) != len(files) {
		t.Fatalf("upload of %d files answered %d attachments: %s", len(files), len(m.Attachments), r)
	}
	return m.ID, m.Attachments
}

// postFiles posts a message with files and returns the answer, whatever it is.
func postFiles(t *T, u *harness.User, channel string, files ...file) *harness.Response {
	body, ct := form(Obj{"content": "files"}, files...)
	return post(t, u, "/channels/"+channel+"/messages", ct, bytes.NewReader(body), int64(len(body)))
}

// get fetches a media URL (absolute, or relative to the node) with extra headers.
func get(t *T, method, raw string, hdr ...string) *harness.Response {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("media URL %q: %v", raw, err)
	}
	base, _ := url.Parse(t.Node.BaseURL)
	u.Scheme, u.Host = base.Scheme, base.Host // the suite reaches the node at its own address
	req, err := http.NewRequestWithContext(t.Ctx, method, u.String(), nil)
	if err != nil {
		t.Fatalf("%v", err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

// hashOf is the blob name of data.
func hashOf(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// pngBytes encodes a w×h opaque PNG.
func pngBytes(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// pathHash returns the hash segment of a media URL path.
func pathHash(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) < 3 {
		return ""
	}
	return parts[1]
}

// setup makes a user and a guild and returns them with the text channel.
func setup(t *T) (*harness.User, *harness.Guild) {
	u := t.NewUser()
	return u, t.NewGuild(u)
}
