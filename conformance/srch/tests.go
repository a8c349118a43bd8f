package srch

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hearth-chat/hearth/conformance/harness"
)

const permView, permReadHistory = 1 << 10, 1 << 16

// SRCH-001: "A node MUST serve this route to authenticated members of the guild and
// answer 403 (Discord code 50001, Missing Access) to others."
func membersOnly(t *T) {
	o, x := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	mk := marker()
	id := send(t, o, g.Text, "hello "+mk)
	expect(t, o, g, q("content", mk), false, id)
	r, _ := search(t, x.Client, g, q("content", mk))
	t.ErrorBody(r, 403, 50001)
	r, _ = search(t, t.Anon(), g, q("content", mk))
	t.ErrorBody(r, 401, 0)
}

// SRCH-002: "A node MUST ignore parameters it does not know." SRCH-003: "A node MUST
// answer 400 when a parameter that takes one value is given more than once."
func params(t *T) {
	o := t.NewUser()
	g := t.NewGuild(o)
	mk := marker()
	id := send(t, o, g.Text, mk)
	expect(t, o, g, q("content", mk, "x_unknown", "1", "include_nsfw", "true"), false, id)
	for _, p := range []string{"sort_by", "sort_order", "limit", "offset", "min_id", "max_id", "pinned", "content"} {
		v := map[string]string{"sort_by": "timestamp", "sort_order": "desc", "limit": "5", "offset": "0",
			"min_id": "1", "max_id": "9223372036854775807", "pinned": "false", "content": mk}[p]
		query := q("content", mk, p, v, p, v)
		if p == "content" {
			query = q("content", mk, "content", mk)
		}
		r, _ := search(t, o.Client, g, query)
		if r.Status != 400 {
			t.Errorf("%s given twice: expected 400, got %s", p, r)
		}
	}
}

// SRCH-004: "A node MUST answer 400 for a value outside these forms." SRCH-052: 400
// for an offset above 9,975 or a limit outside 1..25. SRCH-070: "A
// query the node refuses MUST be answered with 400 and Discord's form error body."
// SRCH-071: "The code MUST be one of" SEARCH_SYNTAX, SEARCH_VALUE, SEARCH_RANGE,
// SEARCH_LIMIT, SEARCH_EMPTY (each checked where the table names it).
func invalidValues(t *T) {
	o := t.NewUser()
	g := t.NewGuild(o)
	cases := []struct {
		query string
		codes []string
	}{
		{q("author_id", "abc"), []string{"SEARCH_VALUE"}},
		{q("author_id", "0"), []string{"SEARCH_VALUE"}},
		{q("channel_id", "-5"), []string{"SEARCH_VALUE"}},
		{q("mention_everyone", "maybe"), []string{"SEARCH_VALUE"}},
		{q("content", "x", "has", "spaceship"), []string{"SEARCH_VALUE"}},
		{q("content", "x", "sort_by", "random"), []string{"SEARCH_VALUE"}},
		{q("content", "x", "sort_order", "up"), []string{"SEARCH_VALUE"}},
		{q("content", "x", "pinned", "1"), []string{"SEARCH_VALUE"}},
		{q("content", `"unterminated`), []string{"SEARCH_SYNTAX"}},
		{q("content", "from:"), []string{"SEARCH_SYNTAX"}},
		{q("content", "before:2014-06-01"), []string{"SEARCH_RANGE"}},
		{q("content", "x", "min_id", "100", "max_id", "101"), []string{"SEARCH_RANGE"}},
		{q("content", "x", "limit", "26"), []string{"SEARCH_LIMIT"}},
		{q("content", "x", "limit", "0"), []string{"SEARCH_LIMIT"}},
		{q("content", "x", "offset", "9976"), []string{"SEARCH_LIMIT"}},
		{q("content", strings.Repeat("a", 1025)), []string{"SEARCH_LIMIT"}},
		{q("content", strings.Repeat("w ", 33)), []string{"SEARCH_LIMIT"}},
		{"", []string{"SEARCH_EMPTY"}},
	}
	for _, c := range cases {
		r, _ := search(t, o.Client, g, c.query)
		searchError(t, c.query, r, c.codes...)
	}
}

// SRCH-005: "The content parameter MUST accept the full text form of §2, so that
// filters written in it apply as if given as parameters." SRCH-014: from:/mentions:
// take <@id>, <@!id> or a member's name. SRCH-015: in: takes <#id> or a channel name
// with or without #. SRCH-017: "if every value of one filter kind resolves to
// nothing, the query MUST match no message." SRCH-020: values of one kind are OR,
// everything else AND.
func filtersInText(t *T) {
	a, b := t.NewUser(), t.NewUser()
	g := t.NewGuild(a)
	t.Join(g, b)
	var other Obj
	t.OK(a.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "other", "type": 0}, &other)
	oc := str(other["id"])
	mk := marker()
	a1 := send(t, a, g.Text, mk+" alpha by a")
	b1 := send(t, b, g.Text, mk+" alpha by b <@"+a.ID+">")
	a2 := send(t, a, oc, mk+" beta by a")

	expect(t, a, g, q("content", mk), false, a1, b1, a2)
	expect(t, a, g, q("content", mk+" from:"+a.Name), false, a1, a2)
	expect(t, a, g, q("content", mk+" from:<@"+b.ID+">"), false, b1)
	expect(t, a, g, q("content", mk+" from:<@!"+b.ID+">"), false, b1)
	expect(t, a, g, q("content", mk, "author_id", b.ID), false, b1)
	expect(t, a, g, q("content", mk+" from:"+a.Name, "author_id", b.ID), false, a1, b1, a2) // same kind: OR
	expect(t, a, g, q("content", mk+" mentions:<@"+a.ID+">"), false, b1)
	expect(t, a, g, q("content", mk+" in:other"), false, a2)
	expect(t, a, g, q("content", mk+" in:#other"), false, a2)
	expect(t, a, g, q("content", mk+" in:<#"+g.Text+">"), false, a1, b1)
	expect(t, a, g, q("content", mk+" in:<#"+g.Text+"> from:"+a.Name), false, a1) // kinds: AND
	expect(t, a, g, q("content", mk+" alpha beta"), false)                        // words: AND
	expect(t, a, g, q("content", mk+" from:nobody_"+mk), false)
	expect(t, a, g, q("content", mk+" in:no-such-channel-"+mk), false)
}

// SRCH-011: "A token key:value whose key is not one of the keys above MUST be read as
// a word, colon included." SRCH-013: "An empty phrase MUST be ignored."
func textFormWords(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	id := send(t, a, g.Text, mk+" see foo:bar for details")
	other := send(t, a, g.Text, mk+" foo alone")
	expect(t, a, g, q("content", mk+" foo:bar"), false, id)
	expect(t, a, g, q("content", mk+` ""`), false, id, other)
	expect(t, a, g, q("content", mk+` "   "`), false, id, other)
}

// SRCH-012: "Inside quotes, \" stands for a quote and \\ for a backslash; any other
// backslash is itself." Analysis drops quotes and backslashes, but the escapes decide
// where a phrase ends, and a phrase matches only adjacent words (SRCH-033), so each
// reading of the escapes selects other messages:
//   - "alpha \"bravo\" charlie" is one phrase of three words; a parser that ended the
//     phrase at \" would find the three words anywhere (the reversed message too);
//   - "delta\\" echo is the phrase delta and the word echo, anywhere; a parser that
//     did not read \\ as a backslash would take the second backslash and the quote
//     for \" and find the quote unterminated;
//   - "foxtrot\golf" is the phrase foxtrot golf (UAX #29 splits at the backslash); a
//     parser that dropped the backslash or read \g as g would search for foxtrotgolf.
func quoteEscapes(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	inOrder := send(t, a, g.Text, mk+" alpha bravo charlie")
	quoted := send(t, a, g.Text, mk+` alpha "bravo" charlie`)
	send(t, a, g.Text, mk+" charlie bravo alpha")
	apart := send(t, a, g.Text, mk+" echo comes before delta")
	split := send(t, a, g.Text, mk+" foxtrot golf")
	send(t, a, g.Text, mk+" foxtrotgolf")
	expect(t, a, g, q("content", mk+` "alpha \"bravo\" charlie"`), false, inOrder, quoted)
	expect(t, a, g, q("content", mk+` "delta\\" echo`), false, apart)
	expect(t, a, g, q("content", mk+` "foxtrot\golf"`), false, split)
}

// SRCH-018: before: selects messages before the start of the date's interval,
// after: at or after its end, during: within it.
func dates(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	id := send(t, a, g.Text, mk+" dated")
	expect(t, a, g, q("content", mk+" after:2020"), false, id)
	expect(t, a, g, q("content", mk+" before:2020-06"), false)
	expect(t, a, g, q("content", mk+" during:2020-06-01"), false)
	var m Obj
	t.Must(a.Client, 200, "GET", "/channels/"+g.Text+"/messages/"+id, nil, &m)
	day := str(m["timestamp"])[:10]
	expect(t, a, g, q("content", mk+" during:"+day), false, id)
	expect(t, a, g, q("content", mk+" after:"+day), false)
	expect(t, a, g, q("content", mk+" before:"+day), false)
}

// SRCH-030: "Message content and query words MUST be analysed the same way" (folding,
// lower case, possessives, stems, CJK bigrams). SRCH-031: "A word MUST match a message
// whose content contains it after analysis."
func analysis(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	cafe := send(t, a, g.Text, mk+" Café au lait")
	run := send(t, a, g.Text, mk+" the runner's RUNNING shoes")
	tokyo := send(t, a, g.Text, mk+" 東京都に行く")
	expect(t, a, g, q("content", mk+" cafe"), false, cafe)
	expect(t, a, g, q("content", mk+" CAFÉ"), false, cafe)
	expect(t, a, g, q("content", mk+" runs"), false, run)
	expect(t, a, g, q("content", mk+" runner"), false, run)
	expect(t, a, g, q("content", mk+" 京都"), false, tokyo)
	expect(t, a, g, q("content", mk+" strasse"), false)
}

// SRCH-032: "A word that analyses to several terms MUST match only where those terms
// are adjacent and in order." SRCH-033: "A phrase MUST match only where its terms occur
// adjacent and in order."
func phrases(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	exact := send(t, a, g.Text, mk+" the quick brown fox")
	apart := send(t, a, g.Text, mk+" brown is the quick colour")
	mail := send(t, a, g.Text, mk+" send an e-mail")
	send(t, a, g.Text, mk+" mail the e form") // the terms of e-mail, apart
	expect(t, a, g, q("content", mk+` "quick brown"`), false, exact)
	expect(t, a, g, q("content", mk+` "brown quick"`), false)
	expect(t, a, g, q("content", mk+" quick brown"), false, exact, apart)
	expect(t, a, g, q("content", mk+" e-mail"), false, mail)
}

// SRCH-034: "Search MUST NOT interpret wildcards, fuzzy or regular-expression syntax."
func noWildcards(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	send(t, a, g.Text, mk+" wildcard target")
	lit := send(t, a, g.Text, mk+" wild")
	expect(t, a, g, q("content", mk+" wild*"), false, lit)
	expect(t, a, g, q("content", mk+" wildcardd~"), false)
	expect(t, a, g, q("content", mk+" w?ld"), false)
}

// SRCH-040: results only from channels with VIEW_CHANNEL and READ_MESSAGE_HISTORY at
// the moment of the query. SRCH-041: total_results counts only those. SRCH-042: a
// channel_id the user may not read matches nothing, without error.
func accessControl(t *T) {
	o, m := t.NewUser(), t.NewUser()
	g := t.NewGuild(o)
	t.Join(g, m)
	var hidden, noHist Obj
	t.OK(o.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "hidden", "type": 0}, &hidden)
	t.OK(o.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "nohist", "type": 0}, &noHist)
	h, nh := str(hidden["id"]), str(noHist["id"])
	mk := marker()
	pub := send(t, o, g.Text, mk+" public")
	hid := send(t, o, h, mk+" hidden")
	nhid := send(t, o, nh, mk+" no history")
	expect(t, m, g, q("content", mk), false, pub, hid, nhid)

	put := func(ch string, deny int) {
		r := t.Call(o.Client, "PUT", "/channels/"+ch+"/permissions/"+m.ID, Obj{"allow": "0", "deny": fmt.Sprint(deny), "type": 1})
		if r.Status != 204 {
			t.Fatalf("overwrite: expected 204, got %s", r)
		}
	}
	put(h, permView)
	put(nh, permReadHistory)
	res := expect(t, m, g, q("content", mk), false, pub)
	if res.Total != 1 {
		t.Errorf("total_results = %d, expected 1 (only readable messages count)", res.Total)
	}
	expect(t, m, g, q("content", mk, "channel_id", h), false)
	expect(t, o, g, q("content", mk), false, pub, hid, nhid)
}

// SRCH-043: a created or edited message SHOULD be searchable within one second.
// SRCH-045: after an edit, searches match the new content, not the old. SRCH-046:
// after a delete, searches do not return it.
func freshness(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk, old, neu := marker(), marker(), marker()
	id := send(t, a, g.Text, mk+" "+old)
	expect(t, a, g, q("content", old), false, id)
	t.OK(a.Client, "PATCH", "/channels/"+g.Text+"/messages/"+id, Obj{"content": mk + " " + neu}, nil)
	expect(t, a, g, q("content", neu), false, id)
	expect(t, a, g, q("content", old), false)
	if r := t.Call(a.Client, "DELETE", "/channels/"+g.Text+"/messages/"+id, nil); r.Status != 204 {
		t.Fatalf("delete: %s", r)
	}
	expect(t, a, g, q("content", mk), false)
}

// SRCH-050: timestamp order by ID, desc newest first, asc oldest first (and
// offset/limit paging of that order). SRCH-054: a query without words is ordered as for timestamp, even with
// sort_by=relevance.
func orderPaging(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	ids := sendNumbered(t, a, g.Text, mk+" number", 6)
	desc := slices.Clone(ids)
	slices.Reverse(desc)
	expect(t, a, g, q("content", mk), true, desc...)
	expect(t, a, g, q("content", mk, "sort_order", "asc"), true, ids...)
	var paged []string
	for off := 0; off < 6; off += 4 {
		_, res := search(t, a.Client, g, q("content", mk, "limit", "4", "offset", fmt.Sprint(off)))
		if res.Total != 6 {
			t.Errorf("offset %d: total_results %d, expected 6", off, res.Total)
		}
		paged = append(paged, res.ids()...)
	}
	if !slices.Equal(paged, desc) {
		t.Errorf("pages of 4: %v, expected %v", paged, desc)
	}
	if _, res := search(t, a.Client, g, q("content", mk, "offset", "50")); len(res.Messages) != 0 || res.Total != 6 {
		t.Errorf("offset beyond the end: %d messages, total %d; expected none and 6", len(res.Messages), res.Total)
	}
	expect(t, a, g, q("author_id", a.ID, "channel_id", g.Text, "sort_by", "relevance", "limit", "25"), true, desc...)
}

// SRCH-051: relevance order by a text score, best first. SRCH-053: the order among
// equal scores is the same for every page.
func relevance(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk, w := marker(), marker()
	weak := send(t, a, g.Text, mk+" "+w+" and a lot of other words that dilute the score of the term here")
	strong := send(t, a, g.Text, mk+" "+w+" "+w+" "+w)
	expect(t, a, g, q("content", w, "sort_by", "relevance"), true, strong, weak)
	var ties []string
	for range 6 {
		ties = append(ties, send(t, a, g.Text, mk+" tie same text"))
	}
	all := expect(t, a, g, q("content", mk+" tie", "sort_by", "relevance"), false, ties...).ids()
	var paged []string
	for off := 0; off < 6; off += 2 {
		_, res := search(t, a.Client, g, q("content", mk+" tie", "sort_by", "relevance", "limit", "2", "offset", fmt.Sprint(off)))
		paged = append(paged, res.ids()...)
	}
	if !slices.Equal(paged, all) {
		t.Errorf("relevance pages of 2 over equal scores: %v, expected the unpaged order %v", paged, all)
	}
}

// SRCH-060: 200 with total_results and messages, each entry an array whose single
// element is the message object as the channel messages route returns it.
func responseShape(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	id := send(t, a, g.Text, mk+" shape")
	expect(t, a, g, q("content", mk), false, id)
	r, res := search(t, a.Client, g, q("content", mk))
	var raw map[string]any
	if err := r.JSON(&raw); err != nil {
		t.Fatalf("%v", err)
	}
	if _, ok := raw["total_results"].(float64); !ok {
		t.Errorf("total_results missing or not a number: %s", r)
	}
	if len(res.Messages) != 1 || len(res.Messages[0]) != 1 {
		t.Fatalf("messages = %s, expected [[message]]", harness.JSON(raw["messages"]))
	}
	t.Conform("message", harness.Raw(res.Messages[0][0]))
	var direct Obj
	t.Must(a.Client, 200, "GET", "/channels/"+g.Text+"/messages/"+id, nil, &direct)
	if str(direct["content"]) != str(res.Messages[0][0]["content"]) || str(direct["timestamp"]) != str(res.Messages[0][0]["timestamp"]) {
		t.Errorf("search hit %s differs from the message route's %s", harness.JSON(res.Messages[0][0]), harness.JSON(direct))
	}
	if p, ok := raw["partial"]; ok {
		if _, isBool := p.(bool); !isBool {
			t.Errorf("partial = %v, expected a boolean", p)
		}
	}
}
