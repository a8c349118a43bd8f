package fed

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
	"github.com/hearth-chat/hearth/conformance/runner"
)

// TestAgainstFakeNode runs the federation tests against a fedpeer that behaves as
// the spec asks (refuses strangers with status 2, resets oversize frames), so the
// tests can pass; and against one that answers status 0, so they can fail.
func TestAgainstFakeNode(t *testing.T) {
	for _, c := range []struct {
		status uint64
		want   runner.Status
	}{{fedpeer.StatusForbidden, runner.Pass}, {fedpeer.StatusOK, runner.Fail}} {
		node, err := fedpeer.New()
		if err != nil {
			t.Fatal(err)
		}
		answer := func(peer.ID, []byte) any { return map[uint64]any{0: c.status, 1: "no"} }
		node.Handle(fedpeer.ProtoSync, answer)
		node.Handle(fedpeer.ProtoJoin, answer)
		node.Handle(fedpeer.ProtoMod, answer)
		target, _ := harness.Target("http://127.0.0.1:1")
		target.P2P = node.Addr().String()
		env := &harness.Env{Nodes: []*harness.Node{target}}
		// Only the tests that need no guild: the fake answers every request
		// with one status.
		var tests []harness.Test
		for _, tc := range Tests {
			switch tc.Name {
			case "fed/oversize-request-reset", "fed/sync-refused-to-strangers", "fed/join-unknown-code", "fed/ed25519-identity", "fed/transports":
				tests = append(tests, tc)
			}
		}
		res := runner.Run(context.Background(), env, tests, runner.Options{Parallel: 2})
		for _, r := range res {
			want := runner.Pass
			if r.Name == "fed/sync-refused-to-strangers" || r.Name == "fed/join-unknown-code" {
				want = c.want
			}
			if r.Status != want {
				t.Errorf("status %d: %s = %s, want %s (%v %s)", c.status, r.Name, r.Status, want, r.Failures, r.Reason)
			}
		}
		node.Close()
	}
}
