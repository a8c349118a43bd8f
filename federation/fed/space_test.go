package fed

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
)

// TestSpaceRefusalSpendsNoSequence checks that a publication refused for want of disk space
// (Config.Space) fails with the node's error and spends no sequence number: the next event
// once space is back follows the last stored one, so peers see no gap that nothing fills.
func TestSpaceRefusalSpendsNoSequence(t *testing.T) {
	errFull := errors.New("disk nearly full")
	var full atomic.Bool
	alice := startNode(t, "alice", func(c *Config) {
		c.Space = func() error {
			if full.Load() {
				return errFull
			}
			return nil
		}
	})
	g, err := alice.svc.CreateGuild(ctx(t), "alice", "Space")
	if err != nil {
		t.Fatal(err)
	}
	ch := general(t, alice, g)
	publish := func(content string) (*event.Event, error) {
		return alice.svc.Publish(ctx(t), g, ch, "alice", event.KindMessageCreate, &event.MessageCreate{Content: content})
	}
	first, err := publish("before")
	if err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	for range 3 {
		if _, err := publish("refused"); !errors.Is(err, errFull) {
			t.Fatalf("publish on a full disk: %v, want the node's refusal", err)
		}
	}
	if _, err := alice.svc.Moderate(ctx(t), g, "alice", event.KindChannelCreate, "", &event.ChannelCreate{Name: "refused"}); !errors.Is(err, errFull) {
		t.Fatalf("state change on a full disk: %v, want the node's refusal", err)
	}
	full.Store(false)
	next, err := publish("after")
	if err != nil {
		t.Fatal(err)
	}
	if next.Seq != first.Seq+1 {
		t.Fatalf("sequence after the refusals = %d, want %d (right after %d)", next.Seq, first.Seq+1, first.Seq)
	}
}
