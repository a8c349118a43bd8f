package runner

import (
	"context"
	"testing"

	"github.com/hearth-chat/hearth/conformance/harness"
)

func TestRun(t *testing.T) {
	n, err := harness.Target("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	env := &harness.Env{Nodes: []*harness.Node{n}}
	var order []string
	tests := []harness.Test{
		{Name: "pass", IDs: []string{"X-001"}, Run: func(t *harness.T) {}},
		{Name: "fail", IDs: []string{"X-002"}, Run: func(t *harness.T) { t.Fatalf("boom"); t.Errorf("not reached") }},
		{Name: "skip", Run: func(t *harness.T) { t.Skipf("nope") }},
		{Name: "panic", Run: func(t *harness.T) { panic("oops") }},
		{Name: "two nodes", Needs: harness.Needs{Nodes: 2}, Run: func(t *harness.T) { t.Errorf("ran") }},
		{Name: "managed", Needs: harness.Needs{Managed: true, Args: []string{"--search-timeout", "1ns"}}, Run: func(t *harness.T) { t.Errorf("ran") }},
		{Name: "alone", Needs: harness.Needs{OwnNode: true}, Run: func(t *harness.T) {}},
	}
	res := Run(context.Background(), env, tests, Options{Parallel: 2, Progress: func(r Result) { order = append(order, r.Name) }})
	want := []Status{Pass, Fail, Skip, Fail, Skip, Skip, Pass}
	for i, r := range res {
		if r.Status != want[i] {
			t.Errorf("%s: status %s, want %s (%v %s)", r.Name, r.Status, want[i], r.Failures, r.Reason)
		}
	}
	if len(res[1].Failures) != 1 || res[1].Failures[0] != "boom" {
		t.Errorf("fail recorded %q", res[1].Failures)
	}
	if want := "needs a node started by the suite (--binary) with --search-timeout 1ns"; res[5].Reason != want {
		t.Errorf("managed test skipped because %q, want %q", res[5].Reason, want)
	}
	if order[len(order)-1] != "alone" {
		t.Errorf("OwnNode test in target mode did not run last: %v", order)
	}
}
