// Package auth hashes passwords with argon2id, mints and hashes session tokens, and limits
// login attempts so that passwords cannot be guessed at speed.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Time    uint32
	MemoryK uint32 // KiB
	Threads uint8
}

// DefaultParams follow OWASP's argon2id minimum (19 MiB, 2 passes): about 30 ms a hash on
// this class of machine, slow for a guesser and cheap enough for a login.
var DefaultParams = Params{Time: 2, MemoryK: 19 * 1024, Threads: 1}

// HashPassword returns an encoded argon2id hash (PHC string format) of password.
func HashPassword(password string, p Params) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryK, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryK, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// ErrMalformedHash is returned for a stored hash this package did not produce.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// CheckPassword reports whether password matches the encoded hash, in constant time.
func CheckPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrMalformedHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryK, &p.Time, &p.Threads); err != nil {
		return false, ErrMalformedHash
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, ErrMalformedHash
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryK, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NewToken returns a random session token (256 bits, URL-safe base64).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// TokenHash is what the store keeps of a token: a leaked database does not leak sessions.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// ParseAuthorization extracts the token from an Authorization header value, accepting the
// bare token and the schemes Bot and Bearer. It returns "" if there is none.
func ParseAuthorization(h string) string {
	h = strings.TrimSpace(h)
	for _, scheme := range []string{"Bot ", "Bearer "} {
		if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
			return strings.TrimSpace(h[len(scheme):])
		}
	}
	return h
}

// Guard limits failed logins per key (a username or a client address): after Max failures
// within Window the key is refused until the oldest failure leaves the window. A success
// clears the key. The zero value is not usable; use NewGuard.
type Guard struct {
	Max    int
	Window time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
	now      func() time.Time
}

// NewGuard returns a guard allowing max failures per window.
func NewGuard(max int, window time.Duration) *Guard {
	return &Guard{Max: max, Window: window, failures: make(map[string][]time.Time), now: time.Now}
}

// Allow reports whether key may try now, and if not, how long until it may.
func (g *Guard) Allow(key string) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.prune(key)
	if len(f) < g.Max {
		return true, 0
	}
	return false, f[0].Add(g.Window).Sub(g.now())
}

// Fail records a failed attempt for key.
func (g *Guard) Fail(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures[key] = append(g.prune(key), g.now())
	if len(g.failures) > 100_000 { // bound memory under a spray of keys
		for k := range g.failures {
			if len(g.prune(k)) == 0 {
				delete(g.failures, k)
			}
		}
	}
}

// Succeed clears key's failures.
func (g *Guard) Succeed(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.failures, key)
}

func (g *Guard) prune(key string) []time.Time {
	f := g.failures[key]
	cut := g.now().Add(-g.Window)
	i := 0
	for i < len(f) && !f[i].After(cut) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(g.failures, key)
	} else {
		g.failures[key] = f
	}
	return f
}
