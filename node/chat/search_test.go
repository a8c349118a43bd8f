package chat

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/hearth-chat/hearth/node/auth"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/store"
)

// newTestService is a Service on a fresh on-disk store with cheap passwords.
func newTestService(t *testing.T, pub Publisher) *Service {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := New(db, pub, Options{Password: auth.Params{Time: 1, MemoryK: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// newTestGuild creates a guild of owner and returns it with its text channel.
func newTestGuild(t *testing.T, s *Service, owner ID) (GuildOut, ID) {
	t.Helper()
	g, err := s.CreateGuild(context.Background(), owner, "guild")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Channels {
		if c.Type == 0 {
			return g, c.ID
		}
	}
	t.Fatal("a new guild has no text channel")
	return g, 0
}

// TestMessagesByIDSkipsUnstored checks SRCH-047: "a node MUST drop from the
// response any hit whose message it no longer stores, even if the index still
// holds it". The search route loads its hits with MessagesByID (node/api); hits
// the index may still hold after the store let their message go (deleted, bulk
// deleted, its channel deleted, never stored) are left out, and the others keep
// their order.
func TestMessagesByIDSkipsUnstored(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, fanout.NewHub())
	_, owner, err := s.Register(ctx, "owner", "owner password")
	if err != nil {
		t.Fatal(err)
	}
	g, text := newTestGuild(t, s, owner)
	name := "doomed"
	doomed, err := s.CreateChannel(ctx, owner, g.ID, ChannelSpec{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	send := func(ch ID, content string) [2]uint64 {
		t.Helper()
		m, err := s.CreateMessage(ctx, owner, ch, MessageCreate{Content: content})
		if err != nil {
			t.Fatal(err)
		}
		return [2]uint64{uint64(ch), uint64(m.ID)}
	}
	kept1, deleted, kept2, bulk1, bulk2 := send(text, "one"), send(text, "two"), send(text, "three"), send(text, "four"), send(text, "five")
	inDoomed := send(doomed.ID, "in a channel about to go")
	never := [2]uint64{uint64(text), kept2[1] + 1}
	if err := s.DeleteMessage(ctx, owner, text, ID(deleted[1])); err != nil {
		t.Fatal(err)
	}
	if err := s.BulkDelete(ctx, owner, text, []ID{ID(bulk1[1]), ID(bulk2[1])}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteChannel(ctx, owner, doomed.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		hits [][2]uint64
		want [][2]uint64
	}{
		{"all stored", [][2]uint64{kept2, kept1}, [][2]uint64{kept2, kept1}},
		{"deleted", [][2]uint64{kept2, deleted, kept1}, [][2]uint64{kept2, kept1}},
		{"bulk deleted", [][2]uint64{bulk2, kept2, bulk1}, [][2]uint64{kept2}},
		{"channel deleted", [][2]uint64{inDoomed, kept1}, [][2]uint64{kept1}},
		{"never stored", [][2]uint64{never, kept1}, [][2]uint64{kept1}},
		{"none left", [][2]uint64{deleted, bulk1, inDoomed, never}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := s.MessagesByID(owner, tc.hits)
			if err != nil {
				t.Fatal(err)
			}
			var got [][2]uint64
			for _, m := range msgs {
				got = append(got, [2]uint64{uint64(m.ChannelID), uint64(m.ID)})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("MessagesByID(%v) = %v, want %v", tc.hits, got, tc.want)
			}
		})
	}
}

// TestCountMessagesOnlyMessages checks that the reindex total counts messages only, not
// the media index's records, whose keys share the message prefix's first letters.
func TestCountMessagesOnlyMessages(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, fanout.NewHub())
	_, owner, err := s.Register(ctx, "owner", "owner password")
	if err != nil {
		t.Fatal(err)
	}
	_, text := newTestGuild(t, s, owner)
	for _, c := range []string{"one", "two", "three"} {
		if _, err := s.CreateMessage(ctx, owner, text, MessageCreate{Content: c}); err != nil {
			t.Fatal(err)
		}
	}
	// Records as node/media keeps them in the same database.
	if err := s.db.Update(func(tx *store.Tx) error {
		return errors.Join(tx.PutRaw([]byte("m/b/0123456789abcdef0123456789abcdef"), []byte("{}")),
			tx.PutRaw([]byte("m/u/\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("1")))
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountMessages(ctx); err != nil || n != 3 {
		t.Fatalf("CountMessages = %d, %v; want 3", n, err)
	}
}
