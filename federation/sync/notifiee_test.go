package sync

import (
	"cmp"
	"maps"
	"slices"
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// membersApplier holds guilds and the peers that are member nodes of each; only what the
// notifiee calls is implemented.
type membersApplier struct {
	Applier
	members map[event.ID][]peer.ID
}

func (a membersApplier) Guilds() []event.ID { return slices.Collect(maps.Keys(a.members)) }

func (a membersApplier) Syncs(g event.ID, p peer.ID) bool { return slices.Contains(a.members[g], p) }

// conn is a connection from a peer; only RemotePeer is implemented.
type conn struct {
	network.Conn
	from peer.ID
}

func (c conn) RemotePeer() peer.ID { return c.from }

// TestConnectedTriggersMemberGuilds: a newly connected peer gets a catch-up of the guilds it
// is a member node of, and of no other.
func TestConnectedTriggersMemberGuilds(t *testing.T) {
	g1, g2, g3 := event.ID("\x12\x20g1"), event.ID("\x12\x20g2"), event.ID("\x12\x20g3")
	a := membersApplier{members: map[event.ID][]peer.ID{g1: {"alpha", "beta"}, g2: {"alpha"}, g3: {"gamma"}}}
	for _, tc := range []struct {
		from peer.ID
		want []job
	}{
		{"alpha", []job{{g1, "alpha"}, {g2, "alpha"}}},
		{"beta", []job{{g1, "beta"}}},
		{"stranger", nil},
	} {
		s := NewSyncer(nil, a, 0, nil)
		(&notifiee{s: s}).Connected(nil, conn{from: tc.from})
		got := slices.SortedFunc(maps.Keys(s.pending), func(x, y job) int { return cmp.Compare(x.guild, y.guild) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s connects: catch-ups %v, want %v", string(tc.from), got, tc.want)
		}
	}
}
