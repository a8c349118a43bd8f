package capi

import (
	"strconv"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var perms = []Test{
	{IDs: []string{"CAPI-060"}, Name: "perms/computation", Run: permComputation},
	{IDs: []string{"CAPI-061"}, Name: "perms/no-dispatch-without-view", Run: noDispatchWithoutView},
	{IDs: []string{"CAPI-062"}, Name: "perms/role-hierarchy", Run: roleHierarchy},
	{IDs: []string{"CAPI-063"}, Name: "perms/everyone-defaults", Run: everyoneDefaults},
}

func newRole(t *T, owner *harness.User, g *harness.Guild, name string, perms int64) string {
	var r Obj
	resp := t.OK(owner.Client, "POST", "/guilds/"+g.ID+"/roles", Obj{"name": name, "permissions": itoa(perms)}, &r)
	t.Conform("role", resp.Body)
	if str(r["id"]) == "" {
		t.Fatalf("created role has no id: %s", resp)
	}
	return str(r["id"])
}

func giveRole(t *T, owner *harness.User, g *harness.Guild, user, role string) {
	if r := t.Call(owner.Client, "PUT", "/guilds/"+g.ID+"/members/"+user+"/roles/"+role, nil); r.Status != 204 {
		t.Fatalf("assign role: expected 204, got %s", r)
	}
}

func overwrite(t *T, owner *harness.User, channel, id string, typ int, allow, deny int64) {
	r := t.Call(owner.Client, "PUT", "/channels/"+channel+"/permissions/"+id, Obj{"allow": itoa(allow), "deny": itoa(deny), "type": typ})
	if r.Status != 204 {
		t.Fatalf("PUT overwrite: expected 204, got %s", r)
	}
}

func dropOverwrite(t *T, owner *harness.User, channel, id string) {
	if r := t.Call(owner.Client, "DELETE", "/channels/"+channel+"/permissions/"+id, nil); r.Status != 204 {
		t.Fatalf("DELETE overwrite: expected 204, got %s", r)
	}
}

func setEveryone(t *T, owner *harness.User, g *harness.Guild, perms int64) {
	t.OK(owner.Client, "PATCH", "/guilds/"+g.ID+"/roles/"+g.ID, Obj{"permissions": itoa(perms)}, nil)
}

func everyonePerms(t *T, u *harness.User, g *harness.Guild) int64 {
	var roles []Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+g.ID+"/roles", nil, &roles)
	for _, r := range roles {
		if str(r["id"]) == g.ID {
			p, err := strconv.ParseInt(str(r["permissions"]), 10, 64)
			if err != nil {
				t.Fatalf("@everyone permissions %v are not a decimal string", r["permissions"])
			}
			return p
		}
	}
	t.Fatalf("no @everyone role")
	return 0
}

// canSend reports whether u may post in channel: 200 yes, 403 50013 no.
func canSend(t *T, u *harness.User, channel string) bool {
	r := t.Call(u.Client, "POST", "/channels/"+channel+"/messages", Obj{"content": "probe"})
	switch r.Status {
	case 200:
		return true
	case 403:
		t.ErrorBody(r, 403, 50013)
		return false
	}
	t.Fatalf("posting a probe: expected 200 or 403, got %s", r)
	return false
}

// CAPI-060: "A node MUST compute permissions exactly as Discord documents: the
// @everyone role's bits, OR the member's roles' bits; ADMINISTRATOR or guild
// ownership grants everything; then channel overwrites for @everyone, then the union
// of the member's roles' overwrites (deny then allow), then the member's own
// overwrite."
func permComputation(t *T) {
	o, m := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m)
	c := str(createChannel(t, o, g, Obj{"name": "perm-lab", "type": 0})["id"])
	base := everyonePerms(t, o, g)

	step := func(what string, want bool) {
		if got := canSend(t, m, c); got != want {
			t.Errorf("%s: member can send = %v, expected %v", what, got, want)
		}
	}
	step("defaults", true)

	// Base: @everyone without SEND_MESSAGES; a role that grants it.
	setEveryone(t, o, g, base&^permSend)
	step("@everyone lacks SEND_MESSAGES", false)
	sender := newRole(t, o, g, "sender", permSend)
	giveRole(t, o, g, m.ID, sender)
	step("a role grants SEND_MESSAGES", true)
	setEveryone(t, o, g, base)

	// Overwrites: @everyone deny, then role deny+allow union (allow wins), then member.
	r1 := newRole(t, o, g, "r1", 0)
	r2 := newRole(t, o, g, "r2", 0)
	giveRole(t, o, g, m.ID, r1)
	giveRole(t, o, g, m.ID, r2)
	overwrite(t, o, c, g.ID, 0, 0, permSend)
	step("@everyone overwrite denies SEND_MESSAGES", false)
	overwrite(t, o, c, r1, 0, 0, permSend)
	overwrite(t, o, c, r2, 0, permSend, 0)
	step("one role overwrite denies, another allows (union: allow wins)", true)
	overwrite(t, o, c, m.ID, 1, 0, permSend)
	step("member overwrite denies over a role allow", false)
	overwrite(t, o, c, m.ID, 1, permSend, 0)
	overwrite(t, o, c, r2, 0, 0, permSend)
	step("member overwrite allows over role denies", true)
	dropOverwrite(t, o, c, m.ID)
	step("member overwrite removed, roles deny", false)

	// ADMINISTRATOR ignores overwrites; the owner needs no role at all.
	admin := newRole(t, o, g, "admin", permAdmin)
	giveRole(t, o, g, m.ID, admin)
	overwrite(t, o, c, m.ID, 1, 0, permSend|permView)
	step("ADMINISTRATOR with a member overwrite denying", true)
	overwrite(t, o, c, o.ID, 1, 0, permSend|permView)
	if !canSend(t, o, c) {
		t.Errorf("the owner was denied by an overwrite")
	}
}

// CAPI-061: "A member without VIEW_CHANNEL on a channel MUST NOT receive any
// dispatch about messages, reactions or typing in it."
func noDispatchWithoutView(t *T) {
	o, m := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m)
	hidden := str(createChannel(t, o, g, Obj{"name": "hidden", "type": 0})["id"])
	overwrite(t, o, hidden, m.ID, 1, 0, permView)
	s := t.Connect(m, harness.AllIntents)
	t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))

	msg := t.Send(o, hidden, "you cannot see this")
	mid := str(msg["id"])
	t.Call(o.Client, "PUT", "/channels/"+hidden+"/messages/"+mid+"/reactions/"+thumbsUp+"/@me", nil)
	t.Call(o.Client, "POST", "/channels/"+hidden+"/typing", nil)
	t.OK(o.Client, "PATCH", "/channels/"+hidden+"/messages/"+mid, Obj{"content": "still hidden"}, nil)
	t.Call(o.Client, "DELETE", "/channels/"+hidden+"/messages/"+mid, nil)
	sentinel := t.Send(o, g.Text, "sentinel")
	t.Expect(s.Gateway, "MESSAGE_CREATE", harness.Field("id", str(sentinel["id"])))

	leaked := map[string]bool{"MESSAGE_CREATE": true, "MESSAGE_UPDATE": true, "MESSAGE_DELETE": true,
		"MESSAGE_REACTION_ADD": true, "TYPING_START": true}
	if f, ok := s.Seen(func(f harness.Frame) bool {
		return leaked[f.T] && str(f.Obj()["channel_id"]) == hidden
	}); ok {
		t.Errorf("a member without VIEW_CHANNEL received %s", f)
	}
}

// CAPI-062: "A member MUST NOT manage (modify, delete, assign) a role at or above
// their highest role, unless they own the guild."
func roleHierarchy(t *T) {
	o, m, x := t.NewUser(), t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m, x)
	low := newRole(t, o, g, "low", 0)
	mod := newRole(t, o, g, "mod", permManageRoles)
	high := newRole(t, o, g, "high", 0)
	t.OK(o.Client, "PATCH", "/guilds/"+g.ID+"/roles", []Obj{
		{"id": low, "position": 1}, {"id": mod, "position": 2}, {"id": high, "position": 3}}, nil)
	giveRole(t, o, g, m.ID, mod)

	deny := func(what string, r *harness.Response) {
		if r.Status != 403 {
			t.Errorf("%s: expected 403, got %s", what, r)
		}
	}
	deny("modify a higher role", t.Call(m.Client, "PATCH", "/guilds/"+g.ID+"/roles/"+high, Obj{"name": "pwned"}))
	deny("modify one's own highest role", t.Call(m.Client, "PATCH", "/guilds/"+g.ID+"/roles/"+mod, Obj{"name": "pwned"}))
	deny("assign a higher role", t.Call(m.Client, "PUT", "/guilds/"+g.ID+"/members/"+x.ID+"/roles/"+high, nil))
	deny("delete a higher role", t.Call(m.Client, "DELETE", "/guilds/"+g.ID+"/roles/"+high, nil))
	// Below them is fine.
	if r := t.Call(m.Client, "PUT", "/guilds/"+g.ID+"/members/"+x.ID+"/roles/"+low, nil); r.Status != 204 {
		t.Errorf("assign a lower role: expected 204, got %s", r)
	}
	if r := t.Call(m.Client, "PATCH", "/guilds/"+g.ID+"/roles/"+low, Obj{"name": "renamed"}); r.Status/100 != 2 {
		t.Errorf("modify a lower role: expected 2xx, got %s", r)
	}
	// The owner manages any role.
	if r := t.Call(o.Client, "PATCH", "/guilds/"+g.ID+"/roles/"+high, Obj{"name": "owner-renamed"}); r.Status/100 != 2 {
		t.Errorf("owner modifies the highest role: expected 2xx, got %s", r)
	}
}

// CAPI-063: "The default @everyone permissions of a new guild are Discord's
// default (VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS |
// EMBED_LINKS | ATTACH_FILES | CREATE_INSTANT_INVITE | MENTION_EVERYONE | CONNECT |
// SPEAK | CHANGE_NICKNAME and the other non-moderation bits)."
func everyoneDefaults(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	p := everyonePerms(t, u, g)
	const want = permView | permSend | permReadHistory | permAddReactions | permEmbedLinks | permAttachFiles |
		permCreateInvite | permMentionAll | permConnect | permSpeak | permChangeNick
	const moderation = permKick | permBan | permAdmin | permManageChannels | permManageGuild | permManageMessages |
		permMute | permDeafen | permMove | permManageNicks | permManageRoles
	if p&want != want {
		t.Errorf("@everyone permissions %d lack %d", p, want&^p)
	}
	if p&moderation != 0 {
		t.Errorf("@everyone permissions %d include moderation bits %d", p, p&moderation)
	}
}
