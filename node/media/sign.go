package media

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// MinKeySize is the shortest URL-signing key NewSigner accepts.
const MinKeySize = 32

// signContext separates media URL MACs from any other use of the key; it
// names the version of the signed-URL scheme (spec/media.md).
const signContext = "hearth-media-url/1"

// Errors Verify returns.
var (
	// ErrBadSignature means the signature is missing, malformed or wrong.
	ErrBadSignature = errors.New("media: bad URL signature")
	// ErrExpired means the URL's expiry time has passed.
	ErrExpired = errors.New("media: URL expired")
)

// Signer makes and checks expiring HMAC-SHA256 signatures over a blob's
// hash and file name, which is what authorises a media request: a node
// serves no bytes to a URL it did not sign. It is safe for concurrent use.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer with a copy of key, which must be at least
// MinKeySize bytes of secret randomness. Every URL signed with a key becomes
// invalid when the key changes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("media: signing key is %d bytes, want at least %d", len(key), MinKeySize)
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

func (s *Signer) mac(h Hash, filename string, exp int64) []byte {
	m := hmac.New(sha256.New, s.key)
	var n [8]byte
	m.Write([]byte(signContext))
	m.Write([]byte{0})
	m.Write(h[:])
	binary.BigEndian.PutUint64(n[:], uint64(exp))
	m.Write(n[:])
	m.Write([]byte(filename))
	return m.Sum(nil)
}

// Query returns the query string ("ex=…&sig=…") that authorises GET of the
// blob h under filename until exp. ex is the expiry in Unix seconds as
// lowercase hex; sig is the unpadded base64url HMAC.
func (s *Signer) Query(h Hash, filename string, exp time.Time) string {
	ex := exp.Unix()
	return "ex=" + strconv.FormatInt(ex, 16) + "&sig=" +
		base64.RawURLEncoding.EncodeToString(s.mac(h, filename, ex))
}

// Verify checks the ex and sig query parameters of a request for h under
// filename at time now. It returns ErrBadSignature or ErrExpired (wrapped).
// The signature is checked before the expiry, so an attacker learns nothing
// from the error about URLs it could not have been given.
func (s *Signer) Verify(h Hash, filename string, q url.Values, now time.Time) (expires time.Time, err error) {
	exs, sigs := q.Get("ex"), q.Get("sig")
	if exs == "" || sigs == "" || len(exs) > 16 {
		return time.Time{}, ErrBadSignature
	}
	ex, err := strconv.ParseInt(exs, 16, 64)
	if err != nil || strconv.FormatInt(ex, 16) != exs {
		return time.Time{}, ErrBadSignature
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigs)
	if err != nil || !hmac.Equal(sig, s.mac(h, filename, ex)) {
		return time.Time{}, ErrBadSignature
	}
	expires = time.Unix(ex, 0)
	if !now.Before(expires) {
		return time.Time{}, fmt.Errorf("%w at %v", ErrExpired, expires.UTC())
	}
	return expires, nil
}
