package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/media"
	"github.com/hearth-chat/hearth/node/model"
)

// attachmentTTL is how long the signed URLs in a rendered message stay valid.
const attachmentTTL = 24 * time.Hour

// uploads adapts the media store to the API's Uploads interface.
type uploads struct{ ms *media.Store }

func (u uploads) ParseMessageUpload(r *http.Request, owner uint64) ([]byte, []model.Attachment, func(), error) {
	payload, files, err := u.ms.ParseMessageUpload(r, owner, media.UploadLimits{})
	if err != nil {
		return nil, nil, nil, mediaError(err)
	}
	out := make([]model.Attachment, len(files))
	for i, f := range files {
		out[i] = model.Attachment{Filename: f.Filename, Hash: f.Hash.String(), Size: f.Size, ContentType: f.ContentType, Width: f.Width, Height: f.Height}
	}
	abandon := func() {
		if err := u.ms.Abandon(owner, files); err != nil {
			slog.Default().Warn("releasing abandoned upload", "err", err)
		}
	}
	return payload, out, abandon, nil
}

// StoreImage implements api.Images.
func (u uploads) StoreImage(ctx context.Context, dataURI string, owner uint64) (string, error) {
	b, err := u.ms.PutImage(ctx, dataURI, owner)
	if st := media.StatusCode(err); st == http.StatusBadRequest || st == http.StatusRequestEntityTooLarge {
		return "", &chat.Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
			Fields: map[string][2]string{"image": {"IMAGE_INVALID", err.Error()}}}
	}
	if err != nil {
		return "", err
	}
	return b.Hash.String(), nil
}

// mediaError maps media errors to Discord's error shapes.
func mediaError(err error) error {
	switch st := media.StatusCode(err); st {
	case http.StatusRequestEntityTooLarge:
		return &chat.Error{Status: st, Code: 40005, Message: "Request entity too large: " + err.Error()}
	case http.StatusBadRequest:
		return &chat.Error{Status: st, Code: 50035, Message: "Invalid Form Body",
			Fields: map[string][2]string{"files": {"UPLOAD_INVALID", err.Error()}}}
	default:
		return err
	}
}

// renderAttachment builds an attachment's wire object with freshly signed URLs under the
// node's public URL (relative URLs when none is configured, which same-origin clients use).
func (n *Node) renderAttachment(a model.Attachment) any {
	h, err := media.ParseHash(a.Hash)
	if err != nil {
		return a
	}
	b := media.Blob{Hash: h, Size: a.Size, ContentType: a.ContentType, Width: a.Width, Height: a.Height}
	return n.media.Attachment(strings.TrimSuffix(n.cfg.PublicURL, "/"), uint64(a.ID), a.Filename, b, attachmentTTL)
}

// collectMedia runs the media garbage collector every interval until stop.
func (n *Node) collectMedia(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), interval/2)
			stats, err := n.media.GC(ctx, func(h media.Hash) bool { return n.chat.BlobReferenced(h.String()) })
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				n.log.Error("media garbage collection", "err", err)
			} else {
				n.log.Debug("media garbage collection", "stats", stats)
			}
		}
	}
}

// mediaFetcher lets the media store fetch the bytes of remote blobs through federation,
// which starts after the store; f stays nil when federation is off.
type mediaFetcher struct{ f *federation }

// Fetch implements media.Fetcher: from the origin node, or when it cannot serve them, from
// another member node of a guild whose messages use the blob (one that fetched it before).
func (m *mediaFetcher) Fetch(ctx context.Context, origin string, h media.Hash, _ int64) (io.ReadCloser, error) {
	if m.f == nil {
		return nil, errors.New("server: a remote blob, and federation is off")
	}
	rc, err := m.f.svc.FetchMedia(ctx, origin, h)
	if err == nil {
		return rc, nil
	}
	for _, node := range m.f.mediaHolders(h, origin) {
		if ctx.Err() != nil {
			break
		}
		if rc, ferr := m.f.svc.FetchMedia(ctx, node, h); ferr == nil {
			m.f.log.Info("federation: fetched a blob from another member node", "hash", h.String(), "origin", origin, "from", node, "origin_err", err)
			return rc, nil
		}
	}
	return nil, err
}

// serveImage answers GET /avatars/{user}/{hash}.{ext} and /icons/{guild}/{hash}.{ext}
// (Discord's CDN paths) with the image while it is the current one of that user or guild, as
// current gives it; any extension names the stored bytes, which are served as they are.
func (n *Node) serveImage(current func(chat.ID) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		hash, _, _ := strings.Cut(r.PathValue("file"), ".")
		if err != nil || hash == "" || current(chat.ID(id)) != hash {
			w.Header().Set("Cache-Control", "no-store")
			http.NotFound(w, r)
			return
		}
		h, err := media.ParseHash(hash)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		n.media.ServeImage(w, r, h)
	}
}
