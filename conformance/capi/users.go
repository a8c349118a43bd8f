package capi

import (
	"github.com/hearth-chat/hearth/conformance/harness"
)

var users = []Test{
	{IDs: []string{"CAPI-030"}, Name: "users/me", Run: usersMe},
	{IDs: []string{"CAPI-031"}, Name: "users/dm-idempotent", Run: dmIdempotent},
	{IDs: []string{"CAPI-032"}, Name: "users/group-dm-limit", Run: groupDMLimit},
}

// CAPI-030: "GET /users/@me MUST return the user the token belongs to."
func usersMe(t *T) {
	a, b := t.NewUser(), t.NewUser()
	for _, u := range []*harness.User{a, b} {
		var me Obj
		r := t.Must(u.Client, 200, "GET", "/users/@me", nil, &me)
		if str(me["id"]) != u.ID || str(me["username"]) != u.Name {
			t.Errorf("expected user %s (%s), got %s", u.ID, u.Name, r)
		}
		t.Conform("user", r.Body)
	}
}

// CAPI-031: "Opening a DM with the same recipient twice MUST return the same channel."
func dmIdempotent(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	var c1, c2 Obj
	r := t.OK(a.Client, "POST", "/users/@me/channels", Obj{"recipient_id": b.ID}, &c1)
	t.Conform("channel", r.Body)
	t.OK(a.Client, "POST", "/users/@me/channels", Obj{"recipient_id": b.ID}, &c2)
	if num(c1["type"]) != 1 {
		t.Errorf("DM channel: expected type 1, got %s", r)
	}
	if str(c1["id"]) == "" || str(c1["id"]) != str(c2["id"]) {
		t.Errorf("opening the DM twice gave channels %v and %v", c1["id"], c2["id"])
	}
	// The recipient opening it finds the same channel.
	var c3 Obj
	t.OK(b.Client, "POST", "/users/@me/channels", Obj{"recipient_id": a.ID}, &c3)
	if str(c3["id"]) != str(c1["id"]) {
		t.Errorf("the recipient opened channel %v, the creator %v", c3["id"], c1["id"])
	}
}

// CAPI-032: "A group DM MUST have at most 10 recipients including the creator."
func groupDMLimit(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	var others []string
	var members []*harness.User
	for range 10 {
		u := t.NewUser()
		members = append(members, u)
		others = append(others, u.ID)
	}
	t.Join(g, members...)
	if r := t.Call(a.Client, "POST", "/users/@me/channels", Obj{"recipients": others}); r.Status != 400 {
		t.Errorf("group DM with 11 people: expected 400, got %s", r)
	}
	var c Obj
	r := t.OK(a.Client, "POST", "/users/@me/channels", Obj{"recipients": others[:9]}, &c)
	if num(c["type"]) != 3 {
		t.Errorf("group DM with 10 people: expected type 3, got %s", r)
	}
	t.Conform("channel", r.Body)
}
