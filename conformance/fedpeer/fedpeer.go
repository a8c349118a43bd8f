// Package fedpeer is a fake remote Hearth node for the conformance suite: a
// libp2p peer that speaks the federation stream protocols (spec/federation.md)
// and answers only what a test switched on, in the manner of Complement's fake
// homeserver. It shares no code with the node's federation packages, so a bug
// there cannot hide itself here.
package fedpeer

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// Stream protocol IDs (spec/federation.md status table).
const (
	ProtoJoin protocol.ID = "/hearth/join/1.0.0"
	ProtoSync protocol.ID = "/hearth/sync/1.0.0"
	ProtoMod  protocol.ID = "/hearth/mod/1.0.0"
)

// Frame limits (FED-020).
const (
	MaxRequest  = 65536
	MaxResponse = 8388608
)

// Response statuses (FED-021).
const (
	StatusOK          = 0
	StatusBadRequest  = 1
	StatusForbidden   = 2
	StatusNotFound    = 3
	StatusUnavailable = 4
)

// Peer is a fake node: a libp2p host on loopback with TCP and QUIC, Noise and
// yamux. The zero value is not usable; call New, and Close when done.
type Peer struct {
	Host host.Host

	Key crypto.PrivKey

	mu       sync.Mutex
	handlers map[protocol.ID]Handler
	closers  []func()
}

// Handler answers one request frame with one response value (CBOR-encoded by
// the peer). Returning nil resets the stream without an answer.
type Handler func(remote peer.ID, req []byte) any

// New starts a fake peer listening on 127.0.0.1 only.
func New() (*Peer, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fedpeer: key: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("fedpeer: host: %w", err)
	}
	return &Peer{Host: h, Key: key, handlers: map[protocol.ID]Handler{}}, nil
}

// Close stops gossip, the host and every stream handler.
func (p *Peer) Close() error {
	p.mu.Lock()
	closers := p.closers
	p.closers = nil
	p.mu.Unlock()
	for _, c := range closers {
		c()
	}
	return p.Host.Close()
}

// Addr is the peer's TCP address with its /p2p/ component.
func (p *Peer) Addr() ma.Multiaddr {
	info := peer.AddrInfo{ID: p.Host.ID(), Addrs: p.Host.Addrs()}
	addrs, _ := peer.AddrInfoToP2pAddrs(&info)
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			return a
		}
	}
	if len(addrs) > 0 {
		return addrs[0]
	}
	return nil
}

// AddrBytes are the peer's listen addresses (without /p2p/) in binary form,
// as join requests and member.join carry them.
func (p *Peer) AddrBytes() [][]byte {
	var out [][]byte
	for _, a := range p.Host.Addrs() {
		out = append(out, a.Bytes())
	}
	return out
}

// Connect dials a node given as a multiaddr ending in /p2p/<peer ID>.
func (p *Peer) Connect(ctx context.Context, addr string) (peer.ID, error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return "", fmt.Errorf("fedpeer: address %q: %w", addr, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return "", fmt.Errorf("fedpeer: address %q: %w", addr, err)
	}
	if err := p.Host.Connect(ctx, *info); err != nil {
		return "", fmt.Errorf("fedpeer: connect %s: %w", addr, err)
	}
	return info.ID, nil
}

// Handle switches on an answer for proto; the fake answers nothing else.
func (p *Peer) Handle(proto protocol.ID, h Handler) {
	p.mu.Lock()
	p.handlers[proto] = h
	p.mu.Unlock()
	p.Host.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(30 * time.Second))
		req, err := ReadFrame(bufio.NewReader(s), MaxRequest)
		if err != nil {
			_ = s.Reset()
			return
		}
		resp := h(s.Conn().RemotePeer(), req)
		if resp == nil {
			_ = s.Reset()
			return
		}
		data, err := Marshal(resp)
		if err != nil {
			_ = s.Reset()
			return
		}
		if err := WriteFrame(s, data); err != nil {
			_ = s.Reset()
		}
	})
}

// ErrReset means the remote reset or closed the stream without a response frame.
var ErrReset = errors.New("fedpeer: stream ended without a response")

// Request opens a stream for proto, sends one request frame (raw CBOR bytes, or
// any other value CBOR-encoded), and returns the raw response frame.
func (p *Peer) Request(ctx context.Context, to peer.ID, proto protocol.ID, req any) ([]byte, error) {
	var data []byte
	switch r := req.(type) {
	case []byte:
		data = r
	default:
		var err error
		if data, err = Marshal(req); err != nil {
			return nil, err
		}
	}
	return p.RequestRaw(ctx, to, proto, func(w io.Writer) error { return WriteFrame(w, data) })
}

// RequestRaw opens a stream for proto, lets write put anything on it (including
// malformed frames), closes the write side and reads one response frame.
func (p *Peer) RequestRaw(ctx context.Context, to peer.ID, proto protocol.ID, write func(io.Writer) error) ([]byte, error) {
	s, err := p.Host.NewStream(ctx, to, proto)
	if err != nil {
		return nil, fmt.Errorf("fedpeer: open %s: %w", proto, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := write(s); err != nil {
		return nil, fmt.Errorf("%w: write: %v", ErrReset, err)
	}
	_ = s.CloseWrite()
	resp, err := ReadFrame(bufio.NewReader(s), MaxResponse)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReset, err)
	}
	return resp, nil
}

// WriteFrame writes an unsigned LEB128 length and data.
func WriteFrame(w io.Writer, data []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(data)))
	if _, err := w.Write(append(hdr[:n:n], data...)); err != nil {
		return fmt.Errorf("fedpeer: write frame: %w", err)
	}
	return nil
}

// ErrFrameTooLarge is returned for a frame over the reader's limit.
var ErrFrameTooLarge = errors.New("fedpeer: frame over the limit")

// ReadFrame reads one length-prefixed frame of at most max bytes.
func ReadFrame(r io.ByteReader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("fedpeer: frame length: %w", err)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	for i := range buf {
		b, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("fedpeer: frame body: %w", err)
		}
		buf[i] = b
	}
	return buf, nil
}

var (
	encMode, _ = cbor.CoreDetEncOptions().EncMode()
	decMode, _ = cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden, UTF8: cbor.UTF8RejectInvalid}.DecMode()
)

// Marshal encodes v in core deterministic CBOR (RFC 8949 §4.2.1).
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("fedpeer: encode: %w", err)
	}
	return b, nil
}

// Unmarshal decodes CBOR strictly (no duplicate keys, no indefinite lengths).
func Unmarshal(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("fedpeer: decode: %w", err)
	}
	return nil
}

// Response is the common head of every stream response (FED-021).
type Response struct {
	Status uint64 `cbor:"0,keyasint"`
	Error  string `cbor:"1,keyasint"`
}

// DecodeResponse decodes a response frame into its common fields and the full
// map by integer key.
func DecodeResponse(frame []byte) (Response, map[uint64]cbor.RawMessage, error) {
	var m map[uint64]cbor.RawMessage
	if err := Unmarshal(frame, &m); err != nil {
		return Response{}, nil, err
	}
	var r Response
	if err := Unmarshal(frame, &r); err != nil {
		return Response{}, m, err
	}
	if _, ok := m[0]; !ok {
		return r, m, errors.New("fedpeer: response has no status (key 0)")
	}
	return r, m, nil
}
