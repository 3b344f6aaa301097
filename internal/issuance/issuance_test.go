package issuance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/pebble"
)

// rig is a driver on a fresh SQLite store with one issuer: a real pebble.
type rig struct {
	t       *testing.T
	st      store.Store
	box     *secret.Box
	d       *Driver
	peb     *pebble.Server
	acct    int64
	issuer  store.Issuer
	httpLn  net.Listener // the http-01 answerer, when started
	cancel  context.CancelFunc
	stopped chan struct{}
}

func newRig(t *testing.T, answerHTTP bool, opts Options) *rig {
	t.Helper()
	return newRigWith(t, answerHTTP, opts, pebble.Options{}, nil)
}

// newRigWith is newRig with pebble's options, and edit changing the issuer.
func newRigWith(t *testing.T, answerHTTP bool, opts Options, po pebble.Options, edit func(*store.Issuer, *secret.Box)) *rig {
	t.Helper()
	if testing.Short() {
		t.Skip("runs pebble; skipped under -short")
	}
	peb := pebble.Start(t, po)
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	box, _ := secret.New(key)
	acct, err := st.AccountEnsure(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	iss := store.Issuer{AccountID: acct, ProductCode: "pebble", DirectoryURL: peb.DirectoryURL, KeyType: "EC256", TrustedCA: peb.TrustedCA}
	if edit != nil {
		edit(&iss, box)
	}
	if err := st.IssuerCreate(ctx, &iss); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, st: st, box: box, peb: peb, acct: acct, issuer: iss}
	opts.Resolvers = []string{peb.DNSAddr}
	opts.ChallengePort = peb.HTTPPort
	if opts.Poll == 0 {
		opts.Poll = 100 * time.Millisecond
	}
	if opts.RetryBase == 0 {
		opts.RetryBase = 100 * time.Millisecond
	}
	if answerHTTP {
		opts.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(peb.HTTPPort))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r.d = New(st, box, log, opts)
	if answerHTTP {
		r.httpLn, err = net.Listen("tcp", opts.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: r.d.HTTPHandler()}
		go srv.Serve(r.httpLn)
		t.Cleanup(func() { srv.Close() })
	}
	r.start()
	return r
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.stopped = cancel, make(chan struct{})
	go func() {
		defer close(r.stopped)
		r.d.Run(ctx)
	}()
	r.t.Cleanup(r.stop)
}

func (r *rig) stop() {
	r.cancel()
	<-r.stopped
}

// order stores an order as the API does (a generated key and CSR).
func (r *rig) order(validateType string, manual bool, names ...string) store.Order {
	r.t.Helper()
	key, err := GenerateKey("EC256")
	if err != nil {
		r.t.Fatal(err)
	}
	csr, err := CreateCSR(key, names, Subject{})
	if err != nil {
		r.t.Fatal(err)
	}
	keyPEM, _ := EncodeKey(key)
	o := store.Order{AccountID: r.acct, IssuerID: r.issuer.ID, ProductCode: "pebble", Domains: names, ValidateType: validateType,
		Manual: manual, CsrPEM: csr, KeyEnc: r.box.Seal([]byte(keyPEM), secret.PurposeCertKey), Status: store.OrderPending, NextRun: time.Now()}
	if err := r.st.OrderCreate(r.t.Context(), &o); err != nil {
		r.t.Fatal(err)
	}
	r.d.Wake()
	return o
}

// forgetAuthorizations deactivates the order's authorizations at the CA, so
// that the next order for its names must be validated again. Pebble is told
// never to reuse a valid authorization (PEBBLE_AUTHZREUSE=0), but its test is
// rand.Intn(100) > percent, so it still reuses one order in a hundred, and a
// renewal meant to fail validation would be issued without any.
func (r *rig) forgetAuthorizations(o store.Order) {
	r.t.Helper()
	iss, err := r.st.IssuerGetByID(r.t.Context(), r.issuer.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := r.d.core(r.t.Context(), iss)
	if err != nil {
		r.t.Fatal(err)
	}
	if len(o.Challenges) == 0 {
		r.t.Fatalf("order %d keeps no challenges; nothing to deactivate", o.ID)
	}
	for _, ch := range o.Challenges {
		if err := c.core.Authorizations.Deactivate(r.t.Context(), ch.AuthzURL); err != nil {
			r.t.Fatalf("deactivate %s: %v", ch.AuthzURL, err)
		}
	}
}

// wait waits until the order reaches one of statuses and returns it.
func (r *rig) wait(id int64, statuses ...store.OrderStatus) store.Order {
	r.t.Helper()
	var o store.Order
	testutil.WaitFor(r.t, 60*time.Second, "order status "+joinStatus(statuses), func() (bool, error) {
		var err error
		o, err = r.st.OrderGetByID(r.t.Context(), id)
		if err != nil {
			return false, err
		}
		for _, s := range statuses {
			if o.Status == s {
				return true, nil
			}
		}
		return false, nil
	})
	return o
}

func joinStatus(s []store.OrderStatus) string {
	var out []string
	for _, x := range s {
		out = append(out, string(x))
	}
	return strings.Join(out, "|")
}

func TestHTTP01Automatic(t *testing.T) {
	r := newRig(t, true, Options{})
	o := r.order("FILE", false, "www.example.test", "example.test")
	o = r.wait(o.ID, store.OrderIssued, store.OrderFailed)
	if o.Status != store.OrderIssued {
		t.Fatalf("order %s: %s", o.Status, o.Message)
	}
	cert, err := r.st.CertificateGet(t.Context(), r.acct, o.CertID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cert.SANs, ",") != "www.example.test,example.test" && strings.Join(cert.SANs, ",") != "example.test,www.example.test" {
		t.Errorf("SANs = %v", cert.SANs)
	}
	if o.RenewAt.IsZero() || !o.RenewAt.After(cert.NotBefore) || !o.RenewAt.Before(cert.NotAfter) {
		t.Errorf("RenewAt %v not within the certificate's life %v – %v", o.RenewAt, cert.NotBefore, cert.NotAfter)
	}
	if _, err := r.st.ChallengeTokenGet(t.Context(), o.Challenges[0].Token); err == nil {
		t.Errorf("the http-01 answer is still published after issuance")
	}
	// What pebble saw, by endpoint (the account's registration included).
	seen := map[string]int{}
	for _, line := range strings.Split(r.peb.Logs(), "\n") {
		if i := strings.Index(line, " -> calling handler()"); i > 0 {
			f := strings.Fields(line[:i])
			seen[f[len(f)-2]+" "+strings.SplitN(f[len(f)-1], "/", 3)[1]]++
		}
	}
	t.Logf("ACME requests for the order: %d; pebble saw %v", o.ACMERequests, seen)
	if o.ACMERequests == 0 {
		t.Errorf("ACMERequests = 0")
	}
}

func TestDNS01RFC2136(t *testing.T) {
	r := newRig(t, false, Options{})
	secretB := make([]byte, 32)
	rand.Read(secretB)
	sec := base64.StdEncoding.EncodeToString(secretB)
	ns := r.peb.StartRFC2136(t, "example.test", "certfleet-key", sec)
	a := store.CloudAccess{AccountID: r.acct, CloudName: "rfc2136", Name: "dns", SecretID: "certfleet-key",
		SecretKeyEnc: r.box.Seal([]byte(sec), secret.PurposeAccessSecret),
		Config:       `{"Nameserver":"` + ns.Addr + `","Zone":"example.test"}`}
	if err := r.st.AccessCreate(t.Context(), &a); err != nil {
		t.Fatal(err)
	}
	auto, err := r.d.Automatic(t.Context(), r.acct, "DNS", []string{"*.example.test"})
	if err != nil || !auto {
		t.Fatalf("Automatic(DNS, *.example.test) = %v, %v; want true (the rfc2136 credential covers the zone)", auto, err)
	}
	if auto, _ := r.d.Automatic(t.Context(), r.acct, "DNS", []string{"other.test"}); auto {
		t.Fatalf("Automatic(DNS, other.test) = true; no credential covers other.test")
	}
	o := r.order("DNS", false, "*.example.test", "example.test")
	o = r.wait(o.ID, store.OrderIssued, store.OrderFailed)
	if o.Status != store.OrderIssued {
		t.Fatalf("order %s: %s", o.Status, o.Message)
	}
	// Two records published and two removed.
	if got := ns.Updates.Load(); got != 4 {
		t.Errorf("RFC 2136 updates = %d, want 4 (two adds, two removals)", got)
	}
	t.Logf("ACME requests for the order: %d", o.ACMERequests)
}

func TestDNS01Manual(t *testing.T) {
	r := newRig(t, false, Options{})
	o := r.order("DNS", true, "manual.example.test")
	o = r.wait(o.ID, store.OrderVerify)
	ch := o.Challenges[0]
	if ch.RecordName != "_acme-challenge.manual.example.test" || ch.RecordValue == "" {
		t.Fatalf("challenge record %q = %q", ch.RecordName, ch.RecordValue)
	}
	// Nothing is asked of the CA before the record is visible.
	r.peb.SetTXT(t, ch.RecordName, ch.RecordValue)
	o = r.wait(o.ID, store.OrderIssued, store.OrderFailed)
	if o.Status != store.OrderIssued {
		t.Fatalf("order %s: %s", o.Status, o.Message)
	}
}

func TestFailedValidation(t *testing.T) {
	r := newRig(t, true, Options{})
	r.httpLn.Close() // nobody answers http-01
	o := r.order("FILE", false, "down.example.test")
	o = r.wait(o.ID, store.OrderIssued, store.OrderFailed)
	if o.Status != store.OrderFailed {
		t.Fatalf("order %s, want failed", o.Status)
	}
	for _, want := range []string{"down.example.test", "http-01", "connection"} {
		if !strings.Contains(o.Message, want) {
			t.Errorf("Message %q does not name %q", o.Message, want)
		}
	}
}

// notices records RenewalFailed calls.
type notices struct {
	mu    sync.Mutex
	calls []string
}

func (n *notices) RenewalFailed(_ context.Context, c store.Certificate, reason string, daysLeft int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, fmt.Sprintf("%d:%d:%s", c.ID, daysLeft, reason))
	return nil
}

func (n *notices) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.calls...)
}

// TestRenewal: an issued certificate due for renewal gets a renewal order
// with a new key; when that fails, the contacts are told with the days left
// and the next attempt waits (backoff), and a later success retires the
// older order from the renewal scan.
func TestRenewal(t *testing.T) {
	n := &notices{}
	r := newRig(t, true, Options{RenewCheck: 100 * time.Millisecond, RetryBase: time.Hour, Notifier: n, Attempts: 1})
	o := r.order("FILE", false, "renew.example.test")
	o = r.wait(o.ID, store.OrderIssued, store.OrderFailed)
	if o.Status != store.OrderIssued {
		t.Fatalf("order %s: %s", o.Status, o.Message)
	}
	r.forgetAuthorizations(o)
	r.peb.SetA(t, "renew.example.test", "127.0.0.2") // the renewal's validation fails
	o.RenewAt = time.Now()
	if err := r.st.OrderUpdate(t.Context(), &o); err != nil {
		t.Fatal(err)
	}
	var renewal store.Order
	testutil.WaitFor(t, 30*time.Second, "the renewal to fail", func() (bool, error) {
		cur, err := r.st.OrderGetByID(t.Context(), o.ID)
		if err != nil {
			return false, err
		}
		o = cur
		return o.RenewAttempts == 1, nil
	})
	if o.RenewalID != 0 || !o.RenewAt.After(time.Now().Add(30*time.Minute)) {
		t.Errorf("after a failed renewal: RenewalID %d, RenewAt %v; want none under way and the next attempt an hour away", o.RenewalID, o.RenewAt)
	}
	calls := n.list()
	if len(calls) != 1 || !strings.HasPrefix(calls[0], fmt.Sprintf("%d:89:", o.CertID)) || !strings.Contains(calls[0], "renew.example.test") {
		t.Fatalf("RenewalFailed calls %q; want one for certificate %d with 89 days left naming the domain", calls, o.CertID)
	}
	// The next attempt succeeds.
	r.peb.ClearA(t, "renew.example.test")
	o.RenewAt = time.Now()
	if err := r.st.OrderUpdate(t.Context(), &o); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the renewal to issue", func() (bool, error) {
		cur, err := r.st.OrderGetByID(t.Context(), o.ID)
		if err != nil || cur.RenewalID == 0 {
			return false, err
		}
		renewal, err = r.st.OrderGetByID(t.Context(), cur.RenewalID)
		return err == nil && renewal.Status == store.OrderIssued, err
	})
	if renewal.RenewOf != o.CertID || renewal.CertID == o.CertID || string(renewal.KeyEnc) == string(o.KeyEnc) {
		t.Errorf("renewal %+v does not renew certificate %d with a certificate and key of its own", renewal, o.CertID)
	}
	cur, _ := r.st.OrderGetByID(t.Context(), o.ID)
	if !cur.RenewAt.IsZero() {
		t.Errorf("the renewed order is still scheduled for renewal at %v", cur.RenewAt)
	}
}

// TestManualTimeout: a manual order whose answer never appears fails,
// naming what was not published, and asks the CA nothing meanwhile.
func TestManualTimeout(t *testing.T) {
	r := newRig(t, false, Options{ManualTimeout: 500 * time.Millisecond})
	o := r.order("DNS", true, "never.example.test")
	o = r.wait(o.ID, store.OrderFailed, store.OrderIssued)
	if o.Status != store.OrderFailed || !strings.Contains(o.Message, "TXT _acme-challenge.never.example.test") || !strings.Contains(o.Message, "did not appear") {
		t.Fatalf("order %s: %q", o.Status, o.Message)
	}
	if o.Challenges[0].Accepted {
		t.Errorf("the CA was asked to validate an answer that never appeared")
	}
}

// TestEAB: a CA requiring external account binding registers the account
// with the issuer's EAB key ID and (sealed) HMAC key, and refuses an issuer
// without them, saying so in the order's message.
func TestEAB(t *testing.T) {
	const kid, hmac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	po := pebble.Options{EAB: map[string]string{kid: hmac}}
	r := newRigWith(t, true, Options{}, po, func(i *store.Issuer, box *secret.Box) {
		i.EabKeyID, i.EabHmacEnc = kid, box.Seal([]byte(hmac), PurposeEAB)
	})
	o := r.order("FILE", false, "eab.example.test")
	if o = r.wait(o.ID, store.OrderIssued, store.OrderFailed); o.Status != store.OrderIssued {
		t.Fatalf("with EAB: order %s: %s", o.Status, o.Message)
	}

	r = newRigWith(t, true, Options{Attempts: 1}, po, nil)
	o = r.order("FILE", false, "noeab.example.test")
	if o = r.wait(o.ID, store.OrderIssued, store.OrderFailed); o.Status != store.OrderFailed || !strings.Contains(o.Message, "register the ACME account") {
		t.Fatalf("without EAB: order %s: %q; want failed, saying the account could not be registered", o.Status, o.Message)
	}
}
