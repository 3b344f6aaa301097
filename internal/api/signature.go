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
