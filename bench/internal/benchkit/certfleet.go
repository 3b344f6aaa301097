package benchkit

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/certfleet/certfleet/internal/testutil/proc"
)

// Certfleet describes a `certfleet serve` for a benchmark: flags after
// serve (other than --addr), the root key, extra environment, and the file
// its output goes to.
type Certfleet struct {
	Binary        string // defaults to proc.Binary() (built once, cached)
	Args          []string
	KeyID, Secret string
	Env           []string // added to the environment, "K=V"
	LogPath       string
}

// StartCertfleet starts the node on a port the kernel picks and returns once
// it serves; read its address with Addr. The environment is the caller's
// without CERTFLEET_* variables (they would change the node's flags), plus
// the root key and c.Env.
func StartCertfleet(ctx context.Context, c Certfleet) (*proc.Node, error) {
	logf, err := os.Create(c.LogPath)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CERTFLEET_") {
			env = append(env, kv)
		}
	}
	env = append(env, "CERTFLEET_ROOT_ACCESS_KEY_ID="+c.KeyID, "CERTFLEET_ROOT_ACCESS_KEY_SECRET="+c.Secret)
	n, err := proc.Start(ctx, proc.Options{Binary: c.Binary, Args: c.Args, Env: append(env, c.Env...), Output: logf})
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("certfleet (log %s): %w", c.LogPath, err)
	}
	go func() { <-n.Done(); logf.Close() }()
	return n, nil
}
