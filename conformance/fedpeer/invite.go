package fedpeer

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// InvitePrefix starts a federated invite code (spec/federation.md §6).
const InvitePrefix = "hearth:"

// Invite is a decoded federated invite:
// {0: guild id, 1: code tstr, 2: home peer-id, 3: [* multiaddr bstr]}.
type Invite struct {
	Guild []byte   `cbor:"0,keyasint"`
	Code  string   `cbor:"1,keyasint"`
	Home  []byte   `cbor:"2,keyasint"`
	Addrs [][]byte `cbor:"3,keyasint"`
}

// String encodes the invite as "hearth:" + base64url (no padding) of its CBOR.
func (inv Invite) String() string {
	b, err := Marshal(inv)
	if err != nil {
		return ""
	}
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HomeID is the home node's peer ID.
func (inv Invite) HomeID() (peer.ID, error) {
	id, err := peer.IDFromBytes(inv.Home)
	if err != nil {
		return "", fmt.Errorf("fedpeer: invite home peer ID: %w", err)
	}
	return id, nil
}

// HomeAddrs decodes the home node's addresses, with /p2p/<home> appended.
func (inv Invite) HomeAddrs() ([]string, error) {
	id, err := inv.HomeID()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range inv.Addrs {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return nil, fmt.Errorf("fedpeer: invite address: %w", err)
		}
		out = append(out, a.String()+"/p2p/"+id.String())
	}
	return out, nil
}

// ParseInvite decodes and checks a federated invite code.
func ParseInvite(s string) (Invite, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), InvitePrefix)
	if !ok {
		return Invite{}, fmt.Errorf("fedpeer: invite lacks the %q prefix", InvitePrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return Invite{}, fmt.Errorf("fedpeer: invite: %w", err)
	}
	var inv Invite
	if err := Unmarshal(b, &inv); err != nil {
		return Invite{}, err
	}
	if canon, err := Marshal(inv); err != nil || string(canon) != string(b) {
		return Invite{}, errors.New("fedpeer: invite is not in core deterministic CBOR")
	}
	if len(inv.Guild) != 34 {
		return Invite{}, fmt.Errorf("fedpeer: invite guild ID is %d bytes, expected a 34-byte multihash", len(inv.Guild))
	}
	return inv, nil
}
