package conformance_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearth-chat/hearth/conformance/cli"
)

// TestSuiteAgainstReferenceNode builds ./node/cmd/hearth, lets the suite start
// nodes from it, and fails if any MUST requirement fails. It is skipped only
// while the node's main package does not exist yet.
//
// HEARTH_CONFORMANCE_OUT=DIR keeps report.md, report.json and report.jsonl there
// (docs/conformance.md is written from them). The run takes about two minutes
// (zombie detection and long-poll expiry wait for the node's own timers);
// -short skips it.
func TestSuiteAgainstReferenceNode(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance run takes minutes; skipped with -short")
	}
	if files, _ := filepath.Glob("../node/cmd/hearth/*.go"); len(files) == 0 {
		t.Skip("node/cmd/hearth does not exist yet: nothing to run the conformance suite against")
	}
	bin := filepath.Join(t.TempDir(), "hearth")
	build := exec.Command("go", "build", "-o", bin, "./node/cmd/hearth")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./node/cmd/hearth: %v\n%s", err, out)
	}
	out := os.Getenv("HEARTH_CONFORMANCE_OUT")
	if out == "" {
		out = t.TempDir()
	}
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), []string{"--binary", bin, "--nodes", "3", "--spec", "../spec",
		"--out", out, "--jsonl", filepath.Join(out, "report.jsonl")}, &stdout, &stderr)
	// The failing rows come first: a CI log cut after its first lines still
	// shows them.
	var failed []string
	for line := range strings.Lines(stdout.String()) {
		if strings.HasPrefix(line, "FAIL ") {
			failed = append(failed, line)
		}
	}
	if code == cli.ExitFailed {
		t.Errorf("MUST requirements fail (report in %s):\n%s", out, strings.Join(failed, ""))
	}
	t.Logf("conformance report:\n%s", stdout.String())
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	switch code {
	case cli.ExitOK, cli.ExitFailed:
	default:
		t.Fatalf("the suite could not run (exit %d)", code)
	}
}
