// Package cli is the hearth-conformance command: flags, node start-up, the run
// and its reports. The main package and the project's Go test both call Main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/conformance"
	"github.com/hearth-chat/hearth/conformance/harness"
	"github.com/hearth-chat/hearth/conformance/report"
	"github.com/hearth-chat/hearth/conformance/runner"
	"github.com/hearth-chat/hearth/conformance/spec"
)

// DefaultP2PArgs turn federation on in nodes the suite starts: libp2p on TCP
// and QUIC on one free loopback port, and a node name of the suite's choosing.
const DefaultP2PArgs = "--p2p-listen /ip4/127.0.0.1/tcp/{p2p_port},/ip4/127.0.0.1/udp/{p2p_port}/quic-v1 --node-name {node_name}"

// DefaultProxyArgs make a node announce only its proxy's TCP address, so that
// other nodes reach it through the proxy (and QUIC cannot bypass it).
const DefaultProxyArgs = "--p2p-announce /ip4/127.0.0.1/tcp/{proxy_port}"

// Exit statuses.
const (
	ExitOK      = 0 // no MUST requirement failed (or, with --baseline, no new failure of one)
	ExitFailed  = 1 // a MUST requirement failed
	ExitUsage   = 2 // bad flags or the run could not start
	defaultWait = 10 * time.Second
)

// Main runs the command with args (without the program name) and returns the
// exit status. Per-requirement lines and the summary go to stdout, progress and
// errors to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hearth-conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		target   = fs.String("target", "", "base URL of a running node, e.g. http://127.0.0.1:8080")
		binary   = fs.String("binary", "", "node binary; the suite starts nodes with `serve --data-dir DIR --listen 127.0.0.1:PORT`")
		nodes    = fs.Int("nodes", 1, "with --binary: how many nodes to start")
		specDir  = fs.String("spec", "spec", "folder with the spec Markdown and schemas/")
		outDir   = fs.String("out", ".", "folder for report.json and report.md")
		jsonl    = fs.String("jsonl", "", "also write one JSON line per test to this file")
		baseline = fs.String("baseline", "", "JSON lines of an earlier run: fail only on new failures")
		run      = fs.String("run", "", "only run tests whose name or requirement ID matches this regexp")
		parallel = fs.Int("parallel", 4, "tests run at once")
		wait     = fs.Duration("wait", defaultWait, "bound of each wait for a dispatch or condition")
		keep     = fs.Bool("keep", false, "with --binary: keep the nodes' data dirs")
		verbose  = fs.Bool("v", false, "print each test as it finishes")
		peer     = fs.String("peer", "", "with --target: the node's libp2p multiaddr ending in /p2p/<peer ID>")
		nodeArgs = fs.String("node-args", "", "with --binary: extra serve arguments, space-separated; {p2p_port}, {data_dir} and {node_name} are substituted")
		p2pArgs  = fs.String("p2p-args", DefaultP2PArgs, "with --binary: serve arguments that turn federation on (empty: off); {p2p_port} is a free port, {node_name} the node's name")
		proxyArg = fs.String("proxy-args", DefaultProxyArgs, "with --binary: serve arguments for nodes behind a link-cutting proxy; {proxy_port} is the proxy's port")
	)
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "hearth-conformance: %v\n", err)
		return ExitUsage
	}
	if (*target == "") == (*binary == "") {
		return fail(errors.New("give exactly one of --target URL or --binary PATH"))
	}
	if *nodes < 1 {
		return fail(errors.New("--nodes must be at least 1"))
	}

	set, err := spec.LoadDir(*specDir)
	if err != nil {
		return fail(err)
	}
	if len(set.List) == 0 {
		return fail(fmt.Errorf("no requirement IDs found in %s/*.md", *specDir))
	}
	uncovered, err := conformance.Uncovered()
	if err != nil {
		return fail(err)
	}
	tests := conformance.Tests()
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			return fail(fmt.Errorf("--run: %w", err))
		}
		tests = slices.DeleteFunc(tests, func(t harness.Test) bool {
			return !re.MatchString(t.Name) && !slices.ContainsFunc(t.IDs, re.MatchString)
		})
	}
	var base []runner.Result
	if *baseline != "" {
		f, err := os.Open(*baseline)
		if err != nil {
			return fail(err)
		}
		base, err = report.ReadJSONL(f)
		f.Close()
		if err != nil {
			return fail(err)
		}
	}

	env := &harness.Env{Timeout: *wait}
	if schema, err := harness.LoadSchema(filepath.Join(*specDir, "schemas", "client-api.schema.json")); err != nil {
		fmt.Fprintf(stderr, "hearth-conformance: payloads not validated: %v\n", err)
	} else {
		env.Schema = schema
	}
	opts := runner.Options{Parallel: *parallel, Binary: *binary,
		NodeArgs: append(strings.Fields(*p2pArgs), strings.Fields(*nodeArgs)...), ProxyArgs: strings.Fields(*proxyArg)}
	targetName := *target
	if *binary != "" {
		abs, err := filepath.Abs(*binary)
		if err != nil {
			return fail(err)
		}
		opts.Binary, targetName = abs, abs
		work, err := os.MkdirTemp("", "hearth-conformance-")
		if err != nil {
			return fail(err)
		}
		if !*keep {
			defer os.RemoveAll(work)
		}
		opts.WorkDir = work
		started, err := startNodes(ctx, abs, work, *nodes, opts.NodeArgs)
		defer func() {
			for _, n := range started {
				n.Stop(10 * time.Second)
			}
		}()
		if err != nil {
			return fail(err)
		}
		env.Nodes = started
	} else {
		n, err := harness.Target(*target)
		if err != nil {
			return fail(err)
		}
		n.P2P = *peer
		env.Nodes = []*harness.Node{n}
	}

	if *verbose {
		opts.Progress = func(r runner.Result) {
			fmt.Fprintf(stderr, "%-4s %s %v (%s)\n", r.Status, r.Name, r.IDs, r.Duration.Round(time.Millisecond))
		}
	}
	start := time.Now()
	results := runner.Run(ctx, env, tests, opts)
	rep := report.Build(set, results, uncovered)
	rep.Target, rep.Started, rep.Duration = targetName, start, time.Since(start)

	if err := rep.WriteLines(stdout); err != nil {
		return fail(err)
	}
	if err := writeFiles(rep, results, *outDir, *jsonl); err != nil {
		return fail(err)
	}
	if base != nil {
		d := report.Compare(base, results)
		d.Write(stdout)
		if newFatal(rep, d) {
			return ExitFailed
		}
		return ExitOK
	}
	if rep.Counts.MustFailed > 0 {
		return ExitFailed
	}
	return ExitOK
}

// newFatal reports whether a test failing anew checks a MUST requirement.
func newFatal(rep *report.Report, d report.Diff) bool {
	fresh := map[string]bool{}
	for _, n := range d.New {
		fresh[n] = true
	}
	for _, r := range rep.Requirements {
		if r.Status != runner.Fail || !report.Fatal(r.Level) {
			continue
		}
		for _, tn := range r.Tests {
			if fresh[tn] {
				return true
			}
		}
	}
	return false
}

func startNodes(ctx context.Context, binary, work string, n int, args []string) ([]*harness.Node, error) {
	nodes := make([]*harness.Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("node%d", i)
			nodes[i], errs[i] = harness.StartNode(ctx, binary, filepath.Join(work, name), harness.StartOptions{Args: args, Name: name})
		}()
	}
	wg.Wait()
	started := slices.DeleteFunc(nodes, func(n *harness.Node) bool { return n == nil })
	return started, errors.Join(errs...)
}

func writeFiles(rep *report.Report, results []runner.Result, outDir, jsonl string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	write := func(path string, f func(io.Writer) error) error {
		fh, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := f(fh); err != nil {
			fh.Close()
			return err
		}
		return fh.Close()
	}
	if err := write(filepath.Join(outDir, "report.json"), rep.WriteJSON); err != nil {
		return err
	}
	if err := write(filepath.Join(outDir, "report.md"), rep.WriteMarkdown); err != nil {
		return err
	}
	if jsonl != "" {
		return write(jsonl, func(w io.Writer) error { return report.WriteJSONL(w, results) })
	}
	return nil
}
