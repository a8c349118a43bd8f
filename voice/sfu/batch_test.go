package sfu

import (
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
