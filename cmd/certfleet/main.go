// Command certfleet is the certfleet service and its command line: `certfleet
// serve` runs a node; the other commands talk to one.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "certfleet:", err)
		os.Exit(exitCode(err))
	}
}
