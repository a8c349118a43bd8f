package main_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fedNode is one hearth process whose libp2p listener sits behind a cuttable proxy.
type fedNode struct {
	*proc
	name, dir, httpAddr string
	p2pPort             string
	proxy               *cutProxy
	user                struct{ Token, Name string }
	guild, channel      string // the shared guild and its text channel on this node
}

// cutProxy forwards TCP connections to one node's libp2p listener. The node announces the
// proxy's address, so the other nodes dial it through the proxy. libp2p's TCP transport
// dials from its listening port (SO_REUSEPORT), which tells the proxy which node dialed.
// cut closes a node's links and refuses new ones until it is healed.
type cutProxy struct {
	ln     net.Listener
	target string
	whoIs  func(src string) string

	mu    sync.Mutex
	cut   map[string]bool // dialing node names; "*" for every link into this node
	conns map[net.Conn]string
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, whoIs func(string) string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, whoIs: whoIs, cut: map[string]bool{}, conns: map[net.Conn]string{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		from := p.whoIs(down.RemoteAddr().String())
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		// A redial right after a cut can find its usual source port's 4-tuple still in
		// TIME_WAIT, and libp2p then dials from a fresh port, which names no node: while
		// any link into this node is cut, such a link might be the cut one, so it is refused.
		if p.cut["*"] || p.cut[from] || (from == "" && len(p.cut) > 0) {
			p.mu.Unlock()
			down.Close()
			up.Close()
			continue
		}
		p.conns[down], p.conns[up] = from, from
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(down, up)
		go p.pipe(up, down)
	}
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// setCut cuts (on) or heals the links dialed by the node named from ("*": all links).
func (p *cutProxy) setCut(from string, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !on {
		delete(p.cut, from)
		return
	}
	p.cut[from] = true
	for c, f := range p.conns {
		if from == "*" || f == from {
			c.Close()
		}
	}
}

// unknown reports whether some open link came from an address that is no node's.
func (p *cutProxy) unknown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.conns {
		if f == "" {
			return true
		}
	}
	return false
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.setCut("*", true)
	p.wg.Wait()
}

// startFedNodes starts n federating nodes behind proxies; the first creates a guild and the
// others' users join it with its invite. Every node's user has said hello and every node
// has seen every hello when it returns.
func startFedNodes(t *testing.T, n int) []*fedNode {
	t.Helper()
	bin := buildBinary(t)
	byAddr := map[string]string{}
	var mu sync.Mutex
	whoIs := func(src string) string { mu.Lock(); defer mu.Unlock(); return byAddr[src] }
	nodes := make([]*fedNode, n)
	for i := range nodes {
		p2p := freePort(t)
		_, port, _ := net.SplitHostPort(p2p)
		nd := &fedNode{name: "node" + strconv.Itoa(i), dir: t.TempDir(), httpAddr: freePort(t), p2pPort: port}
		mu.Lock()
		byAddr[p2p] = nd.name
		mu.Unlock()
		nd.proxy = newCutProxy(t, p2p, whoIs)
		nd.start(t, bin)
		nodes[i] = nd
	}
	for _, nd := range nodes {
		nd.user.Name = "user_" + nd.name
		if st, err := nd.call("POST", "/auth/register", "", map[string]string{"username": nd.user.Name, "password": "partition pw"}, &nd.user); err != nil || st != 201 {
			t.Fatalf("register on %s: %d %v", nd.name, st, err)
		}
	}
	home := nodes[0]
	var g struct {
		ID       string
		Channels []struct {
			ID   string
			Type int
		}
	}
	home.call("POST", "/guilds", home.user.Token, map[string]string{"name": "Partitioned"}, &g)
	home.guild = g.ID
	for _, c := range g.Channels {
		if c.Type == 0 {
			home.channel = c.ID
		}
	}
	code := ""
	pollFor(t, 15*time.Second, "a federation invite", func() string {
		var inv struct{ Code string }
		home.call("POST", "/channels/"+home.channel+"/invites", home.user.Token, map[string]any{}, &inv)
		code = inv.Code
		if !strings.HasPrefix(code, "hearth:") {
			return "code " + code
		}
		return ""
	})
	for _, nd := range nodes[1:] {
		var joined struct {
			GuildID string `json:"guild_id"`
		}
		if st, err := nd.call("POST", "/invites/"+url.PathEscape(code), nd.user.Token, nil, &joined); err != nil || st != 200 {
			t.Fatalf("join on %s: %d %v\n%s", nd.name, st, err, nd.logs)
		}
		nd.guild = joined.GuildID
		var chans []struct {
			ID   string
			Type int
		}
		nd.call("GET", "/guilds/"+joined.GuildID+"/channels", nd.user.Token, nil, &chans)
		for _, c := range chans {
			if c.Type == 0 && nd.channel == "" {
				nd.channel = c.ID
			}
		}
		if nd.channel == "" {
			t.Fatalf("no text channel on %s", nd.name)
		}
	}
	var hellos []string
	for _, nd := range nodes {
		nd.send(t, "hello from "+nd.name)
		hellos = append(hellos, "hello from "+nd.name)
	}
	waitHolding(t, 30*time.Second, nodes, hellos)
	return nodes
}

// start runs (or restarts) the node's process on its data dir and ports.
func (nd *fedNode) start(t *testing.T, bin string) {
	t.Helper()
	_, proxyPort, _ := net.SplitHostPort(nd.proxy.ln.Addr().String())
	nd.proc = start(t, bin, nd.dir, nd.httpAddr, "--p2p-listen", "/ip4/127.0.0.1/tcp/"+nd.p2pPort,
		"--p2p-announce", "/ip4/127.0.0.1/tcp/"+proxyPort, "--node-name", nd.name)
}

// send posts a message as the node's user and fails the test unless it is stored.
func (nd *fedNode) send(t *testing.T, content string) {
	t.Helper()
	if st, err := nd.call("POST", "/channels/"+nd.channel+"/messages", nd.user.Token, map[string]string{"content": content}, nil); err != nil || st != 200 {
		t.Fatalf("message on %s: %d %v", nd.name, st, err)
	}
}

// history returns the channel's messages on the node, oldest first, as "author: content"
// with authors named the same way on every node (name@node).
func (nd *fedNode) history() ([]string, error) {
	var all []string
	before := ""
	for {
		q := "?limit=100"
		if before != "" {
			q += "&before=" + before
		}
		var page []struct {
			ID      string
			Content string
			Author  struct{ Username string }
		}
		st, err := nd.call("GET", "/channels/"+nd.channel+"/messages"+q, nd.user.Token, nil, &page)
		if err != nil || st != 200 {
			return nil, fmt.Errorf("history on %s: %d %v", nd.name, st, err)
		}
		for _, m := range page {
			author := m.Author.Username
			if !strings.Contains(author, "@") {
				author += "@" + nd.name
			}
			all = append(all, author+": "+m.Content)
		}
		if len(page) < 100 {
			break
		}
		before = page[len(page)-1].ID
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all, nil
}

// holds returns "" when the node's history contains every content, else what is missing.
func (nd *fedNode) holds(contents []string) string {
	h, err := nd.history()
	if err != nil {
		return err.Error()
	}
	have := map[string]bool{}
	for _, m := range h {
		have[m[strings.Index(m, ": ")+2:]] = true
	}
	missing := 0
	first := ""
	for _, c := range contents {
		if !have[c] {
			if missing == 0 {
				first = c
			}
			missing++
		}
	}
	if missing > 0 {
		return fmt.Sprintf("%s lacks %d of %d messages (e.g. %q)", nd.name, missing, len(contents), first)
	}
	return ""
}

func waitHolding(t *testing.T, within time.Duration, nodes []*fedNode, contents []string) {
	t.Helper()
	pollFor(t, within, "messages on every node", func() string {
		for _, nd := range nodes {
			if why := nd.holds(contents); why != "" {
				return why
			}
		}
		return ""
	})
}

// isolate cuts or heals every link between nodes[k] and the others.
func isolate(t *testing.T, nodes []*fedNode, k int, on bool) {
	t.Helper()
	for _, nd := range nodes {
		if nd.proxy.unknown() {
			t.Fatal("a libp2p link came from an address that is no node's listen address: the proxy cannot tell which node dialed it")
		}
	}
	nodes[k].proxy.setCut("*", on)
	for i, nd := range nodes {
		if i != k {
			nd.proxy.setCut(nodes[k].name, on)
		}
	}
}

// pollFor waits up to within for cond to return "" (done); otherwise it fails with cond's
// last answer.
func pollFor(t *testing.T, within time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", within, what, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPartitionHealConverges runs three hearth processes in one guild, cuts one off at the
// network (its libp2p links pass through proxies the test controls), keeps every node
// writing, heals, and asserts that every node then serves exactly the same messages, each
// once, per channel.
func TestPartitionHealConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	nodes := startFedNodes(t, 3)
	isolate(t, nodes, 2, true)
	var majority, minority []string
	for i := range 15 {
		for k, nd := range nodes {
			c := fmt.Sprintf("partitioned %s #%d", nd.name, i)
			nd.send(t, c)
			if k == 2 {
				minority = append(minority, c)
			} else {
				majority = append(majority, c)
			}
		}
	}
	// The connected side keeps chatting; the cut-off node sees none of it.
	waitHolding(t, 30*time.Second, nodes[:2], majority)
	if why := nodes[2].holds(majority[:1]); why == "" {
		t.Fatal("the cut-off node received a message through the partition")
	}
	for _, nd := range nodes[:2] {
		if why := nd.holds(minority[:1]); why == "" {
			t.Fatalf("%s received the cut-off node's message through the partition", nd.name)
		}
	}

	isolate(t, nodes, 2, false)
	// Member nodes redial a dropped link within seconds; the bound is generous for a loaded
	// machine (it converges in a few seconds).
	all := append(append([]string{}, majority...), minority...)
	waitHolding(t, 80*time.Second, nodes, all)

	ref, err := nodes[0].history()
	if err != nil {
		t.Fatal(err)
	}
	if want := len(all) + 3; len(ref) != want {
		t.Fatalf("%s holds %d messages, want %d (the hellos and the partition's)", nodes[0].name, len(ref), want)
	}
	for _, nd := range nodes {
		h, err := nd.history()
		if err != nil {
			t.Fatal(err)
		}
		if why := sameMessages(nodes[0].name, ref, nd.name, h); why != "" {
			t.Fatal(why)
		}
		if why := sameOrder(nodes[0].name, ref, nd.name, h); why != "" {
			t.Fatal(why) // [EVT-033]: every node orders the channel alike
		}
	}
}

// sameMessages returns "" when a and b hold the same messages, each once.
func sameMessages(an string, a []string, bn string, b []string) string {
	count := map[string]int{}
	for _, m := range a {
		count[m]++
		if count[m] > 1 {
			return fmt.Sprintf("%s holds %q twice", an, m)
		}
	}
	seen := map[string]bool{}
	for _, m := range b {
		if seen[m] {
			return fmt.Sprintf("%s holds %q twice", bn, m)
		}
		seen[m] = true
		if count[m] == 0 {
			return fmt.Sprintf("%s holds %q, %s does not", bn, m, an)
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%s holds %d messages, %s %d", an, len(a), bn, len(b))
	}
	return ""
}

// sameOrder returns "" when a and b are in the same order.
func sameOrder(an string, a []string, bn string, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("message %d of the channel is %q on %s and %q on %s", i, a[i], an, b[i], bn)
		}
	}
	return ""
}

// TestHomeNodeDownOthersKeepChatting kills the guild's home node; the two other nodes keep
// exchanging messages, and when the home node comes back everyone catches up and its state
// changes reach the others again.
func TestHomeNodeDownOthersKeepChatting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	nodes := startFedNodes(t, 3)
	home, b, c := nodes[0], nodes[1], nodes[2]
	if err := home.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = home.cmd.Wait()
	var sent []string
	for i := range 5 {
		for _, nd := range []*fedNode{b, c} {
			msg := fmt.Sprintf("while home is down: %s #%d", nd.name, i)
			nd.send(t, msg)
			sent = append(sent, msg)
		}
	}
	waitHolding(t, 20*time.Second, []*fedNode{b, c}, sent)

	// The home node returns, catches up with what it missed, and chats again.
	home.start(t, buildBinary(t))
	home.send(t, "home is back")
	sent = append(sent, "home is back")
	waitHolding(t, 80*time.Second, nodes, sent)
	// State changes, which only the home node issues, resume.
	if st, err := home.call("POST", "/guilds/"+home.guild+"/channels", home.user.Token, map[string]any{"name": "after-return", "type": 0}, nil); err != nil || st/100 != 2 {
		t.Fatalf("channel on the home node: %d %v", st, err)
	}
	for _, nd := range []*fedNode{b, c} {
		pollFor(t, 30*time.Second, "the new channel on "+nd.name, func() string {
			var chans []struct{ Name string }
			nd.call("GET", "/guilds/"+nd.guild+"/channels", nd.user.Token, nil, &chans)
			for _, ch := range chans {
				if ch.Name == "after-return" {
					return ""
				}
			}
			return fmt.Sprintf("%d channels, none named after-return", len(chans))
		})
	}
}
