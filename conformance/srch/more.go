package srch

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var digits = regexp.MustCompile(`\d`)

// SRCH-072: "For a syntax error the message SHOULD give the byte offset in the text
// form."
func syntaxOffset(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	r, _ := search(t, a.Client, g, q("content", `word "unterminated`))
	searchError(t, "unterminated quote", r, "SEARCH_SYNTAX")
	if !digits.Match(r.Body) {
		t.Errorf("syntax error without an offset: %s", r)
	}
}

// SRCH-090: "After an unclean shutdown a node MUST compare its index with its store
// and repair every difference ... without blocking start-up, messaging or search."
// Messages acknowledged just before kill -9 may be missing from the index; after the
// restart they must become searchable, and messaging and search must work meanwhile.
func repairAfterKill(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	ids := sendNumbered(t, a, g.Text, mk+" crash", 8)
	if err := t.Node.Kill(); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("restart: %v", err)
	}
	after := send(t, a, g.Text, mk+" after restart")
	expect(t, a, g, q("content", mk), false, append(ids, after)...)
}

// SRCH-080: "A node MUST bound the time a search may take." SRCH-081: "A search that
// reaches the bound MUST stop and return the results found so far with "partial":
// true rather than fail." SRCH-061: "partial": true when the results may be
// incomplete. The node runs with a bound of 1 ns (--search-timeout): every kind of
// query must answer 200 with either all the matching messages (once they are
// indexed) or "partial": true, never other messages, and a total_results that counts
// at least what it returned; and at least one of them must show that the bound cut it.
func timeBound(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	want := map[string]bool{}
	for i := range 5 {
		want[send(t, a, g.Text, fmt.Sprintf("%s bound words %d", mk, i))] = true
	}
	cut := 0
	for _, query := range []string{
		q("content", mk),
		q("content", mk+" words", "sort_by", "relevance"),
		q("content", `"`+mk+` bound"`),
		q("author_id", a.ID, "channel_id", g.Text),
	} {
		t.Eventually("search "+query+" under a 1 ns bound answers all 5 messages or \"partial\": true", func() error {
			r, res := search(t, a.Client, g, query)
			if r.Status != 200 {
				return harness.Permanent(fmt.Errorf("expected 200 with partial results, got %s", r))
			}
			ids := res.ids()
			for _, id := range ids {
				if !want[id] {
					return harness.Permanent(fmt.Errorf("returned %s, which does not match: %s", id, r))
				}
			}
			if res.Total < len(ids) {
				return harness.Permanent(fmt.Errorf("total_results %d below the %d results returned: %s", res.Total, len(ids), r))
			}
			switch {
			case res.Partial != nil && *res.Partial:
				cut++
			case len(ids) < len(want) || res.Total != len(want):
				return fmt.Errorf("incomplete and not flagged partial: %s", r)
			}
			return nil
		})
	}
	if cut == 0 {
		t.Errorf("no search was cut by a 1 ns bound: every one answered complete results without \"partial\": true")
	}
}

// SRCH-091: "A node SHOULD report repair progress in its log and in its metrics
// (hearth_search_repair_progress_ratio)." After kill -9 and a restart (which makes
// the node repair its index) the log must name the repair and GET /metrics must
// carry the gauge.
func repairReported(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	send(t, a, g.Text, marker()+" before the crash")
	logged := t.Node.LogOffset()
	if err := t.Node.Kill(); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Eventually("the log reports the index repair", func() error {
		if !repairLine.MatchString(t.Node.LogSince(logged)) {
			return fmt.Errorf("since the restart, no log line names a search index repair with its progress")
		}
		return nil
	})
	resp, err := http.Get(t.Node.BaseURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if !metricLine.Match(body) {
		t.Errorf("GET /metrics (%d) has no hearth_search_repair_progress_ratio sample", resp.StatusCode)
	}
}

var (
	repairLine = regexp.MustCompile(`(?i)repair.*\d`)
	metricLine = regexp.MustCompile(`(?m)^hearth_search_repair_progress_ratio(\{[^}]*\})? [0-9.e+-]+$`)
)

// SRCH-093: "An administrator MUST be able to rebuild the index from the store
// (hearth admin reindex), with progress reported as messages done and total." The
// node is stopped, `BINARY admin reindex --data-dir DIR` must exit 0 and print
// "done/total" with the number of messages, and after a restart the messages are
// found.
func adminReindex(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	mk := marker()
	ids := sendNumbered(t, a, g.Text, mk+" reindexed", 3)
	expect(t, a, g, q("content", mk), false, ids...)
	if err := t.Node.Terminate(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-t.Node.Exited():
	case <-t.Ctx.Done():
		t.Fatalf("the node did not exit on SIGTERM")
	}
	out, err := exec.CommandContext(t.Ctx, t.Node.Binary(), "admin", "reindex", "--data-dir", t.Node.DataDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("admin reindex: %v\n%s", err, out)
	}
	if m := progressLine.FindAllSubmatch(out, -1); len(m) == 0 || string(m[len(m)-1][1]) != string(m[len(m)-1][2]) {
		t.Errorf("admin reindex reported no final progress as done/total:\n%s", out)
	}
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("restart: %v", err)
	}
	expect(t, a, g, q("content", mk), false, ids...)
}

var progressLine = regexp.MustCompile(`(\d+)/(\d+)`)

// SRCH-044: "Sending a message MUST NOT wait for indexing." A search sent right
// after the message was acknowledged that does not find it, followed by one that
// does, shows that the acknowledgement came before the indexing. A node that
// indexes fast enough may always be found at once, which proves nothing either
// way: after five such rounds the test is skipped, never passed or failed.
func sendDoesNotWait(t *T) {
	a := t.NewUser()
	g := t.NewGuild(a)
	for range 5 {
		mk := marker()
		id := send(t, a, g.Text, mk+" fresh")
		r, res := search(t, a.Client, g, q("content", mk))
		if r.Status != 200 {
			t.Fatalf("search right after the send: expected 200, got %s", r)
		}
		if len(res.ids()) == 0 {
			expect(t, a, g, q("content", mk), false, id)
			return
		}
	}
	t.Skipf("each of 5 messages was found by a search sent right after it was acknowledged: whether sending waits for indexing cannot be told")
}
