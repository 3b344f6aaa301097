// Package api is certfleet's RPC front: the one endpoint "/" that speaks the
// CAS 2020-04-07 wire format (Action/Version, signed requests, Alibaba error
// bodies) and the handlers of every operation.
//
// It is not where deployments happen: handlers validate, write to the store
// and wake the engine; the engine does the work.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/certfleet/certfleet/internal/auth"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/metrics"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

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
	// SkipSignature turns signature checks off and treats every request as
	// the root account's. Only benchmarks set it, to measure authentication.
	SkipSignature bool
	// AutoStart moves new jobs to pending at creation.
	AutoStart bool
	// AutoRenew is the default of the resource Config key AutoRenew: an
	// uploaded renewal is deployed by itself (a trustee job) to resources
	// serving the certificate it renews. Defaults to false.
	AutoRenew bool
	// Clock returns the current time. Defaults to time.Now.
	Clock func() time.Time
}

// Waker is told when jobs or workers change, so the engine looks again.
type Waker interface{ Wake() }

// API serves the RPC endpoint. Create it with New.
type API struct {
	store    store.Store
	box      *secret.Box
	log      *slog.Logger
	engine   Waker
	products *registry.Registry
	opts     Options
	host     string

	rootAccount int64

	keys     sync.Map // AccessKeyID → cachedKey
	limiters sync.Map // AccessKeyID → *rate.Limiter

	actions    map[string]handler
	ramActions map[string]handler // RAMVersion (2015-05-01): ram_*.go
	authz      *authorizer        // authorize.go
	audit      bool
}

type cachedKey struct {
	secret    string
	accountID int64
	userID    int64 // 0: the account's root
	active    bool
	fetched   time.Time
}

const keyCacheTTL = 10 * time.Second

// New returns the API. rootAccount is the account SkipSignature calls act as.
func New(st store.Store, box *secret.Box, log *slog.Logger, engine Waker, products *registry.Registry, rootAccount int64, opts Options) *API {
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
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	host, _ := os.Hostname()
	a := &API{store: st, box: box, log: log, engine: engine, products: products, opts: opts, host: host, rootAccount: rootAccount}
	a.actions = a.routes()
	a.ramActions = a.ramRoutes()
	a.authz = newAuthorizer(st, opts.Clock)
	a.audit = true
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
}

type ctxKey struct{}

func callFrom(ctx context.Context) *call { return ctx.Value(ctxKey{}).(*call) }

// handler serves one action and returns the response body fields (RequestId is added).
type handler func(ctx context.Context, c *call) (any, error)

// Handler returns the http.Handler for "/".
func (a *API) Handler() http.Handler {
	return a.withRequest(a.withSignature(a.withRateLimit(a.withAudit(a.withAuthorize(http.HandlerFunc(a.dispatch))))))
}

// withRequest assigns the RequestId, bounds and reads the body, parses the
// parameters and checks Action/Version.
func (a *API) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{requestID: strings.ToUpper(uuid.NewString())}
		defer func() {
			if v := recover(); v != nil {
				a.log.Error("panic in handler", "request_id", c.requestID, "action", c.action, "panic", v)
				a.writeError(w, c, errInternal)
			}
		}()
		if r.URL.Path != "/" {
			a.writeError(w, c, &Error{Code: "InvalidAction.NotFound", Status: http.StatusNotFound, Message: "Only the path / is served."})
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusMethodNotAllowed, Message: "Use POST or GET."})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusRequestEntityTooLarge,
					Message: "The request body exceeds the limit of " + itoa(a.opts.MaxBodyBytes) + " bytes."})
				return
			}
			a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusBadRequest, Message: "The request body could not be read."})
			return
		}
		values := r.URL.Query()
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && len(body) > 0 {
			form, err := url.ParseQuery(string(body))
			if err != nil {
				a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusBadRequest, Message: "The form body is malformed."})
				return
			}
			for k, vs := range form {
				values[k] = append(values[k], vs...)
			}
		}
		c.body, c.params = body, params{values}
		// V3 requests name the action in signed headers; V1 requests in signed
		// parameters (their x-acs-* headers are not signed, so they are ignored).
		var version string
		c.action, version = values.Get("Action"), values.Get("Version")
		if strings.HasPrefix(r.Header.Get("Authorization"), "ACS3-") {
			c.action, version = r.Header.Get("x-acs-action"), r.Header.Get("x-acs-version")
		}
		switch {
		case c.action == "":
			a.writeError(w, c, errMissing("Action"))
			return
		case version == "":
			a.writeError(w, c, errMissing("Version"))
			return
		case version != Version && version != RAMVersion:
			a.writeError(w, c, &Error{Code: "InvalidVersion", Status: http.StatusBadRequest,
				Message: "Version " + version + " is not served; use " + Version + " (certificates) or " + RAMVersion + " (RAM)."})
			return
		}
		c.version = version
		if _, ok := a.table(version)[c.action]; !ok {
			a.writeError(w, c, &Error{Code: "InvalidAction.NotFound", Status: http.StatusNotFound,
				Message: "The action " + c.action + " does not exist in version " + version + "."})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}

// withSignature verifies the request signature, the timestamp window and the
// nonce, and resolves the caller's account.
func (a *API) withSignature(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callFrom(r.Context())
		if a.opts.SkipSignature {
			c.accountID, c.principal = a.rootAccount, "root"
			next.ServeHTTP(w, r)
			return
		}
		if err := a.verify(r, c); err != nil {
			a.writeError(w, c, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) verify(r *http.Request, c *call) error {
	signed, err := auth.Parse(r, c.params.v)
	if err != nil {
		return err
	}
	if len(signed.Nonce) > 128 || len(signed.AccessKeyID) > 128 {
		return &Error{Code: "IncompleteSignature", Status: http.StatusBadRequest,
			Message: "The signature nonce and AccessKeyId must be at most 128 characters."}
	}
	c.accessKeyID = signed.AccessKeyID
	key, err := a.lookupKey(r.Context(), signed.AccessKeyID)
	if err != nil {
		return err
	}
	now := a.opts.Clock()
	if err := auth.Verify(r, c.params.v, c.body, signed, key.secret, now); err != nil {
		return err
	}
	// The nonce is spent only once the signature proves the caller holds the key.
	if err := a.store.NonceUse(r.Context(), signed.AccessKeyID+":"+signed.Nonce, auth.NonceExpiry(signed.Timestamp)); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &Error{Code: "SignatureNonceUsed", Status: http.StatusBadRequest,
				Message: "The request signature nonce has been used; send a new nonce with each request."}
		}
		return err
	}
	c.accountID, c.userID, c.principal = key.accountID, key.userID, "root"
	return nil
}

func (a *API) lookupKey(ctx context.Context, id string) (cachedKey, error) {
	if v, ok := a.keys.Load(id); ok {
		k := v.(cachedKey)
		if time.Since(k.fetched) < keyCacheTTL {
			if !k.active {
				return k, errUnknownKey(id)
			}
			return k, nil
		}
	}
	rec, err := a.store.AccessKeyGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return cachedKey{}, errUnknownKey(id)
	}
	if err != nil {
		return cachedKey{}, err
	}
	plain, err := a.box.Open(rec.SecretEnc, secret.PurposeAccessKey)
	if err != nil {
		return cachedKey{}, err
	}
	k := cachedKey{secret: string(plain), accountID: rec.AccountID, userID: rec.UserID, active: rec.Status == "Active", fetched: time.Now()}
	a.keys.Store(id, k)
	if !k.active {
		return k, errUnknownKey(id)
	}
	return k, nil
}

func errUnknownKey(id string) *Error {
	return &Error{Code: "InvalidAccessKeyId.NotFound", Status: http.StatusNotFound,
		Message: "Specified access key is not found or is disabled: " + id}
}

// withRateLimit applies the per-AccessKey token bucket.
func (a *API) withRateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callFrom(r.Context())
		if a.opts.RateLimit > 0 {
			v, _ := a.limiters.LoadOrStore(c.accessKeyID, rate.NewLimiter(rate.Limit(a.opts.RateLimit), a.opts.RateBurst))
			if !v.(*rate.Limiter).Allow() {
				w.Header().Set("x-ratelimit-user-api", "Limit:"+itoa(int64(a.opts.RateLimit))+",TimeLeft:1000")
				a.writeError(w, c, &Error{Code: "Throttling.User", Status: http.StatusBadRequest,
					Message: "Request was denied due to user flow control; slow down or raise --rate-limit."})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
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
		a.log.Error("request failed", "request_id", c.requestID, "action", c.action, "error", err.Error())
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
