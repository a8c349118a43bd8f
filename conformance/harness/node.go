package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one node under test, reached through its public HTTP address.
//
// A Node built by Target is a running node the suite does not control: Kill,
// Restart and Stop answer ErrNotManaged. A Node built by StartNode is a process
// the suite owns; Stop must be called to release it.
type Node struct {
	// BaseURL is the node's HTTP origin, e.g. "http://127.0.0.1:8080", without a
	// trailing slash.
	BaseURL string
	// P2P is the node's libp2p address ending in /p2p/<peer ID>, or "" when it is
	// unknown (federation tests are then skipped).
	P2P string
	// Name is the node name the suite gave it ({node_name} in its arguments), ""
	// for a node the suite did not start.
	Name string
	// Proxy, when the node was started with StartOptions.Proxy, relays every
	// connection other nodes open to its libp2p TCP port (the node announces the
	// proxy's address), so tests can cut and heal its links; nil otherwise.
	Proxy *Proxy

	binary  string
	dataDir string
	addr    string
	p2pPort string
	args    []string
	logs    *lockedBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// ErrNotManaged is returned by process controls on a node the suite did not start.
var ErrNotManaged = errors.New("harness: node not started by the suite")

// Target wraps an already running node at baseURL.
func Target(baseURL string) (*Node, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("harness: target %q is not an http(s) URL", baseURL)
	}
	return &Node{BaseURL: strings.TrimRight(baseURL, "/")}, nil
}

// Managed reports whether the suite started this node and can kill or restart it.
func (n *Node) Managed() bool { return n.binary != "" }

// WSURL is the node's WebSocket origin ("ws://host:port").
func (n *Node) WSURL() string {
	if rest, ok := strings.CutPrefix(n.BaseURL, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(n.BaseURL, "http://")
}

// StartOptions tune StartNode.
type StartOptions struct {
	// Timeout bounds the wait for /healthz (0 means 60 s).
	Timeout time.Duration
	// Args are appended to `serve --data-dir DIR --listen ADDR`. In each, {p2p_port}
	// is replaced by a free TCP/UDP port for the node's libp2p listener,
	// {data_dir} by the data dir, {node_name} by Name, {proxy_port} by the
	// port of the node's proxy (see Proxy) and each {free_port} by another
	// port that is free for TCP and UDP.
	Args []string
	// Name is the node's name for {node_name}; empty means the data dir's base name.
	Name string
	// Proxy starts a Proxy in front of the node's libp2p TCP port ({p2p_port})
	// and appends ProxyArgs, which should make the node announce
	// /ip4/127.0.0.1/tcp/{proxy_port} as its only address.
	Proxy     bool
	ProxyArgs []string
}

// StartNode starts binary as `serve --data-dir dataDir --listen 127.0.0.1:PORT`
// (plus opts.Args) on a free port and waits until GET /healthz answers 200.
// When opts.Args use {p2p_port}, it then waits briefly for the node to log its
// peer ID (a 12D3KooW… string) and sets P2P.
//
// Free ports are found by listening and closing, so another process may take
// one before the node binds it; a start that fails with "address already in
// use" is retried on new ports.
func StartNode(ctx context.Context, binary, dataDir string, opts StartOptions) (*Node, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	for attempt := 1; ; attempt++ {
		n, err := startOnce(ctx, binary, dataDir, opts)
		if err == nil || attempt == 4 || !strings.Contains(err.Error(), "address already in use") {
			return n, err
		}
	}
}

func startOnce(ctx context.Context, binary, dataDir string, opts StartOptions) (*Node, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p2p, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, p2pPort, _ := net.SplitHostPort(p2p)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("harness: start node: %w", err)
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(dataDir)
	}
	n := &Node{BaseURL: "http://" + addr, Name: opts.Name, binary: binary, dataDir: dataDir, addr: addr, logs: &lockedBuffer{}}
	args := opts.Args
	proxyPort := ""
	if opts.Proxy {
		if n.Proxy, err = NewProxy("127.0.0.1:0", p2p); err != nil {
			return nil, err
		}
		proxyPort = n.Proxy.Port()
		args = append(slices.Clip(args), opts.ProxyArgs...)
	}
	for _, a := range args {
		if strings.Contains(a, "{p2p_port}") {
			n.p2pPort = p2pPort
		}
		a = strings.NewReplacer("{p2p_port}", p2pPort, "{data_dir}", dataDir, "{node_name}", opts.Name, "{proxy_port}", proxyPort).Replace(a)
		for strings.Contains(a, "{free_port}") {
			port, err := freeBoth()
			if err != nil {
				return nil, err
			}
			a = strings.Replace(a, "{free_port}", port, 1)
		}
		n.args = append(n.args, a)
	}
	if err := n.start(ctx, opts.Timeout); err != nil {
		if n.Proxy != nil {
			_ = n.Proxy.Close()
		}
		return nil, err
	}
	return n, nil
}

var peerIDRE = regexp.MustCompile(`12D3KooW[1-9A-HJ-NP-Za-km-z]{44}`)

// findPeer sets P2P from what the node logged since offset, waiting up to
// timeout. A restarted node must log its peer ID again.
func (n *Node) findPeer(ctx context.Context, offset int64, timeout time.Duration) {
	if n.p2pPort == "" {
		return
	}
	n.P2P = ""
	_ = Eventually(ctx, timeout, func() error {
		id := peerIDRE.FindString(n.logs.since(offset))
		if id == "" {
			return errors.New("no peer ID in the node's log yet")
		}
		n.P2P = "/ip4/127.0.0.1/tcp/" + n.p2pPort + "/p2p/" + id
		return nil
	})
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("harness: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// freeBoth returns a port that is free for TCP and UDP on 127.0.0.1 (at the
// time of asking).
func freeBoth() (string, error) {
	for range 20 {
		addr, err := freeAddr()
		if err != nil {
			return "", err
		}
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		_ = u.Close()
		_, port, _ := net.SplitHostPort(addr)
		return port, nil
	}
	return "", errors.New("harness: no port free for TCP and UDP")
}

// Arg returns the value that follows flag in the node's serve arguments
// (after substitution), or "".
func (n *Node) Arg(flag string) string {
	for i, a := range n.args {
		if a == flag && i+1 < len(n.args) {
			return n.args[i+1]
		}
	}
	return ""
}

func (n *Node) start(ctx context.Context, timeout time.Duration) error {
	cmd := exec.Command(n.binary, append([]string{"serve", "--data-dir", n.dataDir, "--listen", n.addr}, n.args...)...)
	cmd.Stdout = n.logs
	cmd.Stderr = n.logs
	offset := n.logs.written()
	cmd.Env = append(os.Environ(), "HEARTH_DATA_DIR="+n.dataDir)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("harness: start %s: %w", n.binary, err)
	}
	done := make(chan struct{})
	go func() { // owned by the node: ends when the process exits
		_ = cmd.Wait()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	client := &http.Client{Timeout: time.Second}
	err := Eventually(ctx, timeout, func() error {
		select {
		case <-done:
			return Permanent(fmt.Errorf("node exited: %s", n.LogTail(2000)))
		default:
		}
		resp, err := client.Get(n.BaseURL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/healthz answered %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		n.signal(syscall.SIGKILL)
		return fmt.Errorf("harness: node %s did not become healthy: %w", n.addr, err)
	}
	n.findPeer(ctx, offset, 5*time.Second)
	return nil
}

func (n *Node) signal(sig os.Signal) (chan struct{}, error) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil, ErrNotManaged
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return done, fmt.Errorf("harness: signal node: %w", err)
	}
	return done, nil
}

// Kill sends SIGKILL (a crash) and waits for the process to exit.
func (n *Node) Kill() error {
	done, err := n.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	<-done
	return nil
}

// Terminate sends SIGTERM (a graceful shutdown) without waiting; Exited reports
// when the process is gone.
func (n *Node) Terminate() error {
	_, err := n.signal(syscall.SIGTERM)
	return err
}

// Exited returns a channel closed when the node process has exited, or nil for
// an unmanaged node.
func (n *Node) Exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

// Restart starts the node again on the same address and data dir after it exited
// (Kill or Terminate), waiting for health up to timeout.
func (n *Node) Restart(ctx context.Context, timeout time.Duration) error {
	if !n.Managed() {
		return ErrNotManaged
	}
	select {
	case <-n.Exited():
	default:
		return errors.New("harness: restart: node still running")
	}
	return n.start(ctx, timeout)
}

// Release stops the node for good: Stop, then its proxy is closed.
func (n *Node) Release(grace time.Duration) {
	n.Stop(grace)
	if n.Proxy != nil {
		_ = n.Proxy.Close()
	}
}

// Stop shuts the node down: SIGTERM, then SIGKILL if it has not exited within
// grace. Stopping an unmanaged or already stopped node is a no-op. The node can
// be restarted; its proxy keeps running.
func (n *Node) Stop(grace time.Duration) {
	done, err := n.signal(syscall.SIGTERM)
	if err != nil || done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(grace):
		_ = n.Kill()
	}
}

// DataDir is the node's data directory ("" for an unmanaged node).
func (n *Node) DataDir() string { return n.dataDir }

// Binary is the node's program ("" for an unmanaged node), for tests of its
// administration commands.
func (n *Node) Binary() string { return n.binary }

// LogOffset is how many bytes the node (all its runs) has written to its output;
// LogSince(LogOffset()) later returns only what came after.
func (n *Node) LogOffset() int64 {
	if n.logs == nil {
		return 0
	}
	return n.logs.written()
}

// LogSince returns the node's output after offset bytes, as far as it is still held.
func (n *Node) LogSince(offset int64) string {
	if n.logs == nil {
		return ""
	}
	return n.logs.since(offset)
}

// LogTail returns at most the last max bytes of the node's stdout and stderr.
func (n *Node) LogTail(max int) string {
	if n.logs == nil {
		return ""
	}
	return n.logs.tail(max)
}

// lockedBuffer collects process output; bounded so a chatty node cannot eat memory.
type lockedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	total int64 // bytes ever written
}

const maxLog = 1 << 20

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxLog {
		keep := b.buf.Bytes()[b.buf.Len()/2:]
		nb := bytes.Buffer{}
		nb.Write(keep)
		b.buf = nb
	}
	b.total += int64(len(p))
	return b.buf.Write(p)
}

// written is the number of bytes ever written.
func (b *lockedBuffer) written() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// since returns what was written after the first offset bytes (as far as it is
// still held).
func (b *lockedBuffer) since(offset int64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.Bytes()
	if skip := int64(len(s)) - (b.total - offset); skip > 0 {
		s = s[skip:]
	}
	return string(s)
}

func (b *lockedBuffer) tail(max int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.Bytes()
	if len(s) > max {
		s = s[len(s)-max:]
	}
	return string(s)
}

var _ io.Writer = (*lockedBuffer)(nil)
