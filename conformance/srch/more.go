package srch

import (
	"fmt"
	"regexp"
	"time"
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
	var ids []string
	for i := range 8 {
		ids = append(ids, send(t, a, g.Text, fmt.Sprintf("%s crash %d", mk, i)))
	}
	if err := t.Node.Kill(); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("restart: %v", err)
	}
	after := send(t, a, g.Text, mk+" after restart")
	expect(t, a, g, q("content", mk), false, append(ids, after)...)
}
