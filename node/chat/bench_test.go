package chat

import (
	"context"
	"testing"

	"github.com/hearth-chat/hearth/node/auth"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/store"
)

// BenchmarkCreateMessageParallel measures durable message creation with concurrent writers
// on an on-disk store (synced writes), fanned out to nobody.
func BenchmarkCreateMessageParallel(b *testing.B) {
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := New(db, fanout.NewHub(), Options{Password: auth.Params{Time: 1, MemoryK: 64, Threads: 1}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	_, uid, err := s.Register(ctx, "bench", "bench password")
	if err != nil {
		b.Fatal(err)
	}
	g, err := s.CreateGuild(ctx, uid, "bench")
	if err != nil {
		b.Fatal(err)
	}
	var ch ID
	for _, c := range g.Channels {
		if c.Type == 0 {
			ch = c.ID
		}
	}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.CreateMessage(ctx, uid, ch, MessageCreate{Content: "hello world"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
