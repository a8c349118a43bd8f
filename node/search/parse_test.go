package search

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// vector is one case of testdata/parse_vectors.json, the parser behaviour
// that the web client's parser shares (spec/search.md, Test vectors). IDs
// are strings, as in Discord's JSON.
type vector struct {
	Input        string   `json:"input"`
	Words        []string `json:"words,omitempty"`
	Phrases      []string `json:"phrases,omitempty"`
	AuthorIDs    []string `json:"author_ids,omitempty"`
	AuthorNames  []string `json:"author_names,omitempty"`
	ChannelIDs   []string `json:"channel_ids,omitempty"`
	ChannelNames []string `json:"channel_names,omitempty"`
	MentionIDs   []string `json:"mention_ids,omitempty"`
	MentionNames []string `json:"mention_names,omitempty"`
	Has          []string `json:"has,omitempty"`
	MinID        string   `json:"min_id,omitempty"`
	MaxID        string   `json:"max_id,omitempty"`
	Pinned       *bool    `json:"pinned,omitempty"`
	Error        string   `json:"error,omitempty"`
	ErrorPos     *int     `json:"error_pos,omitempty"`
}

func idStrings(v []uint64) []string {
	var out []string
	for _, id := range v {
		out = append(out, strconv.FormatUint(id, 10))
	}
	return out
}

func toVector(input string, q Query, err error) vector {
	v := vector{Input: input}
	if err != nil {
		var qe *QueryError
		if errors.As(err, &qe) {
			v.Error = string(qe.Code)
			if qe.Pos >= 0 {
				v.ErrorPos = &qe.Pos
			}
		} else {
			v.Error = err.Error()
		}
		return v
	}
	v.Words, v.Phrases = q.Words, q.Phrases
	v.AuthorIDs, v.AuthorNames = idStrings(q.AuthorIDs), q.AuthorNames
	v.ChannelIDs, v.ChannelNames = idStrings(q.ChannelIDs), q.ChannelNames
	v.MentionIDs, v.MentionNames = idStrings(q.MentionIDs), q.MentionNames
	v.Has = q.Has.names()
	if q.MinID != 0 {
		v.MinID = strconv.FormatUint(q.MinID, 10)
	}
	if q.MaxID != 0 {
		v.MaxID = strconv.FormatUint(q.MaxID, 10)
	}
	v.Pinned = q.Pinned
	return v
}

func TestParseVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/parse_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []vector
	if err := json.Unmarshal(b, &vectors); err != nil {
		t.Fatal(err)
	}
	for _, want := range vectors {
		q, err := ParseQuery(want.Input)
		got := toVector(want.Input, q, err)
		if want.Error != "" && want.ErrorPos == nil {
			got.ErrorPos = nil // position not part of this vector
		}
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			t.Errorf("ParseQuery(%q)\n got %s\nwant %s", want.Input, gb, wb)
		}
	}
}

func TestParseLimits(t *testing.T) {
	tests := []struct {
		name, text string
		code       Code
	}{
		{"too long", strings.Repeat("a", MaxQueryRunes+1), CodeLimit},
		{"too many words", strings.Repeat("w ", MaxClauses+1), CodeLimit},
		{"too many authors", strings.Repeat("from:x ", MaxFilterValues+1), CodeLimit},
		{"invalid utf-8", "caf\xe9", CodeSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseQuery(tc.text)
			var qe *QueryError
			if !errors.As(err, &qe) || qe.Code != tc.code || !errors.Is(err, ErrBadQuery) {
				t.Errorf("err = %v, want code %s", err, tc.code)
			}
		})
	}
	if _, err := ParseQuery(strings.Repeat("é", MaxQueryRunes)); err != nil {
		t.Errorf("limit counts characters, not bytes: %v", err)
	}
}

func TestFromParams(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		query string
		want  Query
		code  Code // expected error code, or ""
		field string
	}{
		{query: "content=hello&author_id=5&author_id=3&author_id=5",
			want: Query{Words: []string{"hello"}, AuthorIDs: []uint64{3, 5}}},
		{query: "content=from:<@7>&author_id=8", want: Query{AuthorIDs: []uint64{7, 8}}},
		{query: "channel_id=1&mentions=2&has=link&has=video&pinned=true&mention_everyone=false",
			want: Query{ChannelIDs: []uint64{1}, MentionIDs: []uint64{2}, Has: HasLink | HasVideo, Pinned: &yes}},
		{query: "content=x&pinned=false&sort_by=relevance&sort_order=asc&offset=25&limit=10",
			want: Query{Words: []string{"x"}, Pinned: &no, SortBy: SortRelevance, SortOrder: SortAsc, Offset: 25, Limit: 10}},
		{query: "min_id=10&max_id=20", want: Query{MinID: 10, MaxID: 20}},
		{query: "content=after:2026-01-01&min_id=1", want: Query{MinID: 1456436831846399999}},
		{query: "content=x&include_nsfw=true&author_type=user", want: Query{Words: []string{"x"}}},
		{query: "", code: CodeEmpty},
		{query: "content=x&limit=0", code: CodeLimit, field: "limit"},
		{query: "content=x&limit=26", code: CodeLimit, field: "limit"},
		{query: "content=x&offset=9976", code: CodeLimit, field: "offset"},
		{query: "content=x&offset=-1", code: CodeLimit, field: "offset"},
		{query: "content=x&offset=1e9", code: CodeValue, field: "offset"},
		{query: "author_id=abc", code: CodeValue, field: "author_id"},
		{query: "author_id=0", code: CodeValue, field: "author_id"},
		{query: "channel_id=-1", code: CodeValue, field: "channel_id"},
		{query: "has=-link", code: CodeValue, field: "has"},
		{query: "content=x&sort_by=date", code: CodeValue, field: "sort_by"},
		{query: "content=x&sort_order=up", code: CodeValue, field: "sort_order"},
		{query: "content=x&pinned=1", code: CodeValue, field: "pinned"},
		{query: "min_id=20&max_id=21", code: CodeRange, field: "max_id"},
		{query: "min_id=20&max_id=10", code: CodeRange, field: "max_id"},
		{query: "content=a&content=b", code: CodeValue, field: "content"},
		{query: "content=%22open", code: CodeSyntax, field: "content"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := FromParams(v)
			if tc.code != "" {
				var qe *QueryError
				if !errors.As(err, &qe) || qe.Code != tc.code || qe.Field != tc.field {
					t.Fatalf("err = %v, want %s on %q", err, tc.code, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q, tc.want) {
				t.Errorf("got  %+v\nwant %+v", q, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	q := mustParse(t, "from:alice from:<@9> from:ghost in:general mentions:bob")
	q.GuildID = guildA
	r, err := q.Resolve(context.Background(), testResolver)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.AuthorIDs, []uint64{alice, 9}) || !reflect.DeepEqual(r.ChannelIDs, []uint64{general}) ||
		!reflect.DeepEqual(r.MentionIDs, []uint64{bob}) || r.unresolved() || r.nothing {
		t.Errorf("resolved = %+v", r)
	}
	if len(q.AuthorNames) != 2 {
		t.Errorf("Resolve changed its receiver: %+v", q)
	}
	q = mustParse(t, "from:ghost hello")
	q.GuildID = guildA
	if r, err = q.Resolve(context.Background(), testResolver); err != nil || !r.nothing {
		t.Errorf("from:ghost: %+v, %v; want a query matching nothing", r, err)
	}
	q.GuildID = guildB
	if _, err = q.Resolve(context.Background(), testResolver); err == nil || errors.Is(err, ErrBadQuery) {
		t.Errorf("resolver failure: err = %v, want a non-query error", err)
	}
}

func FuzzParseQuery(f *testing.F) {
	b, err := os.ReadFile("testdata/parse_vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	var vectors []vector
	if err := json.Unmarshal(b, &vectors); err != nil {
		f.Fatal(err)
	}
	for _, v := range vectors {
		f.Add(v.Input)
	}
	f.Fuzz(func(t *testing.T, text string) {
		q, err := ParseQuery(text)
		if err != nil {
			var qe *QueryError
			if !errors.As(err, &qe) || !errors.Is(err, ErrBadQuery) {
				t.Fatalf("error is not a *QueryError: %v", err)
			}
			if qe.Pos > len(text) {
				t.Fatalf("error position %d beyond input length %d", qe.Pos, len(text))
			}
			return
		}
		if !utf8.ValidString(text) || utf8.RuneCountInString(text) > MaxQueryRunes {
			t.Fatalf("accepted invalid or over-long input")
		}
		if err := q.check(); err != nil {
			t.Fatalf("parsed query fails its own check: %v", err)
		}
		for _, w := range q.Words {
			if w == "" || strings.IndexFunc(w, unicode.IsSpace) >= 0 {
				t.Fatalf("bad word %q", w)
			}
		}
		for _, p := range q.Phrases {
			if strings.TrimSpace(p) == "" {
				t.Fatalf("blank phrase")
			}
		}
		if q.MaxID != 0 && q.MaxID <= q.MinID+1 {
			t.Fatalf("empty range accepted: %d..%d", q.MinID, q.MaxID)
		}
		// Parsing is deterministic.
		again, err := ParseQuery(text)
		if err != nil || !reflect.DeepEqual(q, again) {
			t.Fatalf("second parse differs")
		}
	})
}

func FuzzFromParams(f *testing.F) {
	for _, s := range []string{
		"content=hello&author_id=1", "min_id=1&max_id=9", "has=link&offset=25&limit=25",
		"content=from%3Abob+%22x+y%22&sort_by=relevance", "pinned=true&mention_everyone=true",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := FromParams(v)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) {
				t.Fatalf("error is not a query error: %v", err)
			}
			return
		}
		if q.Offset < 0 || q.Offset > MaxOffset || q.Limit < 0 || q.Limit > MaxLimit {
			t.Fatalf("paging out of bounds: %d %d", q.Offset, q.Limit)
		}
	})
}

// TestQueryRefusedBeforeSearch checks SRCH-073: "A node MUST detect all of these
// [the refusals of spec/search.md §6] before searching, so that a bad query never
// costs a search." Every case of the section's table is refused by FromParams,
// which the route runs on the query string before it resolves names or searches
// (doc.go), with the table's code. A Query built by other means that breaks a limit
// is refused by Search before it reads the index: a closed index answers the
// refusal, not ErrClosed.
func TestQueryRefusedBeforeSearch(t *testing.T) {
	froms := strings.Repeat("from:x ", MaxFilterValues+1)
	tests := []struct {
		name, query string
		code        Code
	}{
		{"unterminated quote", "content=%22open", CodeSyntax},
		{"filter without a value", "content=from:", CodeSyntax},
		{"invalid UTF-8", "content=caf%E9", CodeSyntax},
		{"unknown has", "has=nothing", CodeValue},
		{"unknown has: typed", "content=has:nothing", CodeValue},
		{"bad snowflake", "author_id=abc", CodeValue},
		{"bad date", "content=before:2026-13-01", CodeValue},
		{"bad boolean", "pinned=maybe", CodeValue},
		{"bad sort_by", "content=x&sort_by=date", CodeValue},
		{"bad sort_order", "content=x&sort_order=up", CodeValue},
		{"repeated single-valued parameter", "content=x&limit=5&limit=6", CodeValue},
		{"date before 2015", "content=before:2014-12-31", CodeRange},
		{"date after 2154", "content=after:2155-01-01", CodeRange},
		{"ID range holding no message", "min_id=20&max_id=21", CodeRange},
		{"after: later than before:", "content=after:2026-02-01+before:2026-01-01", CodeRange},
		{"offset out of range", "content=x&offset=9976", CodeLimit},
		{"limit out of range", "content=x&limit=26", CodeLimit},
		{"content over 1,024 characters", "content=" + strings.Repeat("a", MaxQueryRunes+1), CodeLimit},
		{"more than 32 words and phrases", "content=" + url.QueryEscape(strings.Repeat("w ", MaxClauses+1)), CodeLimit},
		{"more than 100 values of one filter kind", "content=" + url.QueryEscape(froms), CodeLimit},
		{"nothing at all", "", CodeEmpty},
		{"only spaces", "content=+++", CodeEmpty},
		{"only an order", "sort_by=relevance", CodeEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = FromParams(v)
			var qe *QueryError
			if !errors.As(err, &qe) || qe.Code != tc.code || !errors.Is(err, ErrBadQuery) {
				t.Errorf("FromParams(%.60q) = %v, want a refusal with code %s before any search", tc.query, err, tc.code)
			}
		})
	}

	ix, err := Open(t.TempDir(), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{
		{GuildID: guildA, Words: []string{"x"}, Limit: MaxLimit + 1},
		{GuildID: guildA, Words: []string{"x"}, Offset: MaxOffset + 1},
		{GuildID: guildA, MinID: 20, MaxID: 21},
		{GuildID: guildA, Words: strings.Fields(strings.Repeat("w ", MaxClauses+1))},
		{GuildID: guildA},
	} {
		if _, err := ix.Search(context.Background(), q, []uint64{general}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("Search(%+v) on a closed index = %v, want the refusal (before the index is read)", q, err)
		}
	}
}
