package fedpeer

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestRawGossipIWant asks a gossipsub router (the fake's own) for a message it
// published, by message ID, over the raw peer's hand-written RPCs.
func TestRawGossipIWant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	g, err := a.StartGossip()
	if err != nil {
		t.Fatal(err)
	}
	topic := Topic(HashID([]byte("guild")))
	if err := g.Join(topic); err != nil {
		t.Fatal(err)
	}
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	raw := b.StartRawGossip()
	to, err := b.Connect(ctx, a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-raw.Hello():
	case <-ctx.Done():
		t.Fatal("no gossipsub stream from the router")
	}
	data := []byte("not an event: its ID is the hash of the data")
	if err := g.Publish(ctx, topic, data); err != nil {
		t.Fatal(err)
	}
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		if err := raw.Want(ctx, to, HashID(data)); err != nil {
			t.Fatal(err)
		}
		for _, m := range raw.Messages() {
			if bytes.Equal(m.GetData(), data) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the router never answered the IWANT")
		case <-time.After(delay):
		}
	}
}
