package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/certfleet/certfleet/internal/api"
	"github.com/certfleet/certfleet/internal/api/ramapi"
	"github.com/certfleet/certfleet/internal/password"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// A sign-in name is an account's name for its root ("root", "acme") or
// user@account for a RAM user ("alice@acme").

var (
	errBadCredentials = &consoleError{http.StatusUnauthorized, "InvalidCredentials", "The sign-in name or the password is wrong."}
	errMFARequired    = &consoleError{http.StatusUnauthorized, "MFARequired", "This user has a second factor: enter the 6-digit code of the authenticator app."}
	errBadCode        = &consoleError{http.StatusUnauthorized, "InvalidMFACode", "The authenticator code is wrong or expired."}
	errNotFromPage    = &consoleError{http.StatusForbidden, "InvalidOrigin", "Sign in from the console's own page."}
)

func errLocked(what string, until time.Time, now time.Time) *consoleError {
	mins := int((until.Sub(now) + time.Minute - 1) / time.Minute)
	return &consoleError{http.StatusTooManyRequests, "Throttling.SignIn",
		"Too many failed sign-ins " + what + "; sign-in is locked for " + itoa(mins) + " minute(s), until " + until.UTC().Format("15:04") + " UTC."}
}

// signIn checks a sign-in name, password and (when the user has one) TOTP
// code, and starts a session. The form must come from the console's page:
// a custom header (which another site cannot send without CORS, which is
// not offered) and a same-origin Origin.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Requested-With") != "certfleet-console" || !sameOrigin(r) {
		c.fail(w, r, errNotFromPage)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		writeErr(w, http.StatusBadRequest, "InvalidParameter", "The sign-in form is malformed.")
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("Name"))
	pw := r.PostForm.Get("Password")
	code := strings.TrimSpace(r.PostForm.Get("Code"))
	if name == "" || pw == "" {
		writeErr(w, http.StatusBadRequest, "MissingParameter", "Enter the sign-in name and the password.")
		return
	}
	now := c.opts.Clock()
	src := sourceOf(r)
	userKey := "user:" + strings.ToLower(name)
	if until, locked := c.locks.locked(userKey, now); locked {
		c.fail(w, r, errLocked("for "+name, until, now))
		return
	}
	if until, locked := c.locks.locked("src:"+src, now); locked {
		c.fail(w, r, errLocked("from your address", until, now))
		return
	}
	// At most a few password checks at once (each takes 19 MiB and tens of
	// milliseconds): a flood of sign-ins from many addresses waits here.
	select {
	case c.hashing <- struct{}{}:
		defer func() { <-c.hashing }()
	case <-r.Context().Done():
		return
	}
	prof, err := c.profileOf(r, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, err)
		return
	}
	hash := prof.PasswordHash
	if err != nil {
		hash = password.Dummy // as slow as a real check: no telling which names exist
	}
	if !password.Verify(hash, pw) || err != nil {
		c.locks.fail(userKey, c.opts.UserFailures, now)
		c.locks.fail("src:"+src, c.opts.SourceFailures, now)
		c.log.Info("console sign-in refused", "name", name, "source", src)
		c.fail(w, r, errBadCredentials)
		return
	}
	if len(prof.TOTPSecretEnc) > 0 {
		if code == "" {
			c.fail(w, r, errMFARequired)
			return
		}
		sec, err := c.box.Open(prof.TOTPSecretEnc, secret.PurposeTOTP)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if !totp.Validate(code, string(sec)) {
			c.locks.fail(userKey, c.opts.UserFailures, now)
			c.locks.fail("src:"+src, c.opts.SourceFailures, now)
			c.fail(w, r, errBadCode)
			return
		}
	}
	c.locks.clear(userKey)
	c.log.Info("console sign-in", "name", name, "source", src)
	c.startSession(w, r, prof.AccountID, prof.UserID, now)
}

// startSession creates a session for the user and sets its cookie; the
// answer carries its CSRF token.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, accountID, userID int64, now time.Time) {
	tok := newToken()
	s := store.ConsoleSession{IDHash: tokenHash(tok), AccountID: accountID, UserID: userID, CSRF: newToken(), Source: sourceOf(r),
		Created: now, LastSeen: now, Expires: now.Add(c.opts.AbsoluteTimeout)}
	if err := c.st.ConsoleSessionCreate(r.Context(), s); err != nil {
		c.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: tok, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: c.opts.Secure || r.TLS != nil, MaxAge: int(c.opts.AbsoluteTimeout.Seconds())})
	writeJSON(w, http.StatusOK, map[string]string{"CSRF": s.CSRF})
}

// profileOf resolves a sign-in name to its login profile; ErrNotFound for
// an unknown account, user or a user without a profile.
func (c *Console) profileOf(r *http.Request, name string) (store.LoginProfile, error) {
	user, acct, isUser := strings.Cut(name, "@")
	if !isUser {
		acct = name
	}
	a, err := c.st.AccountGetByName(r.Context(), acct)
	if err != nil {
		return store.LoginProfile{}, err
	}
	var uid int64
	if isUser {
		u, err := c.st.RAMUserGet(r.Context(), a.ID, user)
		if err != nil {
			return store.LoginProfile{}, err
		}
		uid = u.ID
	}
	return c.st.LoginProfileGet(r.Context(), a.ID, uid)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	s, err := c.authenticate(r)
	if err == nil {
		if err = checkWrite(r, s); err == nil {
			// Not cancelled with the request: a page that navigates away
			// must not leave its session alive.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
			err = c.st.ConsoleSessionDelete(ctx, s.IDHash)
			cancel()
			if errors.Is(err, store.ErrNotFound) {
				err = nil
			}
		}
	} else if errors.Is(err, errNoSession) {
		err = nil
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: c.opts.Secure || r.TLS != nil, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{})
}

// whoami tells the page who is signed in, the CSRF token its writes send,
// and which operations the user may perform (to show only those controls).
func (c *Console) whoami(w http.ResponseWriter, r *http.Request) {
	s, err := c.authenticate(r)
	if errors.Is(err, errNoSession) {
		err = errSignedOut
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx := r.Context()
	a, err := c.st.AccountGet(ctx, s.AccountID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	name, user := a.Name, "root"
	if s.UserID != 0 {
		u, err := c.st.RAMUserGetByID(ctx, s.AccountID, s.UserID)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		name, user = u.Name+"@"+a.Name, u.Name
	}
	var actions []string
	for _, v := range []string{api.Version, ramapi.Version} {
		for _, op := range c.api.Actions(v) {
			actions = append(actions, api.RAMAction(v, op))
		}
	}
	actions = append(actions, api.ActionReadPrivateKey)
	allowed, err := c.api.Allowed(ctx, s.AccountID, s.UserID, actions)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var mfa, reset, bind bool
	if p, err := c.st.LoginProfileGet(ctx, s.AccountID, s.UserID); err == nil {
		mfa, reset = len(p.TOTPSecretEnc) > 0, p.PasswordResetRequired
		bind = p.MFABindRequired && !mfa
	}
	writeJSON(w, http.StatusOK, map[string]any{"Name": name, "Account": a.Name, "User": user, "CSRF": s.CSRF,
		"Expires": s.Expires.UnixMilli(), "IdleTimeoutSeconds": int(c.opts.IdleTimeout.Seconds()), "Allowed": allowed, "MFA": mfa,
		"PasswordResetRequired": reset, "MFABindRequired": bind})
}

// lockout counts failed sign-ins per key (a user, a source address) in a
// window; past the key's maximum it is locked until the window ends. It
// lives in the node's memory: on several nodes each counts its own.
type lockout struct {
	mu       sync.Mutex
	window   time.Duration
	maxUser  int
	maxSrc   int
	m        map[string]*strikes
	lastTrim time.Time
}

type strikes struct {
	n     int
	first time.Time
	until time.Time // locked until
}

func newLockout(maxUser, maxSrc int, window time.Duration) *lockout {
	return &lockout{window: window, maxUser: maxUser, maxSrc: maxSrc, m: map[string]*strikes{}}
}

func (l *lockout) locked(key string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	if s != nil && now.Before(s.until) {
		return s.until, true
	}
	return time.Time{}, false
}

func (l *lockout) fail(key string, max int, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastTrim) > l.window {
		for k, s := range l.m {
			if now.Sub(s.first) > l.window && !now.Before(s.until) {
				delete(l.m, k)
			}
		}
		l.lastTrim = now
	}
	s := l.m[key]
	if s == nil || (now.Sub(s.first) > l.window && !now.Before(s.until)) {
		s = &strikes{first: now}
		l.m[key] = s
	}
	s.n++
	if s.n >= max {
		s.until = now.Add(l.window)
	}
}

func (l *lockout) clear(key string) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// changePassword sets the signed-in user's own console password (fields
// Current and New). The current password is checked as at sign-in (and
// counts toward the lockout); the new one clears PasswordResetRequired.
// Every session of the user ends, and this browser gets a new one.
func (c *Console) changePassword(w http.ResponseWriter, r *http.Request) {
	s, ok := c.sessionForWrite(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	r.ParseForm()
	cur, next := r.PostForm.Get("Current"), strings.TrimSpace(r.PostForm.Get("New"))
	now := c.opts.Clock()
	key := "session:" + s.IDHash
	if until, locked := c.locks.locked(key, now); locked {
		c.fail(w, r, errLocked("for this session", until, now))
		return
	}
	if err := password.Check(next); err != nil {
		writeErr(w, http.StatusBadRequest, "InvalidParameter.Password", "The new password does not meet the password policy: "+
			strings.TrimPrefix(err.Error(), password.ErrPolicy.Error()+": ")+".")
		return
	}
	prof, err := c.st.LoginProfileGet(r.Context(), s.AccountID, s.UserID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	select {
	case c.hashing <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	match := password.Verify(prof.PasswordHash, cur)
	hash := password.Hash(next)
	<-c.hashing
	if !match {
		c.locks.fail(key, c.opts.UserFailures, now)
		c.fail(w, r, &consoleError{http.StatusBadRequest, "InvalidCredentials", "The current password is wrong."})
		return
	}
	prof.PasswordHash, prof.PasswordResetRequired, prof.Updated = hash, false, now
	if err := c.st.LoginProfileUpdate(r.Context(), prof); err != nil {
		c.fail(w, r, err)
		return
	}
	if _, err := c.st.ConsoleSessionDeleteUser(r.Context(), s.AccountID, s.UserID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.startSession(w, r, s.AccountID, s.UserID, now)
}
