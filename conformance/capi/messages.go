package capi

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var messages = []Test{
	{IDs: []string{"CAPI-090"}, Name: "messages/content-limit", Run: contentLimit},
	{IDs: []string{"CAPI-091"}, Name: "messages/empty-rejected", Run: emptyMessage},
	{IDs: []string{"CAPI-092"}, Name: "messages/create-dispatch-with-nonce", Run: createDispatch},
	{IDs: []string{"CAPI-093"}, Name: "messages/mentions", Run: mentions},
	{IDs: []string{"CAPI-094"}, Name: "messages/history-paging", Run: historyPaging},
	{IDs: []string{"CAPI-095"}, Name: "messages/reply", Run: reply},
	{IDs: []string{"CAPI-096"}, Name: "messages/edit", Run: edit},
	{IDs: []string{"CAPI-097"}, Name: "messages/delete-and-bulk", Run: deletes},
	{IDs: []string{"CAPI-098"}, Name: "messages/reactions", Run: reactions},
	{IDs: []string{"CAPI-099"}, Name: "messages/survive-kill-9", Needs: harness.Needs{OwnNode: true, Managed: true}, Run: surviveKill},
	{IDs: []string{"CAPI-100", "CAPI-101"}, Name: "readstate/mentions-and-ack", Run: readStates},
}

// CAPI-090: "Content MUST be at most 2000 characters (Unicode code points)."
func contentLimit(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	ok := strings.Repeat("é", 2000) // 4000 bytes, 2000 code points
	var m Obj
	r := t.Must(u.Client, 200, "POST", "/channels/"+g.Text+"/messages", Obj{"content": ok}, &m)
	t.Conform("message", r.Body)
	if str(m["content"]) != ok {
		t.Errorf("2000 code points were not stored as sent")
	}
	body := t.ErrorBody(t.Call(u.Client, "POST", "/channels/"+g.Text+"/messages", Obj{"content": strings.Repeat("a", 2001)}), 400, 50035)
	if body != nil && len(harness.FieldErrors(body, "content")) == 0 {
		t.Errorf("2001 characters: expected errors.content, got %s", harness.JSON(body))
	}
	t.ErrorBody(t.Call(u.Client, "PATCH", "/channels/"+g.Text+"/messages/"+str(m["id"]), Obj{"content": strings.Repeat("b", 2001)}), 400, 50035)
}

// CAPI-091: "a message with empty content (and no attachments) MUST be rejected
// with 400 50006."
func emptyMessage(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	for _, body := range []any{Obj{"content": ""}, Obj{}, Obj{"nonce": "x"}} {
		t.ErrorBody(t.Call(u.Client, "POST", "/channels/"+g.Text+"/messages", body), 400, 50006)
	}
}

// CAPI-092: "A created message MUST be answered with the stored message and
// dispatched as MESSAGE_CREATE to every session allowed to view the channel,
// including the author's own sessions, with the same nonce."
func createDispatch(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	a1, a2, b1 := t.Connect(a, harness.AllIntents), t.Connect(a, harness.AllIntents), t.Connect(b, harness.AllIntents)
	nonce := "n" + harness.RandName()[3:]
	var m Obj
	r := t.Must(a.Client, 200, "POST", "/channels/"+g.Text+"/messages", Obj{"content": "with nonce", "nonce": nonce}, &m)
	t.Conform("message", r.Body)
	if str(m["nonce"]) != nonce || str(m["content"]) != "with nonce" || str(get(m, "author.id")) != a.ID {
		t.Errorf("answer is not the stored message with the nonce: %s", r)
	}
	var stored Obj
	t.Must(a.Client, 200, "GET", "/channels/"+g.Text+"/messages/"+str(m["id"]), nil, &stored)
	if str(stored["content"]) != "with nonce" || str(stored["timestamp"]) != str(m["timestamp"]) {
		t.Errorf("answer %s differs from the stored message %s", harness.JSON(m), harness.JSON(stored))
	}
	for _, s := range []*harness.Session{a1, a2, b1} {
		d := t.Expect(s.Gateway, "MESSAGE_CREATE", harness.Field("id", str(m["id"])))
		if str(d["nonce"]) != nonce {
			t.Errorf("MESSAGE_CREATE to %s: nonce %v, expected %s", s.User.Name, d["nonce"], nonce)
		}
		if str(d["guild_id"]) != g.ID {
			t.Errorf("MESSAGE_CREATE to %s: guild_id %v, expected %s", s.User.Name, d["guild_id"], g.ID)
		}
		t.Conform("message", harness.Raw(d))
	}
}

func idSet(list any) []string {
	ids := harness.IDs(list)
	sort.Strings(ids)
	return ids
}

func stringsOf(list any) []string {
	arr, _ := list.([]any)
	var out []string
	for _, x := range arr {
		out = append(out, str(x))
	}
	sort.Strings(out)
	return out
}

// CAPI-093: "mentions MUST list the users mentioned as <@id> or <@!id> who can view
// the channel, mention_roles the roles mentioned as <@&id>, and mention_everyone is
// true only for @everyone/@here by a member with MENTION_EVERYONE." Mentions inside
// code spans and code blocks do not count.
func mentions(t *T) {
	o, m, z, coded, outsider := t.NewUser(), t.NewUser(), t.NewUser(), t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m, z, coded)
	role := newRole(t, o, g, "pinged", 0)
	content := fmt.Sprintf("hi <@%s> and <@!%s>, not <@%s>; role <@&%s>; code `<@%s>`", m.ID, z.ID, outsider.ID, role, coded.ID)
	msg := t.Send(o, g.Text, content)
	want := []string{m.ID, z.ID}
	sort.Strings(want)
	if got := idSet(msg["mentions"]); !slices.Equal(got, want) {
		t.Errorf("mentions = %v, expected %v (members mentioned outside code)", got, want)
	}
	if got := stringsOf(msg["mention_roles"]); !slices.Equal(got, []string{role}) {
		t.Errorf("mention_roles = %v, expected [%s]", got, role)
	}
	if msg["mention_everyone"] != false {
		t.Errorf("mention_everyone = %v without @everyone", msg["mention_everyone"])
	}
	everyone := func(u *harness.User, content string) any {
		return t.Send(u, g.Text, content)["mention_everyone"]
	}
	if v := everyone(o, "hey @everyone"); v != true {
		t.Errorf("@everyone by the owner: mention_everyone = %v", v)
	}
	if v := everyone(m, "hey @here"); v != true {
		t.Errorf("@here by a member with the default MENTION_EVERYONE: mention_everyone = %v", v)
	}
	if v := everyone(o, "```\n@everyone\n```"); v != false {
		t.Errorf("@everyone in a code block: mention_everyone = %v", v)
	}
	setEveryone(t, o, g, everyonePerms(t, o, g)&^permMentionAll)
	if v := everyone(m, "hey @everyone"); v != false {
		t.Errorf("@everyone by a member without MENTION_EVERYONE: mention_everyone = %v", v)
	}
}

func history(t *T, u *harness.User, channel, query string) []string {
	var page []Obj
	t.Must(u.Client, 200, "GET", "/channels/"+channel+"/messages?"+query, nil, &page)
	var ids []string
	for _, m := range page {
		ids = append(ids, str(m["id"]))
	}
	if len(page) > 0 {
		t.Conform("message", harness.Raw(page[0]))
	}
	return ids
}

// newestFirst reports whether snowflake IDs are strictly decreasing.
func newestFirst(ids []string) bool {
	for i := 1; i < len(ids); i++ {
		if !snowLess(ids[i], ids[i-1]) {
			return false
		}
	}
	return true
}

func snowLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// CAPI-094: "History MUST be ordered newest first and paginate without gaps or
// repeats with before/after."
func historyPaging(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	var sent []string
	for i := range 7 {
		sent = append(sent, str(t.Send(u, g.Text, fmt.Sprint("m", i))["id"]))
	}
	want := slices.Clone(sent)
	slices.Reverse(want) // newest first

	if all := history(t, u, g.Text, "limit=50"); !slices.Equal(all, want) {
		t.Errorf("limit=50: got %v, expected %v", all, want)
	}
	var back []string
	q := "limit=3"
	for range 5 {
		page := history(t, u, g.Text, q)
		if !newestFirst(page) {
			t.Errorf("page %q not newest first: %v", q, page)
		}
		if len(page) == 0 {
			break
		}
		back = append(back, page...)
		q = "limit=3&before=" + page[len(page)-1]
	}
	if !slices.Equal(back, want) {
		t.Errorf("paging with before: got %v, expected %v", back, want)
	}
	// after=0 starts at the beginning of the channel, as clients use it.
	if got, exp := history(t, u, g.Text, "limit=3&after=0"), []string{sent[2], sent[1], sent[0]}; !slices.Equal(got, exp) {
		t.Errorf("after=0&limit=3: got %v, expected the 3 oldest %v", got, exp)
	}
	// Forward from the oldest message: the pages must be the ones right after it.
	var fwd []string
	q = "limit=3&after=" + sent[0]
	for range 5 {
		page := history(t, u, g.Text, q)
		if !newestFirst(page) {
			t.Errorf("page %q not newest first: %v", q, page)
		}
		if len(page) == 0 {
			break
		}
		fwd = append(page, fwd...)
		q = "limit=3&after=" + page[0]
	}
	if want := want[:len(want)-1]; !slices.Equal(fwd, want) {
		t.Errorf("paging forward with after (limit 3) from the oldest message: got %v, expected %v (first page: %v)",
			fwd, want, history(t, u, g.Text, "limit=3&after="+sent[0]))
	}
}

// CAPI-095: "A reply (message_reference.message_id in the same channel) MUST be
// stored with type 19 and returned with referenced_message."
func reply(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	orig := t.Send(u, g.Text, "original")
	var r Obj
	resp := t.Must(u.Client, 200, "POST", "/channels/"+g.Text+"/messages",
		Obj{"content": "reply", "message_reference": Obj{"message_id": orig["id"]}}, &r)
	t.Conform("message", resp.Body)
	check := func(where string, m Obj) {
		if num(m["type"]) != 19 || str(get(m, "referenced_message.id")) != str(orig["id"]) ||
			str(get(m, "message_reference.message_id")) != str(orig["id"]) {
			t.Errorf("%s: expected type 19 with referenced_message %s, got %s", where, str(orig["id"]), harness.JSON(m))
		}
	}
	check("POST answer", r)
	var stored Obj
	t.Must(u.Client, 200, "GET", "/channels/"+g.Text+"/messages/"+str(r["id"]), nil, &stored)
	check("GET", stored)
}

// CAPI-096: "Only the author can edit a message; an edit sets edited_timestamp and
// dispatches MESSAGE_UPDATE."
func edit(t *T) {
	a, o := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, a)
	s := t.Connect(o, harness.AllIntents)
	m := t.Send(a, g.Text, "before")
	if m["edited_timestamp"] != nil {
		t.Errorf("a new message has edited_timestamp %v", m["edited_timestamp"])
	}
	if r := t.Call(o.Client, "PATCH", "/channels/"+g.Text+"/messages/"+str(m["id"]), Obj{"content": "by the owner"}); r.Status != 403 {
		t.Errorf("edit by another user (even the guild owner): expected 403, got %s", r)
	}
	var e Obj
	t.Must(a.Client, 200, "PATCH", "/channels/"+g.Text+"/messages/"+str(m["id"]), Obj{"content": "after"}, &e)
	if str(e["content"]) != "after" || e["edited_timestamp"] == nil {
		t.Errorf("edit answer: expected content \"after\" and edited_timestamp, got %s", harness.JSON(e))
	}
	d := t.Expect(s.Gateway, "MESSAGE_UPDATE", harness.Field("id", str(m["id"])))
	if str(d["content"]) != "after" {
		t.Errorf("MESSAGE_UPDATE content = %v", d["content"])
	}
}

// CAPI-097: "Deleting dispatches MESSAGE_DELETE; bulk delete dispatches one
// MESSAGE_DELETE_BULK."
func deletes(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	s := t.Connect(u, harness.AllIntents)
	one := str(t.Send(u, g.Text, "one")["id"])
	if r := t.Call(u.Client, "DELETE", "/channels/"+g.Text+"/messages/"+one, nil); r.Status != 204 {
		t.Fatalf("delete: expected 204, got %s", r)
	}
	t.Expect(s.Gateway, "MESSAGE_DELETE", harness.Field("id", one))
	t.ErrorBody(t.Call(u.Client, "GET", "/channels/"+g.Text+"/messages/"+one, nil), 404, 10008)

	ids := []string{str(t.Send(u, g.Text, "a")["id"]), str(t.Send(u, g.Text, "b")["id"]), str(t.Send(u, g.Text, "c")["id"])}
	t.ErrorBody(t.Call(u.Client, "POST", "/channels/"+g.Text+"/messages/bulk-delete", Obj{"messages": ids[:1]}), 400, 50016)
	if r := t.Call(u.Client, "POST", "/channels/"+g.Text+"/messages/bulk-delete", Obj{"messages": ids}); r.Status != 204 {
		t.Fatalf("bulk delete: expected 204, got %s", r)
	}
	d := t.Expect(s.Gateway, "MESSAGE_DELETE_BULK", nil)
	if got, want := stringsOf(d["ids"]), slices.Sorted(slices.Values(ids)); !slices.Equal(got, want) {
		t.Errorf("MESSAGE_DELETE_BULK ids = %v, expected %v", got, want)
	}
	sentinel := t.Send(u, g.Text, "sentinel")
	t.Expect(s.Gateway, "MESSAGE_CREATE", harness.Field("id", str(sentinel["id"])))
	if f, ok := s.Seen(func(f harness.Frame) bool {
		return f.T == "MESSAGE_DELETE" && slices.Contains(ids, str(f.Obj()["id"]))
	}); ok {
		t.Errorf("bulk delete also sent single MESSAGE_DELETE: %s", f)
	}
}

// CAPI-098: "Adding the same reaction twice counts once; MESSAGE_REACTION_ADD and
// MESSAGE_REACTION_REMOVE are dispatched."
func reactions(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	s := t.Connect(a, harness.AllIntents)
	m := str(t.Send(a, g.Text, "react to me")["id"])
	path := "/channels/" + g.Text + "/messages/" + m + "/reactions/" + thumbsUp
	for range 2 {
		if r := t.Call(b.Client, "PUT", path+"/@me", nil); r.Status != 204 {
			t.Fatalf("react: expected 204, got %s", r)
		}
	}
	add := t.Expect(s.Gateway, "MESSAGE_REACTION_ADD", harness.Field("user_id", b.ID))
	if str(get(add, "emoji.name")) != "👍" || str(add["message_id"]) != m {
		t.Errorf("MESSAGE_REACTION_ADD = %s", harness.JSON(add))
	}
	var msg Obj
	t.Must(a.Client, 200, "GET", "/channels/"+g.Text+"/messages/"+m, nil, &msg)
	if n := num(get(msg, "reactions.0.count")); n != 1 {
		t.Errorf("same reaction twice by one user: count %v, expected 1 (%s)", n, harness.JSON(msg["reactions"]))
	}
	var who []Obj
	t.Must(a.Client, 200, "GET", path, nil, &who)
	if len(who) != 1 || str(who[0]["id"]) != b.ID {
		t.Errorf("users who reacted: %s, expected only %s", harness.JSON(who), b.ID)
	}
	if r := t.Call(b.Client, "DELETE", path+"/@me", nil); r.Status != 204 {
		t.Fatalf("remove reaction: expected 204, got %s", r)
	}
	t.Expect(s.Gateway, "MESSAGE_REACTION_REMOVE", harness.Field("user_id", b.ID))
}
