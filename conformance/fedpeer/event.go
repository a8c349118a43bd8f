package fedpeer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Event constants of spec/events.md.
const (
	// SigContext is the Ed25519ctx context of event signatures [EVT-022].
	SigContext = "hearth-event-v1"
	// AlgEd25519 names Ed25519ctx.
	AlgEd25519 = "ed25519"
	// MaxEvent bounds a signed event [EVT-003].
	MaxEvent = 65536
	// MaxPubsub bounds a pubsub message [FED-070].
	MaxPubsub = 131072
)

// User is {0: home node peer-id, 1: name}.
type User struct {
	Node []byte `cbor:"0,keyasint"`
	Name string `cbor:"1,keyasint"`
}

// Envelope is the event payload of spec/events.md §2. Body is the encoded body
// map, so that tests can put anything there.
type Envelope struct {
	V       uint64          `cbor:"0,keyasint"`
	Kind    string          `cbor:"1,keyasint"`
	Guild   []byte          `cbor:"2,keyasint,omitempty"`
	Channel []byte          `cbor:"3,keyasint,omitempty"`
	Author  User            `cbor:"4,keyasint"`
	Origin  []byte          `cbor:"5,keyasint"`
	Seq     uint64          `cbor:"6,keyasint"`
	TS      uint64          `cbor:"7,keyasint"`
	SN      uint64          `cbor:"8,keyasint,omitempty"`
	Prev    []byte          `cbor:"9,keyasint,omitempty"`
	Body    cbor.RawMessage `cbor:"10,keyasint"`
}

// Signature is [alg, sig].
type Signature struct {
	_   struct{} `cbor:",toarray"`
	Alg string
	Sig []byte
}

// Signed is the wire form {0: payload, 1: [+ signature]}.
type Signed struct {
	Payload []byte      `cbor:"0,keyasint"`
	Sigs    []Signature `cbor:"1,keyasint"`
}

// Event is a decoded signed event.
type Event struct {
	Raw     []byte
	ID      []byte // sha2-256 multihash of the payload
	Payload []byte
	Sigs    []Signature
	Env     Envelope
}

// HashID is the sha2-256 multihash of payload [EVT-020].
func HashID(payload []byte) []byte {
	sum := sha256.Sum256(payload)
	return append([]byte{0x12, 0x20}, sum[:]...)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// IDString is the multibase base32 form of an ID ("b" + lower-case base32).
func IDString(id []byte) string { return "b" + strings.ToLower(b32.EncodeToString(id)) }

// TS makes a hybrid logical clock value: milliseconds in the high 48 bits.
func TS(t time.Time, counter uint16) uint64 { return uint64(t.UnixMilli())<<16 | uint64(counter) }

// TSTime is the physical part of a clock value.
func TSTime(ts uint64) time.Time { return time.UnixMilli(int64(ts >> 16)) }

// DecodeEvent decodes a signed event strictly and its envelope.
func DecodeEvent(raw []byte) (*Event, error) {
	var s Signed
	if err := Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	ev := &Event{Raw: raw, ID: HashID(s.Payload), Payload: s.Payload, Sigs: s.Sigs}
	if err := Unmarshal(s.Payload, &ev.Env); err != nil {
		return nil, fmt.Errorf("fedpeer: payload: %w", err)
	}
	return ev, nil
}

// Canonical reports whether data is in core deterministic CBOR: it decodes to a
// generic value that encodes back to the same bytes.
func Canonical(data []byte) error {
	var v any
	if err := Unmarshal(data, &v); err != nil {
		return err
	}
	again, err := Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return errors.New("fedpeer: not in core deterministic encoding")
	}
	return nil
}

// Verify checks every ed25519 signature over the payload with the origin's key.
func (e *Event) Verify() error {
	id, err := peer.IDFromBytes(e.Env.Origin)
	if err != nil {
		return fmt.Errorf("fedpeer: origin: %w", err)
	}
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("fedpeer: origin key: %w", err)
	}
	if pk.Type() != crypto.Ed25519 {
		return errors.New("fedpeer: origin key is not Ed25519")
	}
	raw, err := pk.Raw()
	if err != nil {
		return err
	}
	known := 0
	for _, s := range e.Sigs {
		if s.Alg != AlgEd25519 {
			continue
		}
		known++
		if err := ed25519.VerifyWithOptions(ed25519.PublicKey(raw), e.Payload, s.Sig, &ed25519.Options{Context: SigContext}); err != nil {
			return fmt.Errorf("fedpeer: signature: %w", err)
		}
	}
	if known == 0 {
		return errors.New("fedpeer: no ed25519 signature")
	}
	return nil
}

// Signer signs events as one origin node (a fake peer's identity).
type Signer struct {
	Origin []byte
	priv   ed25519.PrivateKey
}

// NewSigner makes a signer from a libp2p Ed25519 key.
func NewSigner(key crypto.PrivKey) (*Signer, error) {
	raw, err := key.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("fedpeer: signer: not an Ed25519 key (%v)", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("fedpeer: signer: %w", err)
	}
	return &Signer{Origin: []byte(id), priv: ed25519.PrivateKey(raw)}, nil
}

// SignPayload signs payload bytes as they are.
func (s *Signer) SignPayload(payload []byte) []byte {
	sig, _ := s.priv.Sign(nil, payload, &ed25519.Options{Context: SigContext})
	return sig
}

// SnapshotContext is the Ed25519ctx context of a state snapshot's signature (FED-101).
const SnapshotContext = "hearth-snapshot-v1"

// SignSnapshot signs the bytes of a guild state snapshot as a home node does.
func (s *Signer) SignSnapshot(state []byte) []byte {
	sig, _ := s.priv.Sign(nil, state, &ed25519.Options{Context: SnapshotContext})
	return sig
}

// Seal wraps a payload and signatures in the wire form.
func Seal(payload []byte, sigs ...Signature) []byte {
	b, _ := Marshal(Signed{Payload: payload, Sigs: sigs})
	return b
}

// Sign encodes env (its Origin is set when empty, V when zero) with body and
// returns the signed event's wire bytes and ID.
func (s *Signer) Sign(env Envelope, body any) (raw, id []byte, err error) {
	if env.Origin == nil {
		env.Origin = s.Origin
	}
	if env.V == 0 {
		env.V = 1
	}
	if env.Body, err = Marshal(body); err != nil {
		return nil, nil, err
	}
	payload, err := Marshal(env)
	if err != nil {
		return nil, nil, err
	}
	return Seal(payload, Signature{Alg: AlgEd25519, Sig: s.SignPayload(payload)}), HashID(payload), nil
}
