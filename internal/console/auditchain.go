package console

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/audit"
)

// auditChain answers whether the audit trail's hash chain is intact (as
// `certfleet audit verify`), for users allowed to read the audit log. The
// walk covers the whole database; its result is kept for a minute so that
// paging through the log does not repeat it.
type chainCache struct {
	mu     sync.Mutex
	at     time.Time
	events int64
	err    error
}

func (c *Console) auditChain(w http.ResponseWriter, r *http.Request) {
	s, err := c.authenticate(r)
	if errors.Is(err, errNoSession) {
		err = errSignedOut
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	const action = "yundun-cert:LookupAuditEvents"
	ok, err := c.api.Allowed(r.Context(), s.AccountID, s.UserID, []string{action})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !ok[action] {
		writeErr(w, http.StatusForbidden, "Forbidden.RAM", "You are not allowed "+action+".")
		return
	}
	c.chain.mu.Lock()
	defer c.chain.mu.Unlock()
	if time.Since(c.chain.at) > time.Minute {
		c.chain.events, c.chain.err = audit.Verify(r.Context(), c.st)
		c.chain.at = time.Now()
	}
	out := map[string]any{"Intact": c.chain.err == nil, "Events": c.chain.events}
	if c.chain.err != nil {
		out["Error"] = c.chain.err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}
