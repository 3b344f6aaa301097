// Package webhook deploys certificates by POSTing them as one signed JSON
// document to a receiver the user runs (CloudName "webhook", CloudProduct
// "WEBHOOK"): the escape hatch for targets certfleet has no deployer for.
//
// It is not a notifier: the body carries the private key, and a delivery
// succeeds only when the receiver answers 2xx. docs/deployers.md documents
// the payload, the headers and how a receiver checks the signature.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

// Description is webhook/WEBHOOK's Description: its Config keys, documented once.
var Description = deploy.Description{
	CloudName:    "webhook",
	CloudProduct: "WEBHOOK",
	Summary:      "POSTs the certificate and key as one signed JSON document to a receiver you run.",
	Config: []deploy.Field{
		{Name: "Url", Type: deploy.TypeString, Required: true, Help: "The https:// (or http://) address the bundle is POSTed to; redirects are not followed."},
		{Name: "TimeoutSeconds", Type: deploy.TypeInteger, Min: 0, Max: int64(maxTimeout / time.Second), Default: "10",
			Help: "Seconds one delivery may take: connecting, sending and the receiver's answer."},
	},
	Access: deploy.AccessSpec{Need: deploy.AccessOptional, SecretId: "any label",
		SecretKey: "the shared secret deliveries are signed with (X-Certfleet-Signature)"},
}

// Options are the server's settings for webhook targets.
type Options struct {
	// HTTPClient's transport settings (TLS roots, pool sizes) are used for
	// deliveries; nil means a transport tuned for many deliveries to one
	// receiver. Its dial function, proxy and redirect policy are replaced:
	// connections go through Egress and redirects are never followed.
	// Its Transport, if set, must be an *http.Transport.
	HTTPClient *http.Client
	// Egress makes the connections, under the egress policy of the
	// resource's account (deploy.Target.AccountID). nil: the default policy
	// with every account treated as the root account.
	Egress *egress.Dialer
}

// Config is a webhook resource's Config, decoded through Description.
type Config struct {
	// Url is the http or https address the bundle is POSTed to. Required.
	// Redirects are not followed: the key goes only where Url says.
	Url string
	// TimeoutSeconds bounds one delivery: connecting, sending, and the
	// receiver's answer. Defaults to 10; at most 300.
	TimeoutSeconds int
}

const (
	defaultTimeout = 10 * time.Second
	maxTimeout     = 300 * time.Second
	// maxSnippet is how much of a failed response's body goes into the error.
	maxSnippet = 512
	// maxDrain is how much of a response body is read to let the connection
	// be reused; a longer body just closes it.
	maxDrain = 64 << 10
)

// Payload is the JSON body of every delivery. Field names are the wire names
// (JobId, CertId…), in the order they are encoded.
type Payload struct {
	// Action is "deploy" or "rollback".
	Action     string
	JobID      int64 `json:"JobId"`
	WorkerID   int64 `json:"WorkerId"`
	ResourceID int64 `json:"ResourceId"`
	Domain     string
	// CertID is 0 on a rollback to "nothing": the receiver should remove
	// what it installed; every certificate field is then empty.
	CertID   int64 `json:"CertId"`
	CertName string
	// Certificate is the leaf alone, Chain the intermediates, FullChain
	// both, PrivateKey the leaf's key; all PEM.
	Certificate string
	Chain       string
	FullChain   string
	PrivateKey  string
	// Sha256 is the SHA-256 of the leaf's DER, lower-case hex.
	Sha256 string
	// Timestamp is when the delivery was made, in Unix seconds; it equals
	// the X-Certfleet-Timestamp header.
	Timestamp int64
}

// Deployer POSTs bundles to webhook receivers. It is safe for concurrent use.
type Deployer struct {
	clients *egress.Clients
	now     func() time.Time
}

var (
	_ deploy.Product         = (*Deployer)(nil)
	_ deploy.Rollbacker      = (*Deployer)(nil)
	_ deploy.ConfigValidator = (*Deployer)(nil)
	_ deploy.Hoster          = (*Deployer)(nil)
)

// defaultTransport is used without opts.HTTPClient: thousands of
// deliveries may go to one receiver, so it keeps many idle connections per
// host. Per-delivery timeouts come from the context.
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// New returns a Deployer delivering through opts.Egress with one client per
// account (see Options). Redirects are never followed: a followed redirect
// would send the private key somewhere not configured.
func New(opts Options) *Deployer {
	base := defaultTransport()
	if opts.HTTPClient != nil {
		if t, ok := opts.HTTPClient.Transport.(*http.Transport); ok {
			base = t
		}
	}
	return &Deployer{clients: egress.NewClients(opts.Egress, base, 0, egress.RefuseRedirects), now: time.Now}
}

// Describe returns Description.
func (d *Deployer) Describe() deploy.Description { return Description }

// ValidateConfig checks that Url is an absolute http or https address with a
// host. A credential is optional: with one, deliveries are signed with its
// SecretKey.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	_, err := parseConfig(config)
	return err
}

// Host returns the receiver's host:port, lower-case, with the scheme's
// default port filled in, so per-host limits apply per receiver. It returns
// "" for a Config that does not parse.
func (d *Deployer) Host(t deploy.Target) string {
	pc, err := deploy.ParsedConfig(t, parseConfig)
	if err != nil {
		return ""
	}
	u := pc.url
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// Deploy POSTs req.Bundle with Action "deploy".
//
// A receiver cannot report what it served before, so previous is always nil;
// Rollback relies on the engine handing it the bundle to restore instead.
//
// Any 2xx is success. Connection errors, timeouts, 5xx, 408 and 429 are
// transient; any other status (3xx included: redirects are not followed) is
// deploy.Permanent, as are Config errors. Errors name the status and quote
// up to 512 bytes of the response body on one line, withheld if it echoes
// the private key. When ctx ends first the error wraps ctx.Err().
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	return nil, d.post(ctx, req, "deploy")
}

// Rollback POSTs req.Bundle with Action "rollback"; previous is ignored.
//
// The engine passes in req.Bundle the certificate the resource held before
// the job; when it held none, an empty Bundle with CertID 0, which is
// delivered with CertId 0 and empty certificate fields so the receiver can
// remove what it installed. Errors are classified as for Deploy.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	return d.post(ctx, req, "rollback")
}

func (d *Deployer) post(ctx context.Context, req deploy.Request, action string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pc, err := deploy.ParsedConfig(req.Target, parseConfig)
	if err != nil {
		return err
	}
	cfg, u := pc.Config, pc.url
	where := display(u)
	if req.Target.Access != nil && req.Target.Access.SecretKey == "" {
		return deploy.Permanentf("webhook: POST %s: credential %d has an empty SecretKey; deliveries cannot be signed", where, req.Target.Access.ID)
	}

	b := req.Bundle
	if action == "deploy" && (b.CertPEM == "" || b.KeyPEM == "") {
		return deploy.Permanentf("webhook: POST %s: certificate %d has no certificate or no private key to deploy", where, b.CertID)
	}
	ts := d.now().Unix()
	body, err := json.Marshal(Payload{
		Action:      action,
		JobID:       req.JobID,
		WorkerID:    req.WorkerID,
		ResourceID:  req.Target.ResourceID,
		Domain:      req.Target.Domain,
		CertID:      b.CertID,
		CertName:    b.Name,
		Certificate: b.CertPEM,
		Chain:       b.ChainPEM,
		FullChain:   fullChain(b),
		PrivateKey:  b.KeyPEM,
		Sha256:      leafSHA256(b),
		Timestamp:   ts,
	})
	if err != nil {
		return fmt.Errorf("webhook: encode payload: %w", err)
	}

	timeout := defaultTimeout
	if cfg.TimeoutSeconds > 0 {
		timeout = time.Duration(cfg.TimeoutSeconds) * time.Second
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(tctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return deploy.Permanentf("webhook: POST %s: %w", where, err)
	}
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "certfleet")
	h.Set("X-Certfleet-Event", action)
	h.Set("X-Certfleet-Delivery", fmt.Sprintf("%d-%d", req.JobID, req.WorkerID))
	if a := req.Target.Access; a != nil {
		mac := hmac.New(sha256.New, []byte(a.SecretKey))
		mac.Write(body)
		h.Set("X-Certfleet-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		h.Set("X-Certfleet-Timestamp", strconv.FormatInt(ts, 10))
	}

	resp, err := d.clients.Get(req.Target.AccountID).Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the URL, query string included
		}
		switch {
		case egress.IsRefused(err):
			return deploy.Permanentf("webhook: POST %s: %w", where, err)
		case ctx.Err() != nil:
			return fmt.Errorf("webhook: POST %s: %w", where, ctx.Err())
		case tctx.Err() != nil:
			return fmt.Errorf("webhook: POST %s: no response within %s (TimeoutSeconds)", where, timeout)
		}
		return fmt.Errorf("webhook: POST %s: %w", where, err)
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		resp.Body.Close()
	}()

	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	err = fmt.Errorf("webhook: POST %s: receiver answered %s: %s",
		where, oneLine(resp.Status), snippet(resp.Body, b))
	switch {
	case code >= 500 && code <= 599, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return err
	case code >= 300 && code <= 399:
		return deploy.Permanentf("%w; redirects are not followed, set Url to the final address (Location: %s)",
			err, oneLine(resp.Header.Get("Location")))
	}
	return deploy.Permanent(err)
}

// parsed is a Config decoded and checked, with its Url parsed; shared by
// the calls of one attempt (deploy.ParsedConfig), so read-only.
type parsed struct {
	Config
	url *url.URL
}

// parseConfig decodes and checks a Config; every error is permanent.
func parseConfig(config json.RawMessage) (parsed, error) {
	var c Config
	if err := Description.DecodeConfig(config, &c); err != nil {
		return parsed{}, err
	}
	u, err := url.Parse(c.Url)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL itself may carry a token
		}
		return parsed{}, deploy.Permanentf("webhook/WEBHOOK: Config key \"Url\" is not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return parsed{}, deploy.Permanentf("webhook/WEBHOOK: Config key \"Url\" %q must start with https:// or http://", display(u))
	}
	if u.Hostname() == "" {
		return parsed{}, deploy.Permanentf("webhook/WEBHOOK: Config key \"Url\" %q has no host", display(u))
	}
	return parsed{Config: c, url: u}, nil
}

// display is u without credentials, query or fragment, for error messages:
// a query string often carries a token.
func display(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery, v.ForceQuery = "", false
	v.Fragment, v.RawFragment = "", ""
	return v.String()
}

func fullChain(b deploy.Bundle) string {
	if b.FullChainPEM != "" {
		return b.FullChainPEM
	}
	return b.CertPEM + b.ChainPEM
}

// leafSHA256 returns the leaf's SHA-256 in lower-case hex: Bundle.Sha2
// lower-cased, or computed from CertPEM when Sha2 is empty.
func leafSHA256(b deploy.Bundle) string {
	if b.Sha2 != "" {
		return strings.ToLower(b.Sha2)
	}
	blk, _ := pem.Decode([]byte(b.CertPEM))
	if blk == nil {
		return ""
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return ""
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:])
}

// snippet returns up to maxSnippet bytes of r on one line, or a note when
// they are empty or echo b's private key.
func snippet(r io.Reader, b deploy.Bundle) string {
	head, _ := io.ReadAll(io.LimitReader(r, maxSnippet))
	s := oneLine(string(head))
	switch {
	case s == "":
		return "(empty body)"
	case echoesKey(s, b):
		return "(body withheld: it echoes the private key)"
	}
	return s
}

// oneLine makes s valid UTF-8 on a single line, with runs of white space and
// control characters collapsed to one space.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// echoesKey reports whether s looks like it contains part of b's private
// key: a PEM "PRIVATE KEY" label, or any aligned 16-character piece of the
// key's base64 lines (so any echoed run of 31 characters or more is caught,
// JSON-escaped slashes included). Pieces that also occur in the public
// certificates, like algorithm identifiers, do not count: a receiver quoting
// the certificate it rejected is not leaking anything.
func echoesKey(s string, b deploy.Bundle) bool {
	if strings.Contains(s, "PRIVATE KEY") {
		return true
	}
	s = strings.ReplaceAll(s, `\/`, "/")
	public := strings.Join(strings.Fields(b.CertPEM+b.ChainPEM+b.FullChainPEM), "")
	for line := range strings.Lines(b.KeyPEM) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "-----") {
			continue
		}
		for i := 0; i+16 <= len(line); i += 16 {
			if piece := line[i : i+16]; strings.Contains(s, piece) && !strings.Contains(public, piece) {
				return true
			}
		}
	}
	return false
}
