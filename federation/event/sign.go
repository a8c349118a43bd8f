package event

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cloudflare/circl/sign/ed25519"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// AlgEd25519 names Ed25519ctx with context SigContext [EVT-022]. A hybrid
// "ed25519+ml-dsa-44" is reserved for a later version of this package; it
// needs no new envelope version because signatures sit outside the payload.
const AlgEd25519 = "ed25519"

// SigContext is the Ed25519ctx domain-separation context for event signatures.
const SigContext = "hearth-event-v1"

// Signer signs payloads on behalf of one origin node. The zero value is not
// usable; build one with NewSigner.
type Signer struct {
	origin Node
	priv   ed25519.PrivateKey
}

// NewSigner makes a Signer from a node's libp2p Ed25519 identity key.
func NewSigner(key crypto.PrivKey) (*Signer, error) {
	if key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("event: signer: key type %v, want Ed25519", key.Type())
	}
	raw, err := key.Raw()
	if err != nil {
		return nil, fmt.Errorf("event: signer: %w", err)
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("event: signer: key length %d", len(raw))
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("event: signer: %w", err)
	}
	return &Signer{origin: Node(id), priv: ed25519.PrivateKey(raw)}, nil
}

// Origin is the node this Signer signs for.
func (s *Signer) Origin() Node { return s.origin }

// Sign fills env.Origin, encodes env with body as its body and returns the
// signed Event. env.V is set to Version. The caller chooses kind, guild,
// author, seq, ts and (for state) sn and prev.
func (s *Signer) Sign(env Envelope, b any) (*Event, error) {
	env.V = Version
	env.Origin = s.origin
	bb, err := encMode.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("event: sign: body: %w", err)
	}
	env.Body = bb
	payload, err := encMode.Marshal(&env)
	if err != nil {
		return nil, fmt.Errorf("event: sign: envelope: %w", err)
	}
	sig := ed25519.SignWithCtx(s.priv, payload, SigContext)
	raw, err := encMode.Marshal(&signed{Payload: payload, Sigs: []Signature{{Alg: AlgEd25519, Sig: sig}}})
	if err != nil {
		return nil, fmt.Errorf("event: sign: %w", err)
	}
	// Decode what we produced: one code path for local and remote events, and
	// a local bug can never emit an event other nodes would reject.
	ev, err := Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("event: sign: %w", err)
	}
	return ev, nil
}

// SignDetached signs msg, which is not an event, with Ed25519ctx under the
// context ctx (1..255 bytes, never SigContext, so that no such signature can
// pass for an event's): a home node's signature over a guild state snapshot
// (spec/federation.md §6.2).
func (s *Signer) SignDetached(ctx string, msg []byte) []byte {
	if ctx == SigContext {
		panic("event: SignDetached with the event signature context")
	}
	return ed25519.SignWithCtx(s.priv, msg, ctx)
}

// VerifyDetached checks a SignDetached signature of origin n over msg under ctx.
func VerifyDetached(n Node, ctx string, msg, sig []byte) error {
	key, err := publicKey(n)
	if err != nil {
		return err
	}
	if ctx == SigContext || len(sig) != ed25519.SignatureSize || !ed25519.VerifyWithCtx(key, msg, sig, ctx) {
		return ErrBadSignature
	}
	return nil
}

// keyCache maps origin Node to its Ed25519 public key, because extracting the
// key from a peer ID costs more than the signature check itself.
var keyCache sync.Map

const maxCachedKeys = 1 << 16

var keyCount int64
var keyMu sync.Mutex

func publicKey(n Node) (ed25519.PublicKey, error) {
	if k, ok := keyCache.Load(n); ok {
		return k.(ed25519.PublicKey), nil
	}
	pk, err := peer.ID(n).ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: origin key: %v", ErrBadSignature, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: origin key is not Ed25519", ErrBadSignature) // [EVT-011]
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: origin key", ErrBadSignature)
	}
	key := ed25519.PublicKey(raw)
	keyMu.Lock()
	if keyCount < maxCachedKeys {
		keyCount++
		keyCache.Store(n, key)
	}
	keyMu.Unlock()
	return key, nil
}

// Verify checks the event's signatures against its origin's key [EVT-023]:
// at least one known algorithm must verify and none may fail; unknown
// algorithms are skipped [EVT-024].
func (e *Event) Verify() error {
	key, err := publicKey(e.Origin)
	if err != nil {
		return err
	}
	known := 0
	for _, s := range e.Sigs {
		switch s.Alg {
		case AlgEd25519:
			known++
			if len(s.Sig) != ed25519.SignatureSize || !ed25519.VerifyWithCtx(key, e.Payload, s.Sig, SigContext) {
				return ErrBadSignature
			}
		}
	}
	if known == 0 {
		return errors.Join(ErrBadSignature, errors.New("no known signature algorithm"))
	}
	return nil
}
