package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/certfleet/certfleet/internal/auth"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// cachedKey is an access key as lookupKey keeps it (API.keys) for keyCacheTTL.
type cachedKey struct {
	secret    string
	accountID int64
	userID    int64 // 0: the account's root
	active    bool
	fetched   time.Time
}

const keyCacheTTL = 10 * time.Second

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
			a.writeError(w, c, a.stranger(c, err))
			return
		}
		if c.charged != nil { // the caller proved its key: its source keeps the token
			c.charged.Cancel()
			c.charged = nil
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) verify(r *http.Request, c *call) error {
	signed, key := c.signed, c.key
	if key == nil { // not checked before the body (request.go): V1
		var err error
		if signed, err = auth.Parse(r, c.params.v); err != nil {
			return err
		}
		if err := checkClaimSize(signed); err != nil {
			return err
		}
		c.accessKeyID = signed.AccessKeyID
		k, err := a.lookupKey(r.Context(), signed.AccessKeyID)
		if err != nil {
			return err
		}
		if err := auth.Verify(r, c.params.v, c.body, signed, k.secret, a.opts.Clock()); err != nil {
			return err
		}
		key = &k
	}
	// The nonce is spent only once the signature proves the caller holds the key.
	if err := a.nonces.use(r.Context(), signed.AccessKeyID+":"+signed.Nonce, auth.NonceExpiry(signed.Timestamp)); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &Error{Code: "SignatureNonceUsed", Status: http.StatusBadRequest,
				Message: "The request signature nonce has been used; send a new nonce with each request."}
		}
		return err
	}
	c.accountID, c.userID, c.principal = key.accountID, key.userID, "root"
	return nil
}

func checkClaimSize(signed auth.Signed) error {
	if len(signed.Nonce) > 128 || len(signed.AccessKeyID) > 128 {
		return &Error{Code: "IncompleteSignature", Status: http.StatusBadRequest,
			Message: "The signature nonce and AccessKeyId must be at most 128 characters."}
	}
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
	if a.unknown.has(id) {
		return cachedKey{}, errUnknownKey(id)
	}
	rec, err := a.store.AccessKeyGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		a.unknown.add(id)
		return cachedKey{}, errUnknownKey(id)
	}
	if err != nil {
		return cachedKey{}, err
	}
	plain, err := a.box.Open(rec.SecretEnc, secret.PurposeAccessKey)
	if err != nil {
		return cachedKey{}, err
	}
	k := cachedKey{secret: string(plain), accountID: rec.AccountID, userID: rec.UserID, active: rec.Status == store.AccessKeyActive, fetched: time.Now()}
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
