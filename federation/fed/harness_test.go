package fed

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hearth-chat/hearth/federation/event"
	fhost "github.com/hearth-chat/hearth/federation/host"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater partitions nodes in tests: blocked peers can neither dial nor be
// accepted.
type gater struct {
	mu      sync.Mutex
	blocked map[peer.ID]bool
}

func (g *gater) block(ps ...peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range ps {
		g.blocked[p] = true
	}
}

func (g *gater) unblockAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.blocked)
}

func (g *gater) allowed(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.blocked[p]
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.allowed(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allowed(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// tnode is one federation node in a test, with its own data dir and database.
type tnode struct {
	t     testing.TB
	name  string
	dir   string
	db    *badger.DB
	svc   *Service
	gater *gater

	mu     sync.Mutex
	events []*event.Event
	seen   map[event.ID]int
	pres   map[event.User]uint8
	opts   []nodeOpt
}

type nodeOpt func(*Config)

func startNode(t testing.TB, name string, opts ...nodeOpt) *tnode {
	t.Helper()
	n := &tnode{t: t, name: name, dir: t.TempDir(), gater: &gater{blocked: map[peer.ID]bool{}}, seen: map[event.ID]int{}, pres: map[event.User]uint8{}}
	n.start(opts...)
	t.Cleanup(n.stop)
	return n
}

func (n *tnode) start(opts ...nodeOpt) {
	if opts == nil {
		opts = n.opts
	}
	n.open(false, opts...)
}

// startDurable starts the node with SyncWrites on, as the node runs Badger.
func (n *tnode) startDurable(opts ...nodeOpt) { n.open(true, opts...) }

func (n *tnode) open(durable bool, opts ...nodeOpt) {
	n.t.Helper()
	db, err := badger.Open(badger.DefaultOptions(n.dir + "/db").WithLogger(nil).WithSyncWrites(durable))
	if err != nil {
		n.t.Fatal(err)
	}
	n.db = db
	level := slog.LevelWarn
	if os.Getenv("FED_DEBUG") != "" {
		level = slog.LevelDebug
	}
	cfg := Config{
		DB:       db,
		Host:     fhost.Config{DataDir: n.dir, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, Gater: n.gater},
		NodeName: n.name,
		OnEvent: func(ev *event.Event) {
			n.mu.Lock()
			n.events = append(n.events, ev)
			n.seen[ev.ID]++
			n.mu.Unlock()
		},
		OnPresence: func(_ event.ID, u event.User, st uint8) {
			n.mu.Lock()
			n.pres[u] = st
			n.mu.Unlock()
		},
		SyncInterval:  time.Second,
		BatchInterval: 100 * time.Millisecond,
		Log:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", n.name),
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.svc = svc
	n.opts = opts
}

func (n *tnode) stop() {
	if n.svc != nil {
		if err := n.svc.Close(); err != nil {
			n.t.Error(err)
		}
		n.svc = nil
	}
	if n.db != nil {
		n.db.Close()
		n.db = nil
	}
}

// messages returns the message.create contents n has accepted in channel,
// sorted.
func (n *tnode) messages(channel event.ID) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, ev := range n.events {
		if b, ok := ev.Body.(*event.MessageCreate); ok && ev.Channel == channel {
			out = append(out, b.Content)
		}
	}
	slices.Sort(out)
	return out
}

func (n *tnode) duplicates() []event.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []event.ID
	for id, c := range n.seen {
		if c > 1 {
			out = append(out, id)
		}
	}
	return out
}

// waitFor polls cond until it returns "" or the timeout passes; cond
// returns why the condition does not hold yet.
func waitFor(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// general returns the ID of the guild's first channel.
func general(t testing.TB, n *tnode, g event.ID) event.ID {
	t.Helper()
	st, ok := n.svc.Guild(g)
	if !ok || len(st.Channels()) == 0 {
		t.Fatalf("%s: no channels in guild", n.name)
	}
	return st.Channels()[0].ID
}

// guildOf starts a guild on home and joins every other node to it, one user
// per node named after the node.
func guildOf(t testing.TB, home *tnode, others ...*tnode) (event.ID, event.ID) {
	t.Helper()
	g, err := home.svc.CreateGuild(ctx(t), home.name, "test guild")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range others {
		inv, err := home.svc.CreateInvite(ctx(t), g, home.name, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.svc.Join(ctx(t), inv, o.name); err != nil {
			t.Fatalf("%s join: %v", o.name, err)
		}
	}
	all := append([]*tnode{home}, others...)
	// Everyone holds the same state head before the test proceeds.
	waitFor(t, 15*time.Second, func() string {
		want, _ := home.svc.Guild(g)
		for _, n := range all {
			st, ok := n.svc.Guild(g)
			if !ok || st.Info().SN != want.Info().SN {
				return fmt.Sprintf("%s not at state head", n.name)
			}
		}
		return ""
	})
	return g, general(t, home, g)
}

// cutOff partitions n from other (and other from n) and waits until n has no connection
// left; n must have no other peer.
func cutOff(t testing.TB, n, other *tnode) {
	t.Helper()
	n.gater.block(other.svc.ID())
	other.gater.block(n.svc.ID())
	_ = n.svc.Host().Network().ClosePeer(other.svc.ID())
	waitFor(t, 5*time.Second, func() string {
		if len(n.svc.Host().Network().Peers()) != 0 {
			return n.name + " still connected"
		}
		return ""
	})
}

// converged reports why the nodes do not hold the same messages in channel.
func converged(channel event.ID, want int, nodes ...*tnode) string {
	ref := nodes[0].messages(channel)
	if len(ref) != want {
		return fmt.Sprintf("%s has %d messages, want %d", nodes[0].name, len(ref), want)
	}
	for _, n := range nodes[1:] {
		if got := n.messages(channel); !slices.Equal(got, ref) {
			return fmt.Sprintf("%s has %d messages, %s has %d", n.name, len(got), nodes[0].name, len(ref))
		}
	}
	return ""
}
