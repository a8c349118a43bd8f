// Package runner runs conformance tests against an environment, in parallel and
// isolated, and collects one Result per test.
package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// Status of a test or requirement.
type Status string

// Statuses. NotCovered only applies to requirements.
const (
	Pass       Status = "pass"
	Fail       Status = "fail"
	Skip       Status = "skip"
	NotCovered Status = "not-covered"
)

// Result is the outcome of one test.
type Result struct {
	Name     string        `json:"test"`
	IDs      []string      `json:"ids"`
	Status   Status        `json:"status"`
	Failures []string      `json:"failures,omitempty"`
	Reason   string        `json:"reason,omitempty"` // why skipped
	Logs     []string      `json:"logs,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Options tune a run.
type Options struct {
	// Parallel is how many tests run at once (0 means 4).
	Parallel int
	// Binary, if set, is the node binary: tests with Needs.OwnNode get a fresh node
	// started from it under WorkDir. Empty means target mode.
	Binary string
	// WorkDir holds data dirs of nodes started for single tests.
	WorkDir string
	// NodeArgs are extra arguments for nodes started for single tests (see
	// harness.StartOptions.Args).
	NodeArgs []string
	// ProxyArgs are appended for nodes started behind a proxy (Needs.Proxy); see
	// harness.StartOptions.ProxyArgs.
	ProxyArgs []string
	// TestTimeout bounds one test (0 means 3 minutes).
	TestTimeout time.Duration
	// Progress, if set, is called once per finished test (from several goroutines,
	// serialised by the runner).
	Progress func(Result)
}

// Run runs tests against env and returns their results in the order of tests.
// Tests that need their own node run in parallel with the others when nodes can
// be started (Binary set), and alone at the end otherwise.
func Run(ctx context.Context, env *harness.Env, tests []harness.Test, opts Options) []Result {
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.TestTimeout <= 0 {
		opts.TestTimeout = 3 * time.Minute
	}
	results := make([]Result, len(tests))
	var progressMu sync.Mutex
	var nodeSeq atomic.Int64
	runOne := func(i int) {
		r := runTest(ctx, env, tests[i], opts, &nodeSeq)
		results[i] = r
		if opts.Progress != nil {
			progressMu.Lock()
			opts.Progress(r)
			progressMu.Unlock()
		}
	}

	var shared, alone []int
	for i, tc := range tests {
		if tc.Needs.Proxy {
			tests[i].Needs.OwnNode, tests[i].Needs.Managed = true, true
		}
		if tests[i].Needs.OwnNode && opts.Binary == "" {
			alone = append(alone, i)
		} else {
			shared = append(shared, i)
		}
	}
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for _, i := range shared {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			runOne(i)
		}()
	}
	wg.Wait()
	for _, i := range alone {
		runOne(i)
	}
	return results
}

func runTest(ctx context.Context, env *harness.Env, tc harness.Test, opts Options, nodeSeq *atomic.Int64) Result {
	start := time.Now()
	res := Result{Name: tc.Name, IDs: tc.IDs}
	finish := func(st Status) Result {
		res.Status = st
		res.Duration = time.Since(start)
		return res
	}
	own := tc.Needs.OwnNode && opts.Binary != ""
	if need := max(tc.Needs.Nodes, 1); need > len(env.Nodes) && !own {
		res.Reason = fmt.Sprintf("needs %d nodes, the run has %d (use --nodes)", need, len(env.Nodes))
		return finish(Skip)
	}
	if tc.Needs.Managed && opts.Binary == "" {
		res.Reason = "needs a node started by the suite (--binary)"
		if len(tc.Needs.Args) > 0 {
			res.Reason += " with " + strings.Join(tc.Needs.Args, " ")
		}
		return finish(Skip)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.TestTimeout)
	defer cancel()
	nodes := env.Nodes
	if own {
		var err error
		nodes, err = startOwn(ctx, tc, opts, nodeSeq.Add(1))
		defer func() {
			for _, n := range nodes {
				n.Release(10 * time.Second)
			}
		}()
		if err != nil {
			res.Failures = []string{fmt.Sprintf("could not start nodes for this test: %v", err)}
			return finish(Fail)
		}
	}
	node := nodes[0]
	if tc.Needs.P2P && node.P2P == "" {
		res.Reason = "the node's libp2p address is unknown (give --peer, or --node-args with {p2p_port} to a node that logs its peer ID)"
		return finish(Skip)
	}
	t := harness.NewT(ctx, tc.Name, env, nodes...)
	out := t.Run(tc.Run)
	res.Failures, res.Logs = out.Failures, out.Logs
	switch {
	case len(out.Failures) > 0:
		if ctx.Err() != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("test timed out after %v", opts.TestTimeout))
		}
		return finish(Fail)
	case out.Skipped != "":
		res.Reason = out.Skipped
		return finish(Skip)
	}
	return finish(Pass)
}

// startOwn starts the fresh nodes a test asked for, in parallel; it returns
// those that started, for the caller to stop, with the errors of the others.
func startOwn(ctx context.Context, tc harness.Test, opts Options, seq int64) ([]*harness.Node, error) {
	n := max(tc.Needs.Nodes, 1)
	nodes := make([]*harness.Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("own%d%c", seq, 'a'+i)
			nodes[i], errs[i] = harness.StartNode(ctx, opts.Binary, filepath.Join(opts.WorkDir, name), harness.StartOptions{
				Timeout: 60 * time.Second, Args: slices.Concat(opts.NodeArgs, tc.Needs.Args), Name: name, Proxy: tc.Needs.Proxy, ProxyArgs: opts.ProxyArgs,
			})
		}()
	}
	wg.Wait()
	started := slices.DeleteFunc(slices.Clone(nodes), func(n *harness.Node) bool { return n == nil })
	return started, errors.Join(errs...)
}
