// Package console is certfleet's web console: a browser front, served by
// `certfleet serve` under /console/ on the API's port, for everything the
// API does. It signs people in (an account's root with the password set by
// `certfleet account password`, RAM users with their login profiles),
// keeps server-side sessions in HttpOnly, SameSite=Strict cookies, checks a
// CSRF token on every write, and hands each operation to the API's own
// chain (api.ConsoleHandler): the same parameters, RAM authorization,
// account isolation and audit trail as a signed SDK call.
//
// The pages are plain HTML, CSS and JavaScript modules embedded in the
// binary (web/), under a Content-Security-Policy without unsafe-inline or
// unsafe-eval; nothing is fetched from another origin.
//
// It is not where operations are implemented or authorized (internal/api)
// nor where passwords are hashed (internal/password).
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/api"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

//go:embed web
var webFS embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// CookieName is the session cookie's name.
const CookieName = "certfleet_session"

// CSP is the Content-Security-Policy of every console response: scripts,
// styles, images and connections from this origin only, no inline code.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Options tune the console. Zero values take the documented defaults.
type Options struct {
	// IdleTimeout ends a session unused this long. Defaults to 30 minutes.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after sign-in, used or not.
	// Defaults to 12 hours.
	AbsoluteTimeout time.Duration
	// Secure marks the cookie Secure (the node serves TLS).
	Secure bool
	// UserFailures and SourceFailures are the failed sign-ins a user and a
	// source address may make within LockoutWindow before being refused
	// for LockoutWindow. Default to 5 and 20; LockoutWindow to 15 minutes.
	UserFailures   int
	SourceFailures int
	LockoutWindow  time.Duration
	// Clock returns the current time. Defaults to time.Now.
	Clock func() time.Time
}

// Console serves /console/. Create it with New.
type Console struct {
	st    store.Store
	api   *api.API
	box   *secret.Box
	log   *slog.Logger
	opts  Options
	gate  http.Handler // api.ConsoleHandler
	locks *lockout
	mfa   *pendingMFA
	chain chainCache
	// hashing bounds concurrent password checks (signin.go).
	hashing chan struct{}
	mux     *http.ServeMux
}

// New returns the console over the API front a.
func New(st store.Store, a *api.API, box *secret.Box, log *slog.Logger, opts Options) *Console {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.AbsoluteTimeout <= 0 {
		opts.AbsoluteTimeout = 12 * time.Hour
	}
	if opts.UserFailures <= 0 {
		opts.UserFailures = 5
	}
	if opts.SourceFailures <= 0 {
		opts.SourceFailures = 20
	}
	if opts.LockoutWindow <= 0 {
		opts.LockoutWindow = 15 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	c := &Console{st: st, api: a, box: box, log: log, opts: opts, gate: a.ConsoleHandler(),
		locks: newLockout(opts.UserFailures, opts.SourceFailures, opts.LockoutWindow), mfa: newPendingMFA(),
		hashing: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
	assets, _ := fs.Sub(webFS, "web")
	files := http.FileServerFS(assets)
	m := http.NewServeMux()
	m.HandleFunc("GET /console/{$}", c.page)
	m.Handle("GET /console/assets/", http.StripPrefix("/console/", files))
	m.HandleFunc("POST /console/signin", c.signIn)
	m.HandleFunc("POST /console/signout", c.signOut)
	m.HandleFunc("GET /console/whoami", c.whoami)
	m.HandleFunc("POST /console/api", c.call)
	m.HandleFunc("POST /console/pfx", c.pfx)
	m.HandleFunc("POST /console/password", c.changePassword)
	m.HandleFunc("POST /console/mfa/begin", c.mfaBegin)
	m.HandleFunc("POST /console/mfa/confirm", c.mfaConfirm)
	m.HandleFunc("GET /console/auditchain", c.auditChain)
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "NotFound", "No such console page: "+r.URL.Path+".")
	})
	c.mux = m
	return c
}

// Handler serves every path under Prefix.
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/console/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		c.mux.ServeHTTP(w, r)
	})
}

// IsBrowserRoot reports whether r is a browser asking for "/" rather than
// an API call (which always names an Action): GET / without a query string
// or an Authorization header.
func IsBrowserRoot(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/" && r.URL.RawQuery == "" && r.Header.Get("Authorization") == ""
}

func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		http.Error(w, "console assets missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

// session is a request's signed-in session, from its cookie.
type session struct {
	store.ConsoleSession
	name string // sign-in name: "acme" (the root) or "alice@acme"
}

var errNoSession = errors.New("no session")

// authenticate returns the request's live session, or errNoSession.
func (c *Console) authenticate(r *http.Request) (store.ConsoleSession, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return store.ConsoleSession{}, errNoSession
	}
	id := tokenHash(ck.Value)
	s, err := c.st.ConsoleSessionGet(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return s, errNoSession
	}
	if err != nil {
		return s, err
	}
	now := c.opts.Clock()
	if !now.Before(s.Expires) || now.Sub(s.LastSeen) >= c.opts.IdleTimeout {
		c.st.ConsoleSessionDelete(r.Context(), id)
		return s, errNoSession
	}
	if now.Sub(s.LastSeen) >= time.Minute/2 { // not a write per request
		if err := c.st.ConsoleSessionTouch(r.Context(), id, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return s, err
		}
	}
	return s, nil
}

// checkWrite refuses a POST whose CSRF token is not the session's, or
// whose Origin (when sent) is another site.
func checkWrite(r *http.Request, s store.ConsoleSession) error {
	if !sameOrigin(r) {
		return errCrossOrigin
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) != 1 {
		return errCSRF
	}
	return nil
}

var (
	errCSRF          = &consoleError{http.StatusForbidden, "InvalidCSRFToken", "The request lacks this session's CSRF token; reload the page."}
	errCrossOrigin   = &consoleError{http.StatusForbidden, "InvalidOrigin", "The request comes from another site."}
	errResetRequired = &consoleError{http.StatusForbidden, "PasswordResetRequired", "Set a new password first: My account → Change password."}
	errBindRequired  = &consoleError{http.StatusForbidden, "MFABindRequired", "Bind an authenticator app first: My account → Bind an authenticator."}
	errSignedOut     = &consoleError{http.StatusUnauthorized, "SessionExpired", "You are not signed in, or your session ended; sign in again."}
)

// sameOrigin reports whether the request's Origin, when present, is this
// host, and the browser does not say it comes from another site.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

type consoleError struct {
	status int
	code   string
	msg    string
}

func (e *consoleError) Error() string { return e.msg }

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"Code": code, "Message": msg})
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *consoleError
	if errors.As(err, &ce) {
		writeErr(w, ce.status, ce.code, ce.msg)
		return
	}
	c.log.Error("console request failed", "path", r.URL.Path, "error", err.Error())
	writeErr(w, http.StatusInternalServerError, "InternalError", "The console could not answer; the server log has the cause.")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// call runs one operation (Action, Version and its parameters, form
// encoded) as the session's user through the API's chain.
func (c *Console) call(w http.ResponseWriter, r *http.Request) {
	s, err := c.authenticate(r)
	if errors.Is(err, errNoSession) {
		err = errSignedOut
	}
	if err == nil {
		err = checkWrite(r, s)
	}
	if err == nil {
		err = c.checkProfile(r, s)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.serveAs(w, r, s)
}

// checkProfile refuses operations while the user's login profile asks for
// a new password (PasswordResetRequired) or an authenticator not yet bound
// (MFABindRequired): the user must do that first, on My account.
func (c *Console) checkProfile(r *http.Request, s store.ConsoleSession) error {
	p, err := c.st.LoginProfileGet(r.Context(), s.AccountID, s.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return errSignedOut // deleted meanwhile (its sessions go with it)
	}
	if err != nil {
		return err
	}
	switch {
	case p.PasswordResetRequired:
		return errResetRequired
	case p.MFABindRequired && len(p.TOTPSecretEnc) == 0:
		return errBindRequired
	}
	return nil
}

func (c *Console) serveAs(w http.ResponseWriter, r *http.Request, s store.ConsoleSession) {
	cc := api.ConsoleCaller{AccountID: s.AccountID, UserID: s.UserID, Session: s.IDHash[:12]}
	c.gate.ServeHTTP(w, r.WithContext(api.WithConsoleCaller(r.Context(), cc)))
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Purge deletes expired and idle sessions; the server's leader runs it
// periodically.
func (c *Console) Purge(ctx context.Context) (int64, error) {
	now := c.opts.Clock()
	return c.st.ConsoleSessionPurge(ctx, now, now.Add(-c.opts.IdleTimeout))
}
