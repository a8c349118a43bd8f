package fed

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
)

// TestGroupCommitPipelines checks that a batch is written while the previous one syncs, and
// that no publication is answered (and gossiped) before the sync that makes it durable
// [FED-019].
func TestGroupCommitPipelines(t *testing.T) {
	var hold atomic.Bool
	syncing := make(chan struct{}, 16)
	release := make(chan struct{})
	alice := startNode(t, "alice", func(c *Config) {
		c.Sync = func() error {
			if hold.Load() {
				syncing <- struct{}{}
				<-release
			}
			return nil
		}
	})
	g, err := alice.svc.CreateGuild(ctx(t), "alice", "g")
	if err != nil {
		t.Fatal(err)
	}
	ch := general(t, alice, g)
	hold.Store(true)
	publish := func(content string) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := alice.svc.Publish(ctx(t), g, ch, "alice", event.KindMessageCreate, &event.MessageCreate{Content: content})
			done <- err
		}()
		return done
	}
	first := publish("first")
	select {
	case <-syncing:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch never reached its sync")
	}
	second := publish("second")
	// The second batch is committed and delivered while the first one's sync still runs.
	waitFor(t, 10*time.Second, func() string {
		if got := alice.messages(ch); !slices.Contains(got, "second") {
			return "the second message is not committed while the first batch syncs"
		}
		return ""
	})
	for name, done := range map[string]<-chan error{"first": first, "second": second} {
		select {
		case err := <-done:
			t.Fatalf("the %s publication returned (%v) before its sync", name, err)
		default:
		}
	}
	close(release)
	for name, done := range map[string]<-chan error{"first": first, "second": second} {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s publication did not return after the sync", name)
		}
	}
}
