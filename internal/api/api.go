// Package api is certfleet's RPC front: the one endpoint "/" that speaks the
// CAS 2020-04-07 wire format (Action/Version, signed requests, Alibaba error
// bodies) and the handlers of every operation.
//
// It is not where deployments happen: handlers validate, write to the store
// and wake the engine; the engine does the work.
package api

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/auth"
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/discovery"
	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/metrics"
	"github.com/certfleet/certfleet/internal/policy"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"golang.org/x/time/rate"
)

// RenewalNotifier tells contacts that an uploaded renewal c was not
// deployed by itself to resourceIDs, and why (reason, one line).
type RenewalNotifier interface {
	RenewalRefused(ctx context.Context, c store.Certificate, contactIDs, resourceIDs []int64, reason string) error
}

// Version is the API version this front answers.
const Version = "2020-04-07"

// Options tune the front. Zero values take the documented defaults.
type Options struct {
	// MaxBodyBytes bounds a request body. Defaults to 1 MiB.
	MaxBodyBytes int64
	// RateLimit is requests per second per AccessKey. Defaults to 500; negative disables.
	RateLimit float64
	// RateBurst is the token bucket size. Defaults to 2×RateLimit, rounded up, at least 1.
	RateBurst int
	// MaxInflightBody bounds the bytes of request bodies this node reads at
	// once from callers not yet authenticated (a V3 request whose signature
	// checks out from its headers does not count). A request that would
	// exceed it is answered 503 Throttling before its body is read. Defaults
	// to 64 MiB, at least MaxBodyBytes; negative disables.
	MaxInflightBody int64
	// StrangerRate is requests per second per source address that are
	// unsigned, name an unknown AccessKeyId or fail their signature
	// (Throttling.Source past it). Defaults to 10; negative disables.
	StrangerRate float64
	// SkipSignature turns signature checks off and treats every request as
	// the root account's. Only benchmarks set it, to measure authentication.
	SkipSignature bool
	// AutoStart moves new jobs to pending at creation.
	AutoStart bool
	// AutoRenew is the default of the resource Config key AutoRenew: an
	// uploaded renewal is deployed by itself (a trustee job) to resources
	// serving the certificate it renews. Defaults to false.
	AutoRenew bool
	// RenewTrust, when not nil, are roots an uploaded renewal may chain to
	// besides the CAs of the certificate it renews (--renew-trust-store).
	RenewTrust *x509.CertPool
	// Renewals, when not nil, is told about renewals refused a trustee job
	// (the notify dispatcher).
	Renewals RenewalNotifier
	// Clock returns the current time. Defaults to time.Now.
	Clock func() time.Time
	// EmailEnabled says the node sends email (an SMTP server is configured);
	// without it, a contact reachable only by email draws a warning.
	EmailEnabled bool
	// AllowRSA1024 lets uploads carry RSA keys of 1024 bits (and more) for
	// legacy devices; by default RSA keys need 2048 bits.
	AllowRSA1024 bool
	// Egress makes the probes of CheckCloudResource and
	// PreviewDeploymentJob under the caller's account's egress policy. nil:
	// the default policy with every account treated as root.
	Egress *egress.Dialer
	// Issuance drives certificate orders (nil: orders are stored and wait).
	Issuance Issuance
	// DefaultProductCode names the issuer of requests that give no
	// ProductCode (--default-product-code).
	DefaultProductCode string
	// Syncer runs SyncCloudResources; the server shares it with the
	// leader's periodic sync so both never sync one credential at once.
	// nil: one of the API's own.
	Syncer *discovery.Syncer
}

// Waker is told when jobs or workers change, so the engine looks again.
type Waker interface{ Wake() }

// API serves the RPC endpoint. Create it with New.
type API struct {
	store    store.Store
	box      *secret.Box
	log      *slog.Logger
	engine   Waker
	products deploy.Catalog
	syncer   *discovery.Syncer
	opts     Options
	host     string

	rootAccount int64

	keys     sync.Map      // AccessKeyID → cachedKey: signature.go
	unknown  unknownKeys   // negative cache of AccessKeyIds: stranger.go
	nonces   nonceBatcher  // group commit of signature nonces: nonces.go
	auditLog auditLog      // group commit of audit events: auditlog.go
	sources  *sourceLimits // per source address, for strangers: stranger.go; nil: off
	bodies   *inflight     // bytes of unauthenticated bodies being read: stranger.go; nil: off
	limiters sync.Map      // AccessKeyID → *rate.Limiter: ratelimit.go

	actions    map[string]handler
	ramActions map[string]handler // RAMVersion (2015-05-01): ram_*.go
	authz      *authorizer        // authorize.go
	audit      bool
	secretKeys []string // Config keys some product marks Secret: redacted in audit rows
}

// New returns the API. rootAccount is the account SkipSignature calls act as.
func New(st store.Store, box *secret.Box, log *slog.Logger, engine Waker, products deploy.Catalog, rootAccount int64, opts Options) *API {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 500
	}
	if opts.RateBurst <= 0 {
		// At least 1: a bucket of 0 would refuse every request at a rate under 0.5/s.
		opts.RateBurst = max(1, int(math.Ceil(2*opts.RateLimit)))
	}
	if opts.MaxInflightBody == 0 {
		opts.MaxInflightBody = 64 << 20
	}
	if opts.MaxInflightBody > 0 && opts.MaxInflightBody < opts.MaxBodyBytes {
		opts.MaxInflightBody = opts.MaxBodyBytes // else no body of the largest size could ever be read
	}
	if opts.StrangerRate == 0 {
		opts.StrangerRate = 10
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	host, _ := os.Hostname()
	if opts.Syncer == nil {
		opts.Syncer = &discovery.Syncer{Store: st, Catalog: products, Box: box, Log: log}
	}
	a := &API{store: st, box: box, log: log, engine: engine, products: products, opts: opts, host: host, rootAccount: rootAccount,
		syncer: opts.Syncer}
	a.nonces.init(st)
	a.auditLog.init(st)
	if opts.MaxInflightBody > 0 {
		a.bodies = &inflight{max: opts.MaxInflightBody}
	}
	if opts.StrangerRate > 0 {
		a.sources = newSourceLimits(opts.StrangerRate, max(1, int(math.Ceil(2*opts.StrangerRate))))
	}
	a.actions = a.routes()
	a.ramActions = a.ramRoutes()
	for _, t := range []map[string]handler{a.actions, a.ramActions} {
		for name := range t {
			metrics.KnownActions(name)
		}
	}
	a.authz = newAuthorizer(st, opts.Clock)
	a.audit = true
	a.secretKeys = append(secretKeys(products), "EabHmacKey")
	return a
}

// call is what the middleware learns about a request, for the handler.
type call struct {
	requestID   string
	action      string
	params      params
	body        []byte
	accountID   int64
	accessKeyID string
	version     string
	userID      int64  // the RAM user calling; 0 for the account's root
	principal   string // audit name of the caller: "root" or the RAM user's name
	code        string // the error code answered, set by writeError

	source  string            // the source address, for the per-source limit
	charged *rate.Reservation // the source token this call spent; given back once its key is proved
	// nonceSpent, set for a read running while its nonce is recorded
	// (signature.go), waits for that and reports a replay; middleware that
	// writes (the audit trail) asks it first.
	nonceSpent func() error
	signed     auth.Signed // set with key when the signature was checked before the body (V3)
	key        *cachedKey
	// Set by withAuthorize for a RAM user: its policies and the request
	// facts they are evaluated against (allowed).
	docs    []*policy.Document
	authReq policy.Request
	// console is set for a call of a console session (console.go).
	console *ConsoleCaller
	// keyRead is the ID of the certificate whose private key the answer
	// carries; withAudit records such a call whatever its verb.
	keyRead int64
}

type ctxKey struct{}

func callFrom(ctx context.Context) *call { return ctx.Value(ctxKey{}).(*call) }

// handler serves one action and returns the response body fields (RequestId is added).
type handler func(ctx context.Context, c *call) (any, error)

// Handler returns the http.Handler for "/": the middleware, outermost first,
// each in its own file, then dispatch.
func (a *API) Handler() http.Handler {
	return a.withRequest( // request.go: RequestId, body limit, parameters, Action/Version
		a.withSignature( // signature.go: signature, timestamp window, nonce; the caller's account
			a.withRateLimit( // ratelimit.go: token bucket per AccessKey
				a.withAudit( // audit.go: changes and denials into the audit trail
					a.withAuthorize( // authorize.go: RAM policies
						http.HandlerFunc(a.dispatch))))))
}

// dispatch runs the action's handler and writes its response.
func (a *API) dispatch(w http.ResponseWriter, r *http.Request) {
	c := callFrom(r.Context())
	start := time.Now()
	resp, err := a.table(c.version)[c.action](r.Context(), c)
	if err != nil {
		a.writeError(w, c, err)
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		a.writeError(w, c, err)
		return
	}
	body := make([]byte, 0, len(b)+64)
	body = append(body, `{"RequestId":"`...)
	body = append(body, c.requestID...)
	body = append(body, '"')
	if len(b) > 2 && b[0] == '{' {
		body = append(body, ',')
		body = append(body, b[1:]...)
	} else {
		body = append(body, '}')
	}
	a.log.Info("request", "request_id", c.requestID, "action", c.action, "access_key_id", c.accessKeyID,
		"status", http.StatusOK, "duration_ms", time.Since(start).Milliseconds())
	metrics.APIRequest(c.action, "OK")
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (a *API) writeError(w http.ResponseWriter, c *call, err error) {
	var e *Error
	var ae *auth.Error
	switch {
	case errors.As(err, &e):
	case errors.As(err, &ae):
		e = &Error{Code: ae.Code, Status: ae.Status, Message: ae.Message}
	default:
		a.log.Error("request failed", "request_id", c.requestID, "action", c.action, "error", audit.RedactURLs(err.Error()))
		e = errInternal
	}
	c.code = e.Code
	metrics.APIRequest(c.action, e.Code)
	if e.Status < 500 {
		a.log.Info("request", "request_id", c.requestID, "action", c.action, "access_key_id", c.accessKeyID,
			"status", e.Status, "code", e.Code)
	}
	rec := e.Recommend
	if rec == "" {
		rec = "https://github.com/certfleet/certfleet/blob/main/docs/errors.md#" + strings.ToLower(strings.ReplaceAll(e.Code, ".", ""))
	}
	writeJSON(w, e.Status, errorBody{RequestID: c.requestID, HostID: a.host, Code: e.Code, Message: e.Message, Recommend: rec,
		AccessDeniedDetail: e.AccessDeniedDetail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"Code":"InternalError","Message":"response encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
