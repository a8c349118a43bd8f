package search

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func searchIDs(t *testing.T, ix *Index, text string, readable []uint64) []uint64 {
	t.Helper()
	q := mustParse(t, text)
	q.GuildID = guildA
	q.Limit = MaxLimit
	res, err := ix.Search(context.Background(), q, readable)
	if err != nil {
		t.Fatal(err)
	}
	return ids(res.Hits)
}

func TestRepairFixesDifferences(t *testing.T) {
	reg := prometheus.NewRegistry()
	ix, _ := openTest(t, Options{Registerer: reg})
	rng := rand.New(rand.NewPCG(1, 2))
	src := newMemSource()
	var wantMissing, wantStale, wantExtra int
	for i := range 3*repairChunk + 17 {
		d := Doc{ID: sf(i/500, uint64(i%500+1)), GuildID: guildA, ChannelID: general,
			AuthorID: uint64(i%7 + 1), Content: fmt.Sprintf("message number%d", i)}
		switch r := rng.IntN(20); {
		case r == 0: // only in the store
			src.put(d)
			wantMissing++
		case r == 1: // stale in the index
			src.put(d)
			stale := d
			stale.Content = "stale"
			if err := ix.Index(stale); err != nil {
				t.Fatal(err)
			}
			wantStale++
		case r == 2: // only in the index
			if err := ix.Index(d); err != nil {
				t.Fatal(err)
			}
			wantExtra++
		default:
			src.put(d)
			if err := ix.Index(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush(t, ix)
	var calls, lastDone, lastTotal int
	st, err := ix.Repair(context.Background(), src, func(done, total int) {
		if done < lastDone {
			t.Errorf("progress went back: %d after %d", done, lastDone)
		}
		calls++
		lastDone, lastTotal = done, total
	})
	if err != nil {
		t.Fatal(err)
	}
	want := RepairStats{Checked: len(src.docs), Missing: wantMissing, Stale: wantStale, Extra: wantExtra}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	if calls < 3 || lastDone != len(src.docs) || lastTotal != len(src.docs) {
		t.Errorf("progress: %d calls, last %d/%d", calls, lastDone, lastTotal)
	}
	if got := metricValue(t, ix.met.repairFixed.WithLabelValues("missing")); int(got) != wantMissing {
		t.Errorf("missing metric = %v", got)
	}
	if got := metricValue(t, ix.met.repairProgress); got != 1 {
		t.Errorf("progress metric = %v after repair", got)
	}
	if n, _ := ix.DocCount(); int(n) != len(src.docs) {
		t.Errorf("DocCount = %d, want %d", n, len(src.docs))
	}
	if got := searchIDs(t, ix, "stale", []uint64{general}); len(got) != 0 {
		t.Errorf("stale documents still found: %v", got)
	}
	st, err = ix.Repair(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st != (RepairStats{Checked: len(src.docs)}) {
		t.Errorf("second repair fixed something: %+v", st)
	}
}

func TestRepairRejectsUnorderedSource(t *testing.T) {
	ix, _ := openTest(t, Options{})
	_, err := ix.Repair(context.Background(), unordered{}, nil)
	if err == nil {
		t.Fatal("repair accepted a source out of order")
	}
}

type unordered struct{}

func (unordered) Count(context.Context) (int, error) { return 2, nil }
func (unordered) Scan(_ context.Context, fn func(Doc) error) error {
	if err := fn(m2); err != nil {
		return err
	}
	return fn(m1)
}

func TestRebuildLiveOperationsWin(t *testing.T) {
	ix := fixtureIndex(t)
	src := newMemSource(fixture...)
	edited := m2
	edited.Content = "edited while rebuilding"
	src.hook = func(d Doc) {
		switch d.ID {
		case m5.ID: // m2 was already read by the scan
			if err := ix.Index(edited); err != nil {
				t.Error(err)
			}
			res, err := ix.Search(context.Background(), mustParse(t, "fox"), readAlice)
			if err != nil || !res.Partial {
				t.Errorf("search during rebuild: %+v, %v; want partial", res, err)
			}
		case m9.ID: // the scan read m9 and then it is deleted
			if err := ix.Delete(m9.ID); err != nil {
				t.Error(err)
			}
		}
	}
	var final [2]int
	st, err := ix.Rebuild(context.Background(), src, func(done, total int) { final = [2]int{done, total} })
	if err != nil {
		t.Fatal(err)
	}
	if st.Checked != len(fixture) || final != [2]int{len(fixture), len(fixture)} {
		t.Errorf("stats %+v, final progress %v", st, final)
	}
	if got := searchIDs(t, ix, "edited", readAlice); !slices.Equal(got, []uint64{m2.ID}) {
		t.Errorf("live edit lost: %v", got)
	}
	if got := searchIDs(t, ix, "morning", readAlice); len(got) != 0 {
		t.Errorf("old version of m2 found: %v", got)
	}
	if got := searchIDs(t, ix, "resume", readAlice); len(got) != 0 {
		t.Errorf("live delete lost: %v", got)
	}
	if got := searchIDs(t, ix, "fox", readAlice); !slices.Equal(got, []uint64{m7.ID, m6.ID}) {
		t.Errorf("fox after rebuild: %v", got)
	}
	res, err := ix.Search(context.Background(), mustParse(t, "fox"), readAlice)
	if err != nil || res.Partial {
		t.Errorf("after rebuild: %+v, %v", res, err)
	}
	entries, _ := filepath.Glob(filepath.Join(ix.dir, "gen-*"))
	if len(entries) != 1 {
		t.Errorf("generations on disk: %v", entries)
	}
}

func readManifestT(t *testing.T, dir string) manifest {
	t.Helper()
	man, err := readManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return man
}

func TestCleanCloseSkipsRepair(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, Options{Source: newMemSource(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	waitConsistent(t, ix)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if man := readManifestT(t, dir); !man.Clean || man.Format != IndexFormat {
		t.Fatalf("manifest after close: %+v", man)
	}
	// The source now differs from the index, but the index was closed
	// cleanly: nothing is repaired.
	ix = openAt(t, dir, Options{Source: newMemSource(fixture...)})
	if man := readManifestT(t, dir); man.Clean {
		t.Errorf("manifest of an open index says clean")
	}
	time.Sleep(50 * time.Millisecond) // a repair, if wrongly started, would run now
	flush(t, ix)
	if n, _ := ix.DocCount(); n != 0 {
		t.Errorf("DocCount = %d: repair ran after a clean close", n)
	}
}

func TestFormatChangeRebuilds(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, manifestName), []byte(`{"format":"hearth-search-index/4","generation":4,"clean":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "gen-000004"), 0o750); err != nil {
		t.Fatal(err)
	}
	ix := openAt(t, dir, Options{Source: newMemSource(fixture...)})
	waitFor(t, 10*time.Second, func() string {
		if n, _ := ix.DocCount(); n != uint64(len(fixture)) {
			return fmt.Sprintf("%d docs", n)
		}
		if ix.rebuilding.Load() {
			return "still rebuilding"
		}
		return ""
	})
	if _, err := os.Stat(filepath.Join(dir, "gen-000004")); !os.IsNotExist(err) {
		t.Errorf("old generation kept: %v", err)
	}
}

func TestQueueFullDropsAndMarksUnclean(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, Options{MaxPending: 5, Source: newMemSource(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	waitConsistent(t, ix)
	ix.mu.Lock() // block the indexer inside its next batch
	if err := ix.Index(m1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() string {
		ix.qmu.Lock()
		defer ix.qmu.Unlock()
		if len(ix.pending) != 0 {
			return "indexer has not taken the first op"
		}
		return ""
	})
	for _, d := range fixture[1:] {
		if err := ix.Index(d); err != nil {
			t.Fatal(err)
		}
	}
	ix.mu.Unlock()
	if got := metricValue(t, ix.met.dropped); got != float64(len(fixture)-1-5) {
		t.Errorf("dropped = %v, want %d", got, len(fixture)-1-5)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if man := readManifestT(t, dir); man.Clean {
		t.Error("index that dropped operations was marked clean")
	}
}

// TestCrashRecovery kills a child process that is indexing (kill -9 while
// operations are queued and segments unpersisted), then checks that the
// next Open repairs the index from the source.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), "HEARTH_SEARCH_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "indexing" {
	}
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	src := newMemSource(crashDocs()...)
	ix := openAt(t, dir, Options{Source: src})
	waitFor(t, 30*time.Second, func() string {
		if n, _ := ix.DocCount(); n != uint64(len(src.docs)) {
			return fmt.Sprintf("%d docs, want %d", n, len(src.docs))
		}
		ix.qmu.Lock()
		defer ix.qmu.Unlock()
		if !ix.consistent {
			return "repair not finished"
		}
		return ""
	})
	if got := searchIDs(t, ix, "crash", []uint64{general}); len(got) != MaxLimit {
		t.Errorf("found %d of the crash documents", len(got))
	}
}

func crashDocs() []Doc {
	var docs []Doc
	for i := range 20000 {
		docs = append(docs, Doc{ID: sf(i/1000, uint64(i%1000+1)), GuildID: guildA, ChannelID: general,
			Content: fmt.Sprintf("crash test %d", i)})
	}
	return docs
}

// TestCrashChild is the child of TestCrashRecovery; it does nothing unless
// started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("HEARTH_SEARCH_CRASH_DIR")
	if dir == "" {
		t.Skip("only run as TestCrashRecovery's child")
	}
	ix, err := Open(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("indexing")
	for {
		for _, d := range crashDocs() {
			if err := ix.Index(d); err != nil {
				t.Fatal(err)
			}
		}
		_ = ix.Flush(context.Background())
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, manifestName), []byte(`{"format":"x","bogus":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if man := readManifestT(t, dir); man != (manifest{}) {
		t.Errorf("manifest with unknown field read as %+v", man)
	}
	ix := &Index{dir: dir, gen: 7}
	if err := ix.writeManifest(true); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, manifestName))
	var man manifest
	if err := json.Unmarshal(b, &man); err != nil || man != (manifest{Format: IndexFormat, Generation: 7, Clean: true}) {
		t.Errorf("manifest = %+v, %v", man, err)
	}
}

func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither counter nor gauge", m.Desc())
	return 0
}

var quiet = slog.New(slog.DiscardHandler)

// waitConsistent waits for the repair started by Open to finish.
func waitConsistent(t *testing.T, ix *Index) {
	t.Helper()
	waitFor(t, 30*time.Second, func() string {
		ix.qmu.Lock()
		defer ix.qmu.Unlock()
		if !ix.consistent {
			return "repair not finished"
		}
		return ""
	})
}

// TestRebuildSearchIsPartial checks SRCH-082: "While a node rebuilds its index, it
// MUST set "partial": true on every search response." The route sets it from
// Result.Partial (doc.go). Both ways a rebuild starts are held in the middle of
// their scan of the store: `hearth admin reindex` (Rebuild on an open index) and
// Open of an index in an older format. A search then is partial; once the rebuild
// is done, the same search is complete and not partial.
func TestRebuildSearchIsPartial(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T, src Source) (*Index, <-chan error)
	}{
		{"Rebuild of an open index", func(t *testing.T, src Source) (*Index, <-chan error) {
			ix := fixtureIndex(t)
			done := make(chan error, 1)
			go func() {
				_, err := ix.Rebuild(context.Background(), src, nil)
				done <- err
			}()
			return ix, done
		}},
		{"Open of an index in an older format", func(t *testing.T, src Source) (*Index, <-chan error) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, manifestName), []byte(`{"format":"hearth-search-index/4","generation":4,"clean":true}`), 0o600); err != nil {
				t.Fatal(err)
			}
			return openAt(t, dir, Options{Source: src}), nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newMemSource(fixture...)
			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			src.hook = func(Doc) {
				once.Do(func() {
					close(entered)
					<-release
				})
			}
			ix, done := tc.start(t, src)
			select {
			case <-entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the rebuild did not start scanning the store")
			}
			res, err := ix.Search(context.Background(), mustParse(t, "fox"), readAlice)
			close(release)
			if err != nil || !res.Partial {
				t.Errorf("search during the rebuild: %+v, %v; want partial", res, err)
			}
			if done != nil {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 10*time.Second, func() string {
				if ix.rebuilding.Load() {
					return "still rebuilding"
				}
				return ""
			})
			flush(t, ix)
			res, err = ix.Search(context.Background(), mustParse(t, "fox"), readAlice)
			if err != nil || res.Partial || !slices.Equal(ids(res.Hits), []uint64{m7.ID, m6.ID}) {
				t.Errorf("search after the rebuild: %+v, %v; want m7 and m6, not partial", res, err)
			}
		})
	}
}
