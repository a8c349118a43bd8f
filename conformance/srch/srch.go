// Package srch holds the conformance tests of spec/search.md (prefix SRCH):
// the guild message search route, its text form, matching, access control,
// ordering, paging and errors. Each test makes its own users, guild and
// messages, and waits for indexing by polling, never by sleeping.
package srch

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/hearth-chat/hearth/conformance/harness"
)

type (
	// T is the test context.
	T = harness.T
	// Obj is a decoded JSON object.
	Obj = harness.Obj
)

var str = harness.Str

// Tests are the search tests, in a stable order.
var Tests = []harness.Test{
	{IDs: []string{"SRCH-001"}, Name: "search/members-only", Run: membersOnly},
	{IDs: []string{"SRCH-002", "SRCH-003"}, Name: "search/unknown-and-repeated-params", Run: params},
	{IDs: []string{"SRCH-004", "SRCH-052", "SRCH-070", "SRCH-071"}, Name: "search/invalid-values", Run: invalidValues},
	{IDs: []string{"SRCH-005", "SRCH-014", "SRCH-015", "SRCH-017", "SRCH-020"}, Name: "search/filters-in-text", Run: filtersInText},
	{IDs: []string{"SRCH-011", "SRCH-013"}, Name: "search/text-form-words", Run: textFormWords},
	{IDs: []string{"SRCH-012"}, Name: "search/quote-escapes", Run: quoteEscapes},
	{IDs: []string{"SRCH-018"}, Name: "search/dates", Run: dates},
	{IDs: []string{"SRCH-030", "SRCH-031"}, Name: "search/analysis", Run: analysis},
	{IDs: []string{"SRCH-032", "SRCH-033"}, Name: "search/phrases", Run: phrases},
	{IDs: []string{"SRCH-034"}, Name: "search/no-wildcards", Run: noWildcards},
	{IDs: []string{"SRCH-040", "SRCH-041", "SRCH-042"}, Name: "search/access-control", Run: accessControl},
	{IDs: []string{"SRCH-043", "SRCH-045", "SRCH-046"}, Name: "search/freshness", Run: freshness},
	{IDs: []string{"SRCH-044"}, Name: "search/send-does-not-wait", Run: sendDoesNotWait},
	{IDs: []string{"SRCH-050", "SRCH-054"}, Name: "search/order-and-paging", Run: orderPaging},
	{IDs: []string{"SRCH-051", "SRCH-053"}, Name: "search/relevance", Run: relevance},
	{IDs: []string{"SRCH-060"}, Name: "search/response-shape", Run: responseShape},
	{IDs: []string{"SRCH-072"}, Name: "search/syntax-error-offset", Run: syntaxOffset},
	{IDs: []string{"SRCH-061", "SRCH-080", "SRCH-081"}, Name: "search/time-bound",
		Needs: harness.Needs{OwnNode: true, Managed: true, Args: []string{"--search-timeout", "1ns"}}, Run: timeBound},
	{IDs: []string{"SRCH-091"}, Name: "search/repair-progress-reported", Needs: harness.Needs{OwnNode: true, Managed: true}, Run: repairReported},
	{IDs: []string{"SRCH-093"}, Name: "search/admin-reindex", Needs: harness.Needs{OwnNode: true, Managed: true}, Run: adminReindex},
	{IDs: []string{"SRCH-090"}, Name: "search/repair-after-kill-9", Needs: harness.Needs{OwnNode: true, Managed: true}, Run: repairAfterKill},
}

// result is a decoded search answer.
type result struct {
	Total    int     `json:"total_results"`
	Messages [][]Obj `json:"messages"`
	Partial  *bool   `json:"partial"`
}

func (r result) ids() []string {
	var out []string
	for _, m := range r.Messages {
		if len(m) > 0 {
			out = append(out, str(m[0]["id"]))
		}
	}
	return out
}

// search runs a query (raw query string) with client c in g.
func search(t *T, c *harness.Client, g *harness.Guild, query string) (*harness.Response, result) {
	r := t.Call(c, "GET", "/guilds/"+g.ID+"/messages/search?"+query, nil)
	var res result
	if r.Status == 200 {
		if err := r.JSON(&res); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return r, res
}

// expect polls until the query returns exactly want (in any order unless
// ordered), within the test timeout: indexing is asynchronous (SRCH-044).
func expect(t *T, u *harness.User, g *harness.Guild, query string, ordered bool, want ...string) result {
	var last result
	var lastResp *harness.Response
	err := harness.Eventually(t.Ctx, t.Timeout(), func() error {
		r, res := search(t, u.Client, g, query)
		lastResp, last = r, res
		if r.Status != 200 {
			return harness.Permanent(fmt.Errorf("expected 200, got %s", r))
		}
		got := res.ids()
		w := slices.Clone(want)
		if !ordered {
			slices.Sort(got)
			slices.Sort(w)
		}
		if !slices.Equal(got, w) {
			return fmt.Errorf("got %v, expected %v", res.ids(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("search %q: %v (last answer: %v)", query, err, lastResp)
	}
	return last
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func send(t *T, u *harness.User, channel, content string) string {
	return str(t.Send(u, channel, content)["id"])
}

// sendNumbered sends n messages "prefix 0" … "prefix n-1" to a channel and returns
// their IDs in that order.
func sendNumbered(t *T, u *harness.User, channel, prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = send(t, u, channel, fmt.Sprintf("%s %d", prefix, i))
	}
	return ids
}

// marker is a word unique to one test, so that results never mix across tests
// even against a shared node.
func marker() string { return "mk" + strings.TrimPrefix(harness.RandName(), "cf_") }

// searchError checks a 400 with the form error body and one of the codes.
func searchError(t *T, what string, r *harness.Response, codes ...string) {
	body := t.ErrorBody(r, 400, 50035)
	if body == nil {
		t.Errorf("(%s)", what)
		return
	}
	if len(codes) == 0 {
		return
	}
	for _, c := range codes {
		if strings.Contains(string(r.Body), `"`+c+`"`) {
			return
		}
	}
	t.Errorf("%s: expected error code %v, got %s", what, codes, r)
}
