package media

import (
	"strconv"
	"strings"
	"time"
)

// Attachment is Discord's attachment object (API v10) as Hearth returns
// it in the attachments array of a message.
type Attachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	Description string `json:"description,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url"`
	// Width and Height are set for images only, as Discord does.
	Width  *int `json:"width,omitempty"`
	Height *int `json:"height,omitempty"`
}

// Attachment builds the attachment object for blob b shown under filename
// with snowflake id, with URLs signed for ttl and prefixed with baseURL
// (the node's public origin, such as "https://chat.example.org"; empty
// gives root-relative URLs). proxy_url is the thumbnail for images the node
// thumbnails, and the same as url otherwise. The node builds attachments
// when it renders a message, so every read hands out fresh URLs.
func (s *Store) Attachment(baseURL string, id uint64, filename string, b Blob, ttl time.Duration) Attachment {
	baseURL = strings.TrimSuffix(baseURL, "/")
	a := Attachment{
		ID:          strconv.FormatUint(id, 10),
		Filename:    filename,
		ContentType: b.ContentType,
		Size:        b.Size,
		URL:         baseURL + s.SignURL(b.Hash, filename, ttl),
	}
	a.ProxyURL = a.URL
	if thumbnailTypes[baseType(b.ContentType)] {
		a.ProxyURL = baseURL + s.SignThumbnailURL(b.Hash, filename, ttl)
	}
	if b.Width > 0 && b.Height > 0 {
		w, h := b.Width, b.Height
		a.Width, a.Height = &w, &h
	}
	return a
}
