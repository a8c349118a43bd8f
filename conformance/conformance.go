// Package conformance is the black-box conformance suite of the Hearth protocol.
// It holds the registry of every test and the list of requirements that are
// knowingly not covered yet; the harness, tests and command live in
// subpackages. Nothing here imports the node's packages.
package conformance

import (
	"bufio"
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hearth-chat/hearth/conformance/capi"
	"github.com/hearth-chat/hearth/conformance/fed"
	"github.com/hearth-chat/hearth/conformance/harness"
	"github.com/hearth-chat/hearth/conformance/media"
	"github.com/hearth-chat/hearth/conformance/srch"
	"github.com/hearth-chat/hearth/conformance/voice"
)

// Tests returns every conformance test, in a stable order.
func Tests() []harness.Test {
	return slices.Concat(capi.Tests, srch.Tests, media.Tests, fed.Tests, voice.Tests)
}

//go:embed uncovered.txt
var uncoveredTxt string

var uncoveredLine = regexp.MustCompile(`^([A-Z]+-\d{3})\s+(\S.*)$`)

// Uncovered parses uncovered.txt: "ID reason" per line, "#" starts a comment.
// Every listed requirement must carry a reason.
func Uncovered() (map[string]string, error) { return ParseUncovered(uncoveredTxt) }

// ParseUncovered parses the text of an uncovered list.
func ParseUncovered(text string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := uncoveredLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("conformance: uncovered.txt line %d: want \"ID reason\", got %q", n, line)
		}
		if _, dup := out[m[1]]; dup {
			return nil, fmt.Errorf("conformance: uncovered.txt line %d: %s listed twice", n, m[1])
		}
		out[m[1]] = m[2]
	}
	return out, sc.Err()
}
