package media

import (
	"bytes"
	"mime"
	"net/http"
	"path"
	"strings"
)

// sniffLen is how many leading bytes content detection looks at
// (the WHATWG MIME Sniffing standard's resource header size).
const sniffLen = 512

const (
	typeOctetStream = "application/octet-stream"
	typeTextPlain   = "text/plain"
)

// inlineTypes are the only content types served with Content-Disposition:
// inline. Each is displayed by browsers as passive media (or plain text) and
// can never run script in the node's origin. Everything else, notably HTML,
// SVG, XML, JavaScript and PDF, is served as an attachment to download.
var inlineTypes = map[string]bool{
	"image/png":   true,
	"image/jpeg":  true,
	"image/gif":   true,
	"image/webp":  true,
	"video/mp4":   true,
	"video/webm":  true,
	"video/ogg":   true,
	"audio/mpeg":  true,
	"audio/ogg":   true,
	"audio/wave":  true,
	"audio/flac":  true,
	"audio/mp4":   true,
	"audio/webm":  true,
	typeTextPlain: true,
}

// thumbnailTypes are the image types the thumbnailer decodes.
var thumbnailTypes = map[string]bool{
	"image/png":  true,
	"image/jpeg": true,
	"image/gif":  true,
	"image/webp": true,
}

// baseType returns the lowercased media type without parameters, or "" if
// ct does not parse.
func baseType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return ""
	}
	return mt
}

// isInline reports whether content of type ct may be displayed inline.
func isInline(ct string) bool { return inlineTypes[baseType(ct)] }

// isTextual reports whether a declared type describes text that a browser
// would not treat as a passive image or media file.
func isTextual(mt string) bool {
	return strings.HasPrefix(mt, "text/") || mt == "application/json" ||
		mt == "application/xml" || mt == "application/javascript" ||
		strings.HasSuffix(mt, "+xml") || strings.HasSuffix(mt, "+json")
}

// DetectContentType decides the content type a blob is stored and served
// with, from its first bytes (up to 512), the type the client declared and
// the file name. The bytes win: a recognised signature (PNG, JPEG, HTML,
// MP4, ...) is used whatever the client claimed, so a lying type cannot make
// HTML display inline. Only when the bytes are inconclusive (generic text or
// binary) is the declared type, or else the extension's type, used, and then
// never to claim an inline type (other than text/plain for text): an image or
// video type that sniffing could not confirm is not trusted.
func DetectContentType(head []byte, declared, filename string) string {
	if len(head) > sniffLen {
		head = head[:sniffLen]
	}
	sniffed := refineSniff(head, http.DetectContentType(head))
	mt := baseType(sniffed)
	if mt != typeOctetStream && mt != typeTextPlain {
		return sniffed
	}
	claim := baseType(declared)
	if claim == "" || claim == typeOctetStream {
		claim = baseType(mime.TypeByExtension(strings.ToLower(path.Ext(filename))))
	}
	switch {
	case claim == "" || claim == mt:
		return sniffed
	case mt == typeTextPlain && isTextual(claim):
		if strings.HasPrefix(claim, "text/") {
			if _, params, _ := mime.ParseMediaType(sniffed); params["charset"] != "" {
				return mime.FormatMediaType(claim, map[string]string{"charset": params["charset"]})
			}
		}
		return claim
	case mt == typeOctetStream && !inlineTypes[claim] && !isTextual(claim):
		return claim
	}
	return sniffed
}

// refineSniff recognises a few media formats net/http's sniffer does not
// (FLAC, Ogg audio and video, M4A, QuickTime) or names generically.
func refineSniff(head []byte, sniffed string) string {
	switch {
	case bytes.HasPrefix(head, []byte("fLaC")):
		return "audio/flac"
	case sniffed == "application/ogg":
		switch {
		case bytes.Contains(head, []byte("OpusHead")), bytes.Contains(head, []byte("\x01vorbis")):
			return "audio/ogg"
		case bytes.Contains(head, []byte("\x80theora")):
			return "video/ogg"
		}
	case sniffed == "video/mp4" && len(head) >= 12:
		switch string(head[8:12]) {
		case "M4A ":
			return "audio/mp4"
		case "qt  ":
			return "video/quicktime"
		}
	}
	return sniffed
}
