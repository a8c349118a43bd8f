// Package event defines Hearth's signed federation events: the envelope, its
// canonical CBOR encoding, content-addressed IDs, signatures and the hybrid
// logical clock. It is the byte-level contract of spec/events.md and has no
// knowledge of guild state or transport.
package event

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Version is the only envelope version this package produces and accepts [EVT-010].
const Version = 1

// MaxSize bounds a signed event on the wire in bytes [EVT-003].
const MaxSize = 65536

// Errors returned by Decode and Verify; callers compare with errors.Is.
var (
	// ErrMalformed means the bytes are not a well-formed, canonical event.
	ErrMalformed = errors.New("event: malformed")
	// ErrTooLarge means the event exceeds MaxSize.
	ErrTooLarge = errors.New("event: too large")
	// ErrUnknownKind means the kind is not defined by spec/events.md.
	ErrUnknownKind = errors.New("event: unknown kind")
	// ErrBadSignature means no signature verified or a known one failed.
	ErrBadSignature = errors.New("event: bad signature")
)

// IDLen is the length of an ID: a sha2-256 multihash (code 0x12, length 0x20, digest).
const IDLen = 34

// ID is a content address: the sha2-256 multihash of an event payload. It
// holds the raw 34 bytes in a string so it is comparable and usable as a map
// key. The zero ID ("") means "none".
type ID string

// HashID returns the ID of payload [EVT-020].
func HashID(payload []byte) ID {
	sum := sha256.Sum256(payload)
	b := make([]byte, 0, IDLen)
	b = append(b, 0x12, 0x20)
	b = append(b, sum[:]...)
	return ID(b)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// String returns the multibase base32 form ("b" + lower-case base32), used in
// topic names and logs. The zero ID prints as "".
func (id ID) String() string {
	if id == "" {
		return ""
	}
	return "b" + strings.ToLower(b32.EncodeToString([]byte(id)))
}

// ParseID parses the String form of an ID.
func ParseID(s string) (ID, error) {
	if len(s) < 2 || s[0] != 'b' {
		return "", fmt.Errorf("event: parse id %q: %w", s, ErrMalformed)
	}
	raw, err := b32.DecodeString(strings.ToUpper(s[1:]))
	if err != nil {
		return "", fmt.Errorf("event: parse id: %w", err)
	}
	id, err := idFromBytes(raw)
	if err != nil {
		return "", fmt.Errorf("event: parse id: %w", err)
	}
	return id, nil
}

func idFromBytes(b []byte) (ID, error) {
	if len(b) != IDLen || b[0] != 0x12 || b[1] != 0x20 {
		return "", fmt.Errorf("%w: id is not a sha2-256 multihash", ErrMalformed)
	}
	return ID(b), nil
}

// MarshalCBOR encodes the ID as a byte string; the zero ID is never encoded
// because envelope fields holding it are omitempty.
func (id ID) MarshalCBOR() ([]byte, error) { return encMode.Marshal([]byte(id)) }

// UnmarshalCBOR decodes a byte string that must be a sha2-256 multihash.
func (id *ID) UnmarshalCBOR(data []byte) error {
	var b []byte
	if err := decMode.Unmarshal(data, &b); err != nil {
		return err
	}
	v, err := idFromBytes(b)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Node is a libp2p peer ID carried as its binary form. It is its own type so
// that it encodes as a CBOR byte string; convert with peer.ID(n) and Node(p).
type Node peer.ID

// MarshalCBOR encodes the peer ID bytes.
func (n Node) MarshalCBOR() ([]byte, error) { return encMode.Marshal([]byte(n)) }

// UnmarshalCBOR decodes and validates peer ID bytes.
func (n *Node) UnmarshalCBOR(data []byte) error {
	var b []byte
	if err := decMode.Unmarshal(data, &b); err != nil {
		return err
	}
	p, err := peer.IDFromBytes(b)
	if err != nil {
		return fmt.Errorf("%w: peer id: %v", ErrMalformed, err)
	}
	*n = Node(p)
	return nil
}

// String returns the usual base58 peer ID text.
func (n Node) String() string { return peer.ID(n).String() }

// User identifies a user across nodes: their home node and their name there
// [FED-003]. The zero User means "nobody".
type User struct {
	Node Node   `cbor:"0,keyasint"`
	Name string `cbor:"1,keyasint"`
}

// String renders "name@peerID".
func (u User) String() string { return u.Name + "@" + u.Node.String() }

// ValidName reports whether name is 1..32 bytes of [a-z0-9_.-] [EVT-016].
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Envelope is the signed content of an event (spec/events.md §2). Optional
// fields are omitted when zero; a payload that spells out a zero optional
// field is not canonical and is rejected.
type Envelope struct {
	V       uint64          `cbor:"0,keyasint"`
	Kind    Kind            `cbor:"1,keyasint"`
	Guild   ID              `cbor:"2,keyasint,omitzero"`
	Channel ID              `cbor:"3,keyasint,omitzero"`
	Author  User            `cbor:"4,keyasint"`
	Origin  Node            `cbor:"5,keyasint"`
	Seq     uint64          `cbor:"6,keyasint"`
	TS      HLC             `cbor:"7,keyasint"`
	SN      uint64          `cbor:"8,keyasint,omitempty"`
	Prev    ID              `cbor:"9,keyasint,omitzero"`
	Body    cbor.RawMessage `cbor:"10,keyasint"`
}

// Signature is one signature over the payload, named by algorithm. Keys are
// not carried: the key for an algorithm is the origin's [EVT-025].
type Signature struct {
	_   struct{} `cbor:",toarray"`
	Alg string
	Sig []byte
}

type signed struct {
	Payload []byte      `cbor:"0,keyasint"`
	Sigs    []Signature `cbor:"1,keyasint"`
}

// Event is a decoded, structurally valid event. Raw holds the exact bytes
// received or produced, which are what is stored and forwarded [EVT-004].
// An Event is immutable once returned; share it freely.
type Event struct {
	Envelope
	// ID is the content address of the payload.
	ID ID
	// Raw is the full signed-event encoding.
	Raw []byte
	// Payload is the canonical envelope encoding inside Raw (signed bytes).
	Payload []byte
	// Sigs are the signatures as received.
	Sigs []Signature
	// Body is the decoded body: a pointer to the kind's body type
	// (e.g. *MessageCreate).
	Body any
}

// GuildID returns the guild the event belongs to; for the genesis event it is
// the event's own ID [EVT-021].
func (e *Event) GuildID() ID {
	if e.Kind == KindGuildCreate {
		return e.ID
	}
	return e.Guild
}

// Decode parses and structurally validates a signed event from untrusted
// bytes. It does not verify signatures (see Verify) nor check anything that
// depends on guild state or the clock. The returned Event keeps raw.
func Decode(raw []byte) (*Event, error) {
	if len(raw) > MaxSize {
		return nil, ErrTooLarge
	}
	var s signed
	if err := UnmarshalCanonical(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(s.Sigs) == 0 || len(s.Sigs) > 4 {
		return nil, fmt.Errorf("%w: need 1..4 signatures", ErrMalformed)
	}
	var env Envelope
	if err := UnmarshalCanonical(s.Payload, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	body, err := checkEnvelope(&env)
	if err != nil {
		return nil, err
	}
	return &Event{Envelope: env, ID: HashID(s.Payload), Raw: raw, Payload: s.Payload, Sigs: s.Sigs, Body: body}, nil
}

// checkEnvelope applies the stateless rules of spec/events.md §2 and §6 and
// returns the decoded body.
func checkEnvelope(env *Envelope) (any, error) {
	if env.V != Version {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, env.V)
	}
	spec, ok := kinds[env.Kind]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, env.Kind)
	}
	if env.Origin == "" || env.Author.Node == "" {
		return nil, fmt.Errorf("%w: missing origin or author", ErrMalformed)
	}
	if !ValidName(env.Author.Name) {
		return nil, fmt.Errorf("%w: author name %q", ErrMalformed, env.Author.Name)
	}
	if spec.class != ClassState && env.Author.Node != env.Origin {
		return nil, fmt.Errorf("%w: author node is not the origin", ErrMalformed) // [EVT-012]
	}
	if spec.class == ClassEphemeral {
		if env.Seq != 0 {
			return nil, fmt.Errorf("%w: ephemeral event with seq", ErrMalformed) // [EVT-015]
		}
	} else if env.Seq == 0 {
		return nil, fmt.Errorf("%w: persistent event without seq", ErrMalformed)
	}
	genesis := env.Kind == KindGuildCreate
	if genesis != (env.Guild == "") {
		return nil, fmt.Errorf("%w: guild field", ErrMalformed)
	}
	if spec.class == ClassState {
		if env.SN == 0 || genesis != (env.SN == 1) || genesis != (env.Prev == "") {
			return nil, fmt.Errorf("%w: state number or prev", ErrMalformed) // [EVT-041]
		}
	} else if env.Prev != "" {
		return nil, fmt.Errorf("%w: prev on a non-state event", ErrMalformed)
	}
	if spec.channel != (env.Channel != "") {
		return nil, fmt.Errorf("%w: channel field for %s", ErrMalformed, env.Kind)
	}
	body := spec.newBody()
	if err := UnmarshalCanonical(env.Body, body); err != nil {
		return nil, fmt.Errorf("%w: body of %s: %v", ErrMalformed, env.Kind, err)
	}
	if err := body.check(env); err != nil {
		return nil, fmt.Errorf("%w: body of %s: %v", ErrMalformed, env.Kind, err)
	}
	return body, nil
}
