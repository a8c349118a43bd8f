package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/hearth-chat/hearth/conformance/runner"
)

// ReadJSONL reads results written by WriteJSONL.
func ReadJSONL(r io.Reader) ([]runner.Result, error) {
	var out []runner.Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var res runner.Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("report: baseline line %d: %w", n, err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: baseline: %w", err)
	}
	return out, nil
}

// Diff compares a run with a baseline, by test name.
type Diff struct {
	// New are tests failing now that passed, were skipped or did not exist in the
	// baseline: regressions.
	New []string
	// Fixed are tests failing in the baseline that pass now.
	Fixed []string
	// Known are tests failing in both.
	Known []string
}

// Compare diffs results against baseline.
func Compare(baseline, results []runner.Result) Diff {
	was := map[string]runner.Status{}
	for _, r := range baseline {
		was[r.Name] = r.Status
	}
	var d Diff
	for _, r := range results {
		switch {
		case r.Status == runner.Fail && was[r.Name] == runner.Fail:
			d.Known = append(d.Known, r.Name)
		case r.Status == runner.Fail:
			d.New = append(d.New, r.Name)
		case r.Status == runner.Pass && was[r.Name] == runner.Fail:
			d.Fixed = append(d.Fixed, r.Name)
		}
	}
	sort.Strings(d.New)
	sort.Strings(d.Fixed)
	sort.Strings(d.Known)
	return d
}

// Write prints the diff.
func (d Diff) Write(w io.Writer) {
	for _, n := range d.New {
		fmt.Fprintf(w, "NEW FAILURE  %s\n", n)
	}
	for _, n := range d.Fixed {
		fmt.Fprintf(w, "FIXED        %s\n", n)
	}
	fmt.Fprintf(w, "baseline: %d new failures, %d fixed, %d known failures\n", len(d.New), len(d.Fixed), len(d.Known))
}
