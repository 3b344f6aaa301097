package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/certfleet/certfleet/internal/policy"
)

// ConsoleCaller is a web console user, authenticated by internal/console
// from its session cookie (and its CSRF token) instead of a signature.
type ConsoleCaller struct {
	AccountID int64
	UserID    int64 // the RAM user; 0 for the account's root
	// Session names the session in the audit trail: a short, non-secret
	// prefix of the hash of its token.
	Session string
}

// ConsoleAccessKeyID is the AccessKeyId audit events of console calls
// record (followed by "/" and the session), so the trail tells them apart
// from SDK calls.
const ConsoleAccessKeyID = "console"

type consoleKey struct{}

// WithConsoleCaller returns ctx carrying the console caller that
// ConsoleHandler serves.
func WithConsoleCaller(ctx context.Context, cc ConsoleCaller) context.Context {
	return context.WithValue(ctx, consoleKey{}, cc)
}

func consoleCallerFrom(ctx context.Context) (ConsoleCaller, bool) {
	cc, ok := ctx.Value(consoleKey{}).(ConsoleCaller)
	return cc, ok
}

// ConsoleHandler serves the operations for web console sessions: the
// caller comes from the request's context (WithConsoleCaller; a request
// without one is refused with IncompleteSignature), then the same chain as
// Handler's minus the signature: parameters, rate limit, audit, RAM
// authorization, dispatch. Any path is accepted; the console mounts it
// where it likes.
func (a *API) ConsoleHandler() http.Handler {
	chain := a.withRequest( // request.go: RequestId, body limit, parameters, Action/Version
		a.withRateLimit( // ratelimit.go: token bucket per console user
			a.withAudit( // audit.go: changes and denials, AccessKeyId console/<session>
				a.withAuthorize( // authorize.go: RAM policies
					http.HandlerFunc(a.dispatch)))))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := consoleCallerFrom(r.Context()); !ok {
			a.writeError(w, &call{requestID: strings.ToUpper(uuid.NewString())}, &Error{Code: "IncompleteSignature", Status: http.StatusBadRequest,
				Message: "The request carries neither a signature nor a console session."})
			return
		}
		chain.ServeHTTP(w, r)
	})
}

func (c *call) setConsole(cc ConsoleCaller) {
	c.console = &cc
	c.accountID, c.userID, c.principal = cc.AccountID, cc.UserID, "root"
	c.accessKeyID = ConsoleAccessKeyID + "/" + cc.Session
}

// limitKey is the rate limiter's bucket of the call.
func (c *call) limitKey() string {
	if c.console != nil {
		return ConsoleAccessKeyID + "/" + itoa(c.accountID) + "/" + itoa(c.userID)
	}
	return c.accessKeyID
}

// Allowed reports, for each action (a RAM action name such as
// "yundun-cert:CreateCloudResource" or "ram:CreateUser"), whether the
// account's user (0: the root) may perform it, by the same policies the
// API enforces. The console uses it to hide controls; the server refuses
// the call anyway.
func (a *API) Allowed(ctx context.Context, accountID, userID int64, actions []string) (map[string]bool, error) {
	out := make(map[string]bool, len(actions))
	if userID == 0 {
		for _, act := range actions {
			out[act] = true
		}
		return out, nil
	}
	ent, err := a.authz.entry(ctx, accountID, userID)
	if err != nil {
		return nil, err
	}
	now := a.opts.Clock()
	for _, act := range actions {
		req := policy.Request{Action: act, Resource: "acs:" + service(act) + ":*:" + itoa(accountID) + ":*", Now: now}
		out[act] = policy.Evaluate(ent.docs, req) == policy.Allow
	}
	return out, nil
}

// RAMAction is the RAM action name a call of action in version needs
// (docs/ram-and-audit.md, "Authorization").
func RAMAction(version, action string) string { return ramAction(version, action) }

// Actions lists the operations served in version, unordered.
func (a *API) Actions(version string) []string {
	t := a.table(version)
	out := make([]string, 0, len(t))
	for name := range t {
		out = append(out, name)
	}
	return out
}
