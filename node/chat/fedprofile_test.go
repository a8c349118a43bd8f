package chat

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/node/fanout"
)

// slowProfileFed records the profiles published to federation and holds each publication
// until release is closed, as a home node that answers slowly would.
type slowProfileFed struct {
	bigGuildFed
	release chan struct{}

	mu                    sync.Mutex
	published             []RemoteProfile
	inFlight, maxInFlight int
}

func (f *slowProfileFed) PublishProfile(_ context.Context, _, _, _ string, p RemoteProfile) error {
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	<-f.release
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	f.published = append(f.published, p)
	return nil
}

// joinRemoteAs opens a service federated through f, registers "me" and joins it to the
// remote guild behind f's invite.
func joinRemoteAs(t *testing.T, f Federator) (*Service, ID, ID) {
	t.Helper()
	ctx := context.Background()
	s, db := openTestService(t, t.TempDir(), fanout.NewHub())
	t.Cleanup(func() { db.Close() })
	s.SetFederator(f)
	_, me, err := s.Register(ctx, "me", "my password")
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.JoinInvite(ctx, me, "hearth:faces")
	if err != nil {
		t.Fatal(err)
	}
	return s, me, out.GuildID
}

// TestProfileChangesPublishedInOrder: profile changes of a member of a federated guild made
// while an earlier one is still being published go out one at a time, in order (each carries
// the whole profile, so the last one published is the newest); published at once, the home
// node could take them in any order and keep an older profile.
func TestProfileChangesPublishedInOrder(t *testing.T) {
	ctx := context.Background()
	f := &slowProfileFed{bigGuildFed: bigGuildFed{n: 1}, release: make(chan struct{})}
	s, me, guildID := joinRemoteAs(t, f)
	str := func(v string) *string { return &v }
	if _, err := s.ModifyMember(ctx, me, guildID, me, MemberPatch{Nick: str("one")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateMe(ctx, me, UserPatch{GlobalName: str("Two")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyMember(ctx, me, guildID, me, MemberPatch{Nick: str("three")}); err != nil {
		t.Fatal(err)
	}
	close(f.release)
	s.Close() // waits for the publications
	want := []RemoteProfile{{Nick: "one"}, {Nick: "one", GlobalName: "Two"}, {Nick: "three", GlobalName: "Two"}}
	if !slices.Equal(f.published, want) || f.maxInFlight != 1 {
		t.Fatalf("published %+v with up to %d at once, want %+v one at a time", f.published, f.maxInFlight, want)
	}
}

// unreachableFed is a federation that never answers: each profile publication waits until its
// context ends, and the cause is recorded.
type unreachableFed struct {
	bigGuildFed
	mu     sync.Mutex
	causes []error
}

func (f *unreachableFed) PublishProfile(ctx context.Context, _, _, _ string, _ RemoteProfile) error {
	<-ctx.Done()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.causes = append(f.causes, context.Cause(ctx))
	return ctx.Err()
}

// TestCloseGivesUpQueuedPublications: Close lets queued publications to federation run for
// shutdownGrace, then gives up the rest, so that a node whose federation is unreachable does
// not wait out each one's own timeout (10 s) in turn.
func TestCloseGivesUpQueuedPublications(t *testing.T) {
	defer func(g time.Duration) { shutdownGrace = g }(shutdownGrace)
	shutdownGrace = 0
	ctx := context.Background()
	f := &unreachableFed{bigGuildFed: bigGuildFed{n: 1}}
	s, me, guildID := joinRemoteAs(t, f)
	for _, nick := range []string{"one", "two", "three"} {
		if _, err := s.ModifyMember(ctx, me, guildID, me, MemberPatch{Nick: &nick}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.causes) != 3 {
		t.Fatalf("%d publications ran before Close returned, want all 3 (given up)", len(f.causes))
	}
	for i, c := range f.causes {
		if !errors.Is(c, errShuttingDown) {
			t.Errorf("publication %d ended with %v, want %v", i, c, errShuttingDown)
		}
	}
}
