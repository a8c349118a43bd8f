package sfu

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// batchConn is the shared UDP socket (VOICE-120) with batched sends. Each
// forwarded packet goes out to every subscriber: one sendto per copy was
// two thirds of the SFU's CPU in a 50×50 room. While a read loop fans a
// packet out (between begin and end), the copies are queued, and end sends
// them with one sendmmsg (ipv4.PacketConn.WriteBatch; one send per packet
// on systems without it). Writes while nothing forwards (ICE, DTLS, RTCP)
// go out at once.
//
// A write queued by another goroutine while a fan-out runs goes out with
// that fan-out's end, or its own: after queueing, a writer that sees no
// fan-out running flushes itself, and end flushes after it stops counting
// itself, so nothing waits in the queue once no fan-out is running.
//
// ice.UDPMuxDefault uses it through AddrPortReaderWriter.
type batchConn struct {
	*net.UDPConn
	arr    *arrivals // set for Config.OnReceive; nil otherwise
	pc     *ipv4.PacketConn
	active atomic.Int32  // fan-outs running
	sends  atomic.Uint64 // batches sent, for OnForward's timing

	mu    sync.Mutex
	queue []ipv4.Message
	bufs  [][][]byte                      // the one-buffer vector of each queue entry, reused
	addrs map[netip.AddrPort]*net.UDPAddr // WriteBatch wants net.Addr; cached per peer
}

// maxBatch bounds a queue: a fan-out to more subscribers flushes on the way,
// so that the first copies do not wait for the last (16 of 49 copies: four
// sends instead of 49).
const maxBatch = 16

func newBatchConn(c *net.UDPConn) *batchConn {
	return &batchConn{UDPConn: c, pc: ipv4.NewPacketConn(c), addrs: map[netip.AddrPort]*net.UDPAddr{}}
}

// begin marks the start of a fan-out.
func (b *batchConn) begin() { b.active.Add(1) }

// end marks the end of a fan-out and sends what is queued.
func (b *batchConn) end() {
	b.active.Add(-1)
	b.flush()
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	if b.arr == nil {
		return b.UDPConn.ReadFromUDPAddrPort(p)
	}
	// Timed: the packet's arrival is the kernel's receive timestamp, so that the
	// wait in the socket's buffer (while the reader waits for a CPU) counts too.
	var oob [64]byte
	n, oobn, _, addr, err := b.UDPConn.ReadMsgUDPAddrPort(p, oob[:])
	if err == nil {
		now := time.Now()
		at := now
		if ts, ok := kernelTimestamp(oob[:oobn]); ok && ts.Before(now) {
			at = now.Add(-now.Sub(ts)) // keeps now's monotonic reading
		}
		b.arr.note(p[:n], at)
	}
	return n, addr, err
}

// arrivals remembers when the shared socket returned recent RTP packets,
// by SSRC and sequence number (SRTP leaves the header in clear), so that
// Config.OnReceive can time a packet's way from the socket to its read
// loop. Slots are overwritten as packets come; a packet whose slot another
// took is not reported. One goroutine (the mux's reader) notes.
type arrivals struct {
	base  time.Time
	slots [4096]struct{ key, at atomic.Int64 }
}

func newArrivals() *arrivals { return &arrivals{base: time.Now()} }

func (a *arrivals) slot(ssrc uint32, seq uint16) (*struct{ key, at atomic.Int64 }, int64) {
	key := 1<<62 | int64(ssrc)<<16 | int64(seq) // never 0, the mark of a slot being written
	return &a.slots[(ssrc*2654435761+uint32(seq))%uint32(len(a.slots))], key
}

// note records p's arrival if p is RTP (version 2, not RTCP: RFC 5761).
func (a *arrivals) note(p []byte, now time.Time) {
	if len(p) < 12 || p[0]>>6 != 2 || (p[1] >= 192 && p[1] <= 223) {
		return
	}
	s, key := a.slot(binary.BigEndian.Uint32(p[8:]), binary.BigEndian.Uint16(p[2:]))
	s.key.Store(0)
	s.at.Store(int64(now.Sub(a.base)))
	s.key.Store(key)
}

// since returns how long before now the packet arrived, if it is known.
func (a *arrivals) since(ssrc uint32, seq uint16, now time.Time) (time.Duration, bool) {
	s, key := a.slot(ssrc, seq)
	if s.key.Load() != key {
		return 0, false
	}
	at := s.at.Load()
	if s.key.Load() != key {
		return 0, false
	}
	return now.Sub(a.base) - time.Duration(at), true
}

// WriteToAddrPort implements ice.AddrPortReaderWriter: it queues p while a
// fan-out runs, and sends it at once otherwise.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if b.active.Load() == 0 {
		return b.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	b.mu.Lock()
	ua := b.addrs[addr]
	if ua == nil {
		if len(b.addrs) > 4096 {
			clear(b.addrs) // peers come and go; keep the cache small
		}
		ua = net.UDPAddrFromAddrPort(addr)
		b.addrs[addr] = ua
	}
	i := len(b.queue)
	if i == len(b.bufs) {
		b.bufs = append(b.bufs, [][]byte{make([]byte, 0, 1500)})
	}
	vec := b.bufs[i]
	vec[0] = append(vec[0][:0], p...)
	b.queue = append(b.queue, ipv4.Message{Buffers: vec, Addr: ua})
	if len(b.queue) >= maxBatch {
		b.sendLocked()
	}
	b.mu.Unlock()
	if b.active.Load() == 0 {
		b.flush()
	}
	return len(p), nil
}

// WriteTo implements net.PacketConn on the same queue.
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return b.WriteToAddrPort(p, ua.AddrPort())
	}
	return b.UDPConn.WriteTo(p, addr)
}

func (b *batchConn) flush() {
	b.mu.Lock()
	b.sendLocked()
	b.mu.Unlock()
}

// sendLocked sends the queue. A failed send drops what is left, as a
// congested UDP socket would.
func (b *batchConn) sendLocked() {
	if len(b.queue) == 0 {
		return
	}
	defer b.sends.Add(1)
	for q := b.queue; len(q) > 0; {
		n, err := b.pc.WriteBatch(q, 0)
		if err != nil || n <= 0 {
			break
		}
		q = q[n:]
	}
	for i := range b.queue {
		b.queue[i] = ipv4.Message{}
	}
	b.queue = b.queue[:0]
}
