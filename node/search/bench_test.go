package search_test

import (
	"context"
	"log/slog"
	"testing"

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
}
