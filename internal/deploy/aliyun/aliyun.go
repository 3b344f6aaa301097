// Package aliyun is the client plumbing every Alibaba Cloud product of
// certfleet shares (CloudName "aliyun"): credentials (an AccessKey pair, or a
// RAM role assumed through STS), endpoint rules, egress, a per-credential
// rate limit, the classification of Alibaba's error codes, and the
// certificate service (CAS) uploads that CDN, ALB and the other products bind
// by CertId — once per SHA-256 fingerprint, named so certfleet recognises its
// own, and swept when no binding uses them any more.
//
// Requests are signed by github.com/aliyun/alibaba-cloud-sdk-go (RPC style,
// HMAC-SHA1 signature version 1.0, as its product clients send them) but
// sent by this package's own HTTP client, so that every call honours its
// context and goes through internal/egress.
//
// It is not a deployer: the products live in its sub-packages (aliyun/cdn,
// aliyun/dcdn, aliyun/slb, aliyun/alb, aliyun/nlb, aliyun/oss, aliyun/waf), and the fake
// Alibaba Cloud the tests run against is aliyun/aliyunfake.
package aliyun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

// CloudName is the CloudName of every Alibaba Cloud product and credential.
const CloudName = "aliyun"

// DefaultRegion is the region used when a resource names none.
const DefaultRegion = "cn-hangzhou"

// AccessSpec is what every aliyun product's credential holds.
var AccessSpec = deploy.AccessSpec{
	Need:      deploy.AccessRequired,
	SecretId:  "the AccessKeyId of a RAM user",
	SecretKey: "its AccessKeySecret",
	Config: []deploy.Field{
		{Name: "RoleArn", Type: deploy.TypeString,
			Help: "A RAM role (acs:ram::UID:role/NAME) assumed through STS AssumeRole before calling the products; empty: the key's own rights."},
		{Name: "Endpoints", Type: deploy.TypeObject,
			Help: `Endpoints per product ("CDN", "SLB", "CAS", "STS"…, or "*" for all): a host name, or an http(s):// address, for VPC endpoints, private gateways and tests.`},
		{Name: "Regions", Type: deploy.TypeStringList, Default: DefaultRegion,
			Help: "The regions SyncCloudResources looks in for load balancers (SLB, ALB, NLB) and WAF instances (cn-hangzhou, ap-southeast-1)."},
		{Name: "MaxQPS", Type: deploy.TypeInteger, Default: "10", Min: 1, Max: 1000,
			Help: "Calls per second certfleet makes with this credential, across every product and job."},
		{Name: "ActionQPS", Type: deploy.TypeObject,
			Help: `Calls per second per API action ({"DescribeDomainCertificateInfo": 100, "*": 50}), below the limits Alibaba sets per action, so calls wait instead of being throttled.`},
		{Name: "Batch", Type: deploy.TypeBoolean, Default: "true",
			Help: "Combine concurrent deployments into batch calls where a product has them (CDN: up to 50 domains a call)."},
	},
}

// Common resource Config keys, shared by the products' Descriptions.
var (
	FieldEndpoint = deploy.Field{Name: "Endpoint", Type: deploy.TypeString,
		Help: "This resource's own endpoint (host name or http(s):// address), overriding the credential's Endpoints and the public endpoint of RegionId."}
	FieldKeepPrevious = deploy.Field{Name: "KeepPrevious", Type: deploy.TypeInteger, Default: "1", Min: 0, Max: 100,
		Help: "After a job, certificates certfleet uploaded that no binding uses are deleted except the newest KeepPrevious (kept for rollback)."}
	FieldDefaultResource = deploy.Field{Name: "DefaultResource", Type: deploy.TypeBoolean, Default: "false",
		Help: "true: the listener's default certificate; false: only the SNI certificate for Domain, every other binding left as it is."}
)

// AccessConfig is an aliyun CloudAccess's Config.
type AccessConfig struct {
	RoleArn   string
	Regions   []string
	Endpoints map[string]string
	MaxQPS    int
	ActionQPS map[string]int
	Batch     *bool
}

// Options are the server's settings for every aliyun product.
type Options struct {
	// HTTPClient's transport settings (TLS roots, pool sizes) are used; nil
	// means a transport tuned for many calls to one endpoint. Connections
	// go through Egress and redirects are never followed.
	HTTPClient *http.Client
	// Egress makes the connections, under the egress policy of the
	// resource's account. nil: the default policy, every account as root.
	Egress *egress.Dialer
	// Attempts is how many times one call is tried when Alibaba answers
	// with a transient error (throttling, 5xx, a lost connection). Defaults
	// to 6.
	Attempts int
	// Backoff is the first wait before a retry, doubled at each further
	// one up to 30 times it, with jitter. Defaults to 500ms.
	Backoff time.Duration
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// Hub is shared by every aliyun product of a server: per-credential rate
// limiters, STS sessions and CAS upload caches live here, so a credential
// used by CDN and SLB resources alike keeps to one MaxQPS. It is safe for
// concurrent use.
type Hub struct {
	clients  *egress.Clients
	attempts int
	backoff  time.Duration
	now      func() time.Time

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	sessions map[string]stsSession
	uploads  map[string]string // credential key + "/" + product key → provider id
	flight   singleflight.Group
	casUsers map[string]CASUser
	batch    batcher
}

// NewHub returns a Hub for opts.
func NewHub(opts Options) *Hub {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConns = 1024
	base.MaxIdleConnsPerHost = 256
	if opts.HTTPClient != nil {
		if t, ok := opts.HTTPClient.Transport.(*http.Transport); ok {
			base = t
		}
	}
	h := &Hub{clients: egress.NewClients(opts.Egress, base, 0, egress.RefuseRedirects), attempts: opts.Attempts,
		backoff: opts.Backoff, now: opts.Now, limiters: map[string]*rate.Limiter{}, sessions: map[string]stsSession{},
		uploads: map[string]string{}}
	if h.attempts <= 0 {
		h.attempts = 6
	}
	if h.backoff <= 0 {
		h.backoff = 500 * time.Millisecond
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// Client is one resource's view of the Hub: its credential, region and
// endpoint rules. Products build one per call with Hub.Client.
type Client struct {
	hub      *Hub
	t        deploy.Target
	product  string // the deployer's CloudProduct, for error messages
	access   AccessConfig
	region   string
	endpoint string // the resource's own Endpoint
}

// Client returns the client for t's credential, region and endpoint, for
// the product named product (its CloudProduct). endpoint is the resource
// Config's Endpoint (""). It fails permanently without a credential or with
// a credential whose Config is malformed.
func (h *Hub) Client(t deploy.Target, product, endpoint string) (*Client, error) {
	if t.Access == nil {
		return nil, deploy.Permanentf("aliyun/%s: the resource has no CloudAccess; set CloudAccessId to an aliyun credential (SecretId: AccessKeyId, SecretKey: AccessKeySecret)", product)
	}
	if t.Access.SecretID == "" || t.Access.SecretKey == "" {
		return nil, deploy.Permanentf("aliyun/%s: credential %d has an empty AccessKeyId or AccessKeySecret", product, t.Access.ID)
	}
	var ac AccessConfig
	if err := deploy.DecodeFields("aliyun", "CloudAccess Config", AccessSpec.Config, t.Access.Config, &ac); err != nil {
		return nil, err
	}
	for k, v := range ac.Endpoints {
		if _, err := endpointURL(v); err != nil {
			return nil, deploy.Permanentf("aliyun: CloudAccess Config key \"Endpoints\" entry %q: %v", k, err)
		}
	}
	if ac.MaxQPS <= 0 {
		ac.MaxQPS = 10
	}
	region := t.RegionID
	if region == "" {
		region = DefaultRegion
	}
	if endpoint != "" {
		if _, err := endpointURL(endpoint); err != nil {
			return nil, deploy.Permanentf("aliyun/%s: Config key \"Endpoint\": %v", product, err)
		}
	}
	return &Client{hub: h, t: t, product: product, access: ac, region: region, endpoint: endpoint}, nil
}

// Region is the resource's RegionId, DefaultRegion when it names none.
func (c *Client) Region() string { return c.region }

// InRegion returns a copy of c calling region instead (same credential,
// limits and caches; the resource's own Endpoint still applies).
func (c *Client) InRegion(region string) *Client {
	cc := *c
	cc.region = region
	return &cc
}

// credKey identifies the credential for caches and limiters.
func (c *Client) credKey() string {
	return fmt.Sprintf("%d/%d/%s/%s", c.t.AccountID, c.t.Access.ID, c.t.Access.SecretID, c.access.RoleArn)
}

// API names one Alibaba Cloud OpenAPI product: the key of its endpoint rule
// and its version.
type API struct {
	// Product is the name Endpoints rules use: "CDN", "SLB", "CAS"…
	Product string
	Version string
	// Public returns the public endpoint host for a region.
	Public func(region string) string
}

// The APIs certfleet calls.
var (
	CDN  = API{"CDN", "2018-05-10", func(string) string { return "cdn.aliyuncs.com" }}
	DCDN = API{"DCDN", "2018-01-15", func(string) string { return "dcdn.aliyuncs.com" }}
	SLB  = API{"SLB", "2014-05-15", func(r string) string { return "slb." + r + ".aliyuncs.com" }}
	ALB  = API{"ALB", "2020-06-16", func(r string) string { return "alb." + r + ".aliyuncs.com" }}
	NLB  = API{"NLB", "2022-04-30", func(r string) string { return "nlb." + r + ".aliyuncs.com" }}
	CAS  = API{"CAS", "2020-04-07", func(string) string { return "cas.aliyuncs.com" }}
	STS  = API{"STS", "2015-04-01", func(string) string { return "sts.aliyuncs.com" }}
	OSS  = API{"OSS", "", func(r string) string { return "oss-" + r + ".aliyuncs.com" }}
	WAF  = API{"WAF", "2021-10-01", func(r string) string { return "waf-openapi." + r + ".aliyuncs.com" }}
)

// endpointFor applies the endpoint rules: the resource's Endpoint (for its
// own product only), the credential's Endpoints[product], Endpoints["*"],
// else the public endpoint of the region.
func (c *Client) endpointFor(api API, own bool) (*url.URL, error) {
	if own && c.endpoint != "" {
		return endpointURL(c.endpoint)
	}
	if e, ok := c.access.Endpoints[api.Product]; ok && e != "" {
		return endpointURL(e)
	}
	if e, ok := c.access.Endpoints["*"]; ok && e != "" {
		return endpointURL(e)
	}
	return endpointURL(api.Public(c.region))
}

// endpointURL parses "host", "host:port" or "http(s)://host[:port]".
func endpointURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q is not a host name or an http(s)://host[:port] address", s)
	}
	return u, nil
}

// Call calls action of api with params (query parameters, RPC style) and
// decodes the JSON answer into out (nil: ignored). own says the resource's
// Endpoint applies (the product's own API; false for CAS and STS).
//
// It waits for the credential's rate limit before each attempt, retries
// transient answers (Throttling.*, 5xx, connection errors) with backoff, and
// returns an *Error for an answer Alibaba refused; permanent ones are
// wrapped with deploy.Permanent. When ctx ends, the error wraps ctx.Err().
func (c *Client) Call(ctx context.Context, api API, own bool, action string, params map[string]string, out any) error {
	return c.Retry(ctx, func() error { return c.callOnce(ctx, api, own, action, params, out) })
}

// Retry runs one provider call (which waits for the rate limit itself:
// Wait) until it succeeds, fails permanently, or the attempts run out,
// sleeping with backoff between attempts. Products whose calls do not go
// through Call (OSS) use it with Wait and NewError.
func (c *Client) Retry(ctx context.Context, once func() error) error {
	var err error
	for attempt := 0; attempt < c.hub.attempts; attempt++ {
		if attempt > 0 {
			d := c.hub.backoff << (attempt - 1)
			if max := 30 * c.hub.backoff; d > max {
				d = max
			}
			d = d/2 + rand.N(d/2+1)
			var ae *Error
			if errors.As(err, &ae) && ae.RetryAfter > d {
				d = ae.RetryAfter
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (after %v)", ctx.Err(), err)
			case <-time.After(d):
			}
		}
		if err = ctx.Err(); err != nil {
			return err
		}
		err = once()
		if err == nil || deploy.IsPermanent(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Wait waits for the credential's rate limit (MaxQPS).
func (c *Client) Wait(ctx context.Context) error {
	if err := c.limiter().Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// HTTPClient is the account's HTTP client: connections through egress,
// redirects refused.
func (c *Client) HTTPClient() *http.Client { return c.hub.clients.Get(c.t.AccountID) }

// Endpoint returns the endpoint api's calls go to (own: the resource's
// Endpoint applies).
func (c *Client) Endpoint(api API, own bool) (*url.URL, error) { return c.endpointFor(api, own) }

// Credentials returns the AccessKey (or the assumed role's STS key) to sign
// with: id, secret and security token ("" without a role).
func (c *Client) Credentials(ctx context.Context) (id, secret, token string, err error) {
	p, err := c.credentials(ctx, API{Product: "OSS"})
	if err != nil {
		return "", "", "", err
	}
	cc, err := p.GetCredentials()
	if err != nil {
		return "", "", "", err
	}
	return cc.AccessKeyId, cc.AccessKeySecret, cc.SecurityToken, nil
}

// NewError classifies an error answer of a product whose calls do not go
// through Call: an *Error, wrapped with deploy.Permanent unless transient.
func NewError(where string, status int, code, message, requestID string) error {
	e := &Error{Where: where, HTTPStatus: status, Code: code, Message: scrub(message), RequestID: requestID}
	if e.Code == "" {
		e.Code = fmt.Sprintf("HTTP%d", status)
	}
	if e.Transient() {
		return e
	}
	return deploy.Permanent(e)
}

func (c *Client) callOnce(ctx context.Context, api API, own bool, action string, params map[string]string, out any) error {
	if err := c.WaitAction(ctx, action); err != nil {
		return err
	}
	return c.send(ctx, api, own, action, params, out)
}

// send makes one call without waiting for the rate limits (the caller has).
func (c *Client) send(ctx context.Context, api API, own bool, action string, params map[string]string, out any) error {
	where := api.Product + " " + action
	ep, err := c.endpointFor(api, own)
	if err != nil {
		return deploy.Permanentf("aliyun: %s: %v", where, err)
	}
	cred, err := c.credentials(ctx, api)
	if err != nil {
		return err
	}
	req := requests.NewCommonRequest()
	req.Method = http.MethodPost
	req.Scheme = ep.Scheme
	req.Domain = ep.Host
	req.Version = api.Version
	req.ApiName = action
	req.Product = api.Product
	for k, v := range params {
		req.QueryParams[k] = v
	}
	if _, ok := params["RegionId"]; !ok {
		req.QueryParams["RegionId"] = c.region
	}
	req.TransToAcsRequest()
	if err := auth.Sign(req, nil, c.region, cred); err != nil {
		return deploy.Permanentf("aliyun: %s: sign the request: %v", where, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, req.BuildUrl(), req.GetBodyReader())
	if err != nil {
		return deploy.Permanentf("aliyun: %s: %v", where, err)
	}
	for k, v := range req.GetHeaders() {
		hreq.Header.Set(k, v)
	}
	hreq.Header.Set("User-Agent", "certfleet alibaba-cloud-sdk-go/1.63.107")
	resp, err := c.hub.clients.Get(c.t.AccountID).Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it repeats the URL: the signed query, AccessKeyId included
		}
		if ctx.Err() != nil {
			return fmt.Errorf("aliyun: %s at %s: %w", where, ep.Host, ctx.Err())
		}
		if egress.IsRefused(err) {
			return deploy.Permanentf("aliyun: %s at %s: %w", where, ep.Host, err)
		}
		return fmt.Errorf("aliyun: %s at %s: %w", where, ep.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("aliyun: %s: %w", where, ctx.Err())
		}
		return fmt.Errorf("aliyun: %s: read the answer: %w", where, err)
	}
	if resp.StatusCode/100 != 2 {
		return classify(where, resp, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("aliyun: %s: the answer is not the JSON expected: %v", where, err)
	}
	return nil
}

func (c *Client) limiter() *rate.Limiter { return c.limiterFor("", c.access.MaxQPS) }

// limiterFor returns the credential's limiter of qps calls a second, for
// one action ("" for all of them).
func (c *Client) limiterFor(action string, qps int) *rate.Limiter {
	h := c.hub
	key := c.credKey() + "/" + action
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.limiters[key]
	if !ok || int(l.Limit()) != qps {
		l = rate.NewLimiter(rate.Limit(qps), max(1, qps/10))
		h.limiters[key] = l
	}
	return l
}

// WaitAction waits for the credential's MaxQPS and for action's own limit
// (ActionQPS[action], else ActionQPS["*"], else none).
func (c *Client) WaitAction(ctx context.Context, action string) error {
	if err := c.Wait(ctx); err != nil {
		return err
	}
	qps, ok := c.access.ActionQPS[action]
	if !ok {
		qps, ok = c.access.ActionQPS["*"]
	}
	if !ok || qps <= 0 {
		return nil
	}
	if err := c.limiterFor(action, qps).Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// Batch reports whether the credential lets products combine concurrent
// calls into batch APIs (Config Batch, default true).
func (c *Client) Batch() bool { return c.access.Batch == nil || *c.access.Batch }

// Error is an answer Alibaba Cloud refused, with its code, message and
// request ID (what Alibaba's support asks for).
type Error struct {
	Where      string // "CDN SetCdnDomainSSLCertificate"
	HTTPStatus int
	Code       string
	Message    string
	RequestID  string
	// RetryAfter is the wait a Retry-After header asked for (0: none).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.HTTPStatus)
	}
	s := fmt.Sprintf("aliyun: %s: %s (HTTP %d): %s", e.Where, e.Code, e.HTTPStatus, msg)
	if e.RequestID != "" {
		s += " (RequestId " + e.RequestID + ")"
	}
	return s
}

// Transient reports whether the error is worth retrying: throttling,
// a 5xx, an unavailable service.
func (e *Error) Transient() bool {
	switch {
	case strings.HasPrefix(e.Code, "Throttling"), strings.HasPrefix(e.Code, "ServiceUnavailable"),
		e.Code == "InternalError", e.Code == "UnknownError", e.Code == "RequestTimeout",
		strings.HasPrefix(e.Code, "IncorrectStatus"), strings.HasSuffix(e.Code, ".Busy"),
		strings.Contains(e.Code, "Conflict.Lock"), strings.HasPrefix(e.Code, "OperationDenied.Processing"):
		return true
	case e.HTTPStatus >= 500, e.HTTPStatus == http.StatusTooManyRequests:
		return true
	}
	return false
}

// Code returns Alibaba's error code of err, "" when it is not an *Error.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func classify(where string, resp *http.Response, body []byte) error {
	var b struct {
		RequestID string `json:"RequestId"`
		Code      string
		Message   string
	}
	_ = json.Unmarshal(body, &b)
	e := &Error{Where: where, HTTPStatus: resp.StatusCode, Code: b.Code, Message: scrub(b.Message), RequestID: b.RequestID}
	if e.Code == "" {
		e.Code = fmt.Sprintf("HTTP%d", resp.StatusCode)
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := time.ParseDuration(s + "s"); err == nil && secs > 0 && secs < time.Minute {
			e.RetryAfter = secs
		}
	}
	if e.Transient() {
		return e
	}
	return deploy.Permanent(e)
}

// scrub keeps a provider's message to one line of at most 512 bytes, and
// withholds one that quotes a PEM block (an echo of the request).
func scrub(msg string) string {
	if strings.Contains(msg, "-----BEGIN") || strings.Contains(msg, "PRIVATE KEY") {
		return "(message withheld: it quotes the request's PEM data)"
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	return msg
}

// stsSession is an assumed role's temporary credential.
type stsSession struct {
	id, secret, token string
	expires           time.Time
}

// credentials returns the signing credentials: the AccessKey itself, or,
// with a RoleArn, a cached STS session (renewed 5 minutes before expiry).
func (c *Client) credentials(ctx context.Context, api API) (credentials.CredentialsProvider, error) {
	a := c.t.Access
	if c.access.RoleArn == "" || api.Product == STS.Product {
		return credentials.NewStaticAKCredentialsProvider(a.SecretID, a.SecretKey), nil
	}
	key := c.credKey()
	h := c.hub
	h.mu.Lock()
	s, ok := h.sessions[key]
	h.mu.Unlock()
	if ok && h.now().Add(5*time.Minute).Before(s.expires) {
		return credentials.NewStaticSTSCredentialsProvider(s.id, s.secret, s.token), nil
	}
	v, err, _ := h.flight.Do("sts/"+key, func() (any, error) {
		var out struct {
			Credentials struct {
				AccessKeyID     string `json:"AccessKeyId"`
				AccessKeySecret string
				SecurityToken   string
				Expiration      string
			}
		}
		err := c.Call(ctx, STS, false, "AssumeRole", map[string]string{
			"RoleArn": c.access.RoleArn, "RoleSessionName": "certfleet", "DurationSeconds": "3600"}, &out)
		if err != nil {
			return nil, err
		}
		exp, err := time.Parse(time.RFC3339, out.Credentials.Expiration)
		if err != nil {
			exp = h.now().Add(time.Hour)
		}
		s := stsSession{out.Credentials.AccessKeyID, out.Credentials.AccessKeySecret, out.Credentials.SecurityToken, exp}
		h.mu.Lock()
		h.sessions[key] = s
		h.mu.Unlock()
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("aliyun: assume role %s: %w", c.access.RoleArn, err)
	}
	s = v.(stsSession)
	return credentials.NewStaticSTSCredentialsProvider(s.id, s.secret, s.token), nil
}

// ValidateEndpoint checks a resource Config's Endpoint value ("" is fine).
func ValidateEndpoint(product, endpoint string) error {
	if endpoint == "" {
		return nil
	}
	if _, err := endpointURL(endpoint); err != nil {
		return deploy.Permanentf("aliyun/%s: Config key \"Endpoint\": %v", product, err)
	}
	return nil
}

// Regions returns the regions discovery looks in: the credential's Config
// Regions, else DefaultRegion. A malformed Config gives DefaultRegion; Client
// reports the error.
func Regions(t deploy.Target) []string {
	var ac AccessConfig
	if t.Access != nil {
		_ = deploy.DecodeFields("aliyun", "CloudAccess Config", AccessSpec.Config, t.Access.Config, &ac)
	}
	if len(ac.Regions) == 0 {
		return []string{DefaultRegion}
	}
	return ac.Regions
}

// Once returns the provider id cached under key for this credential, or
// runs upload (once, however many callers ask at the same time) and caches
// what it returns. Products use it for their uploads: key names the product
// and the fingerprint ("SLB/cn-hangzhou/<SHA-256>").
func (c *Client) Once(ctx context.Context, key string, upload func() (string, error)) (string, error) {
	key = c.credKey() + "/" + key
	h := c.hub
	h.mu.Lock()
	id, ok := h.uploads[key]
	h.mu.Unlock()
	if ok {
		return id, nil
	}
	v, err, _ := h.flight.Do(key, func() (any, error) {
		id, err := upload()
		if err != nil {
			return "", err
		}
		h.mu.Lock()
		h.uploads[key] = id
		h.mu.Unlock()
		return id, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// Forget drops what Once cached under key.
func (c *Client) Forget(key string) {
	c.hub.mu.Lock()
	delete(c.hub.uploads, c.credKey()+"/"+key)
	c.hub.mu.Unlock()
}
