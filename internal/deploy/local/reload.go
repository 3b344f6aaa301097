package local

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
)

// maxOutput bounds how much of a reload command's output goes into an error.
const maxOutput = 4 << 10

// runReload runs p.reload, if any, with /bin/sh -c, bounded by
// p.reloadTimeout and ctx. On failure the error carries the first 4 KiB of
// the command's combined output, unless it quotes a private key of keys (or
// any PEM private key): then it is withheld. When ctx ends first the error
// wraps ctx.Err().
func runReload(ctx context.Context, p *plan, keys ...string) error {
	if p.reload == "" {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, p.reloadTimeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, "/bin/sh", "-c", p.reload)
	out := &cappedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// A command that leaves a background child holding the output pipe must
	// not hold the deployment hostage.
	cmd.WaitDelay = time.Second
	killProcessGroup(cmd)

	err := cmd.Run()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("timed out after %s (ReloadTimeoutSeconds)", p.reloadTimeout)
	}
	if o := out.String(); deploy.EchoesKey(o, keys...) {
		return fmt.Errorf("local: reload %q: %w; output withheld: it quotes a private key", p.reload, err)
	} else if o != "" {
		return fmt.Errorf("local: reload %q: %w; output: %s", p.reload, err, o)
	}
	return fmt.Errorf("local: reload %q: %w; no output", p.reload, err)
}

// cappedBuffer keeps the first max bytes written to it and counts the rest.
// It never fails a write, so the command is not killed by a broken pipe.
type cappedBuffer struct {
	max     int
	buf     []byte
	dropped int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	n := min(len(p), b.max-len(b.buf))
	b.buf = append(b.buf, p[:n]...)
	b.dropped += len(p) - n
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b.buf), "\uFFFD"))
	if b.dropped > 0 {
		s += fmt.Sprintf(" … (%d more bytes)", b.dropped)
	}
	return s
}
