package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Hash is the SHA-256 digest of a blob's bytes: its name on disk, in URLs
// and in federated events. The zero Hash names no blob.
type Hash [sha256.Size]byte

// String returns the hash as 64 lowercase hex digits, the form used in URLs
// and on disk.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero Hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes h as lowercase hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses lowercase hex, as ParseHash does.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ErrBadHash means a string is not 64 lowercase hex digits.
var ErrBadHash = errors.New("media: malformed hash")

// ParseHash parses exactly 64 lowercase hex digits. Uppercase is refused so
// that every blob has exactly one URL.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%w: length %d", ErrBadHash, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return h, fmt.Errorf("%w: byte %d", ErrBadHash, i)
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadHash, err)
	}
	return h, nil
}
