// Command bench is Hearth's load generator. It speaks only the public client protocol
// (REST and the WebSocket gateway), so it can measure any implementation; with --binary it
// starts the node itself with bench-friendly settings (rate limits off, long heartbeat).
//
//	go run ./conformance/bench --binary /tmp/hearth                  all scenarios
//	go run ./conformance/bench --target http://127.0.0.1:8080 -scenarios latency
//
// Scenarios:
//
//	latency     REST create on one client → MESSAGE_CREATE on another's gateway, at -rate msg/s
//	throughput  10 channels × 10 listeners, writers as fast as they go for -duration
//	fanout      one message to -fanout sessions in one guild: time until the last receives it (-rounds times)
//	idle        node memory per idle gateway session at -idle sessions
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/hearth-chat/hearth/conformance/loadwire"
)

// idleSettle is the -settle flag.
var idleSettle time.Duration

// throughputWriters is the -writers flag.
var throughputWriters int

// fanoutRounds is the -rounds flag.
var fanoutRounds int

// nodePID is the process ID of the node that --binary started (0 with --target).
var nodePID int

func main() {
	var (
		binary    = flag.String("binary", "", "start this hearth binary (else use -target)")
		target    = flag.String("target", "", "URL of a running node")
		scenarios = flag.String("scenarios", "latency,throughput,fanout,idle", "comma-separated scenarios")
		rate      = flag.Int("rate", 1000, "latency: messages per second")
		duration  = flag.Duration("duration", 10*time.Second, "latency and throughput: how long to send")
		fanoutN   = flag.Int("fanout", 10000, "fanout: sessions in the guild")
		idleN     = flag.Int("idle", 19500, "idle: sessions to open (this machine's open-file limit is 20,000 per process)")
		writers   = flag.Int("writers", 80, "throughput: concurrent REST writers (spread over the 10 channels)")
		rounds    = flag.Int("rounds", 5, "fanout: messages sent one after another, each measured")
		cpuprof   = flag.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
		settle    = flag.Duration("settle", 3*time.Second, "idle: wait this long before measuring (the Go runtime forces a GC every 2 minutes, which also shrinks idle stacks)")
	)
	flag.Parse()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	idleSettle = *settle
	fanoutRounds = *rounds
	throughputWriters = *writers
	if err := run(*binary, *target, strings.Split(*scenarios, ","), *rate, *duration, *fanoutN, *idleN); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(binary, target string, scenarios []string, rate int, dur time.Duration, fanoutN, idleN int) error {
	ctx := context.Background()
	for _, sc := range scenarios {
		base := target
		var stop func()
		if binary != "" {
			var err error
			base, stop, err = startNode(binary)
			if err != nil {
				return err
			}
		}
		if base == "" {
			return fmt.Errorf("give --binary or --target")
		}
		var err error
		switch sc {
		case "latency":
			err = latency(ctx, base, rate, dur)
		case "throughput":
			err = throughput(ctx, base, dur)
		case "fanout":
			err = fanout(ctx, base, fanoutN)
		case "idle":
			err = idle(ctx, base, idleN)
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if stop != nil {
			stop()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
	}
	return nil
}

// startNode runs the binary on a fresh data dir and a free port, with rate limits lifted.
func startNode(binary string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "hearth-bench")
	if err != nil {
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(binary, "serve", "--data-dir", filepath.Join(dir, "data"), "--listen", addr,
		"--rate-global", "1000000", "--rate-messages", "1000000", "--heartbeat-interval", "10m", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	base := "http://" + addr
	nodePID = cmd.Process.Pid
	stop := func() {
		nodePID = 0
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	if err := loadwire.WaitHealthy(base, 15*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return base, stop, nil
}
