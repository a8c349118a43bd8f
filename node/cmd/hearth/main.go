// Command hearth runs a Hearth node and its admin commands.
package main

import (
	"os"

	"github.com/hearth-chat/hearth/node/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
