// Package proto defines the request/response stream protocols of
// spec/federation.md (join, sync, moderation): their IDs, message shapes and
// the length-prefixed CBOR framing, with a client call and a server helper.
package proto

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/hearth-chat/hearth/federation/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Protocol IDs.
const (
	Join protocol.ID = "/hearth/join/1.0.0"
	Sync protocol.ID = "/hearth/sync/1.0.0"
	Mod  protocol.ID = "/hearth/mod/1.0.0"
	// Media fetches the bytes of a blob that a message references
	// (spec/media.md §6.1).
	Media protocol.ID = "/hearth/media/1.0.0"
	// DM asks a node to join a direct conversation for one of its users.
	DM protocol.ID = "/hearth/dm/1.0.0"
)

// Frame limits [FED-020] and the stream deadline [FED-022].
const (
	MaxRequest  = 65536
	MaxResponse = 8 << 20
	Deadline    = 30 * time.Second
)

// Status codes [FED-021].
type Status uint8

// The statuses.
const (
	OK Status = iota
	BadRequest
	Forbidden
	NotFound
	Unavailable
)

// Error is a non-OK response, returned by Call.
type Error struct {
	Status Status
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("proto: status %d: %s", e.Status, e.Msg) }

// Fail builds a response error.
func Fail(s Status, format string, args ...any) *Error {
	return &Error{Status: s, Msg: fmt.Sprintf(format, args...)}
}

// Sync operations.
const (
	OpHeads   = 1
	OpFetch   = 2
	OpHistory = 3
)

// Range is an inclusive seq range of one origin.
type Range struct {
	Origin event.Node `cbor:"0,keyasint"`
	From   uint64     `cbor:"1,keyasint"`
	To     uint64     `cbor:"2,keyasint"`
}

// Head is one version vector entry.
type Head struct {
	Origin event.Node `cbor:"0,keyasint"`
	Seq    uint64     `cbor:"1,keyasint"`
}

// SyncRequest is a sync-request.
type SyncRequest struct {
	Op      uint8     `cbor:"0,keyasint"`
	Guild   event.ID  `cbor:"1,keyasint"`
	Ranges  []Range   `cbor:"2,keyasint,omitempty"`
	Channel event.ID  `cbor:"3,keyasint,omitzero"`
	Before  event.HLC `cbor:"4,keyasint,omitempty"`
	Limit   uint32    `cbor:"5,keyasint,omitempty"`
}

// SyncResponse is a sync-response.
type SyncResponse struct {
	Status    Status   `cbor:"0,keyasint"`
	Error     string   `cbor:"1,keyasint"`
	Vector    []Head   `cbor:"2,keyasint,omitempty"`
	StateHead uint64   `cbor:"3,keyasint,omitempty"`
	Events    [][]byte `cbor:"4,keyasint,omitempty"`
	More      bool     `cbor:"5,keyasint,omitempty"`
}

// JoinRequest asks the home node to admit (remote peer, Name).
type JoinRequest struct {
	Guild    event.ID `cbor:"0,keyasint"`
	Code     string   `cbor:"1,keyasint"`
	Name     string   `cbor:"2,keyasint"`
	NodeName string   `cbor:"3,keyasint"`
	Addrs    [][]byte `cbor:"4,keyasint"`
	// Have is the state head (sn) the joining node holds already, when it is
	// a member node of the guild; 0 for a node new to it [FED-068].
	Have uint64 `cbor:"5,keyasint,omitempty"`
}

// PeerAddrs is a member node and its addresses.
type PeerAddrs struct {
	ID    event.Node `cbor:"0,keyasint"`
	Addrs [][]byte   `cbor:"1,keyasint"`
}

// JoinResponse carries the state chain, recent messages and member nodes.
// With Snapshot set, State holds the genesis event only and the snapshot
// stands for the state events up to its head [FED-102].
type JoinResponse struct {
	Status   Status          `cbor:"0,keyasint"`
	Error    string          `cbor:"1,keyasint"`
	State    [][]byte        `cbor:"2,keyasint,omitempty"`
	Recent   [][]byte        `cbor:"3,keyasint,omitempty"`
	Peers    []PeerAddrs     `cbor:"4,keyasint,omitempty"`
	Snapshot *SignedSnapshot `cbor:"5,keyasint,omitempty"`
}

// SignedSnapshot is a guild state snapshot (guild.Guild.Snapshot) and the
// home node's detached signature over it [FED-101].
type SignedSnapshot struct {
	State []byte `cbor:"0,keyasint"`
	Sig   []byte `cbor:"1,keyasint"`
}

// ModRequest asks the home node to issue a state event for the actor
// (remote peer, ActorName).
type ModRequest struct {
	Guild     event.ID        `cbor:"0,keyasint"`
	Kind      event.Kind      `cbor:"1,keyasint"`
	Channel   event.ID        `cbor:"2,keyasint,omitzero"`
	Body      cbor.RawMessage `cbor:"3,keyasint"`
	ActorName string          `cbor:"4,keyasint"`
}

// DMRequest asks the node of user To to join, on To's behalf, the direct
// conversation that user From of the requesting node opened: a DM guild homed
// on the requesting node, reached with Invite.
type DMRequest struct {
	Invite string `cbor:"0,keyasint"`
	To     string `cbor:"1,keyasint"`
	From   string `cbor:"2,keyasint"`
}

// DMResponse says whether the conversation was joined.
type DMResponse struct {
	Status Status `cbor:"0,keyasint"`
	Error  string `cbor:"1,keyasint"`
}

// ModResponse returns the issued event's ID.
type ModResponse struct {
	Status Status   `cbor:"0,keyasint"`
	Error  string   `cbor:"1,keyasint"`
	Event  event.ID `cbor:"2,keyasint,omitzero"`
}

// responder is implemented by every response type so Call can surface
// non-OK statuses as *Error.
type responder interface{ status() (Status, string) }

func (r *SyncResponse) status() (Status, string) { return r.Status, r.Error }
func (r *JoinResponse) status() (Status, string) { return r.Status, r.Error }
func (r *ModResponse) status() (Status, string)  { return r.Status, r.Error }
func (r *DMResponse) status() (Status, string)   { return r.Status, r.Error }

// frameDec decodes frames: strict like events, but with room for the large
// arrays of a join or fetch response.
var frameDec cbor.DecMode

func init() {
	var err error
	frameDec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   8,
		MaxArrayElements:  1 << 20,
		MaxMapPairs:       64,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// WriteFrame writes v as one length-prefixed CBOR frame.
func WriteFrame(w io.Writer, v any) error {
	b, err := event.Marshal(v)
	if err != nil {
		return err
	}
	hdr := binary.AppendUvarint(nil, uint64(len(b)))
	if _, err := w.Write(append(hdr, b...)); err != nil {
		return err
	}
	return nil
}

// ErrFrameTooLarge is returned for frames beyond the limit [FED-020].
var ErrFrameTooLarge = errors.New("proto: frame too large")

// ReadFrame reads one frame of at most max bytes into v.
func ReadFrame(r *bufio.Reader, max int, v any) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if n > uint64(max) {
		return ErrFrameTooLarge
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return frameDec.Unmarshal(b, v)
}

// Call opens a stream to p, sends req and decodes the response into resp.
// A non-OK status is returned as *Error.
func Call(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, req any, resp responder) error {
	ctx, cancel := context.WithTimeout(ctx, Deadline)
	defer cancel()
	s, err := h.NewStream(ctx, p, proto)
	if err != nil {
		return fmt.Errorf("proto: %s to %s: %w", proto, p, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := WriteFrame(s, req); err != nil {
		s.Reset()
		return fmt.Errorf("proto: %s: write: %w", proto, err)
	}
	// The responder may answer and close its side before this CloseWrite (a quick refusal),
	// which fails it over QUIC ("close called for canceled stream"): the answer, read next,
	// decides.
	_ = s.CloseWrite()
	if err := ReadFrame(bufio.NewReader(s), MaxResponse, resp); err != nil {
		s.Reset()
		return fmt.Errorf("proto: %s: read: %w", proto, err)
	}
	if st, msg := resp.status(); st != OK {
		return &Error{Status: st, Msg: msg}
	}
	return nil
}

// Handle registers a handler for proto on h. newReq returns a fresh request
// value; serve returns the response (whose status fields it sets). Decode
// failures are answered with BadRequest and oversize frames reset the
// stream. Each stream is bounded by Deadline and ctx.
func Handle[Req any, Resp any](ctx context.Context, h host.Host, proto protocol.ID, log *slog.Logger,
	serve func(ctx context.Context, from peer.ID, req *Req) *Resp, fail func(*Error) *Resp) {
	var lim peerLimit
	h.SetStreamHandler(proto, func(s network.Stream) {
		remote := s.Conn().RemotePeer()
		if !lim.acquire(remote) {
			s.Reset() // [FED-071]
			return
		}
		defer lim.release(remote)
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(Deadline))
		sctx, cancel := context.WithTimeout(ctx, Deadline)
		defer cancel()
		var req Req
		var resp *Resp
		if err := ReadFrame(bufio.NewReader(s), MaxRequest, &req); err != nil {
			if errors.Is(err, ErrFrameTooLarge) {
				s.Reset()
				return
			}
			resp = fail(Fail(BadRequest, "decode: %v", err))
		} else {
			resp = serve(sctx, remote, &req)
		}
		if err := WriteFrame(s, resp); err != nil {
			log.Debug("proto: write response", "proto", proto, "err", err)
			s.Reset()
		}
	})
}

// MaxStreamsPerPeer bounds concurrent inbound streams of one protocol from
// one peer [FED-071].
const MaxStreamsPerPeer = 8

type peerLimit struct {
	mu     sync.Mutex
	active map[peer.ID]int
}

func (l *peerLimit) acquire(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active == nil {
		l.active = map[peer.ID]int{}
	}
	if l.active[p] >= MaxStreamsPerPeer {
		return false
	}
	l.active[p]++
	return true
}

func (l *peerLimit) release(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active[p]--; l.active[p] <= 0 {
		delete(l.active, p)
	}
}
