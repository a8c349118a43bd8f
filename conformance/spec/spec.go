// Package spec extracts requirement IDs from the Markdown files under spec/.
//
// A requirement is a tag such as [CAPI-012] in prose. Its level is taken from the
// strongest RFC 2119 keyword (MUST, SHOULD, MAY, in capitals) in the sentence that
// the tag closes. Tags inside code spans and fenced code blocks are examples, not
// requirements, and are ignored.
package spec

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Level is the strength of a requirement.
type Level string

// Levels, strongest first. Unmarked means the sentence carrying the tag has no
// RFC 2119 keyword; the suite reports such tags so the spec can be fixed, and does
// not let their failure change the exit status.
const (
	Must      Level = "MUST"
	Should    Level = "SHOULD"
	May       Level = "MAY"
	Unmarked  Level = "UNMARKED"
	Withdrawn Level = "WITHDRAWN"
)

// Class says whom a requirement binds and how it is checked; spec/README.md lists
// every requirement that is not a node requirement.
type Class string

// Classes. Node requirements are what the suite tests and counts; client
// requirements bind clients, so a node cannot fail them; implementation
// requirements bind how a node works inside, where no protocol and no file the
// node writes shows them, and the reference node checks them with unit tests.
const (
	Node           Class = "node"
	Client         Class = "client"
	Implementation Class = "implementation"
)

// Requirement is one tagged rule.
type Requirement struct {
	ID    string `json:"id"`
	Level Level  `json:"level"`
	Class Class  `json:"class"`
	// CheckedBy names, for an implementation requirement, the unit tests of the
	// reference node that check it ("node/media TestGC").
	CheckedBy string `json:"checked_by,omitempty"`
	// Doc is the file name relative to the spec folder, e.g. "client-api.md".
	Doc string `json:"doc"`
	// Line is the 1-based line of the tag.
	Line int `json:"line"`
	// Text is the sentence that carries the tag, whitespace collapsed.
	Text string `json:"text"`
}

// tagRE matches a requirement tag; the brief fixes this exact form.
var tagRE = regexp.MustCompile(`\[([A-Z]+-\d{3})\]`)

var (
	keywordRE   = regexp.MustCompile(`\b(MUST|SHOULD|MAY|REQUIRED|SHALL|RECOMMENDED|OPTIONAL)\b`)
	codeSpanRE  = regexp.MustCompile("`[^`]*`")
	listStartRE = regexp.MustCompile(`^\s*([-*+]|\d+\.)\s+`)
)

// block is a paragraph, list item or table row with its text joined on one line.
type block struct {
	text  string
	lines []int // lines[i] is the source line of text byte offset starts[i]
	start []int
}

func (b *block) lineAt(off int) int {
	i := sort.SearchInts(b.start, off+1) - 1
	if i < 0 {
		i = 0
	}
	return b.lines[i]
}

// Parse reads one Markdown document and returns every tag occurrence in order of
// appearance; NewSet tells definitions from cross-references. doc names the document in the result.
func Parse(doc string, r io.Reader) ([]Requirement, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	var (
		blocks []*block
		cur    *block
		fence  string
		n      int
	)
	flush := func() {
		if cur != nil {
			blocks = append(blocks, cur)
			cur = nil
		}
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trim, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~") {
			flush()
			fence = trim[:3]
			continue
		}
		switch {
		case trim == "":
			flush()
			continue
		case strings.HasPrefix(trim, "|"), strings.HasPrefix(trim, "#"):
			flush()
			cur = &block{}
			cur.add(trim, n)
			flush()
			continue
		case listStartRE.MatchString(line):
			flush()
		}
		if cur == nil {
			cur = &block{}
		}
		cur.add(listStartRE.ReplaceAllString(trim, ""), n)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("spec: read %s: %w", doc, err)
	}
	flush()

	var reqs []Requirement
	for _, b := range blocks {
		text := codeSpanRE.ReplaceAllStringFunc(b.text, func(s string) string {
			// Same length keeps offsets; no spaces, so "1..`seq`" is no sentence end.
			return strings.Repeat("_", len(s))
		})
		for _, m := range tagRE.FindAllStringSubmatchIndex(text, -1) {
			sent := sentenceBefore(text, m[0])
			reqs = append(reqs, Requirement{
				ID:    text[m[2]:m[3]],
				Level: classify(sent),
				Class: Node,
				Doc:   doc,
				Line:  b.lineAt(m[0]),
				Text:  strings.Join(strings.Fields(b.text[m[0]-len(sent):m[1]]), " "),
			})
		}
	}
	return reqs, nil
}

func (b *block) add(s string, line int) {
	if b.text != "" {
		b.text += " "
	}
	b.start = append(b.start, len(b.text))
	b.lines = append(b.lines, line)
	b.text += s
}

// sentenceBefore returns the sentence that ends at off (where a tag starts). A tag
// written after the full stop ("... keys. [EVT-001]") closes the sentence before it.
func sentenceBefore(text string, off int) string {
	end := strings.TrimRight(text[:off], " ")
	end = strings.TrimSuffix(end, ".")
	start := 0
	for i := len(end) - 1; i > 0; i-- {
		// A sentence boundary is a full stop, "!" or "?" followed by a space, or
		// a table cell separator.
		if end[i] == '|' {
			start = i + 1
			break
		}
		if (end[i-1] == '.' || end[i-1] == '!' || end[i-1] == '?') && end[i] == ' ' {
			start = i + 1
			break
		}
	}
	return text[start:off]
}

func classify(sentence string) Level {
	if strings.Contains(strings.ToLower(sentence), "withdrawn") {
		return Withdrawn
	}
	best := Unmarked
	for _, k := range keywordRE.FindAllString(sentence, -1) {
		switch k {
		case "MUST", "REQUIRED", "SHALL":
			return Must
		case "SHOULD", "RECOMMENDED":
			best = Should
		case "MAY", "OPTIONAL":
			if best == Unmarked {
				best = May
			}
		}
	}
	return best
}

// Set is the requirements of a spec folder, keyed by ID.
type Set struct {
	// List holds every requirement in document order (documents sorted by name).
	List []Requirement
	byID map[string]Requirement
}

// Get returns the requirement with the given ID.
func (s *Set) Get(id string) (Requirement, bool) {
	r, ok := s.byID[id]
	return r, ok
}

// NewSet resolves tag occurrences into requirements. The same tag also serves as a
// cross-reference ("the clock window of [EVT-032]"), so an ID is defined by its
// first occurrence in the document that owns its prefix (the document where the
// prefix occurs most often); every other occurrence is a reference. An ID that
// never occurs in its owning document is defined by its first occurrence.
func NewSet(occurrences []Requirement) *Set {
	count := map[string]map[string]int{} // prefix -> doc -> occurrences
	for _, r := range occurrences {
		p := prefix(r.ID)
		if count[p] == nil {
			count[p] = map[string]int{}
		}
		count[p][r.Doc]++
	}
	owner := map[string]string{}
	for p, docs := range count {
		best := ""
		for d, n := range docs {
			if best == "" || n > docs[best] || (n == docs[best] && d < best) {
				best = d
			}
		}
		owner[p] = best
	}
	def := map[string]Requirement{}
	for _, r := range occurrences {
		cur, seen := def[r.ID]
		if !seen || (cur.Doc != owner[prefix(r.ID)] && r.Doc == owner[prefix(r.ID)]) {
			def[r.ID] = r
		}
	}
	s := &Set{byID: def}
	for _, r := range occurrences {
		if d := def[r.ID]; d.Doc == r.Doc && d.Line == r.Line && d.Text == r.Text {
			s.List = append(s.List, r)
		}
	}
	return s
}

func prefix(id string) string {
	p, _, _ := strings.Cut(id, "-")
	return p
}

// LoadDir parses every *.md file directly in dir (not its subfolders).
func LoadDir(dir string) (*Set, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return nil, fmt.Errorf("spec: glob %s: %w", dir, err)
	}
	sort.Strings(files)
	var all []Requirement
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("spec: %w", err)
		}
		reqs, err := Parse(filepath.Base(f), fh)
		fh.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, reqs...)
	}
	set := NewSet(all)
	fh, err := os.Open(filepath.Join(dir, "README.md"))
	if os.IsNotExist(err) {
		return set, nil
	} else if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	defer fh.Close()
	classes, err := ParseClasses(fh)
	if err != nil {
		return nil, err
	}
	return set, set.setClasses(classes)
}

// classRow is a row of the class table in spec/README.md:
// "| ID | client or implementation | checked by |".
var classRow = regexp.MustCompile(`^\|\s*([A-Z]+-\d{3})\s*\|\s*(client|implementation)\s*\|\s*(.*?)\s*\|\s*$`)

// ParseClasses reads the rows of the requirement class table: ID -> class and,
// for implementation requirements, the unit tests that check them (required).
func ParseClasses(r io.Reader) (map[string]Requirement, error) {
	out := map[string]Requirement{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		m := classRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		c := Requirement{ID: m[1], Class: Class(m[2]), CheckedBy: m[3]}
		if _, dup := out[c.ID]; dup {
			return nil, fmt.Errorf("spec: README.md line %d: %s classed twice", n, c.ID)
		}
		if (c.Class == Implementation) != (c.CheckedBy != "") {
			return nil, fmt.Errorf("spec: README.md line %d: an implementation requirement, and only one, names the unit tests that check it", n)
		}
		out[c.ID] = c
	}
	return out, sc.Err()
}

// setClasses applies classes (from ParseClasses) to the set's requirements.
func (s *Set) setClasses(classes map[string]Requirement) error {
	for id, c := range classes {
		r, ok := s.byID[id]
		if !ok {
			return fmt.Errorf("spec: README.md classes %s, which no document defines", id)
		}
		r.Class, r.CheckedBy = c.Class, c.CheckedBy
		s.byID[id] = r
	}
	for i, r := range s.List {
		s.List[i] = s.byID[r.ID]
	}
	return nil
}
