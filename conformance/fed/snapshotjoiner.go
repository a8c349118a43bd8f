package fed

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// foldFake folds the fake home's state chain into a snapshot (FED-100): the genesis event,
// channel and invite creations, and joins are all the fake issues.
func foldFake(chain [][]byte) (snapState, error) {
	st := snapState{V: 1}
	nodes := map[string]*snapNode{}
	member := func(u snapUser, nodeName string, addrs [][]byte, ts uint64) {
		st.Members = append(st.Members, snapMember{User: u, NodeName: nodeName, Joined: ts})
		n := nodes[string(u.Node)]
		if n == nil {
			n = &snapNode{ID: u.Node}
			nodes[string(u.Node)] = n
		}
		if nodeName != "" {
			n.Name = nodeName
		}
		if len(addrs) > 0 {
			n.Addrs = addrs[:min(len(addrs), 16)]
		}
	}
	for _, raw := range chain {
		ev, err := fedpeer.DecodeEvent(raw)
		if err != nil {
			return st, err
		}
		switch ev.Env.Kind {
		case "guild.create":
			var b struct {
				Name     string   `cbor:"0,keyasint"`
				Owner    snapUser `cbor:"1,keyasint"`
				NodeName string   `cbor:"2,keyasint"`
			}
			err = fedpeer.Unmarshal(ev.Env.Body, &b)
			st.Info = snapInfo{Guild: ev.ID, Name: b.Name, Home: ev.Env.Origin, HomeName: b.NodeName, Owner: b.Owner}
			st.Roles = []snapRole{{ID: ev.ID, Name: "@everyone", Permissions: 68673}} // DefaultEveryone
			member(b.Owner, b.NodeName, nil, ev.Env.TS)
		case "channel.create":
			var b struct {
				Name     string `cbor:"0,keyasint"`
				Type     uint64 `cbor:"1,keyasint"`
				Topic    string `cbor:"2,keyasint"`
				Position uint64 `cbor:"3,keyasint"`
			}
			err = fedpeer.Unmarshal(ev.Env.Body, &b)
			st.Channels = append(st.Channels, snapChannel{ID: ev.ID, Name: b.Name, Type: b.Type, Topic: b.Topic, Position: b.Position})
		case "invite.create":
			var b struct {
				Code string `cbor:"0,keyasint"`
			}
			err = fedpeer.Unmarshal(ev.Env.Body, &b)
			st.Invites = append(st.Invites, snapInvite{Code: b.Code, Creator: ev.Env.Author})
		case "member.join":
			var b struct {
				User     snapUser `cbor:"0,keyasint"`
				NodeName string   `cbor:"1,keyasint"`
				Addrs    [][]byte `cbor:"2,keyasint"`
				Invite   string   `cbor:"3,keyasint"`
			}
			err = fedpeer.Unmarshal(ev.Env.Body, &b)
			member(b.User, b.NodeName, b.Addrs, ev.Env.TS)
			for i := range st.Invites {
				if st.Invites[i].Code == b.Invite {
					st.Invites[i].Uses++
				}
			}
		default:
			err = fmt.Errorf("the fake home issued %s, which foldFake does not fold", ev.Env.Kind)
		}
		if err != nil {
			return st, err
		}
		st.Info.SN, st.Info.Head = ev.Env.SN, ev.ID
	}
	for _, n := range nodes {
		st.Nodes = append(st.Nodes, *n)
	}
	sortSnapshot(&st)
	return st, nil
}

// sortSnapshot puts a snapshot's lists in the order FED-100 asks for.
func sortSnapshot(st *snapState) {
	slices.SortFunc(st.Channels, func(a, b snapChannel) int { return bytes.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Members, func(a, b snapMember) int {
		if d := bytes.Compare(a.User.Node, b.User.Node); d != 0 {
			return d
		}
		return cmp.Compare(a.User.Name, b.User.Name)
	})
	slices.SortFunc(st.Nodes, func(a, b snapNode) int { return bytes.Compare(a.ID, b.ID) })
}

// FED-103: the node, joining the guild of a fake home node that answers with the genesis
// event and a signed snapshot, starts from the snapshot (it shows a channel that only the
// snapshot names) and applies the state events after it; a snapshot with a bad signature,
// one signed by another key, one of another guild, or one without the @everyone role is
// refused: the join fails and the user is in no guild.
func snapshotJoiner(t *T) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatalf("%v", err)
	}
	other, err := fedpeer.NewSigner(k)
	if err != nil {
		t.Fatalf("%v", err)
	}
	cases := []struct {
		name   string
		change func(st *snapState)
		sign   func(h *fedpeer.Home, state []byte) []byte
		ok     bool
	}{
		{name: "valid", ok: true},
		{name: "bad signature", sign: func(h *fedpeer.Home, state []byte) []byte {
			sig := h.Signer.SignSnapshot(state)
			sig[7] ^= 1
			return sig
		}},
		{name: "another signer", sign: func(_ *fedpeer.Home, state []byte) []byte { return other.SignSnapshot(state) }},
		{name: "another guild", change: func(st *snapState) { st.Info.Guild = randomGuild() }},
		{name: "no @everyone role", change: func(st *snapState) { st.Roles[0].ID = randomGuild() }},
	}
	for _, tc := range cases {
		h := newHome(t)
		snapOnly := randomGuild()
		var foldErr error
		h.TamperJoin = func(resp *fedpeer.JoinResponse) {
			st, err := foldFake(resp.State)
			if err != nil {
				foldErr = err
				return
			}
			st.Channels = append(st.Channels, snapChannel{ID: snapOnly, Name: "from-snapshot"})
			sortSnapshot(&st)
			if tc.change != nil {
				tc.change(&st)
			}
			state, err := fedpeer.Marshal(&st)
			if err != nil {
				foldErr = err
				return
			}
			sig := h.Signer.SignSnapshot(state)
			if tc.sign != nil {
				sig = tc.sign(h, state)
			}
			resp.State = resp.State[:1]
			resp.Snapshot = &fedpeer.SignedSnapshot{State: state, Sig: sig}
		}
		u := t.NewUser()
		r := t.Call(u.Client, "POST", "/invites/"+inviteCode(h.Invite()), harness.Obj{})
		if foldErr != nil {
			t.Fatalf("%s: %v", tc.name, foldErr)
		}
		var guilds []harness.Obj
		_ = t.Call(u.Client, "GET", "/users/@me/guilds", nil).JSON(&guilds)
		if !tc.ok {
			if r.Status == 200 || len(guilds) != 0 {
				t.Fatalf("FED-103: a join answered with a snapshot with %s succeeded (%s; %d guilds)", tc.name, r, len(guilds))
			}
			continue
		}
		if r.Status != 200 || len(guilds) != 1 {
			t.Fatalf("FED-103: a join answered with a valid snapshot failed: %s", r)
		}
		gid := harness.Str(guilds[0]["id"])
		names := func() []string {
			var chans []harness.Obj
			_ = t.Call(u.Client, "GET", "/guilds/"+gid+"/channels", nil).JSON(&chans)
			var out []string
			for _, c := range chans {
				out = append(out, harness.Str(c["name"]))
			}
			return out
		}
		if got := names(); !slices.Contains(got, "from-snapshot") || !slices.Contains(got, "general") {
			t.Fatalf("FED-103: after a join from a snapshot the node shows the channels %v, want general and from-snapshot", got)
		}
		c, cancel := ctx(t)
		if _, err := h.Issue(c, "channel.create", nil, fedpeer.Body(0, "after-snapshot", 1, 0, 2, "", 3, 0)); err != nil {
			cancel()
			t.Fatalf("%v", err)
		}
		cancel()
		t.Eventually("a channel created after the snapshot on the node", func() error {
			if !slices.Contains(names(), "after-snapshot") {
				return errors.New("not shown")
			}
			return nil
		})
	}
}
