package conformance

import (
	"sort"
	"testing"

	"github.com/hearth-chat/hearth/conformance/spec"
)

// TestCoverage fails on drift between spec/ and the suite: a requirement with no
// test that is not listed in uncovered.txt, a test or list entry naming an ID the
// spec does not define, or an ID both tested and listed as uncovered.
func TestCoverage(t *testing.T) {
	set, err := spec.LoadDir("../spec")
	if err != nil {
		t.Fatal(err)
	}
	uncovered, err := Uncovered()
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string][]string{}
	names := map[string]bool{}
	for _, tc := range Tests() {
		if tc.Name == "" || names[tc.Name] {
			t.Errorf("test name %q is empty or not unique", tc.Name)
		}
		names[tc.Name] = true
		if len(tc.IDs) == 0 {
			t.Errorf("test %s names no requirement", tc.Name)
		}
		for _, id := range tc.IDs {
			tested[id] = append(tested[id], tc.Name)
			if _, ok := set.Get(id); !ok {
				t.Errorf("test %s names %s, which spec/ does not define", tc.Name, id)
			}
		}
	}
	for id := range uncovered {
		if _, ok := set.Get(id); !ok {
			t.Errorf("uncovered.txt lists %s, which spec/ does not define (remove the line)", id)
		}
		if tests, ok := tested[id]; ok {
			t.Errorf("uncovered.txt lists %s, but %v test it (remove the line)", id, tests)
		}
	}
	var missing []string
	for _, r := range set.List {
		if r.Level == spec.Withdrawn {
			continue
		}
		if _, ok := tested[r.ID]; !ok {
			if _, ok := uncovered[r.ID]; !ok {
				missing = append(missing, r.ID+" ("+r.Doc+")")
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("requirements with no test and not listed in uncovered.txt: %v", missing)
	}

	var must, mustTested int
	for _, r := range set.List {
		if r.Level == spec.Must || r.Level == spec.Unmarked {
			must++
			if _, ok := tested[r.ID]; ok {
				mustTested++
			}
		}
	}
	t.Logf("%d requirements, %d tested; MUST (incl. unmarked): %d of %d tested", len(set.List), len(tested), mustTested, must)
}

func TestParseUncovered(t *testing.T) {
	good := "# comment\n\nCAPI-012  not observable\nFED-001 needs a peer\n"
	m, err := ParseUncovered(good)
	if err != nil || len(m) != 2 || m["CAPI-012"] != "not observable" {
		t.Fatalf("ParseUncovered = %v, %v", m, err)
	}
	for _, bad := range []string{"CAPI-012\n", "capi-012 reason\n", "CAPI-012 a\nCAPI-012 b\n", "CAPI-12 reason\n"} {
		if _, err := ParseUncovered(bad); err == nil {
			t.Errorf("ParseUncovered(%q) accepted", bad)
		}
	}
}
