// Command hearth-conformance checks a Hearth node against spec/ and prints a
// report per requirement. See docs/conformance.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hearth-chat/hearth/conformance/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
