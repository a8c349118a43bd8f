// Package cli implements the hearth command line: `hearth serve` runs a node, and admin
// subcommands operate on a stopped node's data directory.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/server"
)

const usage = `usage: hearth <command> [flags]

commands:
  serve     run a node (hearth serve -h for flags; HEARTH_* env and -config FILE work too)
  admin     maintenance on a stopped node's data (hearth admin for the list)
  version   print the version
`

// Version is set at build time with -ldflags "-X github.com/hearth-chat/hearth/node/cli.Version=...".
var Version = "dev"

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "admin":
		return admin(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hearth", Version)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hearth: unknown command %q\n%s", args[0], usage)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	cfg, err := config.Load(args, config.Environ())
	if err != nil {
		fmt.Fprintln(stderr, "hearth:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	log.Info("garbage collector", "gc_percent", setGC(cfg, os.Getenv))
	n, err := server.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := n.Serve(ctx); err != nil {
		log.Error("node stopped with error", "err", err)
		return 1
	}
	return 0
}

// setGC sets the garbage collector's target from cfg.GCPercent, or for 0 leaves Go's GOGC
// when getenv finds it and sets config.DefaultGCPercent otherwise; it returns the target in
// effect (-1 for GOGC=off).
func setGC(cfg config.Config, getenv func(string) string) int {
	p := cfg.GCPercent
	if p == 0 && getenv("GOGC") != "" {
		p = debug.SetGCPercent(100) // read the value GOGC set, then put it back
		debug.SetGCPercent(p)
		return p
	}
	if p == 0 {
		p = config.DefaultGCPercent
	}
	debug.SetGCPercent(p)
	return p
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
