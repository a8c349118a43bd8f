package fed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
)

// memMedia serves blobs from memory to the nodes it allows.
type memMedia struct {
	blobs   map[[32]byte][]byte
	allowed map[event.Node]bool
}

func (m *memMedia) MediaAllowed(n event.Node, _ [32]byte) bool { return m.allowed[n] }

func (m *memMedia) OpenMedia(_ context.Context, h [32]byte) (io.ReadCloser, error) {
	b, ok := m.blobs[h]
	if !ok {
		return nil, errors.New("no such blob")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// TestMediaFetch: a member node fetches a blob's bytes from its origin; a node the origin
// does not allow is refused, and an unknown blob is not found.
func TestMediaFetch(t *testing.T) {
	alice, bob, carol := startNode(t, "alice"), startNode(t, "bob"), startNode(t, "carol")
	guildOf(t, alice, bob, carol)
	data := bytes.Repeat([]byte("hearth media "), 50000) // ~650 KB, several stream writes
	h := sha256.Sum256(data)
	alice.svc.ServeMedia(&memMedia{blobs: map[[32]byte][]byte{h: data}, allowed: map[event.Node]bool{bob.svc.Node(): true}})

	rc, err := bob.svc.FetchMedia(ctx(t), alice.svc.Node().String(), h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched %d bytes (%v), want %d", len(got), err, len(data))
	}
	if _, err := carol.svc.FetchMedia(ctx(t), alice.svc.Node().String(), h); !errors.Is(err, ErrMediaForbidden) {
		t.Fatalf("carol's fetch: %v, want ErrMediaForbidden", err)
	}
	if _, err := bob.svc.FetchMedia(ctx(t), alice.svc.Node().String(), sha256.Sum256([]byte("other"))); err == nil {
		t.Fatal("fetch of an unknown blob succeeded")
	}
}
