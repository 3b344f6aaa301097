// Package aws deploys certificates to Amazon Web Services (CloudName "aws"):
// ACM (an imported certificate re-imported in place, so everything using
// its ARN picks the new one up), CLOUDFRONT (a distribution's viewer
// certificate) and ELB (an ALB/NLB listener's default certificate, or one
// of its additional SNI certificates).
//
// The three products share one thing: a certificate reaches CloudFront and
// load balancers only as an ACM certificate. certfleet imports each
// fingerprint once per region, tags the import ("certfleet:sha256"), finds
// it again by that tag, and deletes only its own untagged-by-nobody-else
// imports that no binding uses (Sweep, keeping Config KeepPrevious).
//
// It is not a general AWS client: it makes the few calls listed in
// docs/deployers.md (the least-privilege IAM policy), through
// internal/egress, with the credential of the resource's CloudAccess.
package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/perkey"
	"github.com/certfleet/certfleet/internal/egress"
)

// CloudName is the CloudName of every AWS product and CloudAccess.
const CloudName = "aws"

// Options are the server's settings for AWS targets.
type Options struct {
	// Egress makes the connections, under the egress policy of the
	// resource's account. nil: the default policy with every account
	// treated as the root account.
	Egress *egress.Dialer
	// MaxAttempts is how many times the SDK tries one call (throttling and
	// 5xx are retried with its backoff) before the error goes back to the
	// engine, which retries the worker with its own. Defaults to 3.
	MaxAttempts int
}

// accessFields are the CloudAccess Config keys every AWS product reads.
var accessFields = []deploy.Field{
	{Name: "RoleArn", Type: deploy.TypeString,
		Help: "An IAM role to assume through STS (AssumeRole) before every call; empty: the access key's own permissions."},
	{Name: "ExternalId", Type: deploy.TypeString,
		Help: "The external ID the role's trust policy asks for, if any."},
	{Name: "Endpoints", Type: deploy.TypeObject,
		Help: `Endpoint overrides: {"ACM"|"CLOUDFRONT"|"ELB"|"STS"|"*": "https://host[:port]"} for VPC endpoints, private gateways and tests.`},
	{Name: "Regions", Type: deploy.TypeStringList, Default: "us-east-1",
		Help: "The regions SyncCloudResources looks for ACM certificates and load balancers in."},
	{Name: "MaxQPS", Type: deploy.TypeInteger, Default: "10", Min: 1, Max: 1000,
		Help: "Calls per second this server makes with this access key, all products together (AWS throttles per account and API)."},
}

// AccessConfig is a CloudAccess Config, decoded through accessFields.
type AccessConfig struct {
	RoleArn    string
	ExternalId string
	Endpoints  map[string]string
	Regions    []string
	MaxQPS     int
}

var accessSpec = deploy.AccessSpec{
	Need:      deploy.AccessRequired,
	SecretId:  "the IAM access key ID (AKIA…)",
	SecretKey: "the secret access key",
	Config:    accessFields,
}

// keepField is the Sweep keep-count every product documents.
var keepField = deploy.Field{Name: "KeepPrevious", Type: deploy.TypeInteger, Default: "1", Min: 0, Max: 100,
	Help: "After a job, how many of certfleet's own unused ACM imports to keep (newest first) so rollback still works; the rest are deleted."}

// endpointKeys are the Endpoints keys, by the service they override.
var endpointKeys = map[string]bool{"ACM": true, "CLOUDFRONT": true, "ELB": true, "STS": true, "*": true}

// Tags certfleet puts on what it imports into ACM.
const (
	// tagSha256 marks an import certfleet made for CloudFront or ELB and
	// may share and delete: its value is the leaf's SHA-256 (upper-case hex).
	tagSha256 = "certfleet:sha256"
	// tagResource marks an ACM certificate certfleet created for an ACM
	// resource without a CertificateArn: re-imported in place, never swept.
	tagResource = "certfleet:resource"
	// tagImported is when certfleet imported it (RFC 3339, nanoseconds):
	// Sweep keeps the newest, and ACM's ImportedAt has one-second steps.
	tagImported = "certfleet:imported"
)

// base is what the three products share: clients per call, credentials
// cached per access, the ACM import cache.
type base struct {
	clients     *egress.Clients
	maxAttempts int

	mu     sync.Mutex
	creds  map[string]sdk.CredentialsProvider // access fingerprint → provider (role sessions cached)
	arnFor map[string]string                  // access|region|sha → ARN of certfleet's import
	locks  perkey.Locks                       // access|region|sha: one import at a time
	rates  perkey.Limiters                    // access key ID → MaxQPS
}

func newBase(o Options) *base {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	n := o.MaxAttempts
	if n <= 0 {
		n = 3
	}
	return &base{
		clients:     egress.NewClients(o.Egress, t, 0, egress.RefuseRedirects),
		maxAttempts: n,
		creds:       map[string]sdk.CredentialsProvider{},
		arnFor:      map[string]string{},
	}
}

// session is one target's clients: the credential resolved, one region.
type session struct {
	b       *base
	product string // for messages: "aws/ELB"
	key     string // access fingerprint, for caches
	region  string
	acm     *acm.Client
	elb     *elb.Client
	cf      *cloudfront.Client
}

// decodeAccess checks and decodes a CloudAccess Config.
func decodeAccess(a *deploy.Access) (AccessConfig, error) {
	var ac AccessConfig
	if err := deploy.DecodeFields(fmt.Sprintf("aws CloudAccess %d", a.ID), "Config", accessFields, a.Config, &ac); err != nil {
		return ac, err
	}
	for k, v := range ac.Endpoints {
		if !endpointKeys[k] {
			return ac, deploy.Permanentf("aws CloudAccess %d: Config key \"Endpoints\" has the key %q; known keys: ACM, CLOUDFRONT, ELB, STS, *", a.ID, k)
		}
		if _, err := endpointURL(v); err != nil {
			return ac, deploy.Permanentf("aws CloudAccess %d: Config key \"Endpoints\" %q: %v", a.ID, k, err)
		}
	}
	if ac.RoleArn != "" && !strings.HasPrefix(ac.RoleArn, "arn:") {
		return ac, deploy.Permanentf("aws CloudAccess %d: Config key \"RoleArn\" must be an ARN like arn:aws:iam::123456789012:role/certfleet (got %q)", a.ID, ac.RoleArn)
	}
	return ac, nil
}

// endpointURL turns "host", "host:port" or "https://host[:port][/path]"
// into a base URL.
func endpointURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil || u.RawQuery != "" {
		return "", errors.New("must be a host name or an http(s):// address with a host")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func endpointFor(ac AccessConfig, service string) string {
	v, ok := ac.Endpoints[service]
	if !ok {
		v, ok = ac.Endpoints["*"]
	}
	if !ok {
		return ""
	}
	u, _ := endpointURL(v) // checked by decodeAccess
	return u
}

// session builds the clients for t in region.
func (b *base) session(t deploy.Target, product, region string) (*session, error) {
	if t.Access == nil {
		return nil, deploy.Permanentf("aws/%s needs a credential: set CloudAccessId to an aws CloudAccess", product)
	}
	a := t.Access
	if a.SecretID == "" || a.SecretKey == "" {
		return nil, deploy.Permanentf("aws/%s: CloudAccess %d needs SecretId (the access key ID) and SecretKey (the secret access key)", product, a.ID)
	}
	ac, err := decodeAccess(a)
	if err != nil {
		return nil, err
	}
	hc := &limited{hc: b.clients.Get(t.AccountID), l: b.rates.Get(a.SecretID, ac.MaxQPS)}
	sum := sha256.Sum256([]byte(a.SecretID + "\x00" + a.SecretKey + "\x00" + ac.RoleArn + "\x00" + ac.ExternalId + "\x00" + endpointFor(ac, "STS")))
	key := hex.EncodeToString(sum[:12])

	b.mu.Lock()
	creds, ok := b.creds[key]
	if !ok {
		static := sdk.CredentialsProviderFunc(func(context.Context) (sdk.Credentials, error) {
			return sdk.Credentials{AccessKeyID: a.SecretID, SecretAccessKey: a.SecretKey, Source: "certfleet"}, nil
		})
		creds = static
		if ac.RoleArn != "" {
			stsCfg := b.config(hc, static, "us-east-1")
			stsClient := sts.NewFromConfig(stsCfg, func(o *sts.Options) {
				if u := endpointFor(ac, "STS"); u != "" {
					o.BaseEndpoint = sdk.String(u)
				}
			})
			creds = sdk.NewCredentialsCache(&assumeRole{client: stsClient, roleArn: ac.RoleArn, externalID: ac.ExternalId})
		}
		b.creds[key] = creds
	}
	b.mu.Unlock()

	cfg := b.config(hc, creds, region)
	s := &session{b: b, product: "aws/" + product, key: key, region: region}
	s.acm = acm.NewFromConfig(cfg, func(o *acm.Options) {
		if u := endpointFor(ac, "ACM"); u != "" {
			o.BaseEndpoint = sdk.String(u)
		}
	})
	s.elb = elb.NewFromConfig(cfg, func(o *elb.Options) {
		if u := endpointFor(ac, "ELB"); u != "" {
			o.BaseEndpoint = sdk.String(u)
		}
	})
	s.cf = cloudfront.NewFromConfig(cfg, func(o *cloudfront.Options) {
		if u := endpointFor(ac, "CLOUDFRONT"); u != "" {
			o.BaseEndpoint = sdk.String(u)
		}
	})
	return s, nil
}

// limited is an HTTP client waiting for its access key's MaxQPS.
type limited struct {
	hc *http.Client
	l  *rate.Limiter
}

func (c *limited) Do(req *http.Request) (*http.Response, error) {
	if err := c.l.Wait(req.Context()); err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return nil, fmt.Errorf("waiting for the MaxQPS limit: %v", err)
	}
	return c.hc.Do(req)
}

func (b *base) config(hc sdk.HTTPClient, creds sdk.CredentialsProvider, region string) sdk.Config {
	n := b.maxAttempts
	return sdk.Config{
		Region:      region,
		Credentials: creds,
		HTTPClient:  hc,
		Retryer: func() sdk.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = n
				o.MaxBackoff = 5 * time.Second
			})
		},
	}
}

// assumeRole is an AssumeRole credentials provider (the SDK's lives in
// the credentials module, which certfleet does not otherwise need).
type assumeRole struct {
	client     *sts.Client
	roleArn    string
	externalID string
}

func (p *assumeRole) Retrieve(ctx context.Context) (sdk.Credentials, error) {
	in := &sts.AssumeRoleInput{RoleArn: sdk.String(p.roleArn), RoleSessionName: sdk.String("certfleet"), DurationSeconds: sdk.Int32(3600)}
	if p.externalID != "" {
		in.ExternalId = sdk.String(p.externalID)
	}
	out, err := p.client.AssumeRole(ctx, in)
	if err != nil {
		return sdk.Credentials{}, classify(err, "STS AssumeRole "+p.roleArn)
	}
	c := out.Credentials
	return sdk.Credentials{
		AccessKeyID: sdk.ToString(c.AccessKeyId), SecretAccessKey: sdk.ToString(c.SecretAccessKey),
		SessionToken: sdk.ToString(c.SessionToken), Source: "certfleet-assume-role",
		CanExpire: c.Expiration != nil, Expires: sdk.ToTime(c.Expiration),
	}, nil
}

// transientCodes are AWS error codes worth retrying: throttling, and the
// codes services answer for a failure on their side or a concurrent change.
var transientCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true,
	"RequestThrottledException": true, "TooManyRequestsException": true, "RequestLimitExceeded": true,
	"RequestThrottled": true, "SlowDown": true, "PriorRequestNotComplete": true,
	"InternalError": true, "InternalFailure": true, "InternalServerError": true, "ServiceUnavailable": true,
	"ServiceUnavailableException": true, "RequestTimeout": true, "RequestTimeoutException": true,
	"PreconditionFailed":        true, // CloudFront: the distribution changed between read and write
	"ResourceInUse":             true, // ELB: another change to the listener is in progress
	"OperationAbortedException": true,
}

// IsThrottling reports whether err is AWS throttling a call.
func IsThrottling(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	return strings.Contains(ae.ErrorCode(), "Throttl") || ae.ErrorCode() == "TooManyRequestsException" ||
		ae.ErrorCode() == "RequestLimitExceeded" || ae.ErrorCode() == "SlowDown"
}

// classify turns an SDK error into certfleet's: the call, AWS's code,
// message and request ID on one line; permanent unless throttling, a 5xx
// or a connection failure.
func classify(err error, call string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("aws: %s: %w", call, context.Canceled)
		}
		return fmt.Errorf("aws: %s: %w", call, context.DeadlineExceeded)
	}
	if deploy.IsPermanent(err) {
		return err
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		reqID := ""
		status := 0
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			reqID = re.ServiceRequestID()
			status = re.HTTPStatusCode()
		}
		msg := fmt.Sprintf("aws: %s: %s: %s", call, ae.ErrorCode(), oneLine(ae.ErrorMessage()))
		if reqID != "" {
			msg += " (RequestId " + reqID + ")"
		}
		e := errors.New(msg)
		switch {
		case transientCodes[ae.ErrorCode()] || IsThrottling(err) || status >= 500:
			return e
		case ae.ErrorCode() == "LimitExceededException" || ae.ErrorCode() == "TooManyCertificates":
			return deploy.Permanentf("%s; lower KeepPrevious or delete unused certificates", msg)
		}
		return deploy.Permanent(e)
	}
	if egress.IsRefused(err) {
		return deploy.Permanentf("aws: %s: %v", call, rootCause(err))
	}
	return fmt.Errorf("aws: %s: %v", call, rootCause(err))
}

// rootCause strips the SDK's operation wrapping, which repeats the
// service and operation.
func rootCause(err error) error {
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// regionOf returns the region field of an ARN, "" when s is not one.
func regionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return ""
	}
	return parts[3]
}

// decodeSnapshot reads a previous state blob; an empty one decodes to v's
// zero value.
func decodeSnapshot(product string, previous []byte, v any) error {
	if len(previous) == 0 {
		return nil
	}
	if err := json.Unmarshal(previous, v); err != nil {
		return deploy.Permanentf("aws/%s: the recorded previous state is unreadable: %v", product, err)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Products are the three AWS products sharing one credential cache, one
// ACM import cache and one import lock per fingerprint, so workers of one
// job deploying a certificate to a listener and a distribution in the same
// region import it once.
type Products struct {
	ACM        *ACM
	CloudFront *CloudFront
	ELB        *ELB
}

// New returns the three products over one shared base.
func New(o Options) Products {
	b := newBase(o)
	return Products{ACM: &ACM{b: b}, CloudFront: &CloudFront{b: b}, ELB: &ELB{b: b}}
}
