package proto

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(k)
	req := &SyncRequest{Op: OpFetch, Guild: event.HashID([]byte("g")), Ranges: []Range{{Origin: event.Node(id), From: 1, To: 9}}}
	if err := WriteFrame(&buf, req); err != nil {
		t.Fatal(err)
	}
	var got SyncRequest
	if err := ReadFrame(bufio.NewReader(bytes.NewReader(buf.Bytes())), MaxRequest, &got); err != nil {
		t.Fatal(err)
	}
	if got.Op != OpFetch || got.Guild != req.Guild || len(got.Ranges) != 1 || got.Ranges[0].To != 9 || got.Ranges[0].Origin != event.Node(id) {
		t.Fatalf("got %+v", got)
	}
	// A frame over the limit is refused before it is read [FED-020].
	big := bytes.Repeat([]byte{0}, 16)
	hdr := []byte{0x80, 0x80, 0x80, 0x01} // uvarint 2^21
	err := ReadFrame(bufio.NewReader(bytes.NewReader(append(hdr, big...))), MaxRequest, &got)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize frame: %v", err)
	}
}

// FuzzReadFrame checks the frame decoder on untrusted bytes for every
// request type a node serves.
func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteFrame(&buf, &JoinRequest{Guild: event.HashID(nil), Code: "abcdef", Name: "bob"})
	f.Add(buf.Bytes())
	buf.Reset()
	_ = WriteFrame(&buf, &SyncRequest{Op: OpHeads, Guild: event.HashID(nil)})
	f.Add(buf.Bytes())
	f.Add([]byte{0x05, 0xa1, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a SyncRequest
		_ = ReadFrame(bufio.NewReader(bytes.NewReader(data)), MaxRequest, &a)
		var b JoinRequest
		_ = ReadFrame(bufio.NewReader(bytes.NewReader(data)), MaxRequest, &b)
		var c ModRequest
		_ = ReadFrame(bufio.NewReader(bytes.NewReader(data)), MaxRequest, &c)
	})
}
