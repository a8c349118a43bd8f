package fed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/proto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Media statuses of the fetch stream (spec/media.md §6.1).
const (
	mediaOK        = 0
	mediaNotFound  = 1
	mediaForbidden = 2
)

// mediaRequest and mediaHeader are the frames of /hearth/media/1.0.0.
type mediaRequest struct {
	Hash []byte `cbor:"0,keyasint"`
}

type mediaHeader struct {
	Status uint8 `cbor:"0,keyasint"`
}

// MediaSource is what the node lends federation to serve the bytes of its
// blobs to other nodes.
type MediaSource interface {
	// MediaAllowed reports whether node may fetch the blob: it must be a member
	// node of a guild in which a stored message references it [MEDIA-080].
	MediaAllowed(node event.Node, hash [32]byte) bool
	// OpenMedia opens the blob's bytes; an error means it is not held here.
	OpenMedia(ctx context.Context, hash [32]byte) (io.ReadCloser, error)
}

// maxMediaServes bounds the blobs this node sends at once, to all peers
// together, so that fetches cannot starve the node's own work [MEDIA-081].
const maxMediaServes = 16

// ServeMedia answers /hearth/media/1.0.0 from src. Call it once, after New.
func (s *Service) ServeMedia(src MediaSource) {
	slots := make(chan struct{}, maxMediaServes)
	s.h.SetStreamHandler(proto.Media, func(st network.Stream) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			st.Reset() // busy: the fetcher retries on its next request
			return
		}
		defer st.Close()
		_ = st.SetReadDeadline(time.Now().Add(proto.Deadline))
		var req mediaRequest
		if err := proto.ReadFrame(bufio.NewReader(st), 64, &req); err != nil || len(req.Hash) != 32 {
			st.Reset()
			return
		}
		h := [32]byte(req.Hash)
		from := event.Node(st.Conn().RemotePeer())
		status := uint8(mediaOK)
		var rc io.ReadCloser
		if !src.MediaAllowed(from, h) {
			status = mediaForbidden
		} else {
			var err error
			if rc, err = src.OpenMedia(s.ctx, h); err != nil {
				status = mediaNotFound
			}
		}
		if err := proto.WriteFrame(st, mediaHeader{Status: status}); err != nil || rc == nil {
			return
		}
		defer rc.Close()
		// A large file takes as long as it takes; a stalled reader does not hold a slot forever.
		_ = st.SetWriteDeadline(time.Now().Add(10 * time.Minute))
		if _, err := io.Copy(st, rc); err != nil {
			s.log.Debug("fed: sending a blob", "peer", from.String(), "err", err)
			st.Reset()
		}
	})
}

// ErrMediaForbidden means the origin node refused a fetch: this node is not a
// member node of a guild in which a message references the blob.
var ErrMediaForbidden = errors.New("fed: media fetch refused")

// FetchMedia opens a stream of blob hash from the origin node (the peer ID of
// the node whose event referenced it). The caller verifies the bytes (size and
// hash) and closes the stream; ctx bounds the whole transfer.
func (s *Service) FetchMedia(ctx context.Context, origin string, hash [32]byte) (io.ReadCloser, error) {
	p, err := peer.Decode(origin)
	if err != nil {
		return nil, fmt.Errorf("fed: fetch media: origin %q: %w", origin, err)
	}
	st, err := s.h.NewStream(ctx, p, proto.Media)
	if err != nil {
		return nil, fmt.Errorf("fed: fetch media from %s: %w", origin, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := proto.WriteFrame(st, mediaRequest{Hash: hash[:]}); err != nil {
		st.Reset()
		return nil, fmt.Errorf("fed: fetch media: %w", err)
	}
	// The origin may answer and close its side before this CloseWrite (a refusal reads
	// nothing more), which fails it over QUIC ("close called for canceled stream"): the
	// answer, read next, decides.
	_ = st.CloseWrite()
	br := bufio.NewReader(st)
	var hdr mediaHeader
	if err := proto.ReadFrame(br, 64, &hdr); err != nil {
		st.Reset()
		return nil, fmt.Errorf("fed: fetch media: header: %w", err)
	}
	switch hdr.Status {
	case mediaOK:
		return &mediaStream{Reader: br, st: st}, nil
	case mediaForbidden:
		st.Reset()
		return nil, ErrMediaForbidden
	default:
		st.Reset()
		return nil, fmt.Errorf("fed: fetch media from %s: not found (status %d)", origin, hdr.Status)
	}
}

// mediaStream reads a blob's bytes after the header and closes the stream.
type mediaStream struct {
	io.Reader
	st network.Stream
}

func (m *mediaStream) Close() error { return m.st.Close() }
