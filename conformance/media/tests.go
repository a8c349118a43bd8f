package media

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"image"
	_ "image/jpeg" // thumbnails may be JPEG
	_ "image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// MEDIA-001: "A node MUST name a blob by the SHA-256 of exactly its bytes." MEDIA-024:
// "url and proxy_url MUST be signed media URLs (§3.1) minted when the message is
// returned"; proxy_url is the thumbnail URL for images and equal to url otherwise.
func hashAndURLs(t *T) {
	u, g := setup(t)
	img, txt := pngBytes(8, 8), []byte("plain text "+harness.RandName())
	att := upload(t, u, g.Text, file{"a.png", "image/png", img}, file{"b.txt", "text/plain", txt})
	for i, want := range []string{hashOf(img), hashOf(txt)} {
		if h := pathHash(str(att[i]["url"])); h != want {
			t.Errorf("attachment %d url hash %q, expected sha256 %s", i, h, want)
		}
		if size := harness.Num(att[i]["size"]); int(size) != []int{len(img), len(txt)}[i] {
			t.Errorf("attachment %d size %v", i, size)
		}
		for _, k := range []string{"url", "proxy_url"} {
			pu, err := url.Parse(str(att[i][k]))
			if err != nil || pu.Query().Get("ex") == "" || pu.Query().Get("sig") == "" {
				t.Errorf("attachment %d %s %q is not a signed URL", i, k, str(att[i][k]))
			}
		}
	}
	if !strings.Contains(str(att[0]["proxy_url"]), "/thumbnails/") {
		t.Errorf("image proxy_url %q is not a thumbnail URL", str(att[0]["proxy_url"]))
	}
	if str(att[1]["proxy_url"]) != str(att[1]["url"]) {
		t.Errorf("non-image proxy_url %q differs from url %q", str(att[1]["proxy_url"]), str(att[1]["url"]))
	}
	if r := get(t, "GET", str(att[1]["url"])); r.Status != 200 || !bytes.Equal(r.Body, txt) {
		t.Errorf("download: expected 200 with the uploaded bytes, got %s", r)
	}
}

// MEDIA-003: "A node MUST accept only the lowercase 64-hex-digit form of a hash in
// URLs and events, and MUST answer 404 to any other form in a media URL."
func hashForm(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text, file{"c.txt", "text/plain", []byte("case " + harness.RandName())})
	raw := str(att[0]["url"])
	h := pathHash(raw)
	for _, bad := range []string{strings.ToUpper(h), h[:63], h + "0"} {
		if r := get(t, "GET", strings.Replace(raw, h, bad, 1)); r.Status != 404 {
			t.Errorf("hash %q: expected 404, got %s", bad, r)
		}
	}
}

// MEDIA-010: "A node MUST accept up to 10 files[n] parts in one request" and
// MEDIA-011: "MUST reject more with 400."
func tenFiles(t *T) {
	u, g := setup(t)
	var files []file
	for i := range 11 {
		files = append(files, file{fmt.Sprintf("f%d.txt", i), "text/plain", []byte(fmt.Sprint("file ", i, harness.RandName()))})
	}
	upload(t, u, g.Text, files[:10]...)
	body, ct := form(Obj{"content": "eleven"}, files...)
	if r := post(t, u, "/channels/"+g.Text+"/messages", ct, bytes.NewReader(body), int64(len(body))); r.Status != 400 {
		t.Errorf("11 files: expected 400, got %s", r)
	}
}

// MEDIA-012: repeated n, malformed part name, repeated payload_json, payload_json not
// JSON, and a body that is not well-formed multipart get 400. MEDIA-017: "When any
// part of an upload fails, a node ... MUST NOT create the message."
func badMultipart(t *T) {
	u, g := setup(t)
	// Precondition: a well-formed upload works, so the refusals below are about form.
	upload(t, u, g.Text, file{"ok.txt", "text/plain", []byte("ok " + harness.RandName())})
	var before []Obj
	t.Must(u.Client, 200, "GET", "/channels/"+g.Text+"/messages", nil, &before)
	const boundary = "conformanceboundary"
	part := func(name, filename, data string) string {
		fn := ""
		if filename != "" {
			fn = fmt.Sprintf(`; filename="%s"`, filename)
		}
		return fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=\"%s\"%s\r\n\r\n%s\r\n", boundary, name, fn, data)
	}
	payload := part("payload_json", "", `{"content":"must not exist"}`)
	end := "--" + boundary + "--\r\n"
	cases := map[string]string{
		"repeated files[0]":     payload + part("files[0]", "a.txt", "a") + part("files[0]", "b.txt", "b") + end,
		"files[x]":              payload + part("files[x]", "a.txt", "a") + end,
		"files[01]":             payload + part("files[01]", "a.txt", "a") + end,
		"repeated payload_json": payload + payload + part("files[0]", "a.txt", "a") + end,
		"payload_json not JSON": part("payload_json", "", `{"content":`) + part("files[0]", "a.txt", "a") + end,
		"truncated multipart":   payload + "--" + boundary + "\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\n\r\nabc",
	}
	for what, body := range cases {
		r := post(t, u, "/channels/"+g.Text+"/messages", "multipart/form-data; boundary="+boundary, strings.NewReader(body), int64(len(body)))
		if r.Status != 400 {
			t.Errorf("%s: expected 400, got %s", what, r)
		}
	}
	var msgs []Obj
	t.Must(u.Client, 200, "GET", "/channels/"+g.Text+"/messages", nil, &msgs)
	if len(msgs) != len(before) {
		t.Errorf("failed uploads created messages: %d before, %d after", len(before), len(msgs))
	}
}

// rawPost writes request headers and the first bytes of a body over a raw
// connection, then reads the answer: a node that waits for the whole body never
// answers within the timeout.
func rawPost(t *T, u *harness.User, path string, hdr string, first []byte) (*http.Response, error) {
	addr := strings.TrimPrefix(t.Node.BaseURL, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(t.Timeout()))
	fmt.Fprintf(conn, "POST %s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n%s\r\n", harness.API, path, addr, u.Token, hdr)
	_, _ = conn.Write(first)
	return http.ReadResponse(bufioReader(conn), nil)
}

// MEDIA-013: "A node MUST answer 413 (Discord code 40005) without reading the body
// when Content-Length exceeds its request limit."
func contentLengthOver(t *T) {
	if !strings.HasPrefix(t.Node.BaseURL, "http://") {
		t.Skipf("raw-connection check needs plain HTTP")
	}
	u, g := setup(t)
	resp, err := rawPost(t, u, "/channels/"+g.Text+"/messages",
		"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 10737418240\r\n", []byte("--x\r\n"))
	if err != nil {
		t.Fatalf("announced 10 GiB: expected 413 before the body, got no answer (%v)", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(body), "40005") {
		t.Errorf("announced 10 GiB: expected 413 with code 40005, got %d %s", resp.StatusCode, body)
	}
}

// streamBig posts a 64 MiB file with chunked encoding and returns the answer.
func streamBig(t *T) *harness.Response {
	u, g := setup(t)
	pr, pw := io.Pipe()
	mw := newStreamingForm(pw)
	go func() { // owned by the caller: ends when the body is written or the node stops reading
		defer pw.Close()
		w, err := mw.file("big.bin")
		if err != nil {
			return
		}
		chunk := make([]byte, 1<<20)
		for i := 0; i < 64; i++ { // 64 MiB, well past 25 MiB
			if _, err := w.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		_ = mw.close()
	}()
	r := post(t, u, "/channels/"+g.Text+"/messages", mw.contentType(), pr, -1)
	pr.CloseWithError(io.ErrClosedPipe)
	return r
}

// MEDIA-014: "A node MUST stop reading and answer 413 as soon as a body without a
// trustworthy length passes the request limit, or one file passes the per-file limit
// (default 25 MiB)."
func fileOverLimit(t *T) {
	if r := streamBig(t); r.Status != 413 {
		t.Errorf("64 MiB file, chunked: expected 413, got %s", r)
	}
}

// MEDIA-015: "It SHOULD close the connection after such a 413 rather than drain the
// body." Checked through the Connection: close header of the answer.
func closeAfter413(t *T) {
	r := streamBig(t)
	if r.Status != 413 {
		t.Fatalf("64 MiB file, chunked: expected 413, got %s", r)
	}
	if !r.Close && r.Header.Get("Connection") != "close" {
		t.Errorf("the 413 answer does not announce Connection: close (got %q)", r.Header.Get("Connection"))
	}
}

// MEDIA-018: file names are sanitised: last path element, unsafe characters to _,
// leading dots stripped, Windows device names prefixed with _, "file" if empty.
func filenames(t *T) {
	u, g := setup(t)
	cases := []struct{ in, want string }{
		{"../../etc/passwd", "passwd"},
		{`C:\Windows\evil.txt`, "evil.txt"},
		{"a<b>c?.txt", "a_b_c_.txt"},
		{"\u202Etxt.exe", "_txt.exe"},
		{"..hidden", "hidden"},
		{"CON.txt", "_CON.txt"},
		{"trailing...", "trailing"},
		{"...", "file"},
	}
	var files []file
	for i, c := range cases {
		files = append(files, file{c.in, "text/plain", []byte(fmt.Sprint("name ", i, harness.RandName()))})
	}
	att := upload(t, u, g.Text, files...)
	for i, c := range cases {
		if got := str(att[i]["filename"]); got != c.want {
			t.Errorf("file name %q stored as %q, expected %q", c.in, got, c.want)
		}
	}
}

// MEDIA-020: the sniffed type wins whenever sniffing recognises a signature.
// MEDIA-021: when sniffing is inconclusive, no inline type other than text/plain.
func sniffing(t *T) {
	u, g := setup(t)
	random := make([]byte, 600)
	_, _ = rand.Read(random)
	random[0] = 0x01 // not a known signature
	att := upload(t, u, g.Text,
		file{"x.png", "image/png", []byte("<html><body>" + harness.RandName() + "</body></html>")},
		file{"p.bin", "application/octet-stream", pngBytes(4, 4)},
		file{"y.png", "image/png", random},
		file{"z.png", "image/png", []byte("just words " + harness.RandName())},
	)
	ct := func(i int) string { return strings.TrimSpace(strings.Split(str(att[i]["content_type"]), ";")[0]) }
	// Recognised signatures win over the declared type.
	for i, w := range []string{"text/html", "image/png"} {
		if ct(i) != w {
			t.Errorf("file %s: content_type %q, expected the sniffed %q", str(att[i]["filename"]), ct(i), w)
		}
	}
	// Inconclusive: never an inline type, except text/plain for text.
	if c := ct(2); inline[c] {
		t.Errorf("random bytes declared image/png: content_type %q is displayed inline", c)
	}
	if c := ct(3); inline[c] && c != "text/plain" {
		t.Errorf("plain text declared image/png: content_type %q", c)
	}
}

// MEDIA-022: PNG, JPEG, GIF and WebP report width and height from the header.
// MEDIA-023: width and height for images, omitted otherwise.
func dimensions(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text, file{"i.png", "image/png", pngBytes(37, 21)}, file{"t.txt", "text/plain", []byte("no image " + harness.RandName())})
	if harness.Num(att[0]["width"]) != 37 || harness.Num(att[0]["height"]) != 21 {
		t.Errorf("37×21 PNG: width %v height %v", att[0]["width"], att[0]["height"])
	}
	if att[1]["width"] != nil || att[1]["height"] != nil {
		t.Errorf("text file has width/height: %s", harness.JSON(att[1]))
	}
}

// MEDIA-030: no bytes for a missing, malformed, wrong or expired signature: 403.
// MEDIA-031: the signature is checked before the blob lookup.
func signatures(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text, file{"s.txt", "text/plain", []byte("signed " + harness.RandName())})
	good, _ := url.Parse(str(att[0]["url"]))
	variant := func(f func(q url.Values, p *string)) string {
		c := *good
		q := c.Query()
		p := c.Path
		f(q, &p)
		c.RawQuery, c.Path = q.Encode(), p
		return c.String()
	}
	sig := good.Query().Get("sig")
	flip := []byte(sig)
	if flip[0] == 'A' {
		flip[0] = 'B'
	} else {
		flip[0] = 'A'
	}
	cases := map[string]string{
		"no sig":          variant(func(q url.Values, _ *string) { q.Del("sig") }),
		"no ex":           variant(func(q url.Values, _ *string) { q.Del("ex") }),
		"wrong sig":       variant(func(q url.Values, _ *string) { q.Set("sig", string(flip)) }),
		"padded sig":      variant(func(q url.Values, _ *string) { q.Set("sig", sig+"=") }),
		"expired":         variant(func(q url.Values, _ *string) { q.Set("ex", "1") }),
		"ex with 0 pad":   variant(func(q url.Values, _ *string) { q.Set("ex", "0"+q.Get("ex")) }),
		"other file name": variant(func(_ url.Values, p *string) { *p = strings.Replace(*p, "s.txt", "other.txt", 1) }),
		"unknown blob, unsigned": variant(func(q url.Values, p *string) {
			q.Del("sig")
			*p = strings.Replace(*p, pathHash(good.String()), strings.Repeat("ab", 32), 1)
		}),
	}
	for what, raw := range cases {
		r := get(t, "GET", raw)
		if r.Status != 403 {
			t.Errorf("%s: expected 403, got %s", what, r)
		}
	}
}

// MEDIA-033: "Media routes MUST answer only GET and HEAD; other methods get 405."
func methods(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text, file{"m.png", "image/png", pngBytes(4, 4)})
	for _, k := range []string{"url", "proxy_url"} {
		if r := get(t, "HEAD", str(att[0][k])); r.Status != 200 {
			t.Errorf("HEAD %s: expected 200, got %s", k, r)
		}
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			if r := get(t, m, str(att[0][k])); r.Status != 405 {
				t.Errorf("%s %s: expected 405, got %s", m, k, r)
			}
		}
	}
}

// MEDIA-034: "The signing key SHOULD persist across restarts so that URLs stay valid
// until they expire."
func urlsSurviveRestart(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text, file{"r.txt", "text/plain", []byte("restart " + harness.RandName())})
	if err := t.Node.Terminate(); err != nil {
		t.Fatalf("%v", err)
	}
	select {
	case <-t.Node.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("node did not exit on SIGTERM")
	}
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	if r := get(t, "GET", str(att[0]["url"])); r.Status != 200 {
		t.Errorf("URL minted before the restart: expected 200, got %s", r)
	}
}

var inline = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true, "text/plain": true}

// MEDIA-040: nosniff and the blob's content type on every media response. MEDIA-041:
// Content-Disposition attachment outside the inline list (HTML among them), with the
// file name. MEDIA-042: Content-Security-Policy "default-src 'none'; sandbox".
func headers(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text,
		file{"page.html", "text/html", []byte("<html>" + harness.RandName() + "</html>")},
		file{"pic.png", "image/png", pngBytes(6, 6)},
		file{"note.txt", "text/plain", []byte("note " + harness.RandName())})
	for _, a := range att {
		r := get(t, "GET", str(a["url"]))
		if r.Status != 200 {
			t.Errorf("GET %s: %s", str(a["filename"]), r)
			continue
		}
		ct := strings.Split(r.Header.Get("Content-Type"), ";")[0]
		if r.Header.Get("X-Content-Type-Options") != "nosniff" || ct != strings.Split(str(a["content_type"]), ";")[0] {
			t.Errorf("%s: X-Content-Type-Options %q, Content-Type %q (attachment says %q)", str(a["filename"]),
				r.Header.Get("X-Content-Type-Options"), r.Header.Get("Content-Type"), str(a["content_type"]))
		}
		cd := r.Header.Get("Content-Disposition")
		isAttachment := strings.HasPrefix(cd, "attachment")
		if isAttachment == inline[ct] {
			t.Errorf("%s (%s): Content-Disposition %q", str(a["filename"]), ct, cd)
		}
		if !strings.Contains(cd, str(a["filename"])) {
			t.Errorf("%s: Content-Disposition %q lacks the file name", str(a["filename"]), cd)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "sandbox") {
			t.Errorf("%s: Content-Security-Policy %q", str(a["filename"]), csp)
		}
	}
}

// MEDIA-043: strong ETag "{hash}" for a blob, "{hash}.thumb" for its thumbnail.
// MEDIA-044: a matching If-None-Match gets 304.
func etags(t *T) {
	u, g := setup(t)
	img := pngBytes(16, 16)
	att := upload(t, u, g.Text, file{"e.png", "image/png", img})
	h := hashOf(img)
	for _, c := range []struct{ key, etag string }{{"url", `"` + h + `"`}, {"proxy_url", `"` + h + `.thumb"`}} {
		var r *harness.Response
		t.Eventually("thumbnail rendered", func() error {
			r = get(t, "GET", str(att[0][c.key]))
			if r.Status != 200 {
				return fmt.Errorf("GET %s: %s", c.key, r)
			}
			return nil
		})
		if got := r.Header.Get("ETag"); got != c.etag {
			t.Errorf("%s ETag %q, expected %q", c.key, got, c.etag)
		}
		if r := get(t, "GET", str(att[0][c.key]), "If-None-Match", c.etag); r.Status != 304 {
			t.Errorf("%s with If-None-Match %s: expected 304, got %s", c.key, c.etag, r)
		}
	}
}

// MEDIA-045: single and multiple byte ranges with 206 and Content-Range, and If-Range.
func ranges(t *T) {
	u, g := setup(t)
	data := []byte("0123456789abcdefghij" + harness.RandName())
	att := upload(t, u, g.Text, file{"r.txt", "text/plain", data})
	link := str(att[0]["url"])
	r := get(t, "GET", link, "Range", "bytes=2-5")
	if r.Status != 206 || string(r.Body) != "2345" || !strings.HasPrefix(r.Header.Get("Content-Range"), "bytes 2-5/") {
		t.Errorf("Range bytes=2-5: expected 206 \"2345\" with Content-Range, got %s (Content-Range %q)", r, r.Header.Get("Content-Range"))
	}
	r = get(t, "GET", link, "Range", "bytes=0-1,4-5")
	if r.Status != 206 || !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Errorf("two ranges: expected 206 multipart/byteranges, got %s (Content-Type %q)", r, r.Header.Get("Content-Type"))
	}
	etag := `"` + hashOf(data) + `"`
	if r := get(t, "GET", link, "Range", "bytes=2-5", "If-Range", etag); r.Status != 206 {
		t.Errorf("If-Range with the current ETag: expected 206, got %s", r)
	}
	if r := get(t, "GET", link, "Range", "bytes=2-5", "If-Range", `"other"`); r.Status != 200 || !bytes.Equal(r.Body, data) {
		t.Errorf("If-Range with another ETag: expected 200 with the whole blob, got %s", r)
	}
}

var maxAgeRE = regexp.MustCompile(`max-age=(\d+)`)

// MEDIA-046: "Cache-Control: public, max-age={seconds until expiry, at most one
// year}, immutable" on success, "no-store" on errors.
func cacheControl(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text, file{"c.txt", "text/plain", []byte("cache " + harness.RandName())})
	r := get(t, "GET", str(att[0]["url"]))
	cc := r.Header.Get("Cache-Control")
	m := maxAgeRE.FindStringSubmatch(cc)
	if r.Status != 200 || !strings.Contains(cc, "public") || !strings.Contains(cc, "immutable") || m == nil {
		t.Errorf("success: Cache-Control %q", cc)
	} else {
		var age int
		fmt.Sscan(m[1], &age)
		if age <= 0 || age > 366*24*3600 {
			t.Errorf("max-age %d out of range", age)
		}
	}
	bad := strings.Replace(str(att[0]["url"]), "sig=", "sig=x", 1)
	if r := get(t, "GET", bad); r.Status != 403 || !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("error: expected 403 with Cache-Control no-store, got %d %q", r.Status, r.Header.Get("Cache-Control"))
	}
}

// MEDIA-050: a thumbnail of a PNG, JPEG, GIF or WebP is rendered (in the background
// or on first request) and fits a 512-pixel square without enlarging. That it is
// rendered at most once is not observable from outside.
func thumbnail(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text, file{"big.png", "image/png", pngBytes(1024, 600)}, file{"small.png", "image/png", pngBytes(40, 30)})
	for i, want := range [][2]int{{512, 300}, {40, 30}} {
		var r *harness.Response
		t.Eventually("thumbnail", func() error {
			r = get(t, "GET", str(att[i]["proxy_url"]))
			if r.Status != 200 {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		cfg, _, err := image.DecodeConfig(bytes.NewReader(r.Body))
		if err != nil {
			t.Errorf("thumbnail %d is not an image: %v", i, err)
			continue
		}
		if cfg.Width != want[0] || cfg.Height != want[1] {
			t.Errorf("thumbnail of %s is %d×%d, expected %d×%d", str(att[i]["filename"]), cfg.Width, cfg.Height, want[0], want[1])
		}
	}
}

// MEDIA-051: an image over the pixel budget (50 MP) is never decoded. MEDIA-053: it
// is not retried and its thumbnail URL answers 404, while the blob is kept.
func bomb(t *T) {
	u, g := setup(t)
	b := bombPNG(20000, 20000)
	att := upload(t, u, g.Text, file{"bomb.png", "image/png", b})
	if r := get(t, "GET", str(att[0]["url"])); r.Status != 200 {
		t.Errorf("the blob itself: expected 200, got %s", r)
	}
	t.Eventually("thumbnail of a 400 MP image answers 404", func() error {
		r := get(t, "GET", str(att[0]["proxy_url"]))
		if r.Status == 404 {
			return nil
		}
		if r.Status == 200 {
			return harness.Permanent(fmt.Errorf("a thumbnail was served for a 400-megapixel image"))
		}
		return fmt.Errorf("%s", r)
	})
}

// MEDIA-052: "it MUST bound the time of one rendering (default 10 s)". MEDIA-053: an
// image that fails the bounds is not retried and its thumbnail URL answers 404. The
// node runs with a bound of 1 ns (--media-thumb-timeout), which no rendering meets:
// a small PNG must get no thumbnail, now or on later requests, while the blob is
// served. (The bound on renderings at once is not observed.)
func renderBound(t *T) {
	u, g := setup(t)
	att := upload(t, u, g.Text, file{"slow.png", "image/png", pngBytes(64, 48)})
	if r := get(t, "GET", str(att[0]["url"])); r.Status != 200 {
		t.Errorf("the blob itself: expected 200, got %s", r)
	}
	for i := range 3 {
		t.Eventually(fmt.Sprintf("thumbnail request %d of an image no rendering finishes within 1 ns answers 404", i+1), func() error {
			r := get(t, "GET", str(att[0]["proxy_url"]))
			switch r.Status {
			case 404:
				return nil
			case 200:
				return harness.Permanent(fmt.Errorf("a thumbnail was served although rendering is bounded to 1 ns"))
			}
			return fmt.Errorf("%s", r)
		})
	}
}
