package fed

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
)

// TestDirectConversation: a user opens a DM with a user of another node; that node joins it
// for its user, both sides exchange messages in it, and a request for an unknown user fails.
func TestDirectConversation(t *testing.T) {
	alice := startNode(t, "alice")
	var bob *tnode
	joined := make(chan event.ID, 1)
	bob = startNode(t, "bob", func(c *Config) {
		c.OnDM = func(ctx context.Context, from event.User, to, invite string) error {
			if to != "bob" {
				return ErrUnknownUser
			}
			snap, err := bob.svc.Join(ctx, invite, to)
			if err != nil {
				return err
			}
			if !snap.Info.DM || snap.Info.Owner != from {
				t.Errorf("joined %+v, want a DM owned by %v", snap.Info, from)
			}
			joined <- snap.Info.ID
			return nil
		}
	})
	guildOf(t, alice, bob) // the two nodes know each other

	g, err := alice.svc.CreateDM(ctx(t), "alice", event.User{Node: bob.svc.Node(), Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-joined; got != g {
		t.Fatalf("bob joined %v, want %v", got, g)
	}
	st, _ := alice.svc.Guild(g)
	if !st.Info().DM || !st.IsMember(event.User{Node: bob.svc.Node(), Name: "bob"}) {
		t.Fatal("bob is not a member of the conversation on alice's node")
	}
	ch := st.Channels()[0].ID
	send(t, alice, g, ch, "hi bob")
	send(t, bob, g, ch, "hi alice")
	waitFor(t, 10*time.Second, func() string { return converged(ch, 2, alice, bob) })

	if _, err := alice.svc.CreateDM(ctx(t), "alice", event.User{Node: bob.svc.Node(), Name: "nobody"}); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("DM with an unknown user: %v, want ErrUnknownUser", err)
	}
}

// TestResolveNode: the node part of name@node is a node name met in a guild (a member node's
// or the home node's), a peer ID with a known address, or a multiaddr with /p2p/; a name two
// nodes share, a peer ID without an address and a multiaddr without /p2p/ are refused. A node
// found by its multiaddr is dialled there, and its refusal reaches CreateDM as ErrRefused.
func TestResolveNode(t *testing.T) {
	alice, bob := startNode(t, "alice"), startNode(t, "bob")
	twin1, twin2 := startNode(t, "twin"), startNode(t, "twin")
	loner := startNode(t, "loner") // in no guild; takes no DMs (OnDM nil)
	guildOf(t, alice, bob, twin1, twin2)
	lonerAddr := loner.svc.Addrs()[0].String() + "/p2p/" + loner.svc.ID().String()

	for _, c := range []struct {
		name string
		on   *tnode
		ref  string
		want *tnode // nil: ErrUnknownNode
	}{
		{"member node by name", alice, "bob", bob},
		{"home node by name", bob, "alice", alice},
		{"itself by name", alice, "alice", alice},
		{"peer ID of a member node", alice, twin1.svc.ID().String(), twin1},
		{"multiaddr", alice, lonerAddr, loner},
		{"name of two nodes", alice, "twin", nil},
		{"unknown name", alice, "nobody", nil},
		{"peer ID without an address", bob, loner.svc.ID().String(), nil},
		{"multiaddr without /p2p/", alice, "/ip4/127.0.0.1/tcp/1", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.on.svc.ResolveNode(c.ref)
			switch {
			case c.want == nil && !errors.Is(err, ErrUnknownNode):
				t.Fatalf("ResolveNode(%q) = %v, %v; want ErrUnknownNode", c.ref, got, err)
			case c.want != nil && (err != nil || got != c.want.svc.Node()):
				t.Fatalf("ResolveNode(%q) = %v, %v; want %s's node", c.ref, got, err, c.want.name)
			}
		})
	}

	// alice resolved loner by its multiaddr above, so she can dial it.
	lonerUser := event.User{Node: loner.svc.Node(), Name: "loner"}
	if _, err := alice.svc.CreateDM(ctx(t), "alice", lonerUser); !errors.Is(err, ErrRefused) {
		t.Fatalf("DM with a node that takes none: %v, want ErrRefused", err)
	}
	if live := liveDMs(alice); live != 0 {
		t.Fatalf("%d conversations live after the refusal, want it deleted", live)
	}
	loner.stop()
	if _, err := alice.svc.CreateDM(ctx(t), "alice", lonerUser); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("DM with a node that is down: %v, want ErrUnreachable", err)
	}
	if live := liveDMs(alice); live != 1 {
		t.Fatalf("%d conversations live after a failed dial, want it kept", live)
	}
}

// liveDMs counts n's conversations that are not deleted.
func liveDMs(n *tnode) int {
	live := 0
	for _, id := range n.svc.Guilds() {
		if g, ok := n.svc.Guild(id); ok && g.Info().DM && g.Info().Deleted == 0 {
			live++
		}
	}
	return live
}

// FuzzResolveNode: whatever a client writes after the @ of name@node, ResolveNode answers a
// node or ErrUnknownNode, without panicking.
func FuzzResolveNode(f *testing.F) {
	n := startNode(f, "alpha")
	for _, seed := range []string{"alpha", "", "/", "/p2p/", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWBmwkafWE2fqfzS96VoTZQnJj8pLDGGRbsy1nKV6zrLZE",
		"12D3KooWBmwkafWE2fqfzS96VoTZQnJj8pLDGGRbsy1nKV6zrLZE", "/dns4/example.org/tcp/4001", "Qm", n.svc.ID().String()} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if _, err := n.svc.ResolveNode(ref); err != nil && !errors.Is(err, ErrUnknownNode) {
			t.Fatalf("ResolveNode(%q): %v, want ErrUnknownNode", ref, err)
		}
	})
}
