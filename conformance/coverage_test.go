package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
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
		if r, ok := set.Get(id); ok && r.Class != spec.Node {
			t.Errorf("uncovered.txt lists %s, which spec/README.md classes as %s (remove the line)", id, r.Class)
		}
	}
	for _, r := range set.List {
		if r.Class == spec.Implementation {
			checkUnitTests(t, r)
		}
	}
	var missing []string
	for _, r := range set.List {
		if r.Level == spec.Withdrawn {
			continue
		}
		if _, ok := tested[r.ID]; !ok && r.Class == spec.Node {
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
	other := map[spec.Class]int{}
	for _, r := range set.List {
		if r.Level != spec.Must && r.Level != spec.Unmarked {
			continue
		}
		_, ok := tested[r.ID]
		switch {
		case r.Class == spec.Node || ok:
			must++
			if ok {
				mustTested++
			}
		default:
			other[r.Class]++
		}
	}
	t.Logf("%d requirements, %d tested; node MUST (incl. unmarked): %d of %d tested; not counted: %d client and %d implementation MUSTs",
		len(set.List), len(tested), mustTested, must, other[spec.Client], other[spec.Implementation])
}

// checkUnitTests fails unless every unit test an implementation requirement names
// ("node/media TestA, TestB (note)") is a test function in that package.
func checkUnitTests(t *testing.T, r spec.Requirement) {
	pkg, rest, _ := strings.Cut(r.CheckedBy, " ")
	rest, _, _ = strings.Cut(rest, "(")
	names := testName.FindAllString(rest, -1)
	if len(names) == 0 {
		t.Errorf("%s: spec/README.md names no unit test (%q)", r.ID, r.CheckedBy)
	}
	files, _ := filepath.Glob(filepath.Join("..", pkg, "*_test.go"))
	var src []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	for _, name := range names {
		if !strings.Contains(string(src), "func "+name+"(t *testing.T)") {
			t.Errorf("%s: spec/README.md names %s in %s, which is not a test there", r.ID, name, pkg)
		}
	}
}

var testName = regexp.MustCompile(`\bTest\w+`)

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
