// Command fedbench measures federation between hearth nodes, speaking only public
// protocols: it starts the nodes itself (the hearth binary, each on its own data dir and
// ports), puts a TCP proxy of its own in front of every node's libp2p listener (the nodes
// announce the proxy's address, so every link between nodes passes through it and can be
// cut), and drives the nodes through REST and the WebSocket gateway.
//
//	go build -o /tmp/hearth ./node/cmd/hearth
//	go run ./conformance/fedbench --binary /tmp/hearth -scenarios delivery,apply,partition,presence
//
// With -lock FILE it holds an exclusive flock on FILE during each measured phase and not
// during set-up (registering users, joins), which can take minutes with many users.
//
// Scenarios:
//
//	delivery   REST create on node A → MESSAGE_CREATE on a gateway client of node B, open
//	           loop at -rate msg/s for -duration: p50, p99; the nodes dial each other
//	           directly (no proxy: no link is cut)
//	apply      signed events verified and applied per second by node B: -burst messages
//	           written on A as fast as A takes them (live gossip), then the same number
//	           written while B is cut off and fetched by B's catch-up after the heal
//	partition  three nodes; one is cut off for -partition while -per-side messages are
//	           written on each side; after the heal: time until every node holds every
//	           message, and whether the histories (GET /channels/{id}/messages) are identical
//	presence   -presence-users users spread over three nodes, all online; -presence-rate
//	           status changes per second for -presence-duration: PRESENCE_UPDATE latency
//	           on the other nodes' gateway clients, and libp2p bytes per second per node
//	           (counted by the proxies, idle and during the changes)
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// options are the command's flags.
type options struct {
	binary   string
	logLevel string
	lock     string
	profile  string

	rate     int
	duration time.Duration
	authors  int

	burst int

	partition time.Duration
	perSide   int

	presenceUsers    int
	presenceRate     int
	presenceDuration time.Duration
}

func main() {
	var o options
	scenarios := flag.String("scenarios", "delivery,apply,partition,presence", "comma-separated scenarios")
	flag.StringVar(&o.binary, "binary", "", "the hearth binary to run (required)")
	flag.StringVar(&o.logLevel, "log-level", "warn", "the nodes' log level")
	flag.StringVar(&o.profile, "profile", "", "a folder for CPU profiles of the nodes during the measured phases (nodes run with --pprof)")
	flag.StringVar(&o.lock, "lock", "", "a file to flock during each measured phase only (set-up runs outside it), e.g. /tmp/hearth-bench.lock")
	flag.IntVar(&o.rate, "rate", 1000, "delivery: messages per second")
	flag.DurationVar(&o.duration, "duration", time.Minute, "delivery: how long to send (at 1,000 msg/s the nodes flush a memtable about every 26 s: a shorter run can miss it)")
	flag.IntVar(&o.authors, "authors", 200, "delivery: writers on node A (federation allows 10 live messages/s per author)")
	flag.IntVar(&o.burst, "burst", 10000, "apply: messages per burst")
	flag.DurationVar(&o.partition, "partition", 60*time.Second, "partition: how long the node is cut off")
	flag.IntVar(&o.perSide, "per-side", 10000, "partition: messages written on each side during the partition")
	flag.IntVar(&o.presenceUsers, "presence-users", 10000, "presence: users, spread over three nodes")
	flag.IntVar(&o.presenceRate, "presence-rate", 100, "presence: status changes per second")
	flag.DurationVar(&o.presenceDuration, "presence-duration", 30*time.Second, "presence: how long to change statuses")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if o.binary == "" {
		fmt.Fprintln(os.Stderr, "fedbench: --binary is required")
		os.Exit(2)
	}
	for _, sc := range strings.Split(*scenarios, ",") {
		var err error
		switch strings.TrimSpace(sc) {
		case "delivery":
			err = delivery(o)
		case "apply":
			err = apply(o)
		case "partition":
			err = partition(o)
		case "presence":
			err = presence(o)
		default:
			err = fmt.Errorf("unknown scenario")
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "fedbench: %s: %v\n", sc, err)
			os.Exit(1)
		}
	}
}
