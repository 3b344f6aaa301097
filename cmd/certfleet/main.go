// Command certfleet is the certfleet service and its command line: `certfleet
// serve` runs a node; the other commands talk to one.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// exitInterrupted is the exit code after Ctrl-C (128 + SIGINT), as shells expect.
const exitInterrupted = 130

func main() {
	// The first Ctrl-C (or SIGTERM) cancels the commands' context; a second
	// one kills the process the default way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// seen keeps the signal for the check below even when a command's own
	// handler (job watch's) returned before ctx was cancelled.
	seen := make(chan os.Signal, 1)
	signal.Notify(seen, os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	cmd, err := root.ExecuteContextC(ctx)
	interrupted := ctx.Err() != nil || len(seen) > 0
	interrupted = interrupted && (cmd == nil || cmd.Name() != "serve")
	stop()
	switch {
	case interrupted:
		// The command's own message (job watch: "stopped watching…") if it has one.
		msg := "interrupted"
		if err != nil && !errors.Is(err, context.Canceled) {
			msg = explain(err)
		}
		fmt.Fprintln(os.Stderr, "certfleet:", msg)
		os.Exit(exitInterrupted)
	case err != nil:
		fmt.Fprintln(os.Stderr, "certfleet:", explain(err))
		code := exitCode(err)
		if code == exitUsage && cmd != nil {
			fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		os.Exit(code)
	}
}
