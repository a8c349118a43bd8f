package search_test

import (
	"context"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/node/search"
	"github.com/hearth-chat/hearth/node/search/internal/corpus"
)

var quiet = slog.New(slog.DiscardHandler)

// BenchmarkIndex measures indexing throughput through the live path: Index
// calls, batched by the indexer, and a Flush at the end.
func BenchmarkIndex(b *testing.B) {
	c := corpus.New(corpus.Config{Messages: max(b.N, 1)})
	ix, err := search.Open(b.TempDir(), search.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	docs := make([]search.Doc, b.N)
	for i := range docs {
		docs[i] = c.Doc(i)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i, d := range docs {
		if err := ix.Index(d); err != nil {
			b.Fatal(err)
		}
		if (i+1)%20_000 == 0 {
			if err := ix.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := ix.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// The machine is shared: CPU time per message says what a core does.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/msg")
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSearch measures each query kind of the benchmark mix on a
// 100,000-message index built once (not timed). The million-message figures
// come from cmd/searchbench.
func BenchmarkSearch(b *testing.B) {
	const n = 100_000
	c := corpus.New(corpus.Config{Messages: n})
	ix, err := search.Open(b.TempDir(), search.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	for i := range n {
		if err := ix.Index(c.Doc(i)); err != nil {
			b.Fatal(err)
		}
		if (i+1)%20_000 == 0 {
			if err := ix.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := ix.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	queries := c.Queries(1000, 9)
	for _, kind := range corpus.Kinds {
		var qs []search.Query
		var readable [][]uint64
		for _, bq := range queries {
			if bq.Kind != kind {
				continue
			}
			q, err := search.ParseQuery(bq.Text)
			if err != nil {
				b.Fatal(err)
			}
			q.GuildID = bq.GuildID
			qs = append(qs, q)
			readable = append(readable, bq.Readable)
		}
		b.Run(kind, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				k := i % len(qs)
				if _, err := ix.Search(ctx, qs[k], readable[k]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"-relevance", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				k := i % len(qs)
				q := qs[k]
				q.SortBy = search.SortRelevance
				if _, err := ix.Search(ctx, q, readable[k]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
