package loadwire

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Poster sends JSON POSTs to one path over its own keep-alive HTTP/1.1 connection, one at a
// time. It writes each request with one system call and reads the answer from a buffered
// reader, without net/http's transport goroutines: the load tools share the machine's cores
// with the nodes they measure, so what a request costs the tool is taken from the nodes.
// A Poster is not safe for concurrent use.
type Poster struct {
	conn net.Conn
	br   *bufio.Reader
	head []byte // request line and headers up to the Content-Length value
	buf  []byte
}

// DialPoster connects to the node at base (http://host:port) for POSTs to
// /api/v10+path with token as the Authorization.
func DialPoster(base, token, path string) (*Poster, error) {
	bu, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	conn, err := net.Dial("tcp", bu.Host)
	if err != nil {
		return nil, err
	}
	head := "POST /api/v10" + path + " HTTP/1.1\r\nHost: " + bu.Host + "\r\nAuthorization: " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: "
	return &Poster{conn: conn, br: bufio.NewReaderSize(conn, 4096), head: []byte(head)}, nil
}

// Post sends body and returns the answer's body; it fails unless the node answers 2xx.
func (p *Poster) Post(body []byte) ([]byte, error) {
	b := append(p.buf[:0], p.head...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	p.buf = b
	if err := p.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := p.conn.Write(b); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST: %d %s", resp.StatusCode, data)
	}
	return data, nil
}

// Close closes the connection.
func (p *Poster) Close() error { return p.conn.Close() }

// PosterPool is a set of Posters of one user and path for an open-loop sender: each Post
// takes a free connection, waiting for one if all are busy, and puts it back. It is safe for
// concurrent use.
type PosterPool struct {
	free              chan *Poster
	base, token, path string
}

// NewPosterPool dials n Posters.
func NewPosterPool(n int, base, token, path string) (*PosterPool, error) {
	pp := &PosterPool{free: make(chan *Poster, n), base: base, token: token, path: path}
	for range n {
		p, err := DialPoster(base, token, path)
		if err != nil {
			pp.Close()
			return nil, err
		}
		pp.free <- p
	}
	return pp, nil
}

// Post sends body on a free connection and returns the answer's body. A connection that
// failed is replaced by a new one, so one error does not shrink the pool.
func (pp *PosterPool) Post(body []byte) ([]byte, error) {
	p := <-pp.free
	data, err := p.Post(body)
	if err != nil {
		p.Close()
		if np, derr := DialPoster(pp.base, pp.token, pp.path); derr == nil {
			p = np
		}
	}
	pp.free <- p
	return data, err
}

// Close closes the connections that are free; call it once every Post has returned.
func (pp *PosterPool) Close() {
	for {
		select {
		case p := <-pp.free:
			p.Close()
		default:
			return
		}
	}
}
