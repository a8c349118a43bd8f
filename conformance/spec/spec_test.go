package spec

import (
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const doc = "# Title [XX-999]\n" +
		"Intro with an example `[CAPI-012]` in a code span.\n\n" +
		"- A node MUST encode every ID as a string\n" +
		"  [CAPI-003] and MUST accept numbers [CAPI-004].\n" +
		"- Names are 2–100 characters [CAPI-043].\n" +
		"- A receiver MUST reject bad input, and\n" +
		"  so on. [EVT-002]\n" +
		"- Clients SHOULD retry. Servers MAY cache [CAPI-200].\n" +
		"- Old rule, withdrawn [CAPI-201].\n" +
		"\n```json\n{\"x\": \"[CAPI-300]\"}\n```\n" +
		"| 4001 | unknown opcode | a frame has an op the client must not send [CAPI-141] |\n" +
		"A node SHOULD log [CAPI-202]. A node MAY also [CAPI-203].\n"
	got, err := Parse("t.md", strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id    string
		level Level
		line  int
	}{
		{"XX-999", Unmarked, 1},
		{"CAPI-003", Must, 5},
		{"CAPI-004", Must, 5},
		{"CAPI-043", Unmarked, 6},
		{"EVT-002", Must, 8},
		{"CAPI-200", May, 9},
		{"CAPI-201", Withdrawn, 10},
		{"CAPI-141", Unmarked, 15},
		{"CAPI-202", Should, 16},
		{"CAPI-203", May, 16},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d requirements, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.id || g.Level != w.level || g.Line != w.line {
			t.Errorf("req %d = %s %s line %d (%q), want %s %s line %d", i, g.ID, g.Level, g.Line, g.Text, w.id, w.level, w.line)
		}
	}
	if !strings.HasPrefix(got[4].Text, "A receiver MUST reject") {
		t.Errorf("EVT-002 text = %q", got[4].Text)
	}
}

func TestNewSetReferences(t *testing.T) {
	occ := []Requirement{
		{ID: "EVT-001", Doc: "a.md", Line: 1}, // reference before the definition
		{ID: "FED-001", Doc: "a.md", Line: 2},
		{ID: "FED-002", Doc: "a.md", Line: 3},
		{ID: "EVT-001", Doc: "b.md", Line: 1}, // definition
		{ID: "EVT-002", Doc: "b.md", Line: 2},
		{ID: "EVT-001", Doc: "b.md", Line: 3}, // reference in the same document
		{ID: "FED-003", Doc: "b.md", Line: 4}, // only occurrence, outside its owner
	}
	s := NewSet(occ)
	var got []string
	for _, r := range s.List {
		got = append(got, fmt.Sprintf("%s@%s:%d", r.ID, r.Doc, r.Line))
	}
	want := "FED-001@a.md:2 FED-002@a.md:3 EVT-001@b.md:1 EVT-002@b.md:2 FED-003@b.md:4"
	if strings.Join(got, " ") != want {
		t.Fatalf("List = %v, want %s", got, want)
	}
	if r, ok := s.Get("EVT-001"); !ok || r.Doc != "b.md" || r.Line != 1 {
		t.Fatalf("Get(EVT-001) = %+v", r)
	}
}

func TestLoadRepoSpec(t *testing.T) {
	s, err := LoadDir("../../spec")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.List) == 0 {
		t.Fatal("no requirements found in ../../spec")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("- A MUST b [X-001]. c [Y-002]\n| a | b [Z-003] |\n```\n[Q-004]\n")
	f.Add("`[A-001]` [B-002]. [C-003]")
	f.Fuzz(func(t *testing.T, doc string) {
		reqs, err := Parse("f.md", strings.NewReader(doc))
		if err != nil {
			return
		}
		for _, r := range reqs {
			if !tagRE.MatchString("[" + r.ID + "]") {
				t.Fatalf("bad id %q", r.ID)
			}
			if !strings.Contains(r.Text, "["+r.ID+"]") {
				t.Fatalf("text %q does not carry its tag %s", r.Text, r.ID)
			}
		}
	})
}

func TestParseClasses(t *testing.T) {
	good := "| requirement | class | checked by |\n|---|---|---|\n" +
		"| SRCH-016 | client | |\n| VOICE-013 | implementation | voice/token TestNew |\n| CAPI-001 | node | |\n"
	got, err := ParseClasses(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["SRCH-016"].Class != Client || got["VOICE-013"].CheckedBy != "voice/token TestNew" {
		t.Errorf("ParseClasses = %+v", got)
	}
	for _, bad := range []string{
		"| SRCH-016 | client | |\n| SRCH-016 | client | |\n",
		"| VOICE-013 | implementation | |\n",
		"| SRCH-016 | client | node/x TestY |\n",
	} {
		if _, err := ParseClasses(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseClasses(%q) accepted", bad)
		}
	}
	set := NewSet([]Requirement{{ID: "SRCH-016", Doc: "search.md", Class: Node}})
	if err := set.setClasses(got); err == nil {
		t.Errorf("a class for an undefined ID accepted")
	}
	delete(got, "VOICE-013")
	if err := set.setClasses(got); err != nil || set.List[0].Class != Client {
		t.Errorf("setClasses: %v, %+v", err, set.List)
	}
}
