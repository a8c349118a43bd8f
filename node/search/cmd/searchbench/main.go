// Command searchbench measures the search index on a synthetic history:
// indexing throughput through the live Index path, index size on disk,
// memory with the index open, and query latency for a mix of term, phrase,
// author and date-filtered queries. See node/search/BENCHMARKS.md.
//
//	go run ./node/search/cmd/searchbench -n 1000000 -dir /tmp/searchbench
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/search"
	"github.com/hearth-chat/hearth/node/search/internal/corpus"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "searchbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		dir       = flag.String("dir", filepath.Join(os.TempDir(), "hearth-searchbench"), "index directory")
		n         = flag.Int("n", 1_000_000, "messages")
		guilds    = flag.Int("guilds", 1, "guilds the messages are spread over")
		channels  = flag.Int("channels", 50, "channels per guild")
		queries   = flag.Int("queries", 5000, "queries to time")
		reuse     = flag.Bool("reuse", false, "reuse an index already built in -dir with the same flags")
		sortBy    = flag.String("sort", "timestamp", "sort_by of the queries: timestamp or relevance")
		hidden    = flag.Int("unreadable", 0, "channels of the guild the searcher may not read (the permission filter's cost)")
		flushAt   = flag.Int("flush", 20_000, "flush the queue after this many Index calls (backpressure)")
		batch     = flag.Int("batch", 0, "Options.BatchSize (0: the default)")
		cpuprof   = flag.String("cpuprofile", "", "write a CPU profile of the queries to this file")
		idxprof   = flag.String("indexprofile", "", "write a CPU profile of indexing to this file")
		allocprof = flag.String("allocprofile", "", "write a profile of the memory allocated while indexing to this file")
		gcPercent = flag.Int("gc-percent", config.DefaultGCPercent, "garbage collector target, the node's default unless set (hearth --gc-percent); 0: Go's GOGC")
	)
	flag.Parse()
	if *gcPercent > 0 {
		debug.SetGCPercent(*gcPercent)
	}
	fmt.Printf("garbage collector target (GOGC): %d\n", gcTarget())
	c := corpus.New(corpus.Config{Messages: *n, Guilds: *guilds, ChannelsPerGuild: *channels})
	ctx := context.Background()
	opts := search.Options{BatchSize: *batch, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}

	if !*reuse {
		if err := os.RemoveAll(*dir); err != nil {
			return err
		}
		ix, err := search.Open(*dir, opts)
		if err != nil {
			return err
		}
		stopProfile, err := startProfile(*idxprof)
		if err != nil {
			return err
		}
		fmt.Printf("load average before indexing: %s\n", loadavg())
		start, cpu0 := time.Now(), cpuTime()
		for i := range c.Len() {
			if err := ix.Index(c.Doc(i)); err != nil {
				return err
			}
			if (i+1)%*flushAt == 0 {
				if err := ix.Flush(ctx); err != nil {
					return err
				}
			}
			if (i+1)%100_000 == 0 {
				fmt.Fprintf(os.Stderr, "indexed %d in %s\n", i+1, time.Since(start).Round(time.Millisecond))
			}
		}
		if err := ix.Flush(ctx); err != nil {
			return err
		}
		el := time.Since(start)
		cpu := cpuTime() - cpu0
		stopProfile()
		if err := writeAllocProfile(*allocprof); err != nil {
			return err
		}
		fmt.Printf("indexing: %d messages in %s = %.0f msgs/s, %.1f µs wall per message (Index + Flush every %d)\n",
			c.Len(), el.Round(time.Millisecond), float64(c.Len())/el.Seconds(), float64(el.Microseconds())/float64(c.Len()), *flushAt)
		fmt.Printf("indexing CPU: %s = %.1f µs per message = %.0f msgs per CPU-second (%d cores: at most %.0f msgs/s with them all free)\n",
			cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(c.Len()), float64(c.Len())/cpu.Seconds(),
			runtime.GOMAXPROCS(0), float64(runtime.GOMAXPROCS(0))*float64(c.Len())/cpu.Seconds())
		fmt.Printf("load average after indexing: %s\n", loadavg())
		if err := ix.Close(); err != nil {
			return err
		}
	}
	size, err := dirSize(*dir)
	if err != nil {
		return err
	}
	fmt.Printf("disk: %.1f MiB for %d messages = %.1f MiB per million\n",
		float64(size)/(1<<20), c.Len(), float64(size)/(1<<20)/float64(c.Len())*1e6)

	runtime.GC()
	debug.FreeOSMemory()
	rssBefore := rss()
	start := time.Now()
	ix, err := search.Open(*dir, opts)
	if err != nil {
		return err
	}
	defer ix.Close()
	fmt.Printf("open: %s\n", time.Since(start).Round(time.Millisecond))

	qs := c.Queries(*queries+200, 42)
	stopProfile, err := startProfile(*cpuprof)
	if err != nil {
		return err
	}
	defer stopProfile()
	fmt.Printf("load average before the queries: %s\n", loadavg())
	// Latency is wall time; on a shared machine it includes waiting for a
	// core, so the CPU time of the querying thread is reported beside it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lat := make(map[string][]time.Duration)
	cpuLat := make(map[string][]time.Duration)
	totals := make(map[string]int)
	partial := 0
	for k, bq := range qs {
		q, err := search.ParseQuery(bq.Text)
		if err != nil {
			return fmt.Errorf("query %q: %w", bq.Text, err)
		}
		q.GuildID = bq.GuildID
		if *sortBy == "relevance" {
			q.SortBy = search.SortRelevance
		}
		readable := bq.Readable[:len(bq.Readable)-min(*hidden, len(bq.Readable)-1)]
		t0, c0 := time.Now(), threadCPU()
		res, err := ix.Search(ctx, q, readable)
		d, cd := time.Since(t0), threadCPU()-c0
		if err != nil {
			return fmt.Errorf("query %q: %w", bq.Text, err)
		}
		if res.Total == 0 && *hidden == 0 {
			return fmt.Errorf("query %q found nothing", bq.Text)
		}
		if res.Partial {
			partial++
		}
		if k < 200 { // warm-up
			continue
		}
		lat[bq.Kind] = append(lat[bq.Kind], d)
		lat["all"] = append(lat["all"], d)
		cpuLat[bq.Kind] = append(cpuLat[bq.Kind], cd)
		cpuLat["all"] = append(cpuLat["all"], cd)
		totals[bq.Kind] += res.Total
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("memory with the index open, after the queries: Go heap in use %.1f MiB, process RSS %.1f MiB (%.1f MiB before Open)\n",
		float64(ms.HeapInuse)/(1<<20), float64(rss())/(1<<20), float64(rssBefore)/(1<<20))
	fmt.Printf("load average after the queries: %s\n", loadavg())
	fmt.Printf("queries: %d timed after 200 warm-up, sequential, sort by %s, %d unreadable channels, %d partial; wall time, and CPU time of the querying thread\n\n",
		*queries, *sortBy, *hidden, partial)
	fmt.Println("| kind | queries | mean hits | p50 | p90 | p99 | max | CPU p50 | CPU p99 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, kind := range append(slices.Clone(corpus.Kinds), "all") {
		l := lat[kind]
		slices.Sort(l)
		if len(l) == 0 {
			continue
		}
		hits := ""
		if kind != "all" {
			hits = strconv.Itoa(totals[kind] / len(l))
		}
		cl := cpuLat[kind]
		slices.Sort(cl)
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", kind, len(l), hits,
			pct(l, 50), pct(l, 90), pct(l, 99), fmtDur(l[len(l)-1]), pct(cl, 50), pct(cl, 99))
	}
	return nil
}

// startProfile starts a CPU profile into path (nothing if path is empty)
// and returns what stops it.
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeAllocProfile writes the allocations made so far (pprof's allocs
// profile: sample_index=alloc_space for bytes) to path, if path is set.
func writeAllocProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadavg returns the 1, 5 and 15 minute load averages ("?" where
// unavailable): on a shared machine, the context of every wall time.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func pct(l []time.Duration, p int) string {
	i := (len(l)*p + 99) / 100
	return fmtDur(l[min(len(l)-1, max(0, i-1))])
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU returns the CPU time of the calling OS thread (the caller has
// locked its goroutine to it), from the nanosecond thread clock (rusage
// counts in scheduler ticks, too coarse for sub-millisecond queries).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// rss returns the resident set size from /proc (0 where unavailable).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// gcTarget reads the garbage collector's target (-1: off).
func gcTarget() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}
