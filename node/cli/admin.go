package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"syscall"
	"time"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/server"
)

const adminUsage = `usage: hearth admin <command> [flags]

commands (run them while the node is stopped; they take the same flags as serve):
  reindex   rebuild the search index from the stored messages, with progress
`

func admin(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, adminUsage)
		return 2
	}
	switch args[0] {
	case "reindex":
		return reindex(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "hearth admin: unknown command %q\n%s", args[0], adminUsage)
	return 2
}

// reindex rebuilds the search index and draws a progress bar on stdout.
func reindex(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, config.Environ())
	if err != nil {
		fmt.Fprintln(stderr, "hearth:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	setGC(cfg, os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	last, lastDone := time.Time{}, -1
	progress := func(done, total int) {
		if done == lastDone || (time.Since(last) < 200*time.Millisecond && done != total) {
			return
		}
		last, lastDone = time.Now(), done
		fmt.Fprint(stdout, "\r"+bar(done, total))
	}
	n, err := server.Reindex(ctx, cfg, log, progress)
	fmt.Fprintln(stdout)
	if err != nil {
		log.Error("reindex failed", "data_dir", path.Clean(cfg.DataDir), "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "reindexed %d messages in %v\n", n, time.Since(start).Round(time.Millisecond))
	return 0
}

// bar renders "[#####.....]  50% 5000/10000".
func bar(done, total int) string {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	if frac > 1 {
		frac = 1
	}
	fill := int(frac * width)
	b := make([]byte, width)
	for i := range b {
		if i < fill {
			b[i] = '#'
		} else {
			b[i] = '.'
		}
	}
	return fmt.Sprintf("[%s] %3.0f%% %d/%d", b, frac*100, done, total)
}
