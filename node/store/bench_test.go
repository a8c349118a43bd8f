package store

import (
	"crypto/rand"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkPacedCommits writes b.N durable commits at 1,000 a second, each of six keys of 70
// bytes and values of 40–340 bytes (about what a federated message writes), and reports the
// commit latency's p50, p99 and maximum, the commits over 10 ms, and the tables Badger
// flushed meanwhile. Run it long enough to fill a memtable (32 MiB, about 20 s here), since a
// flush's writes delay the fsyncs of the commits beside it:
//
//	go test -run X -bench PacedCommits -benchtime 40000x ./node/store/
func BenchmarkPacedCommits(b *testing.B) {
	dir := b.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
		wg.Go(func() {
			t := time.Now()
			err := db.Update(func(tx *Tx) error {
				for k := range 6 {
					key, val := make([]byte, 70), make([]byte, 40+k*60)
					rand.Read(key)
					rand.Read(val)
					if err := tx.PutRaw(key, val); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Error(err)
			}
			lat[i] = time.Since(t)
		})
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	over := len(lat) - slices.IndexFunc(lat, func(d time.Duration) bool { return d > 10*time.Millisecond })
	if over > len(lat) {
		over = 0
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(over), "over-10ms")
	b.ReportMetric(float64(len(tables)), "flushed-tables")
	b.ReportMetric(0, "ns/op") // paced: the time per commit is the pace, not a figure
}
