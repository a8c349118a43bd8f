// Package harness is the black-box test harness of the Hearth conformance suite:
// it starts or targets nodes, talks to them through HTTP and the WebSocket gateway
// only, and gives each test a T with fresh users and guilds.
package harness

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// permanentError stops Eventually early: the condition can no longer come true.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so that Eventually gives up at once.
func Permanent(err error) error { return permanentError{err} }

// Eventually polls cond until it returns nil, the timeout passes, ctx ends or cond
// returns a Permanent error. The returned error is cond's last answer (why the
// condition is not yet true). Polls back off from 10 ms to 200 ms: waiting is on a
// condition, never a fixed sleep.
func Eventually(ctx context.Context, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return p.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", timeout, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}
