package deploy

import (
	"net/http"
	"time"
)

// Options are the server-wide settings deployers are built with.
type Options struct {
	// LocalRoot is the directory every local target path must resolve inside.
	// Empty refuses every local target.
	LocalRoot string
	// LocalReloadAllow lists the exact ReloadCommand strings local targets may run.
	LocalReloadAllow []string
	// HTTPClient is used by HTTP-speaking deployers. Defaults to a client with
	// sane timeouts when nil.
	HTTPClient *http.Client
	// CommandTimeout bounds reload and test commands. Defaults to 60s.
	CommandTimeout time.Duration
}
