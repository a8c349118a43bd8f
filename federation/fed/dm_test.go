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
