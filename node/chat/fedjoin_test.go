package chat

import (
	"context"
	"fmt"
	"testing"

	"github.com/hearth-chat/hearth/node/auth"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/store"
)

// bigGuildFed is a Federator whose invites join a guild of n members on another node; only
// what joining calls is implemented.
type bigGuildFed struct {
	Federator
	n int
}

func (bigGuildFed) IsInvite(string) bool { return true }

func (f bigGuildFed) Join(context.Context, string, string) (*RemoteGuild, error) {
	rg := &RemoteGuild{FedID: "guild-1", Name: "Crowd", Owner: "owner@far",
		Channels: []RemoteChannel{{FedID: "chan-1", Name: "general", Type: 0}},
		Profiles: map[string]RemoteProfile{"m7@far": {Nick: "Seven"}}}
	for i := range f.n {
		rg.Members = append(rg.Members, fmt.Sprintf("m%d@far", i))
	}
	return rg, nil
}

// TestJoinRemoteGuildWithManyMembers: a node joining a guild of 50,000 members on another
// node stores them all (more than one Badger transaction holds), shows them, and still
// holds them after a restart.
func TestJoinRemoteGuildWithManyMembers(t *testing.T) {
	const n = 50_000
	ctx := context.Background()
	dir := t.TempDir()
	s, db := openTestService(t, dir, fanout.NewHub())
	s.SetFederator(bigGuildFed{n: n})
	_, me, err := s.Register(ctx, "joiner", "joiner password")
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.JoinInvite(ctx, me, "hearth:big")
	if err != nil {
		t.Fatalf("joining a guild of %d members: %v", n, err)
	}
	check := func(s *Service, when string) {
		t.Helper()
		s.mu.RLock()
		defer s.mu.RUnlock()
		gs := s.guilds[out.GuildID]
		if gs == nil {
			t.Fatalf("%s: the joined guild is not there", when)
		}
		if got := len(gs.members); got != n+2 { // the members, the owner and the joiner
			t.Fatalf("%s: %d members, want %d", when, got, n+2)
		}
		if m := gs.members[s.remotes["m7@far"]]; m == nil || m.Nick == nil || *m.Nick != "Seven" {
			t.Fatalf("%s: m7's nickname from before the join is lost: %+v", when, m)
		}
	}
	check(s, "after the join")
	s.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, db = openTestService(t, dir, fanout.NewHub())
	defer db.Close()
	defer s.Close()
	check(s, "after a restart")
}

// openTestService opens a Service on the store in dir; the caller closes both.
func openTestService(t *testing.T, dir string, pub Publisher) (*Service, *store.DB) {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db, pub, Options{Password: auth.Params{Time: 1, MemoryK: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}
