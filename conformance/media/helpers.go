package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net"
	"net/textproto"
)

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// streamingForm writes one payload_json and file parts to a pipe as they come.
type streamingForm struct{ w *multipart.Writer }

func newStreamingForm(w io.Writer) *streamingForm {
	f := &streamingForm{w: multipart.NewWriter(w)}
	return f
}

func (f *streamingForm) contentType() string { return f.w.FormDataContentType() }

func (f *streamingForm) file(name string) (io.Writer, error) {
	if err := f.w.WriteField("payload_json", `{"content":"big"}`); err != nil {
		return nil, err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="files[0]"; filename="`+name+`"`)
	h.Set("Content-Type", "application/octet-stream")
	return f.w.CreatePart(h)
}

func (f *streamingForm) close() error { return f.w.Close() }

// bombPNG is a valid 1×1 PNG whose header claims w×h pixels (CRC fixed up), so a
// node that decodes before checking the declared size would try to allocate it.
func bombPNG(w, h uint32) []byte {
	b := pngBytes(1, 1)
	// Signature (8), then IHDR: length (4), "IHDR" (4), width (4), height (4), ...
	binary.BigEndian.PutUint32(b[16:20], w)
	binary.BigEndian.PutUint32(b[20:24], h)
	crc := crc32.ChecksumIEEE(b[12:29])
	binary.BigEndian.PutUint32(b[29:33], crc)
	return bytes.Clone(b)
}
