package event

import (
	"bytes"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func newSigner(t testing.TB) *Signer {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func genesis(t testing.TB, s *Signer) *Event {
	t.Helper()
	owner := User{Node: s.Origin(), Name: "alice"}
	ev, err := s.Sign(Envelope{Kind: KindGuildCreate, Author: owner, Seq: 1, TS: MakeHLC(1_700_000_000_000, 0), SN: 1},
		&GuildCreate{Name: "hearth", Owner: owner, NodeName: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func message(t testing.TB, s *Signer, guild, channel ID, seq uint64, content string) *Event {
	t.Helper()
	ev, err := s.Sign(Envelope{Kind: KindMessageCreate, Guild: guild, Channel: channel,
		Author: User{Node: s.Origin(), Name: "bob"}, Seq: seq, TS: MakeHLC(1_700_000_000_000, uint16(seq))},
		&MessageCreate{Content: content})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestRoundTrip(t *testing.T) {
	s := newSigner(t)
	g := genesis(t, s)
	if g.GuildID() != g.ID || len(g.ID) != IDLen {
		t.Fatalf("genesis guild id %x", g.GuildID())
	}
	m := message(t, s, g.ID, g.ID, 2, "hello")
	got, err := Decode(m.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || got.Body.(*MessageCreate).Content != "hello" || got.Author.Name != "bob" {
		t.Fatalf("decoded %+v", got)
	}
	p, err := ParseID(got.ID.String())
	if err != nil || p != got.ID {
		t.Fatalf("ParseID: %v %x", err, p)
	}
}

// TestAttachmentsRoundTrip: a message of attachments only (empty content) is valid, and its
// references survive encoding exactly.
func TestAttachmentsRoundTrip(t *testing.T) {
	s := newSigner(t)
	g := genesis(t, s)
	body := &MessageCreate{ReplyTo: g.ID, Attachments: []AttachmentRef{
		{Hash: bytes.Repeat([]byte{7}, 32), Size: 1234, Filename: "pic.png", ContentType: "image/png", Width: 640, Height: 480},
		{Hash: bytes.Repeat([]byte{9}, 32), Size: 1, Filename: "a.txt"},
	}}
	ev, err := s.Sign(Envelope{Kind: KindMessageCreate, Guild: g.ID, Channel: g.ID,
		Author: User{Node: s.Origin(), Name: "bob"}, Seq: 2, TS: MakeHLC(1_700_000_000_000, 2)}, body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(ev.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	if b := got.Body.(*MessageCreate); !reflect.DeepEqual(b, body) {
		t.Fatalf("decoded %+v, want %+v", b, body)
	}
}

// TestIDIgnoresSignatures checks [EVT-020]: re-signing keeps the ID.
func TestIDIgnoresSignatures(t *testing.T) {
	s := newSigner(t)
	g := genesis(t, s)
	raw, err := Marshal(&signed{Payload: g.Payload, Sigs: append(g.Sigs, Signature{Alg: "ed25519+ml-dsa-44", Sig: []byte{1}})})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != g.ID {
		t.Fatal("ID changed with signatures")
	}
	if err := ev.Verify(); err != nil {
		t.Fatalf("unknown extra alg should be skipped [EVT-024]: %v", err)
	}
}

func TestRejects(t *testing.T) {
	s, other := newSigner(t), newSigner(t)
	g := genesis(t, s)
	m := message(t, s, g.ID, g.ID, 2, "hello")

	resign := func(env Envelope, body any) []byte {
		bb, _ := Marshal(body)
		env.Body = bb
		p, _ := Marshal(&env)
		raw, _ := Marshal(&signed{Payload: p, Sigs: m.Sigs})
		return raw
	}
	flip := bytes.Clone(m.Raw)
	flip[len(flip)-40] ^= 1 // inside the payload or signature

	wrongAuthor := m.Envelope
	wrongAuthor.Author.Node = other.Origin()
	unknown := m.Envelope
	unknown.Kind = "message.explode"
	noChannel := m.Envelope
	noChannel.Channel = ""
	badVersion := m.Envelope
	badVersion.V = 2
	zeroSeq := m.Envelope
	zeroSeq.Seq = 0

	nonCanonical := append([]byte{0xa2, 0x00, 0x59, 0x00, byte(len(m.Payload))}, m.Payload...) // bstr with a 2-byte length
	nonCanonical = append(nonCanonical, m.Raw[2+len(m.Payload)+1:]...)

	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"garbage", []byte{0xff, 0x00}, ErrMalformed},
		{"oversize", make([]byte, MaxSize+1), ErrTooLarge},
		{"tampered", flip, nil},
		{"author not origin", resign(wrongAuthor, m.Body), ErrMalformed},
		{"unknown kind", resign(unknown, m.Body), ErrUnknownKind},
		{"missing channel", resign(noChannel, m.Body), ErrMalformed},
		{"version", resign(badVersion, m.Body), ErrMalformed},
		{"zero seq", resign(zeroSeq, m.Body), ErrMalformed},
		{"empty content", resign(m.Envelope, &MessageCreate{}), ErrMalformed},
		{"long content", resign(m.Envelope, &MessageCreate{Content: string(make([]byte, MaxContentLen+1))}), ErrMalformed},
		{"non-canonical length", nonCanonical, ErrMalformed},
		{"short attachment hash", resign(m.Envelope, &MessageCreate{Attachments: []AttachmentRef{{Hash: make([]byte, 31), Size: 1, Filename: "a"}}}), ErrMalformed},
		{"attachment without name", resign(m.Envelope, &MessageCreate{Attachments: []AttachmentRef{{Hash: make([]byte, 32), Size: 1}}}), ErrMalformed},
		{"too many attachments", resign(m.Envelope, &MessageCreate{Attachments: make([]AttachmentRef, MaxAttachments+1)}), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := Decode(c.raw)
			if err == nil {
				err = ev.Verify()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}

func TestForgedSignature(t *testing.T) {
	s, mallory := newSigner(t), newSigner(t)
	g := genesis(t, s)
	// Mallory signs an event claiming s as origin.
	forged, err := mallory.Sign(Envelope{Kind: KindMessageCreate, Guild: g.ID, Channel: g.ID,
		Author: User{Node: mallory.Origin(), Name: "eve"}, Seq: 1, TS: 1}, &MessageCreate{Content: "x"})
	if err != nil {
		t.Fatal(err)
	}
	env := forged.Envelope
	env.Origin, env.Author.Node = s.Origin(), s.Origin()
	p, _ := Marshal(&env)
	raw, _ := Marshal(&signed{Payload: p, Sigs: forged.Sigs})
	ev, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged signature: %v", err)
	}
	// Only unknown algorithms: nothing verifies.
	raw, _ = Marshal(&signed{Payload: g.Payload, Sigs: []Signature{{Alg: "rot13", Sig: []byte{1}}}})
	ev, err = Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("unknown-only algs: %v", err)
	}
}

func TestClock(t *testing.T) {
	var c Clock
	a := c.Tick()
	c.Observe(a + 1000)
	b := c.Tick()
	if b <= a+1000 {
		t.Fatalf("tick %d not after observed %d", b, a+1000)
	}
	for range 100 {
		n := c.Tick()
		if n <= b {
			t.Fatal("clock went backwards")
		}
		b = n
	}
}

func FuzzDecode(f *testing.F) {
	s := newSigner(f)
	g := genesis(f, s)
	f.Add(g.Raw)
	f.Add(message(f, s, g.ID, g.ID, 2, "hi").Raw)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err != nil {
			return
		}
		_ = ev.Verify()
		// Anything accepted must be canonical: re-encoding gives the same bytes.
		again, err := Marshal(&signed{Payload: ev.Payload, Sigs: ev.Sigs})
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("accepted non-canonical bytes")
		}
		if HashID(ev.Payload) != ev.ID {
			t.Fatal("id mismatch")
		}
		if id, ok := PeekID(raw); !ok || id != ev.ID {
			t.Fatal("PeekID disagrees with Decode")
		}
	})
}

func BenchmarkDecodeVerify(b *testing.B) {
	s := newSigner(b)
	g := genesis(b, s)
	m := message(b, s, g.ID, g.ID, 2, "a typical chat message of moderate length, about eighty bytes")
	b.ReportAllocs()
	for b.Loop() {
		ev, err := Decode(m.Raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := ev.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	s := newSigner(b)
	g := genesis(b, s)
	for i := 0; b.Loop(); i++ {
		message(b, s, g.ID, g.ID, uint64(i+1), "hello")
	}
}
