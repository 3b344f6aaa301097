// Package tencent deploys certificates to Tencent Cloud (CloudName
// "Tencent"): TencentCDN (a CDN domain's HTTPS certificate), CLB (a
// listener's default certificate, or one SNI domain's) and TEO (an EdgeOne
// acceleration domain's certificate).
//
// Every product binds certificates by an SSL certificate ID: certfleet
// uploads each fingerprint once to Tencent SSL (UploadCertificate, Alias
// "certfleet-<SHA-256>"), finds it again by that alias, then binds it
// through the product's own API and reads the binding back. Calls are
// signed TC3-HMAC-SHA256 by the official SDK's CommonRequest and made
// through internal/egress.
//
// It is not a general Tencent Cloud client: only the actions listed in
// docs/deployers.md (the CAM policy) are called.
package tencent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	"golang.org/x/time/rate"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/perkey"
	"github.com/certfleet/certfleet/internal/egress"
)

// CloudName is the CloudName of every Tencent Cloud product and CloudAccess,
// spelled as the CAS SDK's CloudName values spell it.
const CloudName = "Tencent"

// Options are the server's settings for Tencent Cloud targets.
type Options struct {
	// Egress makes the connections, under the egress policy of the
	// resource's account. nil: the default policy with every account
	// treated as the root account.
	Egress *egress.Dialer
	// TaskPoll is how often CLB's asynchronous tasks are polled
	// (DescribeTaskStatus). Defaults to 1 s.
	TaskPoll time.Duration
}

// The services certfleet calls, with their API versions.
var services = map[string]string{
	"ssl": "2019-12-05",
	"cdn": "2018-06-06",
	"clb": "2018-03-17",
	"teo": "2022-09-01",
	"sts": "2018-08-13",
}

var accessFields = []deploy.Field{
	{Name: "RoleArn", Type: deploy.TypeString,
		Help: "A CAM role to assume through STS (AssumeRole) before every call (qcs::cam::uin/UIN:roleName/NAME); empty: the key's own permissions."},
	{Name: "Endpoints", Type: deploy.TypeObject,
		Help: `Endpoint overrides: {"SSL"|"CDN"|"CLB"|"TEO"|"STS"|"*": "https://host[:port]"} for private gateways and tests.`},
	{Name: "Regions", Type: deploy.TypeStringList, Default: "ap-guangzhou",
		Help: "The regions SyncCloudResources looks for CLB load balancers in."},
	{Name: "MaxQPS", Type: deploy.TypeInteger, Default: "10", Min: 1, Max: 1000,
		Help: "Calls per second this server makes with this credential, all products together (Tencent limits each action per account)."},
}

// AccessConfig is a Tencent CloudAccess Config.
type AccessConfig struct {
	RoleArn   string
	Endpoints map[string]string
	Regions   []string
	MaxQPS    int
}

var accessSpec = deploy.AccessSpec{
	Need:      deploy.AccessRequired,
	SecretId:  "the API key's SecretId (AKID…)",
	SecretKey: "the API key's SecretKey",
	Config:    accessFields,
}

var keepField = deploy.Field{Name: "KeepPrevious", Type: deploy.TypeInteger, Default: "1", Min: 0, Max: 100,
	Help: "After a job, how many of certfleet's own unused SSL uploads to keep (newest first) so rollback still works; the rest are deleted."}

// base is what the products share.
type base struct {
	clients *egress.Clients
	poll    time.Duration

	mu    sync.Mutex
	creds map[string]*tempCreds // access fingerprint → assumed role
	shaOf map[string]string     // access|certId → SHA-256 (an SSL certificate never changes)
	idFor map[string]string     // access|sha → certfleet's upload
	locks perkey.Locks          // access|sha: one upload at a time
	rates perkey.Limiters
}

func newBase(o Options) *base {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	poll := o.TaskPoll
	if poll <= 0 {
		poll = time.Second
	}
	return &base{clients: egress.NewClients(o.Egress, t, 0, egress.RefuseRedirects), poll: poll,
		creds: map[string]*tempCreds{}, shaOf: map[string]string{}, idFor: map[string]string{}}
}

type tempCreds struct {
	id, key, token string
	expires        time.Time
}

// session is one target's credential and endpoints.
type session struct {
	b       *base
	product string
	key     string
	access  *deploy.Access
	ac      AccessConfig
	hc      *http.Client
	rate    *rate.Limiter
}

var endpointKeys = map[string]bool{"SSL": true, "CDN": true, "CLB": true, "TEO": true, "STS": true, "*": true}

func decodeAccess(a *deploy.Access) (AccessConfig, error) {
	var ac AccessConfig
	if err := deploy.DecodeFields(fmt.Sprintf("Tencent CloudAccess %d", a.ID), "Config", accessFields, a.Config, &ac); err != nil {
		return ac, err
	}
	for k, v := range ac.Endpoints {
		if !endpointKeys[k] {
			return ac, deploy.Permanentf("Tencent CloudAccess %d: Config key \"Endpoints\" has the key %q; known keys: SSL, CDN, CLB, TEO, STS, *", a.ID, k)
		}
		if _, _, err := endpointOf(v); err != nil {
			return ac, deploy.Permanentf("Tencent CloudAccess %d: Config key \"Endpoints\" %q: %v", a.ID, k, err)
		}
	}
	if ac.RoleArn != "" && !strings.HasPrefix(ac.RoleArn, "qcs::cam::") {
		return ac, deploy.Permanentf("Tencent CloudAccess %d: Config key \"RoleArn\" must be a role like qcs::cam::uin/100000000001:roleName/certfleet (got %q)", a.ID, ac.RoleArn)
	}
	return ac, nil
}

// endpointOf splits "host[:port]" or "http(s)://host[:port]" into the
// SDK's scheme and endpoint.
func endpointOf(s string) (scheme, host string, err error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || strings.Trim(u.Path, "/") != "" {
		return "", "", errors.New("must be a host name or an http(s):// address with a host and no path")
	}
	return strings.ToUpper(u.Scheme), u.Host, nil
}

func (b *base) session(t deploy.Target, product string) (*session, error) {
	if t.Access == nil {
		return nil, deploy.Permanentf("Tencent/%s needs a credential: set CloudAccessId to a Tencent CloudAccess", product)
	}
	a := t.Access
	if a.SecretID == "" || a.SecretKey == "" {
		return nil, deploy.Permanentf("Tencent/%s: CloudAccess %d needs SecretId and SecretKey", product, a.ID)
	}
	ac, err := decodeAccess(a)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(a.SecretID + "\x00" + a.SecretKey + "\x00" + ac.RoleArn))
	key := hex.EncodeToString(sum[:12])
	return &session{b: b, product: "Tencent/" + product, key: key, access: a, ac: ac,
		hc: b.clients.Get(t.AccountID), rate: b.rates.Get(a.SecretID, ac.MaxQPS)}, nil
}

// credential returns the credential calls are signed with: the access
// key's, or the assumed role's (cached until five minutes before expiry).
func (s *session) credential(ctx context.Context) (common.CredentialIface, error) {
	if s.ac.RoleArn == "" {
		return common.NewCredential(s.access.SecretID, s.access.SecretKey), nil
	}
	s.b.mu.Lock()
	tc := s.b.creds[s.key]
	s.b.mu.Unlock()
	if tc != nil && time.Until(tc.expires) > 5*time.Minute {
		return common.NewTokenCredential(tc.id, tc.key, tc.token), nil
	}
	var out struct {
		Credentials struct{ TmpSecretId, TmpSecretKey, Token string }
		ExpiredTime int64
	}
	err := s.callWith(ctx, common.NewCredential(s.access.SecretID, s.access.SecretKey), "sts", "AssumeRole", "ap-guangzhou",
		map[string]any{"RoleArn": s.ac.RoleArn, "RoleSessionName": "certfleet", "DurationSeconds": 3600}, &out)
	if err != nil {
		return nil, err
	}
	tc = &tempCreds{id: out.Credentials.TmpSecretId, key: out.Credentials.TmpSecretKey, token: out.Credentials.Token,
		expires: time.Unix(out.ExpiredTime, 0)}
	s.b.mu.Lock()
	s.b.creds[s.key] = tc
	s.b.mu.Unlock()
	return common.NewTokenCredential(tc.id, tc.key, tc.token), nil
}

// call makes one API call; out receives the Response object.
func (s *session) call(ctx context.Context, service, action, region string, params, out any) error {
	cred, err := s.credential(ctx)
	if err != nil {
		return err
	}
	return s.callWith(ctx, cred, service, action, region, params, out)
}

// APIError is an error Tencent Cloud answered with.
type APIError struct {
	Code, Message, RequestID string
}

func (e *APIError) Error() string {
	s := e.Code + ": " + strings.Join(strings.Fields(e.Message), " ")
	if e.RequestID != "" {
		s += " (RequestId " + e.RequestID + ")"
	}
	return s
}

func (s *session) callWith(ctx context.Context, cred common.CredentialIface, service, action, region string, params, out any) error {
	if err := s.rate.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %s %s: %w", s.product, strings.ToUpper(service), action, ctx.Err())
		}
		return fmt.Errorf("%s: %s %s: waiting for the MaxQPS limit: %v", s.product, strings.ToUpper(service), action, err)
	}
	hp := profile.NewHttpProfile()
	hp.ReqTimeout = 30
	key := strings.ToUpper(service)
	ep, ok := s.ac.Endpoints[key]
	if !ok {
		ep, ok = s.ac.Endpoints["*"]
	}
	if ok {
		hp.Scheme, hp.Endpoint, _ = endpointOf(ep)
	}
	cp := profile.NewClientProfile()
	cp.HttpProfile = hp
	cp.SignMethod = "TC3-HMAC-SHA256"
	cp.DisableRegionBreaker = true
	cp.Language = "en-US"
	client := common.NewCommonClient(cred, region, cp).WithHttpTransport(s.hc.Transport)
	req := tchttp.NewCommonRequest(service, services[service], action)
	req.SetContext(ctx)
	if err := req.SetActionParameters(params); err != nil {
		return fmt.Errorf("%s: %s %s: encode parameters: %w", s.product, strings.ToUpper(service), action, err)
	}
	resp := tchttp.NewCommonResponse()
	err := client.Send(req, resp)
	call := fmt.Sprintf("%s %s", strings.ToUpper(service), action)
	if err != nil {
		return s.classify(ctx, call, err)
	}
	var env struct {
		Response json.RawMessage
	}
	if err := json.Unmarshal(resp.GetBody(), &env); err != nil || len(env.Response) == 0 {
		return fmt.Errorf("%s: %s: an answer without Response", s.product, call)
	}
	if out != nil {
		if err := json.Unmarshal(env.Response, out); err != nil {
			return fmt.Errorf("%s: %s: unexpected answer: %v", s.product, call, err)
		}
	}
	return nil
}

// transientCodes are Tencent Cloud error codes worth retrying.
func transient(code string) bool {
	switch {
	case code == "RequestLimitExceeded", strings.HasPrefix(code, "RequestLimitExceeded."),
		code == "InternalError", strings.HasPrefix(code, "InternalError."),
		code == "ResourceUnavailable", code == "ResourceInUse", strings.HasPrefix(code, "ResourceInUse."),
		code == "FailedOperation.TaskInProgress", code == "ClientError.NetworkError", code == "ServiceUnavailable":
		return true
	}
	return false
}

// IsThrottling reports whether err is Tencent Cloud's rate limit.
func IsThrottling(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && strings.HasPrefix(ae.Code, "RequestLimitExceeded")
}

func (s *session) classify(ctx context.Context, call string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %s: %w", s.product, call, ctx.Err())
	}
	if egress.IsRefused(err) {
		return deploy.Permanentf("%s: %s: %v", s.product, call, err)
	}
	var se *tcerr.TencentCloudSDKError
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: %s: %v", s.product, call, err)
	}
	if cause := se.Unwrap(); cause != nil && egress.IsRefused(cause) {
		return deploy.Permanentf("%s: %s: %v", s.product, call, cause)
	}
	ae := &APIError{Code: se.Code, Message: se.Message, RequestID: se.RequestId}
	switch {
	case se.Code == "ClientError.HttpStatusCodeError":
		// The gateway answered something other than 200: keep the status,
		// not the body (an HTML error page).
		msg := se.Message
		if i := strings.Index(msg, ", with body"); i > 0 {
			msg = msg[:i]
		}
		ae.Message = msg
		e := fmt.Errorf("%s: %s: %w", s.product, call, ae)
		if strings.Contains(msg, "status code: 4") && !strings.Contains(msg, "status code: 429") {
			return deploy.Permanent(e)
		}
		return e
	case strings.HasPrefix(se.Code, "ClientError."):
		return fmt.Errorf("%s: %s: %w", s.product, call, ae)
	case transient(se.Code):
		return fmt.Errorf("%s: %s: %w", s.product, call, ae)
	case se.Code == "LimitExceeded" || strings.HasPrefix(se.Code, "LimitExceeded."):
		return deploy.Permanentf("%s: %s: %w; lower KeepPrevious or delete unused certificates", s.product, call, ae)
	}
	return deploy.Permanent(fmt.Errorf("%s: %s: %w", s.product, call, ae))
}

func keepOf(k *int) int {
	if k == nil {
		return 1
	}
	return *k
}

// wait sleeps d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Products are the three Tencent Cloud products sharing one SSL upload
// cache and lock, so one job's workers upload a certificate once.
type Products struct {
	CDN, CLB, TEO *Deployer
}

// New returns the three products over one shared base.
func New(o Options) Products {
	b := newBase(o)
	return Products{
		CDN: &Deployer{b: b, desc: CDNDescription, p: cdnProduct{}},
		CLB: &Deployer{b: b, desc: CLBDescription, p: clbProduct{}},
		TEO: &Deployer{b: b, desc: TEODescription, p: teoProduct{}},
	}
}
