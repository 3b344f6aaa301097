// Package issuance obtains certificates from ACME certificate authorities
// for the CAS certificate-application operations (CreateCertificateRequest
// and its family): it drives each order in the background, durably — every
// step is a database state, so a node killed mid-order resumes the same
// order at the CA instead of placing another — answers http-01 challenges
// (--acme-http-addr), publishes dns-01 records through RFC 2136, waits for
// manual answers, stores what is issued as an ordinary certificate, and
// renews those certificates before they expire, handing each renewal to the
// trustee path (rollout.PlanRenewal) that redeploys it.
//
// It is not the ACME protocol (github.com/go-acme/lego/v5's acme/api is) nor
// the API front: internal/api validates requests and creates orders; this
// package works on them.
package issuance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"

	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// PurposeACMEKey seals ACME account keys; PurposeEAB an issuer's EAB HMAC key.
const (
	PurposeACMEKey secret.Purpose = "acme-account-key"
	PurposeEAB     secret.Purpose = "acme-eab-hmac"
)

// Options tune the driver. Zero values take the documented defaults.
type Options struct {
	// HTTPAddr is --acme-http-addr: when set, FILE orders are automatic
	// (this node answers http-01 there).
	HTTPAddr string
	// Resolvers are --acme-dns-resolvers (host:port); empty: the system's.
	Resolvers []string
	// ChallengePort is the port manual FILE orders are checked on before
	// the CA is asked to validate. Defaults to 80.
	ChallengePort int
	// Poll is how often an order waiting on someone else (the CA, a manual
	// record) is looked at again. Defaults to 2s.
	Poll time.Duration
	// ManualTimeout is how long a manual order waits for its answers to
	// appear before it fails. Defaults to 7 days (Let's Encrypt's
	// authorizations live about as long).
	ManualTimeout time.Duration
	// PropagationTimeout bounds the wait for an automatic DNS record to be
	// visible before the CA is asked anyway. Defaults to 2m.
	PropagationTimeout time.Duration
	// RenewCheck is --renew-check-interval. Defaults to 1h.
	RenewCheck time.Duration
	// RetryBase and RetryMax bound the backoff of transient failures and
	// failed renewals. Default 10s and 1h.
	RetryBase, RetryMax time.Duration
	// Attempts is how many transient failures in a row fail an order. Defaults to 10.
	Attempts int
	// AutoRenew is the default of the resource Config key AutoRenew.
	AutoRenew bool
	// RenewTrust are the extra roots of --renew-trust-store (may be nil).
	RenewTrust *x509.CertPool
	// Egress makes the connections to the CA and to RFC 2136 servers.
	Egress *egress.Dialer
	// Notifier tells contacts of failed renewals (may be nil).
	Notifier Notifier
	// OnJob is called after a renewal's trustee job is created (wakes the engine).
	OnJob func(jobID int64)
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// Notifier tells contacts a renewal failed.
type Notifier interface {
	RenewalFailed(ctx context.Context, c store.Certificate, reason string, daysLeft int) error
}

// Driver works on orders. Create it with New; Run drives them (on one node:
// the leader).
type Driver struct {
	st   store.Store
	box  *secret.Box
	log  *slog.Logger
	opts Options
	wake chan struct{}

	mu    sync.Mutex
	cores map[int64]*issuerCore // by issuer ID

	// The order being advanced (Run works on one at a time): its issuer's
	// client and the request count already added to the order.
	stepCore *issuerCore
	stepSeen int64
}

// New returns a driver.
func New(st store.Store, box *secret.Box, log *slog.Logger, opts Options) *Driver {
	if opts.ChallengePort == 0 {
		opts.ChallengePort = 80
	}
	if opts.Poll <= 0 {
		opts.Poll = 2 * time.Second
	}
	if opts.ManualTimeout <= 0 {
		opts.ManualTimeout = 7 * 24 * time.Hour
	}
	if opts.PropagationTimeout <= 0 {
		opts.PropagationTimeout = 2 * time.Minute
	}
	if opts.RenewCheck <= 0 {
		opts.RenewCheck = time.Hour
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 10 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 10
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Driver{st: st, box: box, log: log, opts: opts, wake: make(chan struct{}, 1), cores: map[int64]*issuerCore{}}
}

// Automatic says whether orders of validateType are answered by certfleet
// in an account (true) or wait for the user (manual). domains matter for DNS:
// a DNS credential must cover each name's zone.
func (d *Driver) Automatic(ctx context.Context, accountID int64, validateType string, domains []string) (bool, error) {
	if validateType == "FILE" {
		return d.opts.HTTPAddr != "", nil
	}
	for _, name := range domains {
		p, err := d.dnsProvider(ctx, accountID, name)
		if err != nil {
			return false, err
		}
		if p == nil {
			return false, nil
		}
	}
	return true, nil
}

// Wake makes Run look at the orders again now.
func (d *Driver) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run drives due orders and checks for renewals until ctx ends.
func (d *Driver) Run(ctx context.Context) {
	lastRenew := time.Time{}
	for {
		now := d.opts.Clock()
		if now.Sub(lastRenew) >= d.opts.RenewCheck {
			lastRenew = now
			d.renewDue(ctx)
		}
		orders, err := d.st.OrderDue(ctx, now, 50)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("acme: due orders", "error", err)
		}
		for _, o := range orders {
			if ctx.Err() != nil {
				return
			}
			d.advance(ctx, o)
		}
		wait := d.opts.RenewCheck - d.opts.Clock().Sub(lastRenew)
		if next, ok, err := d.st.OrderNextDue(ctx); err == nil && ok {
			wait = min(wait, next.Sub(d.opts.Clock()))
		}
		if len(orders) == 50 {
			wait = 0
		}
		wait = max(wait, 50*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// issuerCore is a live ACME client of one issuer with its account.
type issuerCore struct {
	core     *api.Core
	requests *atomic.Int64 // ACME requests made through it
}

// countingTransport counts requests.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// core returns the issuer's ACME client, registering its account first
// when it has none.
func (d *Driver) core(ctx context.Context, iss store.Issuer) (*issuerCore, error) {
	d.mu.Lock()
	c := d.cores[iss.ID]
	d.mu.Unlock()
	if c != nil && iss.AccountURL != "" {
		return c, nil
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if iss.TrustedCA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(iss.TrustedCA)) {
			return nil, permanent(fmt.Errorf("issuer %s: TrustedCA holds no PEM certificate", iss.ProductCode))
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, TLSHandshakeTimeout: 15 * time.Second, ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}
	if d.opts.Egress != nil {
		tr.DialContext = d.opts.Egress.For(iss.AccountID).DialContext
	} else {
		tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second}).DialContext
	}
	n := &atomic.Int64{}
	client := &http.Client{Transport: countingTransport{tr, n}, Timeout: 60 * time.Second}
	key, err := GenerateKey("EC256")
	if err != nil {
		return nil, err
	}
	if len(iss.AccountKeyEnc) > 0 {
		pemKey, err := d.box.Open(iss.AccountKeyEnc, PurposeACMEKey)
		if err != nil {
			return nil, permanent(fmt.Errorf("issuer %s: account key: %w", iss.ProductCode, err))
		}
		if key, err = ParseKey(string(pemKey)); err != nil {
			return nil, permanent(fmt.Errorf("issuer %s: account key: %w", iss.ProductCode, err))
		}
	}
	core, err := api.New(client, "certfleet", iss.DirectoryURL, iss.AccountURL, key)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: directory %s: %w", iss.ProductCode, iss.DirectoryURL, err)
	}
	if iss.AccountURL == "" {
		req := acme.Account{TermsOfServiceAgreed: true}
		if iss.Email != "" {
			req.Contact = []string{"mailto:" + iss.Email}
		}
		var acct acme.ExtendedAccount
		if iss.EabKeyID != "" {
			hmac, err := d.box.Open(iss.EabHmacEnc, PurposeEAB)
			if err != nil {
				return nil, permanent(fmt.Errorf("issuer %s: EAB key: %w", iss.ProductCode, err))
			}
			acct, err = core.Accounts.NewEAB(ctx, req, iss.EabKeyID, string(hmac))
			if err != nil {
				return nil, fmt.Errorf("issuer %s: register the ACME account: %w", iss.ProductCode, err)
			}
		} else if acct, err = core.Accounts.New(ctx, req); err != nil {
			return nil, fmt.Errorf("issuer %s: register the ACME account: %w", iss.ProductCode, err)
		}
		keyPEM, err := EncodeKey(key)
		if err != nil {
			return nil, err
		}
		if err := d.st.IssuerSetAccount(ctx, iss.ID, d.box.Seal([]byte(keyPEM), PurposeACMEKey), acct.Location); errors.Is(err, store.ErrConflict) {
			return nil, errors.New("the issuer's ACME account was registered concurrently; trying again")
		} else if err != nil {
			return nil, err
		}
		d.log.Info("acme: account registered", "issuer", iss.ProductCode, "account", acct.Location)
	}
	c = &issuerCore{core: core, requests: n}
	d.mu.Lock()
	d.cores[iss.ID] = c
	d.mu.Unlock()
	return c, nil
}

// Forget drops the cached client of an issuer (after DeleteIssuer).
func (d *Driver) Forget(issuerID int64) {
	d.mu.Lock()
	delete(d.cores, issuerID)
	d.mu.Unlock()
}

// permanentError marks a failure no retry will fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return permanentError{err} }

// classify says how to go on after err: permanent (fail the order), or
// retry after at least the returned delay (rate limits: the CA's Retry-After).
func classify(err error) (perm bool, after time.Duration) {
	if _, ok := errors.AsType[permanentError](err); ok {
		return true, 0
	}
	if rl, ok := errors.AsType[*acme.RateLimitedError](err); ok {
		return false, max(rl.RetryAfter, time.Hour)
	}
	if pd, ok := errors.AsType[*acme.ProblemDetails](err); ok {
		switch strings.TrimPrefix(pd.Type, "urn:ietf:params:acme:error:") {
		case "rateLimited":
			return false, time.Hour
		case "serverInternal", "badNonce", "":
			return false, 0
		}
		if pd.HTTPStatus >= 500 {
			return false, 0
		}
		return true, 0
	}
	return false, 0
}

// ContactJSON is the order's record of who asked (CreateCertificateRequest's
// Username, Phone and Email).
func ContactJSON(username, phone, email string) string {
	b, _ := json.Marshal(map[string]string{"Username": username, "Phone": phone, "Email": email})
	return string(b)
}
