package guild

import (
	"errors"
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
)

// TestCategories: channels sit in categories of the guild [EVT-063]; a parent that is not a
// category of the guild, or a category in a category, is refused; deleting a category leaves
// its channels outside any category.
func TestCategories(t *testing.T) {
	c := newChain(t)
	cat := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "Text", Type: event.ChannelCategory}).ID
	text := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "general", Parent: cat}).ID
	other := c.state(event.KindChannelCreate, "", &event.ChannelCreate{Name: "other"}).ID
	parentOf := func(id event.ID) event.ID {
		for _, ch := range c.g.Channels() {
			if ch.ID == id {
				return ch.Parent
			}
		}
		t.Fatalf("no channel %s", id)
		return ""
	}
	if parentOf(text) != cat {
		t.Fatalf("general's parent = %q, want the category", parentOf(text))
	}
	c.state(event.KindChannelUpdate, other, &event.ChannelUpdate{Name: "other", Parent: cat})
	if parentOf(other) != cat {
		t.Fatalf("other's parent after the update = %q", parentOf(other))
	}

	refused := []struct {
		name    string
		kind    event.Kind
		channel event.ID
		body    any
	}{
		{"parent is a text channel", event.KindChannelCreate, "", &event.ChannelCreate{Name: "x", Parent: text}},
		{"parent is unknown", event.KindChannelCreate, "", &event.ChannelCreate{Name: "x", Parent: event.ID("\x12\x20" + string(make([]byte, 32)))}},
		{"category moved into a category", event.KindChannelUpdate, cat, &event.ChannelUpdate{Name: "Text", Parent: cat}},
	}
	for _, tc := range refused {
		c.seq++
		info := c.g.Info()
		ev, err := c.home.Sign(event.Envelope{Kind: tc.kind, Guild: c.gid, Channel: tc.channel, Author: c.owner,
			Seq: c.seq, TS: event.HLC(c.seq * 100), SN: info.SN + 1, Prev: info.Head}, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.g.Apply(ev); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Apply = %v, want ErrInvalid", tc.name, err)
		}
		c.seq--
	}
	if _, err := c.home.Sign(event.Envelope{Kind: event.KindChannelCreate, Author: c.owner, Seq: 99, TS: 9900, SN: 99},
		&event.ChannelCreate{Name: "x", Type: event.ChannelCategory, Parent: cat}); err == nil {
		t.Error("a category with a parent was signed: the body check should refuse it")
	}

	c.state(event.KindChannelDelete, cat, &event.Empty{})
	if parentOf(text) != "" || parentOf(other) != "" {
		t.Errorf("after the category's deletion: parents %q, %q, want none", parentOf(text), parentOf(other))
	}
}
