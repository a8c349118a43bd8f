package fed

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// FED-080: "A member node MUST make a local user's change to a federated guild's name or to
// its text and voice channels ... through the home node ... a refusal MUST answer 403 with
// code 50013, and a home node that cannot be reached 503, with nothing changed on any node."
// FED-081: the same for roles. The fake home gives the node's user MANAGE_CHANNELS,
// MANAGE_GUILD and MANAGE_ROLES in the federated state, then refuses every mod-request;
// later it goes away.
func memberChangeThroughHome(t *T) {
	h := newHome(t)
	u, gid := joinHome(t, h)
	c, cancel := ctx(t)
	defer cancel()
	// MANAGE_CHANNELS (16), MANAGE_GUILD (32), MANAGE_ROLES (1<<28).
	if _, err := h.Issue(c, "role.create", nil, fedpeer.Body(0, "Admins", 1, 48|1<<28, 2, 1)); err != nil {
		t.Fatalf("role.create: %v", err)
	}
	role := h.LastID() // a role's ID is its role.create event's ID
	user := fedpeer.User{Node: []byte(nodeID(t)), Name: u.Name}
	if _, err := h.Issue(c, "member.roles", nil, fedpeer.Body(0, user, 1, [][]byte{role})); err != nil {
		t.Fatalf("member.roles: %v", err)
	}
	asked := func(kind string) bool {
		for _, m := range h.Mods() {
			if m.Kind == kind && m.Actor == u.Name {
				return true
			}
		}
		return false
	}
	name := strings.ToLower("through-home-" + harness.RandName())
	// Until the node holds the role, it refuses by itself; then it asks the fake home.
	var last *harness.Response
	t.Eventually("a channel.create mod-request at the fake home", func() error {
		last = t.Call(u.Client, "POST", "/guilds/"+gid+"/channels", harness.Obj{"name": name})
		if !asked("channel.create") {
			var roles, me any
			t.Must(u.Client, 200, "GET", "/guilds/"+gid+"/roles", nil, &roles)
			t.Must(u.Client, 200, "GET", "/guilds/"+gid+"/members?limit=100", nil, &me)
			return fmt.Errorf("none yet (the node answered %s; its roles %v; the user as member %v)", last, roles, me)
		}
		return nil
	})
	checkRefused(t, last, "a channel the home node refused")
	if slices.Contains(channelNames(t, u, gid), name) {
		t.Errorf("the node created a channel the home node refused")
	}

	var before harness.Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+gid, nil, &before)
	r := t.Call(u.Client, "PATCH", "/guilds/"+gid, harness.Obj{"name": "Renamed " + harness.RandName()})
	if !asked("guild.update") {
		t.Errorf("a rename of the fake home's guild sent no guild.update mod-request (answer %s)", r)
	}
	checkRefused(t, r, "a rename the home node refused")
	var after harness.Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+gid, nil, &after)
	if harness.Str(after["name"]) != harness.Str(before["name"]) {
		t.Errorf("the node renamed the guild to %q although the home node refused", harness.Str(after["name"]))
	}

	// FED-081: a new role goes to the fake home as role.create; refused, it is not kept.
	roleName := "refused-" + harness.RandName()
	r = t.Call(u.Client, "POST", "/guilds/"+gid+"/roles", harness.Obj{"name": roleName})
	if !asked("role.create") {
		t.Errorf("FED-081: a new role of the fake home's guild sent no role.create mod-request (answer %s)", r)
	}
	checkRefused(t, r, "a role the home node refused")
	var roles []harness.Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+gid+"/roles", nil, &roles)
	for _, role := range roles {
		if harness.Str(role["name"]) == roleName {
			t.Errorf("FED-081: the node kept a role the home node refused")
		}
	}

	// The home node goes away: the node cannot make the change and says so.
	_ = h.Close()
	gone := strings.ToLower("home-gone-" + harness.RandName())
	if r := t.Call(u.Client, "POST", "/guilds/"+gid+"/channels", harness.Obj{"name": gone}); r.Status != 503 {
		t.Errorf("a channel created while the home node is unreachable: %s, want 503", r)
	}
	if slices.Contains(channelNames(t, u, gid), gone) {
		t.Errorf("the node created a channel while its home node was unreachable")
	}
}

// checkRefused fails unless r is Discord's 403 Missing Permissions.
func checkRefused(t *T, r *harness.Response, what string) {
	var body harness.Obj
	_ = r.JSON(&body)
	if r.Status != 403 || harness.Num(body["code"]) != 50013 {
		t.Errorf("%s: %s, want 403 with code 50013", what, r)
	}
}

// EVT-063: "A receiver MUST reject a channel.create or channel.update whose parent is not a
// category (type 4) of the guild, and a category with a parent." The fake home makes a
// category and a channel in it (the node shows the channel in the category), then moves the
// channel under a text channel, which the node must refuse, then makes a valid channel at the
// same sn.
func categories(t *T) {
	h := newHome(t)
	u, gid := joinHome(t, h)
	c, cancel := ctx(t)
	defer cancel()
	catName, inName := "cat-"+harness.RandName()[3:], "in-"+harness.RandName()[3:]
	if _, err := h.Issue(c, "channel.create", nil, fedpeer.Body(0, catName, 1, 4, 2, "", 3, 5)); err != nil {
		t.Fatalf("%v", err)
	}
	cat := h.LastID()
	if _, err := h.Issue(c, "channel.create", nil, fedpeer.Body(0, inName, 1, 0, 2, "", 3, 6, 4, cat)); err != nil {
		t.Fatalf("%v", err)
	}
	in := h.LastID()
	parentOf := func(name string) (string, error) {
		var chans []harness.Obj
		t.Must(u.Client, 200, "GET", "/guilds/"+gid+"/channels", nil, &chans)
		names := map[string]string{}
		for _, ch := range chans {
			names[harness.Str(ch["id"])] = harness.Str(ch["name"])
		}
		for _, ch := range chans {
			if harness.Str(ch["name"]) == name {
				return names[harness.Str(ch["parent_id"])], nil
			}
		}
		return "", fmt.Errorf("no channel %s among %v", name, names)
	}
	t.Eventually("the channel in its category", func() error {
		p, err := parentOf(inName)
		if err == nil && p != catName {
			err = fmt.Errorf("%s is in %q, expected %q", inName, p, catName)
		}
		return err
	})

	env := h.StateEnvelope("channel.update", in)
	raw, _, err := h.Signer.Sign(env, fedpeer.Body(0, inName, 1, "", 2, 6, 3, h.Channel("general")))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := h.Gossip.Publish(c, fedpeer.Topic(h.Guild), raw); err != nil {
		t.Fatalf("%v", err)
	}
	after := "after-" + harness.RandName()[3:]
	if _, err := h.Issue(c, "channel.create", nil, fedpeer.Body(0, after, 1, 0, 2, "", 3, 7)); err != nil {
		t.Fatalf("%v", err)
	}
	t.Eventually("the valid state event after the invalid parent", func() error {
		if names := channelNames(t, u, gid); !slices.Contains(names, after) {
			return fmt.Errorf("channels %v (was the channel.update with a text channel as parent applied at its sn?)", names)
		}
		return nil
	})
	if p, err := parentOf(inName); err != nil || p != catName {
		t.Errorf("after a channel.update naming a text channel as parent: %s is in %q (%v), expected %q", inName, p, err, catName)
	}
}
