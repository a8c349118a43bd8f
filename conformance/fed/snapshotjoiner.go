package fed

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"

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
		i := slices.IndexFunc(st.Members, func(us snapUsers) bool { return bytes.Equal(us.Node, u.Node) })
		if i < 0 {
			i = len(st.Members)
			st.Members = append(st.Members, snapUsers{Node: u.Node})
		}
		st.Members[i].Members = append(st.Members[i].Members, snapMember{Name: u.Name, NodeName: nodeName, Joined: ts})
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
		case "guild.update":
			var b struct {
				Name string `cbor:"0,keyasint"`
			}
			err = fedpeer.Unmarshal(ev.Env.Body, &b)
			st.Info.Name = b.Name
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
	slices.SortFunc(st.Members, func(a, b snapUsers) int { return bytes.Compare(a.Node, b.Node) })
	for _, us := range st.Members {
		slices.SortFunc(us.Members, func(a, b snapMember) int { return cmp.Compare(a.Name, b.Name) })
	}
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
		u, r, guilds := joinFromSnapshot(t, h, func(st *snapState) {
			st.Channels = append(st.Channels, snapChannel{ID: snapOnly, Name: "from-snapshot"})
			sortSnapshot(st)
			if tc.change != nil {
				tc.change(st)
			}
		}, tc.sign)
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

// joinFromSnapshot makes a new user of the node join the fake home's guild, answered with
// the genesis event and a snapshot folded from the fake's chain, changed by change and
// signed by sign (nil: the home's key). It returns the user, the join's answer and the
// user's guilds afterwards.
func joinFromSnapshot(t *T, h *fedpeer.Home, change func(*snapState), sign func(*fedpeer.Home, []byte) []byte) (*harness.User, *harness.Response, []harness.Obj) {
	// The fake answers the join on a goroutine of its own: foldErr is shared with it.
	var (
		mu      sync.Mutex
		foldErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		foldErr = err
	}
	h.TamperJoin = func(resp *fedpeer.JoinResponse) {
		st, err := foldFake(resp.State)
		if err != nil {
			fail(err)
			return
		}
		change(&st)
		state, err := fedpeer.Marshal(&st)
		if err != nil {
			fail(err)
			return
		}
		sig := h.Signer.SignSnapshot(state)
		if sign != nil {
			sig = sign(h, state)
		}
		resp.State = resp.State[:1]
		resp.Snapshot = &fedpeer.SignedSnapshot{State: state, Sig: sig}
	}
	u := t.NewUser()
	r := t.Call(u.Client, "POST", "/invites/"+inviteCode(h.Invite()), harness.Obj{})
	mu.Lock()
	err := foldErr
	mu.Unlock()
	if err != nil {
		t.Fatalf("folding the fake home's chain: %v", err)
	}
	var guilds []harness.Obj
	_ = t.Call(u.Client, "GET", "/users/@me/guilds", nil).JSON(&guilds)
	return u, r, guilds
}

// FED-104: a node that joined from a snapshot stores the state events below it when
// catch-up brings them, so that its vector for the home node closes (the fake home asks
// the node for its heads), and does not apply them: the guild keeps the name of the
// snapshot, not that of an older guild.update below it.
func snapshotHistory(t *T) {
	h := newHome(t)
	c, cancel := ctx(t)
	defer cancel()
	if _, err := h.Issue(c, "guild.update", nil, fedpeer.Body(0, "renamed-before-the-snapshot")); err != nil {
		t.Fatalf("%v", err)
	}
	u, r, guilds := joinFromSnapshot(t, h, func(st *snapState) { st.Info.Name = "named-by-the-snapshot" }, nil)
	if r.Status != 200 || len(guilds) != 1 {
		t.Fatalf("FED-103: a join answered with a valid snapshot failed: %s", r)
	}
	gid := harness.Str(guilds[0]["id"])
	node := nodeID(t)
	t.Eventually("the node's vector holding every event of the fake home", func() error {
		frame, err := h.Request(c, node, fedpeer.ProtoSync, fedpeer.SyncRequest{Op: fedpeer.OpHeads, Guild: h.Guild})
		if err != nil {
			return err
		}
		var resp fedpeer.SyncResponse
		if err := fedpeer.Unmarshal(frame, &resp); err != nil {
			return err
		}
		for _, hd := range resp.Vector {
			if bytes.Equal(hd.Origin, h.Signer.Origin) && hd.Seq == h.Head() {
				return nil
			}
		}
		return fmt.Errorf("FED-104: the node's vector is %+v, the fake home is at seq %d", resp.Vector, h.Head())
	})
	var g harness.Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+gid, nil, &g)
	if name := harness.Str(g["name"]); name != "named-by-the-snapshot" {
		t.Fatalf("FED-104: after catch-up the guild is called %q, want the snapshot's name (a state event below the snapshot was applied)", name)
	}
}
