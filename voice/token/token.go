// Package token mints and verifies voice tokens: short-lived HMAC-signed
// grants that bind one user to one guild and voice channel.
//
// The node mints a token when it accepts gateway op 4 (Voice State Update)
// and sends it to the client in VOICE_SERVER_UPDATE; the voice WebSocket
// verifies it on Identify, Resume and Channel Switch. Only the issuing node
// verifies its tokens, so the format is private to this package (spec/voice.md
// section 2.1, format "hv1").
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxTTL is the longest lifetime a token may have (VOICE-010).
const MaxTTL = 60 * time.Second

// MinKeySize is the shortest accepted HMAC key in bytes (VOICE-013).
const MinKeySize = 32

const (
	prefix = "hv1"
	// domain separates voice-token MACs from any other use of the key.
	domain = "hearth-voice-token-v1\x00"
	// maxTokenLen bounds the work done on attacker-supplied input.
	maxTokenLen = 1024
)

// Errors returned by Verify. They are distinct so the voice gateway can log
// why a token was refused; all of them map to close code 4004.
var (
	ErrMalformed = errors.New("token: malformed")
	ErrSignature = errors.New("token: bad signature")
	ErrExpired   = errors.New("token: expired")
)

// Claims is what a token grants. All IDs are decimal snowflake strings as the
// client API uses them; none may be empty.
type Claims struct {
	UserID    string `json:"u"`
	GuildID   string `json:"g"`
	ChannelID string `json:"c"`
	// SessionID is the gateway session that asked to join; the voice
	// WebSocket uses it to find the voice session on Resume.
	SessionID string `json:"s"`
	// Expires is the instant after which the token is refused.
	Expires time.Time `json:"-"`
}

type wireClaims struct {
	Claims
	Exp   int64  `json:"e"`
	Nonce string `json:"n"`
}

// Issuer mints and verifies tokens with one secret key. The zero value is not
// usable; create one with New. An Issuer is safe for concurrent use.
type Issuer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// New returns an Issuer with the given key (at least MinKeySize bytes, kept
// secret by the node) and token lifetime. ttl 0 means MaxTTL; a ttl above
// MaxTTL is an error.
func New(key []byte, ttl time.Duration) (*Issuer, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("token: key is %d bytes, need at least %d", len(key), MinKeySize)
	}
	if ttl == 0 {
		ttl = MaxTTL
	}
	if ttl < 0 || ttl > MaxTTL {
		return nil, fmt.Errorf("token: ttl %v outside (0, %v]", ttl, MaxTTL)
	}
	return &Issuer{key: append([]byte(nil), key...), ttl: ttl, now: time.Now}, nil
}

// Mint returns a token for c. c.Expires is ignored: the token expires one
// lifetime from now.
func (is *Issuer) Mint(c Claims) (string, error) {
	if c.UserID == "" || c.GuildID == "" || c.ChannelID == "" {
		return "", fmt.Errorf("token: mint: user, guild and channel are required")
	}
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("token: mint: %w", err)
	}
	w := wireClaims{
		Claims: c,
		Exp:    is.now().Add(is.ttl).Unix(),
		Nonce:  base64.RawURLEncoding.EncodeToString(nonce[:]),
	}
	body, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("token: mint: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(body)
	return prefix + "." + payload + "." + base64.RawURLEncoding.EncodeToString(is.mac(payload)), nil
}

// Verify checks the token's signature and expiry and returns its claims.
// For an authentic but expired token it returns the claims together with
// ErrExpired, so that Resume can re-attach a session whose token has aged;
// every other error returns zero Claims.
func (is *Issuer) Verify(tok string) (Claims, error) {
	if len(tok) > maxTokenLen {
		return Claims{}, ErrMalformed
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != prefix {
		return Claims{}, ErrMalformed
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(sig, is.mac(parts[1])) {
		return Claims{}, ErrSignature
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var w wireClaims
	if err := json.Unmarshal(body, &w); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.UserID == "" || w.GuildID == "" || w.ChannelID == "" {
		return Claims{}, ErrMalformed
	}
	w.Claims.Expires = time.Unix(w.Exp, 0)
	if !is.now().Before(w.Claims.Expires) {
		// The claims are authentic; Resume may still use them.
		return w.Claims, ErrExpired
	}
	return w.Claims, nil
}

func (is *Issuer) mac(payload string) []byte {
	m := hmac.New(sha256.New, is.key)
	m.Write([]byte(domain))
	m.Write([]byte(payload))
	return m.Sum(nil)
}
