// Command docora pushes every file change of watched git repositories to apps as signed
// webhooks. See `docora --help`.
package main

import (
	"os"

	"github.com/docora/docora/internal/cli"
)

func main() { os.Exit(cli.Main()) }
