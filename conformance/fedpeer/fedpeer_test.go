package fedpeer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestRequestResponse(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	type heads struct {
		Op    uint64 `cbor:"0,keyasint"`
		Guild []byte `cbor:"1,keyasint"`
	}
	b.Handle(ProtoSync, func(remote peer.ID, req []byte) any {
		var h heads
		if Unmarshal(req, &h) != nil || remote != a.Host.ID() {
			return map[uint64]any{0: StatusBadRequest, 1: "bad"}
		}
		return map[uint64]any{0: StatusForbidden, 1: "not a member", 2: []any{}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := a.Connect(ctx, b.Addr().String())
	if err != nil || id != b.Host.ID() {
		t.Fatalf("Connect = %s, %v", id, err)
	}
	frame, err := a.Request(ctx, id, ProtoSync, heads{Op: 1, Guild: make([]byte, 34)})
	if err != nil {
		t.Fatal(err)
	}
	r, m, err := DecodeResponse(frame)
	if err != nil || r.Status != StatusForbidden || r.Error != "not a member" || len(m) != 3 {
		t.Fatalf("response = %+v %v %v", r, m, err)
	}

	// An oversize request frame is refused with a reset, not an answer.
	_, err = a.RequestRaw(ctx, id, ProtoSync, func(w io.Writer) error {
		return WriteFrame(w, make([]byte, MaxRequest+1))
	})
	if !errors.Is(err, ErrReset) {
		t.Fatalf("oversize request: err = %v, want ErrReset", err)
	}
	// A protocol nobody switched on is not negotiated.
	if _, err := a.Request(ctx, id, ProtoJoin, map[uint64]any{}); err == nil {
		t.Fatal("a protocol without a handler answered")
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, n := range []int{0, 1, 127, 128, 300, 70000} {
		buf.Reset()
		data := bytes.Repeat([]byte{7}, n)
		if err := WriteFrame(&buf, data); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFrame(bufio.NewReader(&buf), MaxResponse)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("frame of %d: %d bytes, %v", n, len(got), err)
		}
	}
	buf.Reset()
	_ = WriteFrame(&buf, make([]byte, 10))
	if _, err := ReadFrame(bufio.NewReader(&buf), 9); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("limit: %v", err)
	}
}

func TestInvite(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	home, _ := p.Host.ID().MarshalBinary()
	addr, _ := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4001")
	guild := append([]byte{0x12, 0x20}, bytes.Repeat([]byte{1}, 32)...)
	inv := Invite{Guild: guild, Code: "abcdefgh", Home: home, Addrs: [][]byte{addr.Bytes()}}
	s := inv.String()
	if !strings.HasPrefix(s, InvitePrefix) {
		t.Fatalf("code %q", s)
	}
	got, err := ParseInvite(s)
	if err != nil || got.Code != "abcdefgh" {
		t.Fatalf("ParseInvite = %+v, %v", got, err)
	}
	addrs, err := got.HomeAddrs()
	if err != nil || len(addrs) != 1 || addrs[0] != "/ip4/127.0.0.1/tcp/4001/p2p/"+p.Host.ID().String() {
		t.Fatalf("HomeAddrs = %v, %v", addrs, err)
	}
	for _, bad := range []string{"", "hearth:", "hearth:!!", "discord.gg/abc", InvitePrefix + "oA"} {
		if _, err := ParseInvite(bad); err == nil {
			t.Errorf("ParseInvite(%q) accepted", bad)
		}
	}
}

func FuzzParseInvite(f *testing.F) {
	f.Add("hearth:pACYIg")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseInvite(s)
		if err != nil {
			return
		}
		if _, err := ParseInvite(inv.String()); err != nil {
			t.Fatalf("re-encoded invite does not parse: %v", err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadFrame(bufio.NewReader(bytes.NewReader(data)), 1024)
		if err == nil && len(got) > 1024 {
			t.Fatalf("frame of %d bytes over the limit", len(got))
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{0xa2, 0x00, 0x02, 0x01, 0x60})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = DecodeResponse(data)
	})
}
