package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
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
// nonce, and resolves the caller's account. A call that changes anything
// runs only once its nonce is recorded; a read (readOnly) runs while it is
// recorded, and its answer is sent only once the nonce proved fresh: a
// replayed read learns nothing and changes nothing.
func (a *API) withSignature(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callFrom(r.Context())
		if a.opts.SkipSignature {
			c.accountID, c.principal = a.rootAccount, "root"
			next.ServeHTTP(w, r)
			return
		}
		nonce, err := a.verify(r, c)
		if err != nil {
			a.writeError(w, c, a.stranger(c, err))
			return
		}
		proven := func() {
			if c.charged != nil { // the caller proved its key: its source keeps the token
				c.charged.Cancel()
				c.charged = nil
			}
		}
		// A nonce memory answers (nothing to wait for) and a call that
		// changes anything are spent before the call runs.
		if answered, err := a.nonces.now(nonce); answered || !speculative(c.action) {
			if !answered {
				err = a.nonces.do(r.Context(), nonce)
			}
			if err != nil {
				a.writeError(w, c, a.stranger(c, nonceError(nonce, err)))
				return
			}
			proven()
			next.ServeHTTP(w, r)
			return
		}
		// A read runs while its nonce is being recorded; its answer is held
		// back until the nonce is known to be fresh, and thrown away if not.
		spent := a.nonces.start(nonce)
		c.nonceSpent = sync.OnceValue(func() error { return nonceError(nonce, a.nonces.wait(r.Context(), spent)) })
		held := newHeldResponse()
		next.ServeHTTP(held, r)
		if err := c.nonceSpent(); err != nil {
			a.writeError(w, c, a.stranger(c, err))
			return
		}
		proven()
		held.sendTo(w)
	})
}

// speculative reports whether action only reads, so that it may run while
// its nonce is recorded (its answer is sent only once the nonce is fresh):
// List and Describe calls. Get calls are left out (reading a private key is
// audited), and so are Check and Preview (they reach targets). Every other
// action runs only after its nonce is recorded.
func speculative(action string) bool {
	return strings.HasPrefix(action, "List") || strings.HasPrefix(action, "Describe")
}

// nonceError is the API error for what recording nonce n returned
// (nonces.go): a nonce seen before is SignatureNonceUsed; one signed before
// the store's epoch (after a crash, the nonces of the moments before it may
// be lost) is InvalidTimeStamp.Expired, which a fresh signature passes.
func nonceError(n store.NonceParams, err error) error {
	switch {
	case errors.Is(err, store.ErrConflict):
		return &Error{Code: "SignatureNonceUsed", Status: http.StatusBadRequest,
			Message: "The request signature nonce has been used; send a new nonce with each request."}
	case errors.Is(err, errBeforeEpoch):
		return &Error{Code: "InvalidTimeStamp.Expired", Status: http.StatusBadRequest,
			Message: "The request was signed at " + n.Signed.UTC().Format(auth.TimeLayout) +
				", before the server's record of used nonces restarted after a crash; sign the request again " +
				"(if this keeps happening, this client's clock is behind the server's: fix it with NTP)."}
	}
	return err
}

// verify checks the signature and the timestamp window and resolves the
// caller; the nonce it returns is not yet spent (nonces.go).
func (a *API) verify(r *http.Request, c *call) (store.NonceParams, error) {
	signed, key := c.signed, c.key
	if key == nil { // not checked before the body (request.go): V1
		var err error
		if signed, err = auth.Parse(r, c.params.v); err != nil {
			return store.NonceParams{}, err
		}
		if err := checkClaimSize(signed); err != nil {
			return store.NonceParams{}, err
		}
		c.accessKeyID = signed.AccessKeyID
		k, err := a.lookupKey(r.Context(), signed.AccessKeyID)
		if err != nil {
			return store.NonceParams{}, err
		}
		if err := auth.Verify(r, c.params.v, c.body, signed, k.secret, a.opts.Clock()); err != nil {
			return store.NonceParams{}, err
		}
		key = &k
	}
	c.accountID, c.userID, c.principal = key.accountID, key.userID, "root"
	// The nonce is spent (by the caller) only now that the signature proves
	// the caller holds the key.
	return store.NonceParams{Nonce: signed.AccessKeyID + ":" + signed.Nonce, Expires: auth.NonceExpiry(signed.Timestamp),
		Signed: signed.Timestamp}, nil
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

// heldResponse is a response written in memory, sent later (sendTo) or
// dropped.
type heldResponse struct {
	header http.Header
	status int
	body   []byte
}

func newHeldResponse() *heldResponse { return &heldResponse{header: http.Header{}} }

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	h.body = append(h.body, b...)
	return len(b), nil
}

// sendTo writes the held response to w.
func (h *heldResponse) sendTo(w http.ResponseWriter) {
	dst := w.Header()
	for k, v := range h.header {
		dst[k] = v
	}
	if h.status == 0 {
		h.status = http.StatusOK
	}
	w.WriteHeader(h.status)
	w.Write(h.body)
}
