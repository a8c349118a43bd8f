package sfu

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestBatchConn checks that writes during a fan-out wait for its end and
// leave together, that writes outside one leave at once, and that a full
// queue is sent on the way.
func TestBatchConn(t *testing.T) {
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	src, dst := listen(), listen()
	b := newBatchConn(src)
	to := dst.LocalAddr().(*net.UDPAddr).AddrPort()
	recv := func(want string) {
		t.Helper()
		buf := make([]byte, 100)
		_ = dst.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := dst.ReadFromUDP(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("received %q, %v; want %q", buf[:n], err, want)
		}
	}
	queued := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queue)
	}

	if _, err := b.WriteToAddrPort([]byte("direct"), to); err != nil || queued() != 0 {
		t.Fatalf("write outside a fan-out: err %v, %d queued", err, queued())
	}
	recv("direct")

	b.begin()
	for i := range 3 {
		if _, err := b.WriteTo([]byte(fmt.Sprint("fan", i)), net.UDPAddrFromAddrPort(to)); err != nil {
			t.Fatal(err)
		}
	}
	if q := queued(); q != 3 {
		t.Fatalf("%d queued during the fan-out, want 3", q)
	}
	b.end()
	if q := queued(); q != 0 {
		t.Fatalf("%d still queued after the fan-out", q)
	}
	for i := range 3 {
		recv(fmt.Sprint("fan", i))
	}

	b.begin()
	for i := range maxBatch {
		_, _ = b.WriteToAddrPort([]byte(fmt.Sprint("big", i)), to)
	}
	if q := queued(); q != 0 {
		t.Fatalf("%d queued after %d writes, want a flush at %d", q, maxBatch, maxBatch)
	}
	b.end()
	for i := range maxBatch {
		recv(fmt.Sprint("big", i))
	}
}

// TestArrivals checks which packets the shared socket's arrival log keeps
// for OnReceive: RTP by SSRC and sequence number, nothing else, and a
// packet whose slot a later one took is not reported.
func TestArrivals(t *testing.T) {
	rtpPkt := func(ssrc uint32, seq uint16) []byte {
		p := make([]byte, 12)
		p[0], p[1] = 0x80, 111
		binary.BigEndian.PutUint16(p[2:], seq)
		binary.BigEndian.PutUint32(p[8:], ssrc)
		return p
	}
	rtcp := rtpPkt(5, 1)
	rtcp[1] = 200 // sender report
	stun := rtpPkt(5, 2)
	stun[0] = 0x00
	tests := []struct {
		name      string
		noted     [][]byte
		ssrc      uint32
		seq       uint16
		wantFound bool
	}{
		{"rtp", [][]byte{rtpPkt(5, 7)}, 5, 7, true},
		{"other sequence number", [][]byte{rtpPkt(5, 7)}, 5, 8, false},
		{"other ssrc", [][]byte{rtpPkt(5, 7)}, 6, 7, false},
		{"rtcp is not rtp", [][]byte{rtcp}, 5, 1, false},
		{"stun is not rtp", [][]byte{stun}, 5, 2, false},
		{"too short", [][]byte{rtpPkt(5, 7)[:11]}, 5, 7, false},
		{"slot taken by a later packet", [][]byte{rtpPkt(5, 7), rtpPkt(5, 7+4096)}, 5, 7, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newArrivals()
			at := a.base.Add(time.Second)
			for _, p := range tt.noted {
				a.note(p, at)
			}
			d, ok := a.since(tt.ssrc, tt.seq, at.Add(3*time.Millisecond))
			if ok != tt.wantFound {
				t.Fatalf("found %v, want %v", ok, tt.wantFound)
			}
			if ok && d != 3*time.Millisecond {
				t.Fatalf("since %v, want 3ms", d)
			}
		})
	}
}
