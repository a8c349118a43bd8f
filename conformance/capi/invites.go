package capi

import (
	"fmt"
	"regexp"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var invites = []Test{
	{IDs: []string{"CAPI-080"}, Name: "invites/expired-or-used-up", Run: inviteExhausted},
	{IDs: []string{"CAPI-081"}, Name: "invites/join-dispatches", Run: inviteJoinDispatches},
	{IDs: []string{"CAPI-082"}, Name: "invites/join-twice", Run: inviteJoinTwice},
	{IDs: []string{"CAPI-083"}, Name: "invites/codes-unguessable", Run: inviteCodes},
}

// CAPI-080: "An expired invite or one that reached max_uses MUST answer 404 10006."
func inviteExhausted(t *T) {
	o, a, b := t.NewUser(), t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	once := t.Invite(o, g.Text, Obj{"max_uses": 1})
	if r := t.Call(a.Client, "POST", "/invites/"+once, Obj{}); r.Status != 200 {
		t.Fatalf("first use: expected 200, got %s", r)
	}
	t.ErrorBody(t.Call(b.Client, "POST", "/invites/"+once, Obj{}), 404, 10006)
	t.ErrorBody(t.Call(t.Anon(), "GET", "/invites/"+once, nil), 404, 10006)

	short := t.Invite(o, g.Text, Obj{"max_age": 1})
	t.Eventually("invite with max_age 1 expires", func() error {
		r, err := t.Anon().Do(t.Ctx, "GET", "/invites/"+short, nil)
		if err != nil {
			return err
		}
		if r.Status != 404 {
			return fmt.Errorf("GET /invites/{code} still answers %d", r.Status)
		}
		return nil
	})
	t.ErrorBody(t.Call(b.Client, "POST", "/invites/"+short, Obj{}), 404, 10006)
	t.ErrorBody(t.Call(t.Anon(), "GET", "/invites/not-a-code-"+harness.RandName(), nil), 404, 10006)
}

// CAPI-081: "Joining MUST add the member, dispatch GUILD_MEMBER_ADD to the guild
// and GUILD_CREATE to the joiner's sessions."
func inviteJoinDispatches(t *T) {
	o, j := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	so, sj := t.Connect(o, harness.AllIntents), t.Connect(j, harness.AllIntents)
	code := t.Invite(o, g.Text, nil)
	var inv Obj
	r := t.Must(t.Anon(), 200, "GET", "/invites/"+code, nil, &inv)
	t.Conform("invite", r.Body)
	r = t.Must(j.Client, 200, "POST", "/invites/"+code, Obj{}, &inv)
	t.Conform("invite", r.Body)
	if inv["new_member"] != true {
		t.Errorf("join answer: expected new_member true, got %s", r)
	}
	add := t.Expect(so.Gateway, "GUILD_MEMBER_ADD", harness.Field("user.id", j.ID))
	if str(add["guild_id"]) != g.ID {
		t.Errorf("GUILD_MEMBER_ADD guild_id = %v, expected %s", add["guild_id"], g.ID)
	}
	gc := t.Expect(sj.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	t.Conform("gateway_guild", harness.Raw(gc))
	if r := t.Call(o.Client, "GET", "/guilds/"+g.ID+"/members/"+j.ID, nil); r.Status != 200 {
		t.Errorf("the joiner is not a member: %s", r)
	}
}

// CAPI-082: "Joining a guild one is already in MUST succeed without a second
// member record or a second use counted."
func inviteJoinTwice(t *T) {
	o, j := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	code := t.Invite(o, g.Text, Obj{"max_uses": 5})
	t.Must(j.Client, 200, "POST", "/invites/"+code, Obj{}, nil)
	var again Obj
	r := t.Must(j.Client, 200, "POST", "/invites/"+code, Obj{}, &again)
	if again["new_member"] == true {
		t.Errorf("second join: new_member true: %s", r)
	}
	var list []Obj
	t.Must(o.Client, 200, "GET", "/guilds/"+g.ID+"/members?limit=1000", nil, &list)
	n := 0
	for _, m := range list {
		if str(get(m, "user.id")) == j.ID {
			n++
		}
	}
	if n != 1 || len(list) != 2 {
		t.Errorf("after joining twice: %d records of the joiner, %d members (expected 1 and 2)", n, len(list))
	}
	var invs []Obj
	t.Must(o.Client, 200, "GET", "/channels/"+g.Text+"/invites", nil, &invs)
	found := false
	for _, inv := range invs {
		if str(inv["code"]) == code {
			found = true
			if num(inv["uses"]) != 1 {
				t.Errorf("uses = %v after one join and one re-join, expected 1", inv["uses"])
			}
		}
	}
	if !found {
		t.Errorf("GET /channels/{id}/invites lacks invite %s: %s", code, harness.JSON(invs))
	}
}

var codeRE = regexp.MustCompile(`^([A-Za-z0-9]{8,}|hearth:[A-Za-z0-9_-]{16,})$`)

// CAPI-083: "Invite codes MUST be unguessable: at least 8 characters from a
// 62-character alphabet, random."
func inviteCodes(t *T) {
	o := t.NewUser()
	g := t.NewGuild(o)
	seen := map[string]bool{}
	for range 20 {
		c := t.Invite(o, g.Text, nil)
		if !codeRE.MatchString(c) {
			t.Errorf("invite code %q is neither 8+ characters of [A-Za-z0-9] nor a hearth: federation invite", c)
		}
		if seen[c] {
			t.Errorf("invite code %q repeated", c)
		}
		seen[c] = true
	}
}
