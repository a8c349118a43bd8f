package fed

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// The snapshot of spec/federation.md §6.2 (FED-100), with its optional fields
// absent when zero or empty.
type snapUser = fedpeer.User

type snapState struct {
	V        uint64        `cbor:"0,keyasint"`
	Info     snapInfo      `cbor:"1,keyasint"`
	Channels []snapChannel `cbor:"2,keyasint,omitempty"`
	Roles    []snapRole    `cbor:"3,keyasint"`
	Members  []snapUsers   `cbor:"4,keyasint"`
	Bans     []struct {
		User snapUser `cbor:"0,keyasint"`
		TS   uint64   `cbor:"1,keyasint"`
	} `cbor:"5,keyasint,omitempty"`
	Invites []snapInvite `cbor:"6,keyasint,omitempty"`
	Nodes   []snapNode   `cbor:"7,keyasint"`
	Former  [][]byte     `cbor:"8,keyasint,omitempty"`
}

type snapInfo struct {
	Guild    []byte   `cbor:"0,keyasint"`
	Name     string   `cbor:"1,keyasint"`
	Home     []byte   `cbor:"2,keyasint"`
	HomeName string   `cbor:"3,keyasint,omitempty"`
	Owner    snapUser `cbor:"4,keyasint"`
	DM       bool     `cbor:"5,keyasint,omitempty"`
	Deleted  uint64   `cbor:"6,keyasint,omitempty"`
	SN       uint64   `cbor:"7,keyasint"`
	Head     []byte   `cbor:"8,keyasint"`
}

type snapChannel struct {
	ID       []byte `cbor:"0,keyasint"`
	Name     string `cbor:"1,keyasint"`
	Type     uint64 `cbor:"2,keyasint,omitempty"`
	Topic    string `cbor:"3,keyasint,omitempty"`
	Position uint64 `cbor:"4,keyasint,omitempty"`
}

type snapRole struct {
	ID          []byte `cbor:"0,keyasint"`
	Name        string `cbor:"1,keyasint"`
	Permissions uint64 `cbor:"2,keyasint,omitempty"`
}

// snapUsers are the members of one node.
type snapUsers struct {
	Node    []byte       `cbor:"0,keyasint"`
	Members []snapMember `cbor:"1,keyasint"`
}

type snapMember struct {
	Name     string `cbor:"0,keyasint"`
	NodeName string `cbor:"2,keyasint,omitempty"`
	Joined   uint64 `cbor:"3,keyasint"`
	Left     uint64 `cbor:"4,keyasint,omitempty"`
}

type snapInvite struct {
	Code    string   `cbor:"0,keyasint"`
	Uses    uint64   `cbor:"3,keyasint,omitempty"`
	Creator snapUser `cbor:"4,keyasint"`
}

type snapNode struct {
	ID    []byte   `cbor:"0,keyasint"`
	Name  string   `cbor:"1,keyasint,omitempty"`
	Addrs [][]byte `cbor:"2,keyasint,omitempty"`
}

// FED-100..FED-102: a node new to a guild whose state head is above 64 is answered with
// the genesis event only and a snapshot at the head, in its one canonical encoding, signed
// by the home node with Ed25519ctx under "hearth-snapshot-v1". A fake member node makes
// the chain long by joining 64 further users (asking each time for the tail only), then
// joins one more as a node new to the guild, and checks the snapshot: its guild, home and
// head (the last member.join, which a further join with have-sn shows), the members, the
// text channel, @everyone, the fake node, and strictly ascending lists.
func snapshotJoin(t *T) {
	w := newWorld(t)
	m := w.M
	inv, _ := fedpeer.ParseInvite(w.Code)
	decode := func(raw []byte) *fedpeer.Event {
		ev, err := fedpeer.DecodeEvent(raw)
		if err != nil {
			t.Fatalf("an event of a join response: %v", err)
		}
		return ev
	}
	head := decode(m.Join.State[len(m.Join.State)-1]).Env.SN
	var names []string
	for head <= 64 {
		names = append(names, harness.RandName())
		resp, _ := joinAs(t, m, inv, names[len(names)-1], head)
		if len(resp.State) == 0 {
			t.Fatalf("FED-053: a join with have-sn %d carries no state event", head)
		}
		head = decode(resp.State[len(resp.State)-1]).Env.SN
	}
	name := harness.RandName()
	resp, _ := joinAs(t, m, inv, name, 0)
	signed := resp.Snapshot
	if signed == nil {
		t.Fatalf("FED-102: the join of a node new to a guild at state head %d carries no snapshot (field 5)", head+1)
	}
	if len(resp.State) != 1 {
		t.Fatalf("FED-053: a join answered with a snapshot carries %d state events, want the genesis event only", len(resp.State))
	}
	gen := decode(resp.State[0])
	if gen.Env.Kind != "guild.create" || gen.Env.SN != 1 || gen.Verify() != nil {
		t.Fatalf("FED-053: the state event of a join answered with a snapshot is %s at sn %d, want the genesis event", gen.Env.Kind, gen.Env.SN)
	}
	home, err := peer.IDFromBytes(gen.Env.Origin)
	if err != nil || home != m.Home {
		t.Fatalf("FED-053: the genesis event's origin is not the home node")
	}
	pub, err := home.ExtractPublicKey()
	if err != nil {
		t.Fatalf("%v", err)
	}
	key, err := pub.Raw()
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := ed25519.VerifyWithOptions(key, signed.State, signed.Sig, &ed25519.Options{Context: fedpeer.SnapshotContext}); err != nil {
		t.Fatalf("FED-101: the snapshot's signature does not verify with the home node's key: %v", err)
	}
	if err := fedpeer.Canonical(signed.State); err != nil {
		t.Fatalf("FED-100: %v", err)
	}
	var st snapState
	if err := fedpeer.Unmarshal(signed.State, &st); err != nil {
		t.Fatalf("FED-100: the snapshot: %v", err)
	}
	switch {
	case st.V != 1:
		t.Fatalf("FED-100: snapshot version %d", st.V)
	case !bytes.Equal(st.Info.Guild, gen.ID), !bytes.Equal(st.Info.Home, gen.Env.Origin):
		t.Fatalf("FED-100: the snapshot's guild or home node is not the genesis event's")
	case st.Info.SN != head+1:
		t.Fatalf("FED-102: the snapshot is at sn %d, want the head %d (with the joiner's member.join)", st.Info.SN, head+1)
	}
	// Joined already, the same user asking for the tail above the previous head gets the
	// member.join the snapshot names as its head.
	tail, _ := joinAs(t, m, inv, name, head)
	if len(tail.State) != 1 || !bytes.Equal(decode(tail.State[0]).ID, st.Info.Head) {
		t.Fatalf("FED-100: the snapshot's head is not the event at its sn")
	}
	members := map[string]uint64{}
	var memberNodes [][]byte
	for _, users := range st.Members {
		memberNodes = append(memberNodes, users.Node)
		for i, mb := range users.Members {
			members[fmt.Sprintf("%x/%s", users.Node, mb.Name)] = mb.Left
			if i > 0 && users.Members[i-1].Name >= mb.Name {
				t.Fatalf("FED-100: the members of a node in the snapshot are not strictly ascending by name")
			}
		}
	}
	want := []snapUser{{Node: m.Signer.Origin, Name: name}, {Node: m.Signer.Origin, Name: m.Name}, st.Info.Owner}
	for _, n := range names {
		want = append(want, snapUser{Node: m.Signer.Origin, Name: n})
	}
	for _, u := range want {
		if left, ok := members[fmt.Sprintf("%x/%s", u.Node, u.Name)]; !ok || left != 0 {
			t.Fatalf("FED-100: %s is not a current member in the snapshot", u.Name)
		}
	}
	ascending := func(what string, keys [][]byte) {
		for i := 1; i < len(keys); i++ {
			if bytes.Compare(keys[i-1], keys[i]) >= 0 {
				t.Fatalf("FED-100: the snapshot's %s are not strictly ascending", what)
			}
		}
	}
	var roles, chans, nodes [][]byte
	for _, r := range st.Roles {
		roles = append(roles, r.ID)
	}
	for _, ch := range st.Channels {
		chans = append(chans, ch.ID)
	}
	for _, n := range st.Nodes {
		nodes = append(nodes, n.ID)
	}
	ascending("roles", roles)
	ascending("channels", chans)
	ascending("nodes", nodes)
	ascending("node-members", memberNodes)
	for what, want := range map[string]struct {
		in  [][]byte
		has []byte
	}{"the @everyone role": {roles, gen.ID}, "the text channel": {chans, w.Chan}, "the fake member node": {nodes, m.Signer.Origin}} {
		found := false
		for _, k := range want.in {
			found = found || bytes.Equal(k, want.has)
		}
		if !found {
			t.Fatalf("FED-100: the snapshot lacks %s", what)
		}
	}
}
