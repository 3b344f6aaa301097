// Command certfleet is the certfleet service and its command line: `certfleet
// serve` runs a node; the other commands talk to one.
package main

import (
	"fmt"
	"os"
)

func main() {
	cmd, err := newRootCmd().ExecuteC()
	if err != nil {
		fmt.Fprintln(os.Stderr, "certfleet:", errorLine(err))
		code := exitCode(err)
		if code == exitUsage && cmd != nil {
			fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		os.Exit(code)
	}
}
