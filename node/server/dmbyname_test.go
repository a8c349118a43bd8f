package server_test

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/hearth-chat/hearth/federation/fed"
	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/testnode"
)

// dmChannel is a DM channel as POST /users/@me/channels and CHANNEL_CREATE show it.
type dmChannel struct {
	ID         string `json:"id"`
	Type       int    `json:"type"`
	Recipients []struct{ Username string }
}

// with reports whether ch is a DM with a recipient called username.
func (ch dmChannel) with(username string) bool {
	for _, r := range ch.Recipients {
		if r.Username == username {
			return ch.Type == 1
		}
	}
	return false
}

// discordError is Discord's error body.
type discordError struct {
	Code   int            `json:"code"`
	Errors map[string]any `json:"errors"`
}

// nodeAddr returns the peer ID of c's node and a multiaddr of it ending in /p2p/<peer ID>,
// as the federated invite of a guild c creates there carries them.
func nodeAddr(t *testing.T, c *testnode.Client) (id, addr string) {
	t.Helper()
	var g guild
	c.Must("POST", "/guilds", map[string]string{"name": "Address"}, &g)
	inv, err := fed.ParseInvite(fedInvite(t, c, g.text(t)))
	if err != nil || len(inv.HomeAddrs()) == 0 {
		t.Fatalf("invite: %v, %+v", err, inv)
	}
	return inv.Home.String(), inv.HomeAddrs()[0].String() + "/p2p/" + inv.Home.String()
}

// waitDM waits until gw shows a DM channel with a recipient called username.
func waitDM(t *testing.T, gw *testnode.Gateway, username string) dmChannel {
	t.Helper()
	for {
		var ch dmChannel
		if gw.Wait("CHANNEL_CREATE").Decode(t, &ch); ch.with(username) {
			return ch
		}
	}
}

// converse sends text in channel as from and waits until gw sees it in channel want.
func converse(t *testing.T, from *testnode.Client, channel, text string, gw *testnode.Gateway, want string) {
	t.Helper()
	from.Must("POST", "/channels/"+channel+"/messages", map[string]string{"content": text}, nil)
	var m message
	for m.Content != text {
		gw.Wait("MESSAGE_CREATE").Decode(t, &m)
	}
	if m.ChannelID != want {
		t.Fatalf("%q arrived in channel %s, want %s", text, m.ChannelID, want)
	}
}

// randomPeer returns a valid peer ID that no node has.
func randomPeer(t *testing.T) string {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// TestDirectMessageByName: alice@alpha opens a DM with bob@beta, whose node shares no guild
// with hers, by bob's name and a multiaddr of beta [CAPI-033]; beta takes it from a stranger
// by default [FED-090]; messages cross both ways; opening it again by the name node A shows
// or by beta's peer ID gives the same channel [CAPI-031]; unknown users and nodes answer
// Discord's errors.
func TestDirectMessageByName(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice, bob := a.Register(t, "alice"), b.Register(t, "bob")
	betaID, betaAddr := nodeAddr(t, bob)
	ag, bg := alice.Connect(-1), bob.Connect(-1)

	var dm dmChannel
	alice.Must("POST", "/users/@me/channels", map[string]string{"recipient_username": "bob@" + betaAddr}, &dm)
	if !dm.with("bob@beta") {
		t.Fatalf("DM opened by name = %+v, want type 1 with bob@beta", dm)
	}
	onB := waitDM(t, bg, "alice@alpha")
	converse(t, alice, dm.ID, "hello bob, from a stranger", bg, onB.ID)
	converse(t, bob, onB.ID, "hello alice", ag, dm.ID)

	for _, name := range []string{"bob@beta", "bob@" + betaID, "bob@" + betaAddr} {
		var again dmChannel
		alice.Must("POST", "/users/@me/channels", map[string]string{"recipient_username": name}, &again)
		if again.ID != dm.ID {
			t.Errorf("opening the DM again with %s: channel %s, want %s", name, again.ID, dm.ID)
		}
	}
	var back dmChannel
	bob.Must("POST", "/users/@me/channels", map[string]string{"recipient_username": "alice@alpha"}, &back)
	if back.ID != onB.ID {
		t.Errorf("bob opening the DM by name: channel %s, want %s", back.ID, onB.ID)
	}

	// A multiaddr of a node that is not there: a port nothing listens on.
	closed := testnode.Start(t, federated("closed"))
	_, closedAddr := nodeAddr(t, closed.Register(t, "carol"))
	closed.Stop(t)
	for _, c := range []struct {
		name, recipient string
		status, code    int
		field           bool // a 50035 error on recipient_username
	}{
		{"unknown user", "nobody@beta", 404, 10013, false},
		{"unknown user by multiaddr", "nobody@" + betaAddr, 404, 10013, false},
		{"unknown node name", "bob@gamma", 400, 50035, true},
		{"peer ID without address", "bob@" + randomPeer(t), 400, 50035, true},
		{"malformed multiaddr", "bob@/ip4/127.0.0.1/tcp/1", 400, 50035, true},
		{"this node", "alice@alpha", 400, 50035, true},
		{"unknown local user", "nobody", 404, 10013, false},
		{"unreachable node", "carol@" + closedAddr, 503, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e discordError
			st := alice.Do("POST", "/users/@me/channels", map[string]string{"recipient_username": c.recipient}, &e)
			if st != c.status || e.Code != c.code || (e.Errors["recipient_username"] != nil) != c.field {
				t.Fatalf("%s: %d %+v, want %d code %d (field error: %v)", c.recipient, st, e, c.status, c.code, c.field)
			}
		})
	}
}

// TestDirectMessageByNodeName: node A knows beta from a guild alice shares with bob; dave of
// beta shares none with alice, yet she reaches him by the node name [CAPI-033] — unless beta
// refuses strangers, which it answers alike whether the user exists or not [FED-090]; a user
// who shares a guild is reached either way.
func TestDirectMessageByNodeName(t *testing.T) {
	for _, strangers := range []bool{true, false} {
		t.Run(fmt.Sprintf("dm_from_strangers=%v", strangers), func(t *testing.T) {
			a := testnode.Start(t, federated("alpha"))
			opts := federated("beta")
			opts.Config = func(c *config.Config) {
				federated("beta").Config(c)
				c.DMFromStrangers = strangers
			}
			b := testnode.Start(t, opts)
			alice, bob := a.Register(t, "alice"), b.Register(t, "bob")
			dave := b.Register(t, "dave")
			var g guild
			alice.Must("POST", "/guilds", map[string]string{"name": "Shared"}, &g)
			bob.Must("POST", "/invites/"+url.PathEscape(fedInvite(t, alice, g.text(t))), nil, nil)

			var withBob dmChannel
			alice.Must("POST", "/users/@me/channels", map[string]string{"recipient_username": "bob@beta"}, &withBob)
			if !withBob.with("bob@beta") {
				t.Fatalf("DM with bob = %+v", withBob)
			}

			var e discordError
			st := alice.Do("POST", "/users/@me/channels", map[string]string{"recipient_username": "dave@beta"}, &e)
			if strangers {
				if st != 200 {
					t.Fatalf("DM with dave, a stranger: %d %+v, want 200", st, e)
				}
				var mine []dmChannel
				dave.Must("GET", "/users/@me/channels", nil, &mine)
				if len(mine) != 1 || !mine[0].with("alice@alpha") {
					t.Fatalf("dave's private channels = %+v, want the DM with alice@alpha", mine)
				}
				return
			}
			if st != 403 || e.Code != 50007 {
				t.Fatalf("DM with dave, refused: %d %+v, want 403 50007", st, e)
			}
			e = discordError{}
			if st := alice.Do("POST", "/users/@me/channels", map[string]string{"recipient_username": "nobody@beta"}, &e); st != 403 || e.Code != 50007 {
				t.Fatalf("DM with a user beta does not have, refused: %d %+v, want 403 50007 as for dave", st, e)
			}
		})
	}
}

// TestDirectMessagesFromStrangersLimited: a node takes strangerBurst conversations from a
// stranger node, then answers status 4, which the opener's client sees as 503 [FED-091].
// Requests for users the node does not have count too.
func TestDirectMessagesFromStrangersLimited(t *testing.T) {
	a, b := testnode.Start(t, federated("alpha")), testnode.Start(t, federated("beta"))
	alice := a.Register(t, "alice")
	_, betaAddr := nodeAddr(t, b.Register(t, "bob"))
	for i := range 10 {
		if st := alice.Do("POST", "/users/@me/channels", map[string]string{"recipient_username": fmt.Sprintf("nobody%d@%s", i, betaAddr)}, nil); st != 404 {
			t.Fatalf("request %d: %d, want 404", i+1, st)
		}
	}
	if st := alice.Do("POST", "/users/@me/channels", map[string]string{"recipient_username": "bob@" + betaAddr}, nil); st != 503 {
		t.Fatalf("request 11: %d, want 503", st)
	}
}
