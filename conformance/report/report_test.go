package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hearth-chat/hearth/conformance/runner"
	"github.com/hearth-chat/hearth/conformance/spec"
)

func TestBuild(t *testing.T) {
	set := spec.NewSet([]spec.Requirement{
		{ID: "A-001", Level: spec.Must}, {ID: "A-002", Level: spec.Should},
		{ID: "A-003", Level: spec.Must}, {ID: "A-004", Level: spec.Unmarked},
		{ID: "A-005", Level: spec.Must}, {ID: "A-006", Level: spec.Must},
		{ID: "A-007", Level: spec.Must, Class: spec.Client},
		{ID: "A-008", Level: spec.Must, Class: spec.Implementation, CheckedBy: "node/x TestY"},
	})
	results := []runner.Result{
		{Name: "t1", IDs: []string{"A-001", "A-002"}, Status: runner.Pass},
		{Name: "t2", IDs: []string{"A-002"}, Status: runner.Fail, Failures: []string{"expected 1, got 2"}},
		{Name: "t3", IDs: []string{"A-004"}, Status: runner.Fail, Failures: []string{"x"}},
		{Name: "t4", IDs: []string{"A-005", "Z-999"}, Status: runner.Skip, Reason: "needs --binary"},
	}
	rep := Build(set, results, map[string]string{"A-003": "not observable", "Y-001": "gone"})
	want := map[string]runner.Status{"A-001": runner.Pass, "A-002": runner.Fail, "A-003": runner.NotCovered,
		"A-004": runner.Fail, "A-005": runner.Skip, "A-006": runner.NotCovered, "A-007": Client, "A-008": UnitTested}
	for _, r := range rep.Requirements {
		if r.Status != want[r.ID] {
			t.Errorf("%s: %s, want %s", r.ID, r.Status, want[r.ID])
		}
	}
	if c := rep.Counts; c.Passed != 1 || c.Failed != 2 || c.Skipped != 1 || c.NotCovered != 2 || c.MustFailed != 1 || c.Client != 1 || c.UnitTested != 1 {
		t.Errorf("counts = %+v", c)
	}
	if strings.Join(rep.Unknown, ",") != "Y-001,Z-999" {
		t.Errorf("unknown = %v", rep.Unknown)
	}
	var buf bytes.Buffer
	if err := rep.WriteLines(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if got := lines[len(lines)-1]; got != "1 passed, 2 failed, 3 skipped" {
		t.Errorf("last line = %q", got)
	}
	if got, want := lines[len(lines)-2], "coverage: 3 of 5 node MUST requirements have a test (60%); not counted: 1 client MUSTs (out of scope for nodes), 1 implementation MUSTs (checked by unit tests); 4 of 6 node requirements in all (67%)"; got != want {
		t.Errorf("coverage line = %q, want %q", got, want)
	}
	if !strings.Contains(buf.String(), "expected 1, got 2") || !strings.Contains(buf.String(), "not observable") ||
		!strings.Contains(buf.String(), "UNIT-TESTED A-008") || !strings.Contains(buf.String(), "node/x TestY") {
		t.Errorf("lines lack details:\n%s", buf.String())
	}
	buf.Reset()
	if err := rep.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "### A-002") || !strings.Contains(buf.String(), "Not counted, client requirements (spec/README.md): A-007.") {
		t.Errorf("markdown lacks the failure section:\n%s", buf.String())
	}
}

func TestBaselineRoundTrip(t *testing.T) {
	base := []runner.Result{
		{Name: "a", Status: runner.Fail}, {Name: "b", Status: runner.Pass}, {Name: "c", Status: runner.Fail},
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, base); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSONL(&buf)
	if err != nil || len(got) != 3 {
		t.Fatalf("ReadJSONL = %v, %v", got, err)
	}
	now := []runner.Result{
		{Name: "a", Status: runner.Fail}, {Name: "b", Status: runner.Fail}, {Name: "c", Status: runner.Pass},
		{Name: "d", Status: runner.Fail},
	}
	d := Compare(got, now)
	if strings.Join(d.New, ",") != "b,d" || strings.Join(d.Fixed, ",") != "c" || strings.Join(d.Known, ",") != "a" {
		t.Fatalf("diff = %+v", d)
	}
}

func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"test":"a","ids":["X-001"],"status":"fail"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ReadJSONL(bytes.NewReader(data))
	})
}
