package console

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// The optional second factor: a signed-in user with a login profile binds
// an authenticator app (TOTP, RFC 6238) in two steps. mfaBegin returns a
// fresh secret and its otpauth:// URI, kept pending (in memory, for 10
// minutes) against the session; mfaConfirm with a code of that secret
// seals it into the profile. From then on sign-in asks for a code. Binding
// again replaces the secret; `certfleet account password` on the host or
// DeleteLoginProfile/CreateLoginProfile remove it.

type pendingMFA struct {
	mu sync.Mutex
	m  map[string]pendingSecret // session IDHash → secret
}

type pendingSecret struct {
	secret  string
	expires time.Time
}

func newPendingMFA() *pendingMFA { return &pendingMFA{m: map[string]pendingSecret{}} }

func (c *Console) sessionForWrite(w http.ResponseWriter, r *http.Request) (store.ConsoleSession, bool) {
	s, err := c.authenticate(r)
	if errors.Is(err, errNoSession) {
		err = errSignedOut
	}
	if err == nil {
		err = checkWrite(r, s)
	}
	if err != nil {
		c.fail(w, r, err)
		return s, false
	}
	return s, true
}

func (c *Console) mfaBegin(w http.ResponseWriter, r *http.Request) {
	s, ok := c.sessionForWrite(w, r)
	if !ok {
		return
	}
	if _, err := c.st.LoginProfileGet(r.Context(), s.AccountID, s.UserID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = &consoleError{http.StatusBadRequest, "EntityNotExist.User.LoginProfile", "You have no login profile to bind a second factor to."}
		}
		c.fail(w, r, err)
		return
	}
	who := "root"
	if s.UserID != 0 {
		if u, err := c.st.RAMUserGetByID(r.Context(), s.AccountID, s.UserID); err == nil {
			who = u.Name
		}
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "certfleet", AccountName: who})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	now := c.opts.Clock()
	c.mfa.mu.Lock()
	for k, p := range c.mfa.m {
		if now.After(p.expires) {
			delete(c.mfa.m, k)
		}
	}
	c.mfa.m[s.IDHash] = pendingSecret{key.Secret(), now.Add(10 * time.Minute)}
	c.mfa.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"Secret": key.Secret(), "URI": key.URL()})
}

func (c *Console) mfaConfirm(w http.ResponseWriter, r *http.Request) {
	s, ok := c.sessionForWrite(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	r.ParseForm()
	code := strings.TrimSpace(r.PostForm.Get("Code"))
	now := c.opts.Clock()
	c.mfa.mu.Lock()
	p, found := c.mfa.m[s.IDHash]
	c.mfa.mu.Unlock()
	if !found || now.After(p.expires) {
		c.fail(w, r, &consoleError{http.StatusBadRequest, "MFANotStarted", "Start binding the authenticator again; the secret shown expired."})
		return
	}
	if !totp.Validate(code, p.secret) {
		c.fail(w, r, errBadCode)
		return
	}
	prof, err := c.st.LoginProfileGet(r.Context(), s.AccountID, s.UserID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	prof.TOTPSecretEnc, prof.Updated = c.box.Seal([]byte(p.secret), secret.PurposeTOTP), now
	if err := c.st.LoginProfileUpdate(r.Context(), prof); err != nil {
		c.fail(w, r, err)
		return
	}
	c.mfa.mu.Lock()
	delete(c.mfa.m, s.IDHash)
	c.mfa.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]bool{"MFA": true})
}
