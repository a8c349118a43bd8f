package fed

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// protoMedia is the blob fetch stream (spec/media.md §6.1).
const protoMedia protocol.ID = "/hearth/media/1.0.0"

// blobServer answers /hearth/media/1.0.0 on a fake member node with chosen
// bytes per hash, and counts the fetches.
type blobServer struct {
	mu      sync.Mutex
	blobs   map[[32]byte][]byte
	fetches map[[32]byte]int
	// trailing, if set, is written after a blob's bytes; wrote records
	// whether all of it went out before the node closed the stream.
	trailing []byte
	wrote    map[[32]byte]bool
}

func serveBlobs(m *fedpeer.Member) *blobServer {
	b := &blobServer{blobs: map[[32]byte][]byte{}, fetches: map[[32]byte]int{}, wrote: map[[32]byte]bool{}}
	m.Host.SetStreamHandler(protoMedia, func(s network.Stream) {
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(30 * time.Second))
		frame, err := fedpeer.ReadFrame(bufio.NewReader(s), 64)
		var req struct {
			Hash []byte `cbor:"0,keyasint"`
		}
		if err != nil || fedpeer.Unmarshal(frame, &req) != nil || len(req.Hash) != 32 {
			_ = s.Reset()
			return
		}
		h := [32]byte(req.Hash)
		b.mu.Lock()
		data, ok := b.blobs[h]
		b.fetches[h]++
		b.mu.Unlock()
		status := uint64(0)
		if !ok {
			status = 1
		}
		hdr, _ := fedpeer.Marshal(map[uint64]any{0: status})
		if err := fedpeer.WriteFrame(s, hdr); err != nil || !ok {
			return
		}
		if _, err := s.Write(data); err != nil || b.trailing == nil {
			return
		}
		_ = s.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err = s.Write(b.trailing)
		b.mu.Lock()
		b.wrote[h] = err == nil
		b.mu.Unlock()
	})
	return b
}

func (b *blobServer) put(h [32]byte, data []byte) {
	b.mu.Lock()
	b.blobs[h] = data
	b.mu.Unlock()
}

func (b *blobServer) count(h [32]byte) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fetches[h]
}

// testPNG is a small PNG image, different every call.
func testPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	seed := []byte(harness.RandName())
	for i := range img.Pix {
		img.Pix[i] = seed[i%len(seed)]
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// attachmentMessage publishes a message from m with one attachment
// reference and returns the attachment's URL on the node.
func attachmentMessage(t *T, w *world, m *fedpeer.Member, ref map[uint64]any) string {
	content := "attachment " + harness.RandName()
	env := m.Envelope("message.create", w.Chan)
	raw := sign(t, m, env, fedpeer.Body(0, content, 1, "", 3, []any{ref}))
	m.Keep(env.Seq, raw)
	publish(t, m, raw)
	var u string
	t.Eventually("the message with an attachment shown by the node", func() error {
		var msgs []harness.Obj
		r := t.Call(w.Owner.Client, "GET", "/channels/"+w.G.Text+"/messages?limit=50", nil)
		if r.Status != 200 {
			return fmt.Errorf("%s", r) // a 429 is waited out
		}
		if err := r.JSON(&msgs); err != nil {
			return err
		}
		for _, mm := range msgs {
			if harness.Str(mm["content"]) == content {
				u = harness.Str(harness.Get(mm, "attachments.0.url"))
				if u == "" {
					return harness.Permanent(fmt.Errorf("the message has no attachment: %s", harness.JSON(mm)))
				}
				return nil
			}
		}
		return fmt.Errorf("not among %d messages", len(msgs))
	})
	return u
}

var mediaHTTP = &http.Client{Timeout: 30 * time.Second}

// getURL fetches a media URL at the node's own address.
func getURL(t *T, raw string) (int, http.Header, []byte) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("media URL %q: %v", raw, err)
	}
	base, _ := url.Parse(t.Node.BaseURL)
	u.Scheme, u.Host = base.Scheme, base.Host
	req, _ := http.NewRequestWithContext(t.Ctx, "GET", u.String(), nil)
	resp, err := mediaHTTP.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, resp.Header, data
}

// MEDIA-070: the reference's content type is advisory; the node determines the
// served type from the bytes. MEDIA-071: the blob is fetched from the origin only
// when first needed, once for concurrent requests, and cached.
func remoteAttachment(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	blobs := serveBlobs(m)
	data := testPNG()
	h := sha256.Sum256(data)
	blobs.put(h, data)
	u := attachmentMessage(t, w, m, fedpeer.Body(0, h[:], 1, len(data), 2, "picture.png", 3, "text/html"))
	if n := blobs.count(h); n != 0 {
		t.Errorf("MEDIA-071: the node fetched the blob %d times before anyone asked for it", n)
	}
	type answer struct {
		status int
		hdr    http.Header
		body   []byte
	}
	answers := make([]answer, 5)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, hdr, body := getURL(t, u)
			answers[i] = answer{st, hdr, body}
		}()
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != 200 || !bytes.Equal(a.body, data) {
			t.Fatalf("request %d for the remote attachment answered %d with %d bytes (the blob has %d)", i, a.status, len(a.body), len(data))
		}
		if ct := a.hdr.Get("Content-Type"); ct != "image/png" {
			t.Errorf("MEDIA-070: a PNG referenced as text/html is served as %q", ct)
		}
	}
	if st, _, _ := getURL(t, u); st != 200 {
		t.Errorf("a later request answered %d", st)
	}
	if n := blobs.count(h); n != 1 {
		t.Errorf("MEDIA-071: six requests (five at once) made the node fetch the blob %d times, expected once", n)
	}
}

// MEDIA-073: "It MUST stop reading a fetch after size bytes." The origin follows
// the blob with 16 MiB more: the node must answer the request without taking
// them all in. (Whether it then serves the blob or answers 502 because the
// origin sent more than size is left open: see docs/conformance.md.)
func remoteAttachmentOverlong(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	blobs := serveBlobs(m)
	blobs.trailing = make([]byte, 16<<20)
	data := testPNG()
	h := sha256.Sum256(data)
	blobs.put(h, data)
	u := attachmentMessage(t, w, m, fedpeer.Body(0, h[:], 1, len(data), 2, "long.png", 3, "image/png"))
	st, _, body := getURL(t, u)
	if st != 200 && st != 502 {
		t.Errorf("the request answered %d (%d bytes)", st, len(body))
	}
	if st == 200 && !bytes.Equal(body, data) {
		t.Errorf("the node served %d bytes for a blob of %d", len(body), len(data))
	}
	t.Eventually("the origin's write ends", func() error {
		blobs.mu.Lock()
		defer blobs.mu.Unlock()
		if _, ok := blobs.wrote[h]; !ok {
			return fmt.Errorf("still writing")
		}
		return nil
	})
	blobs.mu.Lock()
	all := blobs.wrote[h]
	blobs.mu.Unlock()
	if all {
		t.Errorf("the node read all 16 MiB the origin sent after a %d-byte blob", len(data))
	}
}

// MEDIA-072: "A node MUST verify that fetched bytes have exactly the referenced
// size and SHA-256 before storing or serving any of them, and MUST discard them
// otherwise (answering 502 to the waiting request)."
func remoteAttachmentWrong(t *T) {
	w := newWorld(t)
	m := w.join(t, "")
	blobs := serveBlobs(m)
	data := testPNG()
	h := sha256.Sum256(data)
	other := testPNG()[:len(data)]
	blobs.put(h, other)
	u := attachmentMessage(t, w, m, fedpeer.Body(0, h[:], 1, len(data), 2, "wrong.png", 3, "image/png"))
	for i := range 2 {
		st, _, body := getURL(t, u)
		if st != 502 {
			t.Errorf("request %d for a blob whose fetched bytes do not match its hash: %d with %d bytes, expected 502", i, st, len(body))
		}
	}
	if n := blobs.count(h); n < 2 {
		t.Errorf("the mismatching bytes were kept: the second request fetched nothing (%d fetches)", n)
	}
}

// MEDIA-080: "The origin node MUST serve a blob only to a peer that is a member
// node of a guild in which a stored message references that hash." The owner
// attaches a file on the node; a member node may fetch it, a stranger may not.
func blobToMembersOnly(t *T) {
	w := newWorld(t)
	m := w.M
	data := testPNG()
	h := sha256.Sum256(data)
	var buf bytes.Buffer
	mw := newMultipart(&buf, "files", "shared.png", data)
	req, _ := http.NewRequestWithContext(t.Ctx, "POST", w.Owner.Node.BaseURL+harness.API+"/channels/"+w.G.Text+"/messages", &buf)
	req.Header.Set("Content-Type", mw)
	req.Header.Set("Authorization", w.Owner.Token)
	resp, err := mediaHTTP.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload answered %d", resp.StatusCode)
	}
	c, cancel := ctx(t)
	defer cancel()
	fetch := func(p *fedpeer.Peer, hash []byte) (uint64, []byte) {
		s, err := p.Host.NewStream(c, m.Home, protoMedia)
		if err != nil {
			t.Fatalf("open %s: %v", protoMedia, err)
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(t.Timeout()))
		frame, _ := fedpeer.Marshal(map[uint64]any{0: hash})
		if err := fedpeer.WriteFrame(s, frame); err != nil {
			t.Fatalf("%v", err)
		}
		_ = s.CloseWrite()
		br := bufio.NewReader(s)
		hdr, err := fedpeer.ReadFrame(br, 64)
		if err != nil {
			return 99, nil
		}
		var st struct {
			Status uint64 `cbor:"0,keyasint"`
		}
		_ = fedpeer.Unmarshal(hdr, &st)
		body, _ := io.ReadAll(io.LimitReader(br, 1<<20))
		return st.Status, body
	}
	if _, err := m.WaitEvent(c, false, func(ev *fedpeer.Event) bool {
		return ev.Env.Kind == "message.create" && bytes.Contains(ev.Env.Body, h[:])
	}); err != nil {
		t.Fatalf("the message with the attachment never reached the member node: %v", err)
	}
	if st, body := fetch(m.Peer, h[:]); st != 0 || !bytes.Equal(body, data) {
		t.Errorf("a member node fetching a blob referenced in the guild: status %d, %d bytes (expected 0 and the %d bytes)", st, len(body), len(data))
	}
	stranger, _ := dial(t)
	if st, body := fetch(stranger, h[:]); st == 0 || len(body) > 0 {
		t.Errorf("a peer that is no member node was served the blob (status %d, %d bytes)", st, len(body))
	}
	unref := sha256.Sum256([]byte(harness.RandName()))
	if st, _ := fetch(m.Peer, unref[:]); st == 0 {
		t.Errorf("a member node was served status 0 for a hash no message references")
	}
}

// newMultipart writes a multipart body with payload_json and one file part
// named field+"[0]", and returns its content type.
func newMultipart(w io.Writer, field, name string, data []byte) string {
	mw := multipart.NewWriter(w)
	_ = mw.WriteField("payload_json", `{"content":"a shared file"}`)
	p, _ := mw.CreateFormFile(field+"[0]", name)
	_, _ = p.Write(data)
	_ = mw.Close()
	return mw.FormDataContentType()
}
