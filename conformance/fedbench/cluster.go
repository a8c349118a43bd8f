package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hearth-chat/hearth/conformance/loadwire"
)

// node is one hearth process started by the tool, with the proxy in front of its libp2p
// listener (none in a direct cluster).
type node struct {
	name    string
	binary  string
	base    string // http://host:port
	p2pAddr string // 127.0.0.1:port the node listens on for libp2p
	dir     string
	logPath string
	cmd     *exec.Cmd
	proxy   *proxy
	pprof   bool // serve /debug/pprof/ (for -profile)
}

// cluster is a set of nodes whose libp2p links all pass through the tool's proxies, unless
// it was started direct.
type cluster struct {
	nodes []*node
	root  string
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startCluster starts n nodes of o.binary named node0, node1, … with federation on, each
// announcing its proxy's address; with direct, the nodes have no proxies and dial each
// other's own listeners (for scenarios that cut no link and count no bytes, so that the
// tool's forwarding is not part of what they time).
func startCluster(o options, n int, direct bool) (*cluster, error) {
	binary, logLevel := o.binary, o.logLevel
	root, err := os.MkdirTemp("", "hearth-fedbench")
	if err != nil {
		return nil, err
	}
	c := &cluster{root: root}
	byAddr := map[string]string{}
	whoIs := func(src string) string { return byAddr[src] }
	for i := range n {
		var ports [3]int
		for k := range ports {
			if ports[k], err = freePort(); err != nil {
				c.stop()
				return nil, err
			}
		}
		nd := &node{
			name:    fmt.Sprintf("node%d", i),
			binary:  binary,
			base:    "http://127.0.0.1:" + strconv.Itoa(ports[0]),
			p2pAddr: "127.0.0.1:" + strconv.Itoa(ports[1]),
			dir:     filepath.Join(root, fmt.Sprintf("node%d", i)),
			pprof:   o.profile != "",
		}
		byAddr[nd.p2pAddr] = nd.name
		if direct {
			c.nodes = append(c.nodes, nd)
			continue
		}
		if nd.proxy, err = newProxy(nd.name, "127.0.0.1:"+strconv.Itoa(ports[2]), nd.p2pAddr, whoIs); err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		if err := nd.start(logLevel); err != nil {
			c.stop()
			return nil, err
		}
	}
	for _, nd := range c.nodes {
		if err := loadwire.WaitHealthy(nd.base, 30*time.Second); err != nil {
			c.stop()
			return nil, fmt.Errorf("%s: %w\n%s", nd.name, err, nd.logTail())
		}
	}
	return c, nil
}

// start runs the node's process (again, after a stop) on its data dir.
func (nd *node) start(logLevel string) error {
	if err := os.MkdirAll(nd.dir, 0o755); err != nil {
		return err
	}
	nd.logPath = filepath.Join(nd.dir, "log.txt")
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	u, _ := url.Parse(nd.base)
	_, p2pPort, _ := net.SplitHostPort(nd.p2pAddr)
	announce := p2pPort
	if nd.proxy != nil {
		_, announce, _ = net.SplitHostPort(nd.proxy.ln.Addr().String())
	}
	cmd := exec.Command(nd.binary, "serve",
		"--data-dir", filepath.Join(nd.dir, "data"), "--listen", u.Host,
		"--p2p-listen", "/ip4/127.0.0.1/tcp/"+p2pPort,
		"--p2p-announce", "/ip4/127.0.0.1/tcp/"+announce,
		"--node-name", nd.name,
		"--rate-global", "1000000", "--rate-messages", "1000000", "--heartbeat-interval", "10m",
		// The tool's gateway clients share the cores with the nodes: a burst of 10,000
		// dispatches a second must not get them closed as slow (the default allows 500 behind).
		"--gateway-max-queue", "100000",
		"--log-level", logLevel)
	if nd.pprof {
		cmd.Args = append(cmd.Args, "--pprof", "true")
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", nd.name, err)
	}
	nd.cmd = cmd
	return nil
}

// logTail returns the end of the node's log.
func (nd *node) logTail() string {
	b, _ := os.ReadFile(nd.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop ends every process and proxy and removes the data.
func (c *cluster) stop() {
	for _, nd := range c.nodes {
		if nd.cmd != nil {
			_ = nd.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(nd.cmd)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = nd.cmd.Process.Kill()
				<-done
			}
			nd.cmd = nil
		}
		if nd.proxy != nil {
			nd.proxy.close()
		}
	}
	if os.Getenv("FEDBENCH_KEEP") == "" {
		os.RemoveAll(c.root)
	}
}

// isolate cuts (on) or heals (off) every link between node k and the others.
func (c *cluster) isolate(k int, on bool) error {
	victim := c.nodes[k]
	if on {
		for _, nd := range c.nodes {
			if nd.proxy.unknownLinks() > 0 {
				return errors.New("a proxied connection came from an unknown address: cannot tell which node dialed it (is libp2p's TCP reuseport off?)")
			}
		}
	}
	victim.proxy.setCut("*", on)
	for _, nd := range c.nodes {
		if nd != victim {
			nd.proxy.setCut(victim.name, on)
		}
	}
	return nil
}

// fedGuild is one federated guild as seen from every node: its text channel's ID on each.
type fedGuild struct {
	owner    *user
	code     string
	channels map[*node]string
	guilds   map[*node]string
}

// newFedGuild creates a guild on home (which becomes its home node) and returns it with a
// federation invite.
func newFedGuild(home *node) (*fedGuild, error) {
	owner, err := register(home, "owner_")
	if err != nil {
		return nil, err
	}
	var g struct {
		ID       string `json:"id"`
		Channels []struct {
			ID   string `json:"id"`
			Type int    `json:"type"`
		} `json:"channels"`
	}
	if err := owner.call("POST", "/guilds", map[string]string{"name": "fedbench"}, &g); err != nil {
		return nil, err
	}
	fg := &fedGuild{owner: owner, channels: map[*node]string{}, guilds: map[*node]string{home: g.ID}}
	for _, ch := range g.Channels {
		if ch.Type == 0 {
			fg.channels[home] = ch.ID
			break
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.HasPrefix(fg.code, "hearth:") {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no federation invite from %s (got %q)", home.name, fg.code)
		}
		var inv struct{ Code string }
		if err := owner.call("POST", "/channels/"+fg.channels[home]+"/invites", map[string]any{}, &inv); err != nil {
			return nil, err
		}
		fg.code = inv.Code
		if !strings.HasPrefix(fg.code, "hearth:") {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return fg, nil
}

// join makes u a member with the guild's federation invite and learns the channel's ID on
// u's node.
func (fg *fedGuild) join(u *user) error {
	var out struct {
		GuildID string `json:"guild_id"`
		Guild   struct {
			ID string `json:"id"`
		} `json:"guild"`
	}
	if err := u.call("POST", "/invites/"+url.PathEscape(fg.code), nil, &out); err != nil {
		return err
	}
	if _, ok := fg.channels[u.node]; ok {
		return nil
	}
	gid := out.GuildID
	if gid == "" {
		gid = out.Guild.ID
	}
	var chans []struct {
		ID   string `json:"id"`
		Type int    `json:"type"`
	}
	if err := u.call("GET", "/guilds/"+gid+"/channels", nil, &chans); err != nil {
		return err
	}
	for _, ch := range chans {
		if ch.Type == 0 {
			fg.channels[u.node] = ch.ID
			fg.guilds[u.node] = gid
			return nil
		}
	}
	return fmt.Errorf("guild %s has no text channel on %s", gid, u.node.name)
}

// p2pBytes returns, for every node, the libp2p bytes (both directions) on all its links so
// far, as the proxies counted them.
func (c *cluster) p2pBytes() map[*node]int64 {
	out := map[*node]int64{}
	byName := map[string]*node{}
	for _, nd := range c.nodes {
		byName[nd.name] = nd
	}
	for _, nd := range c.nodes {
		for from, n := range nd.proxy.bytesByPeer() {
			out[nd] += n
			if d := byName[from]; d != nil {
				out[d] += n
			}
		}
	}
	return out
}

// restart stops the node's process (SIGTERM) and starts it again on the same data and
// ports.
func (nd *node) restart(logLevel string) error {
	if nd.cmd != nil {
		_ = nd.cmd.Process.Signal(syscall.SIGTERM)
		_ = nd.cmd.Wait()
		nd.cmd = nil
	}
	if err := nd.start(logLevel); err != nil {
		return err
	}
	return loadwire.WaitHealthy(nd.base, 60*time.Second)
}

// logSummary counts the node's warning and error log lines by message, for diagnosis.
func (nd *node) logSummary() string {
	b, err := os.ReadFile(nd.logPath)
	if err != nil {
		return err.Error()
	}
	counts := map[string]int{}
	var order []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		msg := line
		if i := strings.Index(line, "msg="); i >= 0 {
			msg = line[i+4:]
			if strings.HasPrefix(msg, `"`) {
				if j := strings.Index(msg[1:], `"`); j >= 0 {
					msg = msg[1 : j+1]
				}
			} else if j := strings.IndexByte(msg, ' '); j >= 0 {
				msg = msg[:j]
			}
		}
		if counts[msg] == 0 {
			order = append(order, msg)
		}
		counts[msg]++
	}
	if len(order) == 0 {
		return "no warnings or errors"
	}
	var parts []string
	for _, m := range order {
		parts = append(parts, fmt.Sprintf("%d× %q", counts[m], m))
	}
	return strings.Join(parts, ", ")
}

// profile fetches a CPU profile of nd over the next d into dir/name-node.pprof, in the
// background; wait returns when it is written (or failed, which it reports). With dir ""
// it does nothing.
func (nd *node) profile(dir, name string, d time.Duration) (wait func()) {
	if dir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		path := filepath.Join(dir, name+"-"+nd.name+".pprof")
		err := func() error {
			cl := &http.Client{Timeout: d + 30*time.Second}
			resp, err := cl.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", nd.base, max(int(d.Seconds()), 1)))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %s", resp.Status)
			}
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
		if err != nil {
			fmt.Printf("profile of %s: %v\n", nd.name, err)
			return
		}
		fmt.Printf("profile of %s: %s\n", nd.name, path)
	}()
	return func() { <-done }
}
