//go:build linux

package gateway

import (
	"fmt"
	"sync"
	"syscall"
)

// poller watches idle connections with one epoll instance, so that an idle connection
// needs no goroutine: a connection whose client has sent nothing further is armed
// (EPOLLONESHOT) and its reader goroutine exits; when input arrives, the poller starts a
// reader again (conn.readable). The runtime's own poller keeps serving the reads and
// writes themselves; this one only says when to start reading.
type poller struct {
	epfd int
	wake [2]int // a pipe whose read end wakes run to stop

	mu     sync.Mutex
	conns  map[int32]*conn
	next   int32
	closed bool // the descriptors are closed
	done   chan struct{}
}

const wakeToken = -1

// newPoller starts a poller; its goroutine runs until close.
func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("gateway: epoll: %w", err)
	}
	p := &poller{epfd: epfd, conns: map[int32]*conn{}, done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("gateway: epoll pipe: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeToken}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("gateway: epoll: %w", err)
	}
	go p.run()
	return p, nil
}

func (p *poller) closeFDs() {
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
	syscall.Close(p.epfd)
}

func (p *poller) run() {
	defer close(p.done)
	defer func() {
		p.mu.Lock()
		p.closed = true
		p.closeFDs()
		p.mu.Unlock()
	}()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == wakeToken {
				return
			}
			p.mu.Lock()
			c := p.conns[ev.Fd]
			p.mu.Unlock()
			if c != nil {
				c.readable()
			}
		}
	}
}

// close stops the poller and waits for its goroutine. Connections still armed are not woken.
func (p *poller) close() {
	_, _ = syscall.Write(p.wake[1], []byte{0})
	<-p.done
}

// arm asks for one readable event for c; false means c cannot be polled (its reader must
// block as usual).
func (p *poller) arm(c *conn) bool {
	if c.raw == nil {
		return false
	}
	// p.mu is held throughout so that the epoll descriptor is not closed under us.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if c.pollID == 0 {
		for {
			p.next++
			if p.next <= 0 {
				p.next = 1
			}
			if p.conns[p.next] == nil {
				break
			}
		}
		c.pollID = p.next
		p.conns[c.pollID] = c
	}
	var err error
	// Control holds a reference to the socket, so it cannot be closed (and its number
	// reused by another connection) while it is armed here.
	cerr := c.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: c.pollID}
		if c.pollAdded {
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		} else if err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); err == nil {
			c.pollAdded = true
		}
	})
	return cerr == nil && err == nil
}

// forget drops c (its descriptor leaves the epoll set when it is closed).
func (p *poller) forget(c *conn) {
	p.mu.Lock()
	if c.pollID != 0 && p.conns[c.pollID] == c {
		delete(p.conns, c.pollID)
	}
	p.mu.Unlock()
}
