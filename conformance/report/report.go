// Package report turns test results into a per-requirement report: text lines,
// report.json, report.md and JSON lines, and compares a run with a baseline.
package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/hearth-chat/hearth/conformance/runner"
	"github.com/hearth-chat/hearth/conformance/spec"
)

// Requirement is one spec requirement with its outcome.
type Requirement struct {
	spec.Requirement
	Status runner.Status `json:"status"`
	// Tests names the tests that check it.
	Tests []string `json:"tests,omitempty"`
	// Failures holds "test: expected …, got …" for each failure.
	Failures []string `json:"failures,omitempty"`
	// Reason explains a skip or a not-covered requirement.
	Reason string `json:"reason,omitempty"`
}

// Statuses of requirements outside the node class (spec/README.md) that no test
// checks: a client requirement is out of scope for a node, an implementation
// requirement is checked by the implementation's unit tests.
const (
	Client     runner.Status = "client"
	UnitTested runner.Status = "unit-tested"
)

// Counts summarise a report.
type Counts struct {
	Passed     int `json:"passed"`
	Failed     int `json:"failed"`
	Skipped    int `json:"skipped"`
	NotCovered int `json:"not_covered"`
	// Client and UnitTested count the requirements of those statuses; they are
	// outside the passed, failed and skipped counts and the coverage figure.
	Client     int `json:"client"`
	UnitTested int `json:"unit_tested"`
	// MustFailed counts failed requirements of level MUST or UNMARKED.
	MustFailed int `json:"must_failed"`
}

// Report is the whole outcome of a run.
type Report struct {
	Target       string          `json:"target"`
	Started      time.Time       `json:"started"`
	Duration     time.Duration   `json:"duration_ns"`
	Requirements []Requirement   `json:"requirements"`
	Tests        []runner.Result `json:"tests"`
	Counts       Counts          `json:"counts"`
	// Unknown lists requirement IDs named by tests or the uncovered list that the
	// spec does not define.
	Unknown []string `json:"unknown,omitempty"`
	// Coverage per level of node requirements: covered (has a test) over total.
	Coverage map[spec.Level][2]int `json:"coverage"`
	// Excluded counts, per level, the requirements of other classes without a
	// test, which the coverage leaves out.
	Excluded map[spec.Class]map[spec.Level]int `json:"excluded,omitempty"`
}

// Fatal reports whether a requirement failure makes the run fail: MUST, and
// tagged sentences without a keyword, which the spec README makes normative.
func Fatal(l spec.Level) bool { return l == spec.Must || l == spec.Unmarked }

// Build combines the spec, the results and the uncovered list (ID -> reason).
func Build(set *spec.Set, results []runner.Result, uncovered map[string]string) *Report {
	rep := &Report{Tests: results, Coverage: map[spec.Level][2]int{}, Excluded: map[spec.Class]map[spec.Level]int{}}
	byID := map[string][]runner.Result{}
	unknown := map[string]bool{}
	for _, r := range results {
		for _, id := range r.IDs {
			byID[id] = append(byID[id], r)
			if _, ok := set.Get(id); !ok {
				unknown[id] = true
			}
		}
	}
	for id := range uncovered {
		if _, ok := set.Get(id); !ok {
			unknown[id] = true
		}
	}
	for id := range unknown {
		rep.Unknown = append(rep.Unknown, id)
	}
	sort.Strings(rep.Unknown)

	for _, sr := range set.List {
		req := Requirement{Requirement: sr}
		rs := byID[sr.ID]
		if len(rs) == 0 && sr.Class != spec.Node && sr.Class != "" {
			if rep.Excluded[sr.Class] == nil {
				rep.Excluded[sr.Class] = map[spec.Level]int{}
			}
			rep.Excluded[sr.Class][sr.Level]++
			req.Status, req.Reason = Client, "a rule for clients: out of scope for nodes"
			if sr.Class == spec.Implementation {
				req.Status, req.Reason = UnitTested, "an implementation requirement, checked by unit tests: "+sr.CheckedBy
				rep.Counts.UnitTested++
			} else {
				rep.Counts.Client++
			}
			rep.Requirements = append(rep.Requirements, req)
			continue
		}
		cov := rep.Coverage[sr.Level]
		cov[1]++
		if len(rs) > 0 {
			cov[0]++
		}
		rep.Coverage[sr.Level] = cov
		var passed, skipped int
		for _, r := range rs {
			req.Tests = append(req.Tests, r.Name)
			switch r.Status {
			case runner.Pass:
				passed++
			case runner.Skip:
				skipped++
				if req.Reason == "" {
					req.Reason = r.Reason
				}
			case runner.Fail:
				for _, f := range r.Failures {
					req.Failures = append(req.Failures, r.Name+": "+f)
				}
			}
		}
		switch {
		case len(rs) == 0:
			req.Status = runner.NotCovered
			req.Reason = uncovered[sr.ID]
			if req.Reason == "" {
				req.Reason = "no test and not listed in conformance/uncovered.txt"
			}
		case len(req.Failures) > 0:
			req.Status = runner.Fail
		case passed > 0:
			req.Status = runner.Pass
			req.Reason = ""
		default:
			req.Status = runner.Skip
		}
		switch req.Status {
		case runner.Pass:
			rep.Counts.Passed++
		case runner.Fail:
			rep.Counts.Failed++
			if Fatal(sr.Level) {
				rep.Counts.MustFailed++
			}
		case runner.Skip:
			rep.Counts.Skipped++
		case runner.NotCovered:
			rep.Counts.NotCovered++
		}
		rep.Requirements = append(rep.Requirements, req)
	}
	return rep
}

// Row is the one-line form of a requirement's outcome.
func (r Requirement) Row() string {
	s := fmt.Sprintf("%-11s %-10s %-8s %s:%d", strings.ToUpper(string(r.Status)), r.ID, r.Level, r.Doc, r.Line)
	switch {
	case r.Status == runner.Fail && len(r.Failures) > 0:
		s += "  " + oneLine(r.Failures[0])
	case r.Reason != "":
		s += "  (" + oneLine(r.Reason) + ")"
	}
	return s
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 240 {
		s = s[:240] + "…"
	}
	return s
}

// Summary is the closing line: "N passed, N failed, N skipped".
func (rep *Report) Summary() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", rep.Counts.Passed, rep.Counts.Failed,
		rep.Counts.Skipped+rep.Counts.NotCovered)
}

// CoverageLine says how many node MUST requirements (unmarked ones included,
// since the suite treats them as MUST) have a test, which other classes it leaves
// out, and how many node requirements in all have a test.
func (rep *Report) CoverageLine() string {
	var must, mustAll, all, total int
	for l, c := range rep.Coverage {
		if l == spec.Withdrawn {
			continue
		}
		all += c[0]
		total += c[1]
		if l == spec.Must || l == spec.Unmarked {
			must += c[0]
			mustAll += c[1]
		}
	}
	pct := func(a, b int) float64 { return 100 * float64(a) / float64(max(b, 1)) }
	line := fmt.Sprintf("coverage: %d of %d node MUST requirements have a test (%.0f%%)", must, mustAll, pct(must, mustAll))
	var out []string
	for _, c := range []struct {
		class spec.Class
		what  string
	}{{spec.Client, "client MUSTs (out of scope for nodes)"}, {spec.Implementation, "implementation MUSTs (checked by unit tests)"}} {
		if n := rep.Excluded[c.class][spec.Must] + rep.Excluded[c.class][spec.Unmarked]; n > 0 {
			out = append(out, fmt.Sprintf("%d %s", n, c.what))
		}
	}
	if len(out) > 0 {
		line += "; not counted: " + strings.Join(out, ", ")
	}
	return line + fmt.Sprintf("; %d of %d node requirements in all (%.0f%%)", all, total, pct(all, total))
}

// WriteLines prints one line per requirement, the coverage, then the summary.
func (rep *Report) WriteLines(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, r := range rep.Requirements {
		fmt.Fprintln(bw, r.Row())
	}
	for _, id := range rep.Unknown {
		fmt.Fprintf(bw, "UNKNOWN     %-10s named by a test or uncovered.txt but not defined in spec/\n", id)
	}
	fmt.Fprintf(bw, "(%d not covered count as skipped; %d MUST failures; %d client requirements and %d unit-tested implementation requirements are not counted)\n",
		rep.Counts.NotCovered, rep.Counts.MustFailed, rep.Counts.Client, rep.Counts.UnitTested)
	fmt.Fprintln(bw, rep.CoverageLine())
	fmt.Fprintln(bw, rep.Summary())
	return bw.Flush()
}

// WriteJSON writes the report as one JSON document.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("report: json: %w", err)
	}
	return nil
}

// WriteJSONL writes one JSON object per test (test, ids, status, failures…).
func WriteJSONL(w io.Writer, results []runner.Result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("report: jsonl: %w", err)
		}
	}
	return nil
}

// WriteMarkdown writes report.md: summary, coverage, failures, then every
// requirement in a table.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	p("# Hearth conformance report\n\n")
	p("Target: `%s`, started %s, took %s.\n\n", rep.Target, rep.Started.UTC().Format(time.RFC3339), rep.Duration.Round(time.Second))
	p("**%s** (%d not covered, counted as skipped; %d failures of MUST requirements).\n\n", rep.Summary(), rep.Counts.NotCovered, rep.Counts.MustFailed)
	p("## Coverage\n\n%s.\n\n| level | requirements | with a test |\n|---|---|---|\n", strings.TrimPrefix(rep.CoverageLine(), "coverage: "))
	for _, l := range []spec.Level{spec.Must, spec.Unmarked, spec.Should, spec.May, spec.Withdrawn} {
		c, ok := rep.Coverage[l]
		if !ok {
			continue
		}
		p("| %s | %d | %d (%.0f%%) |\n", l, c[1], c[0], 100*float64(c[0])/float64(max(c[1], 1)))
	}
	p("\nUNMARKED: the sentence carrying the tag has no RFC 2119 keyword; the suite treats it as MUST.\n")
	for _, c := range []spec.Class{spec.Client, spec.Implementation} {
		if len(rep.Excluded[c]) == 0 {
			continue
		}
		var ids []string
		for _, r := range rep.Requirements {
			if r.Class == c && len(r.Tests) == 0 {
				ids = append(ids, r.ID)
			}
		}
		p("\nNot counted, %s requirements (spec/README.md): %s.\n", c, strings.Join(ids, ", "))
	}
	p("\n## Failures\n\n")
	any := false
	for _, r := range rep.Requirements {
		if r.Status != runner.Fail {
			continue
		}
		any = true
		p("### %s (%s, %s:%d)\n\n> %s\n\n", r.ID, r.Level, r.Doc, r.Line, r.Text)
		for _, f := range r.Failures {
			p("- %s\n", mdEscape(oneLineLong(f)))
		}
		p("\n")
	}
	if !any {
		p("None.\n\n")
	}
	if len(rep.Unknown) > 0 {
		p("## Unknown IDs\n\nNamed by tests or uncovered.txt, not defined in spec/: %s\n\n", strings.Join(rep.Unknown, ", "))
	}
	p("## All requirements\n\n| ID | level | status | where | tests / reason |\n|---|---|---|---|---|\n")
	for _, r := range rep.Requirements {
		detail := strings.Join(r.Tests, "; ")
		if r.Reason != "" {
			if detail != "" {
				detail += " — "
			}
			detail += r.Reason
		}
		p("| %s | %s | %s | %s:%d | %s |\n", r.ID, r.Level, r.Status, r.Doc, r.Line, mdEscape(oneLine(detail)))
	}
	return bw.Flush()
}

func oneLineLong(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1000 {
		s = s[:1000] + "…"
	}
	return s
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
