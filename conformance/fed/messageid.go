package fed

import (
	"bytes"
	"fmt"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// FED-012: "The pubsub message ID MUST be the event ID bytes." A gossipsub node
// answers an IWANT with the messages its cache holds under the IDs named, so a
// raw gossipsub peer (no router, nothing sent before) asks the node for a
// message the fake member published, by its event ID, until the node has
// accepted it and sends it back; a node that names messages otherwise never does.
func messageIDIsEventID(t *T) {
	w := newWorld(t)
	p, err := fedpeer.New()
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	raw := p.StartRawGossip()
	c, cancel := ctx(t)
	defer cancel()
	node, err := p.Connect(c, t.Node.P2P)
	if err != nil {
		t.Fatalf("%v", err)
	}
	select {
	case <-raw.Hello():
	case <-c.Done():
		t.Fatalf("the node opened no gossipsub stream to a connected peer that speaks gossipsub")
	}
	data, id := w.M.Message(w.Chan, "asked for by ID "+harness.RandName())
	publish(t, w.M, data)
	t.Eventually("the node answers an IWANT naming the event ID with the message", func() error {
		if err := raw.Want(c, node, id); err != nil {
			return err
		}
		for _, m := range raw.Messages() {
			if bytes.Equal(m.GetData(), data) {
				return nil
			}
		}
		return fmt.Errorf("no answer yet (%d messages from the node)", len(raw.Messages()))
	})
}
