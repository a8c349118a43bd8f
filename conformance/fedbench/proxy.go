package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// proxy forwards TCP connections from its own address to one node's libp2p listener. The
// node announces the proxy's address, so every other node dials it through the proxy. A
// dialing node is recognised by its source address: libp2p's TCP transport dials from its
// listening port (SO_REUSEPORT), so a connection from node i arrives from i's listen
// address. Links can be cut (open connections closed, new ones refused) and healed, and the
// proxy counts the bytes it forwards.
type proxy struct {
	name   string // the node behind it
	ln     net.Listener
	target string // the node's libp2p listen address host:port
	whoIs  func(src string) string

	mu    sync.Mutex
	conns map[*link]struct{}
	cut   map[string]bool // peer node names whose links to this node are cut; "*" cuts all

	done map[string]int64 // bytes of closed links by dialer
	wg   sync.WaitGroup
}

// link is one proxied connection from a peer node.
type link struct {
	from      string // peer node name, "" if unknown
	down, up  net.Conn
	n         atomic.Int64 // bytes forwarded, both directions
	closeOnce sync.Once
}

func (l *link) close() {
	l.closeOnce.Do(func() { l.down.Close(); l.up.Close() })
}

// newProxy listens on addr and forwards to target; whoIs maps a source address to a node
// name ("" when unknown).
func newProxy(name, addr, target string, whoIs func(string) string) (*proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	p := &proxy{name: name, ln: ln, target: target, whoIs: whoIs, conns: map[*link]struct{}{}, cut: map[string]bool{}, done: map[string]int64{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				slog.Warn("proxy accept", "node", p.name, "err", err)
			}
			return
		}
		from := p.whoIs(c.RemoteAddr().String())
		p.mu.Lock()
		if p.isCutLocked(from) {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{from: from, down: c, up: up}
		p.mu.Lock()
		if p.isCutLocked(from) { // cut while dialing
			p.mu.Unlock()
			l.close()
			continue
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(l, up, c)
		go p.pipe(l, c, up)
	}
}

func (p *proxy) isCutLocked(from string) bool { return p.cut["*"] || p.cut[from] }

func (p *proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			l.n.Add(int64(k))
			if _, werr := dst.Write(buf[:k]); werr != nil {
				break
			}
		}
		if err != nil {
			if err != io.EOF && !errors.Is(err, net.ErrClosed) {
				slog.Debug("proxy pipe", "node", p.name, "err", err)
			}
			break
		}
	}
	l.close()
	p.mu.Lock()
	if _, ok := p.conns[l]; ok {
		delete(p.conns, l)
		p.done[l.from] += l.n.Load()
	}
	p.mu.Unlock()
}

// setCut cuts (on) or heals (off) the links between this node and the peer node named from
// ("*": all links into this node).
func (p *proxy) setCut(from string, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !on {
		delete(p.cut, from)
		return
	}
	p.cut[from] = true
	for l := range p.conns {
		if p.isCutLocked(l.from) {
			l.close()
		}
	}
}

// unknownLinks counts open connections whose dialer was not recognised.
func (p *proxy) unknownLinks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for l := range p.conns {
		if l.from == "" {
			n++
		}
	}
	return n
}

// bytesByPeer returns the bytes forwarded so far (both directions) on links into this node,
// by the name of the node that dialed them.
func (p *proxy) bytesByPeer() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.done))
	for k, v := range p.done {
		out[k] = v
	}
	for l := range p.conns {
		out[l.from] += l.n.Load()
	}
	return out
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for l := range p.conns {
		l.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
