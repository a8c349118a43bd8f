package sync

import (
	"slices"
	"testing"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/proto"
)

func TestMissing(t *testing.T) {
	home, a, b := event.Node("\x00\x04home"), event.Node("\x00\x04aaaa"), event.Node("\x00\x04bbbb")
	for _, tc := range []struct {
		name   string
		local  map[event.Node]uint64
		remote []proto.Head
		want   []proto.Range
	}{
		{"in sync", map[event.Node]uint64{a: 3}, []proto.Head{{Origin: a, Seq: 3}}, nil},
		{"we are ahead", map[event.Node]uint64{a: 5}, []proto.Head{{Origin: a, Seq: 3}}, nil},
		{"new origin", nil, []proto.Head{{Origin: b, Seq: 2}}, []proto.Range{{Origin: b, From: 1, To: 2}}},
		{"home first", map[event.Node]uint64{a: 1, home: 4},
			[]proto.Head{{Origin: a, Seq: 3}, {Origin: b, Seq: 1}, {Origin: home, Seq: 9}},
			[]proto.Range{{Origin: home, From: 5, To: 9}, {Origin: a, From: 2, To: 3}, {Origin: b, From: 1, To: 1}}},
	} {
		got := Missing(tc.local, tc.remote, home)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCover(t *testing.T) {
	a, b := event.Node("\x00\x04aaaa"), event.Node("\x00\x04bbbb")
	ranges := []proto.Range{{Origin: a, From: 5, To: 9}, {Origin: b, From: 1, To: 3}}
	for _, tc := range []struct {
		n    int
		want map[event.Node]uint64
	}{
		{0, map[event.Node]uint64{a: 4}},
		{3, map[event.Node]uint64{a: 7}},
		{5, map[event.Node]uint64{a: 9}},
		{6, map[event.Node]uint64{a: 9, b: 1}},
		{100, map[event.Node]uint64{a: 9, b: 3}},
	} {
		asked := map[event.Node]uint64{a: 4}
		cover(asked, ranges, tc.n)
		if len(asked) != len(tc.want) || asked[a] != tc.want[a] || asked[b] != tc.want[b] {
			t.Errorf("cover of %d events: %v, want %v", tc.n, asked, tc.want)
		}
	}
}
