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
	// The kernel turns receive timestamps on for the whole system lazily (a deferred switch
	// when the first socket asks), and a packet that arrives before the switch is stamped when
	// it is read. So the first rounds may see read-time stamps; a few rounds later every
	// packet carries its arrival.
	const wait = 50 * time.Millisecond
	var last time.Duration
	for seq := uint16(1); seq <= 5; seq++ {
		pkt := make([]byte, 20)
		pkt[0], pkt[1] = 0x80, 111
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[8:], 7)
		sent := time.Now()
		if _, err := out.Write(pkt); err != nil {
			t.Fatal(err)
		}
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
		d, ok := b.arr.since(7, seq, now)
		if !ok {
			t.Fatal("the packet's arrival was not noted")
		}
		if d > now.Sub(sent) {
			t.Fatalf("arrived %v before the check, more than the %v since the send", d, now.Sub(sent))
		}
		if d >= wait {
			t.Logf("round %d: arrived %v before the check", seq, d)
			return // dated by its arrival, not by the read
		}
		last = d
	}
	t.Errorf("arrived %v before the check in the last of 5 rounds, want at least the %v it waited before the read", last, wait)
}
