package search

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	guildA, guildB          = 100, 200
	general, secret, random = 11, 12, 13
	otherGuildChan          = 21
	dmChannel               = 31
	alice, bob, carol       = 1, 2, 3
)

var (
	m1  = Doc{ID: sf(0, 1), GuildID: guildA, ChannelID: general, AuthorID: alice, Content: "I am running to the Café"}
	m2  = Doc{ID: sf(1, 1), GuildID: guildA, ChannelID: general, AuthorID: bob, Content: "She runs every morning", Mentions: []uint64{alice}}
	m3  = Doc{ID: sf(2, 1), GuildID: guildA, ChannelID: secret, AuthorID: alice, Content: "secret plans for running"}
	m4  = Doc{ID: sf(3, 1), GuildID: guildA, ChannelID: random, AuthorID: carol, Content: "check https://example.com for the plan", Has: HasLink | HasEmbed}
	m5  = Doc{ID: sf(4, 1), GuildID: guildA, ChannelID: general, AuthorID: carol, Content: "東京都に行きます"}
	m6  = Doc{ID: sf(5, 1), GuildID: guildA, ChannelID: general, AuthorID: bob, Content: "the quick brown fox", Pinned: true}
	m7  = Doc{ID: sf(6, 1), GuildID: guildA, ChannelID: general, AuthorID: alice, Content: "brown quick fox", MentionsEveryone: true, Has: HasFile | HasImage}
	m8  = Doc{ID: sf(7, 1), GuildID: guildB, ChannelID: otherGuildChan, AuthorID: alice, Content: "running in another guild"}
	m9  = Doc{ID: sf(7, 2), GuildID: guildA, ChannelID: general, AuthorID: bob, Content: "Naïve RÉSUMÉ"}
	m10 = Doc{ID: sf(8, 1), GuildID: guildA, ChannelID: general, AuthorID: alice, Content: "boundary test"}
	m11 = Doc{ID: sf(8, 2), GuildID: guildA, ChannelID: general, AuthorID: alice, Content: "boundary test"}
	m12 = Doc{ID: sf(9, 1), ChannelID: dmChannel, AuthorID: bob, Content: "running in a direct message"}

	fixture      = []Doc{m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12}
	readAlice    = []uint64{general, secret, random}
	readBob      = []uint64{general, random}
	testResolver = fakeResolver{
		users:    map[string][]uint64{"alice": {alice}, "bob": {bob}, "carol": {carol}},
		channels: map[string][]uint64{"general": {general}, "secret": {secret}, "random": {random}},
	}
)

type fakeResolver struct {
	users, channels map[string][]uint64
}

func (r fakeResolver) ResolveUser(_ context.Context, guild uint64, name string) ([]uint64, error) {
	if guild != guildA {
		return nil, errors.New("wrong guild")
	}
	return r.users[strings.ToLower(name)], nil
}

func (r fakeResolver) ResolveChannel(_ context.Context, guild uint64, name string) ([]uint64, error) {
	if guild != guildA {
		return nil, errors.New("wrong guild")
	}
	return r.channels[strings.ToLower(name)], nil
}

func fixtureIndex(t *testing.T) *Index {
	t.Helper()
	ix, _ := openTest(t, Options{})
	for _, d := range fixture {
		if err := ix.Index(d); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, ix)
	return ix
}

func TestSearch(t *testing.T) {
	ix := fixtureIndex(t)
	tests := []struct {
		name     string
		text     string     // text form, used when params is nil
		params   url.Values // REST form
		dm       bool       // search with GuildID 0
		readable []uint64   // default readAlice
		noRead   bool       // pass an empty readable set
		want     []Doc
		total    int // default len(want)
	}{
		{name: "stemmed word", text: "running", want: []Doc{m3, m2, m1}},
		{name: "readable set excludes channels", text: "running", readable: readBob, want: []Doc{m2, m1}},
		{name: "empty readable set matches nothing", text: "running", noRead: true},
		{name: "accent folded", text: "cafe", want: []Doc{m1}},
		{name: "case and accent folded", text: "CAFÉ", want: []Doc{m1}},
		{name: "two folded words", text: "resume NAIVE", want: []Doc{m9}},
		{name: "phrase needs adjacency", text: `"quick brown"`, want: []Doc{m6}},
		{name: "words in any order", text: "quick brown", want: []Doc{m7, m6}},
		{name: "cjk bigram", text: "京都", want: []Doc{m5}},
		{name: "cjk phrase", text: `"東京都"`, want: []Doc{m5}},
		{name: "cjk word is a phrase", text: "都に行き", want: []Doc{m5}},
		{name: "cjk no match", text: "大阪", want: nil},
		{name: "punctuation only", text: "!!!", want: nil},
		{name: "author by mention", text: "from:<@1>", want: []Doc{m11, m10, m7, m3, m1}},
		{name: "author by name", text: "from:alice", want: []Doc{m11, m10, m7, m3, m1}},
		{name: "two authors", text: "from:alice from:carol fox", want: []Doc{m7}},
		{name: "unknown author", text: "from:nobody", want: nil},
		{name: "mentions", text: "mentions:alice", want: []Doc{m2}},
		{name: "mention everyone", params: url.Values{"mention_everyone": {"true"}}, want: []Doc{m7}},
		{name: "has link", text: "has:link", want: []Doc{m4}},
		{name: "has all of", text: "has:file has:image", want: []Doc{m7}},
		{name: "has none", text: "has:link has:file", want: nil},
		{name: "pinned", text: "pinned:true", want: []Doc{m6}},
		{name: "unpinned", text: "pinned:false fox", want: []Doc{m7}},
		{name: "in readable channel", text: "in:secret", want: []Doc{m3}},
		{name: "in unreadable channel", text: "in:secret", readable: readBob, want: nil},
		{name: "in channel by id", text: "in:<#13>", want: []Doc{m4}},
		{name: "before", text: "fox before:2026-01-07", want: []Doc{m6}},
		{name: "after", text: "fox after:2026-01-06", want: []Doc{m7}},
		{name: "during", text: "fox during:2026-01-06", want: []Doc{m6}},
		{name: "during month", text: "boundary during:2026-01", want: []Doc{m11, m10}},
		{name: "rfc3339 instant", text: "fox after:2026-01-06T12:00:00Z", want: []Doc{m7}},
		{name: "min_id exact in one millisecond", params: url.Values{"content": {"boundary"}, "min_id": {u(m10.ID)}}, want: []Doc{m11}},
		{name: "max_id exact in one millisecond", params: url.Values{"content": {"boundary"}, "max_id": {u(m11.ID)}}, want: []Doc{m10}},
		{name: "sort ascending", params: url.Values{"author_id": {"1"}, "sort_order": {"asc"}}, want: []Doc{m1, m3, m7, m10, m11}},
		{name: "paging", params: url.Values{"author_id": {"1"}, "offset": {"1"}, "limit": {"2"}}, want: []Doc{m10, m7}, total: 5},
		{name: "offset past the end", params: url.Values{"author_id": {"1"}, "offset": {"10"}}, want: nil, total: 5},
		{name: "channel_id param", params: url.Values{"channel_id": {"11"}, "content": {"fox"}}, want: []Doc{m7, m6}},
		{name: "content with filters", params: url.Values{"content": {"from:bob fox"}}, want: []Doc{m6}},
		{name: "dm scope", text: "running", dm: true, readable: []uint64{general, dmChannel}, want: []Doc{m12}},
		{name: "many readable channels", text: "running", readable: manyChannels(secret), want: []Doc{m3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var q Query
			var err error
			if tc.params != nil {
				q, err = FromParams(tc.params)
			} else {
				q, err = ParseQuery(tc.text)
			}
			if err != nil {
				t.Fatal(err)
			}
			q.GuildID = guildA
			if tc.dm {
				q.GuildID = 0
			}
			if q.GuildID != 0 {
				if q, err = q.Resolve(context.Background(), testResolver); err != nil {
					t.Fatal(err)
				}
			}
			readable := tc.readable
			if readable == nil && !tc.noRead {
				readable = readAlice
			}
			res, err := ix.Search(context.Background(), q, readable)
			if err != nil {
				t.Fatal(err)
			}
			var want []uint64
			for _, d := range tc.want {
				want = append(want, d.ID)
			}
			if got := ids(res.Hits); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("hits = %s, want %s", fmtIDs(got), fmtIDs(want))
			}
			total := tc.total
			if total == 0 {
				total = len(tc.want)
			}
			if res.Total != total {
				t.Errorf("total = %d, want %d", res.Total, total)
			}
			if res.Partial {
				t.Errorf("partial result")
			}
			for _, h := range res.Hits {
				if !slices.Contains(readable, h.ChannelID) {
					t.Errorf("hit %d in channel %d, not readable", h.ID, h.ChannelID)
				}
			}
		})
	}
}

// manyChannels returns more readable channels than go into the index query,
// including only c of the fixture's.
func manyChannels(c uint64) []uint64 {
	out := []uint64{c}
	for i := range uint64(20) {
		out = append(out, 1000+i)
	}
	return out
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

func TestSearchRelevance(t *testing.T) {
	ix, _ := openTest(t, Options{})
	docs := []Doc{
		{ID: sf(0, 1), ChannelID: general, GuildID: guildA, Content: "fox"},
		{ID: sf(1, 1), ChannelID: general, GuildID: guildA, Content: "a fox and another fox, fox fox"},
		{ID: sf(2, 1), ChannelID: general, GuildID: guildA, Content: "the fox is one word among many words in this long sentence about things"},
	}
	for _, d := range docs {
		if err := ix.Index(d); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, ix)
	q, err := FromParams(url.Values{"content": {"fox"}, "sort_by": {"relevance"}})
	if err != nil {
		t.Fatal(err)
	}
	q.GuildID = guildA
	res, err := ix.Search(context.Background(), q, []uint64{general})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 3 || res.Hits[2].ID != docs[2].ID {
		t.Fatalf("hits = %+v, want the long sentence last", res.Hits)
	}
	for i := 1; i < len(res.Hits); i++ {
		if res.Hits[i].Score > res.Hits[i-1].Score {
			t.Errorf("scores not descending: %+v", res.Hits)
		}
	}
	// Filters do not change scores.
	q.MinID, q.AuthorIDs = docs[0].ID-1, nil
	filtered, err := ix.Search(context.Background(), q, []uint64{general})
	if err != nil {
		t.Fatal(err)
	}
	if len(filtered.Hits) != 3 || filtered.Hits[0].Score != res.Hits[0].Score {
		t.Errorf("scores with a filter %+v, without %+v", filtered.Hits, res.Hits)
	}
}

func TestEditAndDelete(t *testing.T) {
	ix := fixtureIndex(t)
	search := func(text string) []uint64 {
		t.Helper()
		return searchIDs(t, ix, text, readAlice)
	}
	edited := m6
	edited.Content = "slow green turtle"
	if err := ix.Index(edited); err != nil {
		t.Fatal(err)
	}
	if err := ix.Delete(m7.ID); err != nil {
		t.Fatal(err)
	}
	if err := ix.Delete(sf(99, 1)); err != nil { // unknown ID
		t.Fatal(err)
	}
	flush(t, ix)
	if got := search("fox"); len(got) != 0 {
		t.Errorf("fox after edit and delete: %v", got)
	}
	if got := search("turtle"); !slices.Equal(got, []uint64{m6.ID}) {
		t.Errorf("turtle: %v", got)
	}
	if got := search("pinned:true"); !slices.Equal(got, []uint64{m6.ID}) {
		t.Errorf("pinned after edit: %v", got)
	}
	n, err := ix.DocCount()
	if err != nil || n != uint64(len(fixture)-1) {
		t.Errorf("DocCount = %d, %v; want %d", n, err, len(fixture)-1)
	}
}

func TestSearchErrors(t *testing.T) {
	ix := fixtureIndex(t)
	ctx := context.Background()
	q := mustParse(t, "from:alice")
	if _, err := ix.Search(ctx, q, readAlice); !errors.Is(err, ErrUnresolved) {
		t.Errorf("unresolved query: err = %v", err)
	}
	bad := Query{GuildID: guildA, Words: []string{"x"}, Limit: 500}
	if _, err := ix.Search(ctx, bad, readAlice); !errors.Is(err, ErrBadQuery) {
		t.Errorf("limit 500: err = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ix.Search(cancelled, mustParse(t, "fox"), readAlice); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if err := ix.Index(Doc{ChannelID: 1}); err == nil {
		t.Error("Index accepted a zero ID")
	}
}

func TestSearchDeadlineIsPartial(t *testing.T) {
	ix, _ := openTest(t, Options{QueryTimeout: time.Nanosecond})
	for i := range 50 {
		if err := ix.Index(Doc{ID: sf(0, uint64(i+1)), GuildID: guildA, ChannelID: general, Content: "word"}); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, ix)
	res, err := ix.Search(context.Background(), mustParse(t, "word"), []uint64{general})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Partial {
		t.Errorf("result not partial: %+v", res)
	}
}

func TestClosed(t *testing.T) {
	ix, err := Open(t.TempDir(), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := ix.Index(m1); !errors.Is(err, ErrClosed) {
		t.Errorf("Index after Close: %v", err)
	}
	if _, err := ix.Search(context.Background(), mustParse(t, "x"), readAlice); !errors.Is(err, ErrClosed) {
		t.Errorf("Search after Close: %v", err)
	}
	if err := ix.Flush(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v", err)
	}
}

// TestQueriesReadFewDocuments checks SRCH-083: "A node MUST NOT evaluate a query
// by reading every stored message: every query is answered from an index over the
// words, the filters and the time of messages." On an index of 20,000 messages
// over 400 days, each kind of query (words, phrases of rare and of common words,
// each filter alone, dates, both orders, relevance, a deep page) must read the
// stored words of fewer than a tenth of them (only phrases read any, to confirm
// candidates the index cannot decide): the rest is answered from the index's
// posting bitmaps and its columns of message IDs and channels.
func TestQueriesReadFewDocuments(t *testing.T) {
	const days, perDay = 400, 50
	ix, _ := openTest(t, Options{commonDF: 300, waveDocs: 600, QueryTimeout: time.Minute})
	vocab := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"}
	n := 0
	for day := range days {
		for k := range perDay {
			n++
			d := Doc{ID: sf(day, uint64(k+1)), GuildID: guildA, ChannelID: []uint64{general, random}[n%2],
				AuthorID: uint64(1 + n%5), Content: vocab[n%6] + " " + vocab[(n/6)%6] + " " + vocab[(n/36)%6]}
			if k == 7 && day%80 == 40 { // five rare messages, one every 80 days
				d.Content, d.ChannelID, d.AuthorID = "zulu yankee "+d.Content, secret, 9
				d.Mentions, d.Pinned, d.Has = []uint64{8}, true, HasFile
			}
			if err := ix.Index(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush(t, ix)
	readable := []uint64{general, secret, random}
	for _, tc := range []struct {
		name, text string
		params     string // REST form, used instead of text when set
		min        int    // results at least
	}{
		{name: "rare word", text: "zulu", min: 5},
		{name: "common word", text: "alpha", min: 25},
		{name: "common word, oldest first", params: "content=alpha&sort_order=asc", min: 25},
		{name: "common words by relevance", params: "content=alpha+bravo&sort_by=relevance", min: 25},
		{name: "rare word by relevance", params: "content=zulu&sort_by=relevance", min: 5},
		{name: "common word, deep page", params: "content=alpha&offset=8400", min: 25},
		{name: "phrase of rare words", text: `"zulu yankee"`, min: 5},
		{name: "phrase of common words", text: `"alpha bravo"`, min: 25},
		{name: "author", params: "author_id=9", min: 5},
		{name: "channel", params: "channel_id=" + strconv.Itoa(secret), min: 5},
		{name: "mention", params: "mentions=8", min: 5},
		{name: "has", text: "has:file", min: 5},
		{name: "pinned", text: "pinned:true", min: 5},
		{name: "date range", text: "after:2026-03-01 before:2026-03-03", min: 25},
		{name: "everything", text: "during:2026", min: 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q Query
			if tc.params != "" {
				v, err := url.ParseQuery(tc.params)
				if err != nil {
					t.Fatal(err)
				}
				if q, err = FromParams(v); err != nil {
					t.Fatal(err)
				}
				q.GuildID = guildA
			} else {
				q = mustParse(t, tc.text)
			}
			before := ix.cache.storedRead.Load()
			res, err := ix.Search(context.Background(), q, readable)
			if err != nil {
				t.Fatal(err)
			}
			read := ix.cache.storedRead.Load() - before
			t.Logf("%d results of %d; stored words of %d documents read", len(res.Hits), res.Total, read)
			if len(res.Hits) < tc.min || res.Partial {
				t.Fatalf("%d results (partial %v), want at least %d", len(res.Hits), res.Partial, tc.min)
			}
			if read >= int64(n/10) {
				t.Errorf("the query read the stored words of %d of %d documents", read, n)
			}
		})
	}
}
