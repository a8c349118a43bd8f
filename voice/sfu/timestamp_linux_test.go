package sfu

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// TestArrivalIsKernelTimestamp checks that a timed socket dates a packet by
// its arrival in the socket's buffer, not by the read: the wait of a packet
// that nobody reads for a while is part of the SFU's latency (OnReceive,
// OnTransit).
func TestArrivalIsKernelTimestamp(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := enableTimestamps(c); err != nil {
		t.Fatal(err)
	}
	b := newBatchConn(c)
	b.arr = newArrivals()
	out, err := net.DialUDP("udp4", nil, c.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	pkt := make([]byte, 20)
	pkt[0], pkt[1] = 0x80, 111
	binary.BigEndian.PutUint16(pkt[2:], 42)
	binary.BigEndian.PutUint32(pkt[8:], 7)
	sent := time.Now()
	if _, err := out.Write(pkt); err != nil {
		t.Fatal(err)
	}
	const wait = 50 * time.Millisecond
	time.Sleep(wait)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := b.ReadFromAddrPort(buf)
	if err != nil || n != len(pkt) {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if from != out.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Errorf("from %v, want %v", from, out.LocalAddr())
	}
	now := time.Now()
	d, ok := b.arr.since(7, 42, now)
	if !ok {
		t.Fatal("the packet's arrival was not noted")
	}
	if d < wait || d > now.Sub(sent) {
		t.Errorf("arrived %v before the check, want between %v (the wait before the read) and %v (since the send)", d, wait, now.Sub(sent))
	}
}
