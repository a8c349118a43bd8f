package search

import (
	"context"
	"testing"
	"time"
)

// TestCoalesce checks the indexer's wait for more operations: operations queued less than
// Coalesce ago are written once it passes, and Flush writes at once without waiting for it.
func TestCoalesce(t *testing.T) {
	t.Run("flush does not wait", func(t *testing.T) {
		ix, _ := openTest(t, Options{Coalesce: time.Hour})
		d := fixture[0]
		if err := ix.Index(d); err != nil {
			t.Fatal(err)
		}
		// With an hour's coalescing, only Flush's request makes this return before the
		// test binary's timeout.
		if err := ix.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, err := ix.DocCount(); err != nil || n != 1 {
			t.Fatalf("DocCount = %d, %v; want 1", n, err)
		}
	})
	t.Run("written after the wait", func(t *testing.T) {
		ix, _ := openTest(t, Options{Coalesce: 20 * time.Millisecond})
		for _, d := range fixture {
			if err := ix.Index(d); err != nil {
				t.Fatal(err)
			}
		}
		// No Flush: the indexer must write on its own. Poll the count with a generous
		// deadline (a busy machine may delay the indexer, which is not a failure).
		deadline := time.Now().Add(30 * time.Second)
		for {
			n, err := ix.DocCount()
			if err != nil {
				t.Fatal(err)
			}
			if n == uint64(len(fixture)) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("DocCount = %d after 30 s; want %d", n, len(fixture))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
