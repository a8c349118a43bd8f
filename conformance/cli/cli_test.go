package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// TestMainAgainstBrokenNode runs the whole suite against a server that answers
// 404 to everything: every test fails fast, and the reports and exit status say so.
func TestMainAgainstBrokenNode(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	out := t.TempDir()
	jsonl := filepath.Join(out, "run.jsonl")
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"--target", srv.URL, "--spec", "../../spec", "--out", out, "--jsonl", jsonl, "--wait", "1s"}, &stdout, &stderr)
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitFailed, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if !regexp.MustCompile(`^\d+ passed, \d+ failed, \d+ skipped$`).MatchString(lines[len(lines)-1]) {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	if !strings.Contains(stdout.String(), "FAIL        CAPI-006") {
		t.Errorf("CAPI-006 (healthz) not reported failing:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "NOT-COVERED SRCH-084") {
		t.Errorf("SRCH-084 (in uncovered.txt) not reported as not covered")
	}
	if !strings.Contains(stdout.String(), "UNIT-TESTED CAPI-150") {
		t.Errorf("CAPI-150 (an implementation requirement in spec/README.md) not reported as unit-tested")
	}
	for _, f := range []string{"report.json", "report.md", "run.jsonl"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}

	// The same failures against their own baseline are not new: exit 0.
	stdout.Reset()
	code = Main(t.Context(), []string{"--target", srv.URL, "--spec", "../../spec", "--out", out, "--baseline", jsonl, "--wait", "1s", "--run", "healthz"}, &stdout, &stderr)
	if code != ExitOK || !strings.Contains(stdout.String(), "0 new failures") {
		t.Fatalf("with baseline: exit %d, output:\n%s", code, stdout.String())
	}
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--target", "x", "--binary", "y"}, {"--target", "ftp://x"}, {"--binary", "x", "--nodes", "0"}} {
		var o, e bytes.Buffer
		if code := Main(t.Context(), append(args, "--spec", "../../spec", "--out", t.TempDir()), &o, &e); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}

// TestMainLeaksNoGoroutines checks that a whole run (gateway clients, heartbeats,
// HTTP connections) leaves no goroutine behind beyond idle HTTP keep-alives.
func TestMainLeaksNoGoroutines(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	before := runtime.NumGoroutine()
	var o, e bytes.Buffer
	Main(t.Context(), []string{"--target", srv.URL, "--spec", "../../spec", "--out", t.TempDir(), "--wait", "1s"}, &o, &e)
	srv.CloseClientConnections()
	http.DefaultClient.CloseIdleConnections()
	err := harness.Eventually(t.Context(), 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before+2 {
			return fmt.Errorf("%d goroutines", n)
		}
		return nil
	})
	if n := runtime.NumGoroutine(); err != nil {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before the run, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
