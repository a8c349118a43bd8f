package chat

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/hearth-chat/hearth/node/auth"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/store"
)

// BenchmarkCreateMessageParallel measures durable message creation with concurrent writers
// on an on-disk store (synced writes), fanned out to nobody, in a guild of the author alone
// and in one of 5,000 members (where each message once rebuilt the channel's audience).
func BenchmarkCreateMessageParallel(b *testing.B) {
	for _, members := range []int{1, 5000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			s, uid, ch := benchGuild(b, members)
			ctx := context.Background()
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
		})
	}
}

// benchGuild returns a service on an on-disk store with a guild of the given number of
// members, its owner and its text channel.
func benchGuild(b *testing.B, members int) (*Service, ID, ID) {
	b.Helper()
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := New(db, fanout.NewHub(), Options{Password: auth.Params{Time: 1, MemoryK: 64, Threads: 1},
		Logger: slog.New(slog.DiscardHandler)})
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
	if members > 1 {
		inv, err := s.CreateInvite(ctx, uid, ch, InviteSpec{})
		if err != nil {
			b.Fatal(err)
		}
		for i := 1; i < members; i++ {
			_, m, err := s.Register(ctx, fmt.Sprintf("member%d", i), "member password")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.JoinInvite(ctx, m, inv.Code); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s, uid, ch
}
