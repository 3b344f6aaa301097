// Package aliyunfake is a fake Alibaba Cloud for tests and benchmarks: one
// HTTP server answering the OpenAPI actions certfleet calls on CAS, CDN,
// DCDN, SLB, ALB, NLB, WAF and STS, and OSS's ListBuckets, ListCname and PutCname, as the public
// API reference documents them. It verifies each
// request's signature as Alibaba does — RPC signature version 1.0
// (HMAC-SHA1, what github.com/aliyun/alibaba-cloud-sdk-go sends),
// ACS3-HMAC-SHA256 (the V3 signature of the alibabacloud-go SDKs) and OSS's
// OSS4-HMAC-SHA256 (path-style requests) — keeps
// per-product state (CDN and DCDN domains, SLB listeners and domain
// extensions, ALB and NLB listeners and additional certificates, OSS bucket
// custom domains, uploaded certificates, quotas),
// answers with the documented response shapes and error codes, injects
// faults (throttling, 5xx, slow answers, per-action QPS limits, quota
// exceeded, RAM denials) and counts calls per action.
//
// It is for tests only and is not an emulator of Alibaba Cloud: only the
// actions and parameters certfleet uses are answered (any other action is
// InvalidAction.NotFound), and where the reference leaves behaviour open the
// fake guesses. Every guess is listed here:
//
// GUESSES
//
//   - HTTP statuses of errors: Throttling.User 400 (its documented status)
//     and Throttling 503; InvalidAccessKeyId.NotFound 404;
//     SignatureDoesNotMatch, SignatureNonceUsed, InvalidTimeStamp.Expired,
//     MissingParameter, InvalidParameter 400; Forbidden.RAM 403; the product
//     *.NotFound codes 404; ServiceUnavailable 503; InternalError 500.
//   - The error body is {"RequestId","HostId","Code","Message","Recommend"}
//     for every product (CAS, CDN, SLB, ALB, STS alike).
//   - The timestamp window is 15 minutes either way; a SignatureNonce may not
//     repeat within it (SignatureNonceUsed).
//   - A per-action QPS limit (SetQPS) rejects the excess with Throttling.User
//     instead of queueing it (a token bucket of one second's burst).
//   - CAS: ListUserCertificateOrder with OrderType=UPLOAD lists uploads
//     newest first, ShowSize at most 100; CertificateId grows with each
//     upload. Uploading a certificate whose key does not match answers
//     InvalidParameter.CertificateKeyNotMatch (code guessed); the upload quota
//     answers QuotaExceeded.Certificate (code guessed); deleting a
//     certificate a CDN/DCDN domain, ALB/NLB listener or OSS domain binds answers
//     OperationDenied.CertificateInUse (code guessed; the reference says only
//     that such a certificate cannot be deleted); an unknown CertId answers
//     NotFound.Certificate (guessed).
//   - CDN: DescribeDomainCertificateInfo's CertInfo carries CertId (string)
//     and CertType "cas"|"upload"|"free"; SSLProtocol=off clears the binding;
//     BatchSetCdnDomainServerCertificate takes up to 50 comma-separated
//     domains and, for CertType=cas, a CertId (or the CAS certificate's
//     CertName); a CAS CertId that does not exist answers
//     InvalidCertificate.NotFound (guessed). Domains are global (no region).
//   - DCDN (2018-01-15) behaves as CDN: DescribeDcdnDomainCertificateInfo's
//     CertInfo carries SSLProtocol "on"|"off" (and, as CDN's,
//     ServerCertificateStatus), CertId and CertType; SetDcdnDomainSSLCertificate
//     takes CertType=cas with CertId; DescribeDcdnUserDomains pages as
//     DescribeUserDomains does. DCDN domains are separate from CDN ones.
//   - SLB: DescribeServerCertificates' Fingerprint is the SHA-1 of the leaf,
//     lower-case hex pairs joined by ':'. DescribeLoadBalancerHTTPSListenerAttribute
//     includes DomainExtensions.DomainExtension. A missing listener answers
//     InvalidParameter ("The specified ListenerPort does not exist"); an
//     unknown ServerCertificateId answers ServerCertificateId.NotFound
//     (guessed); deleting a server certificate in use answers
//     ResourceInUse.ServerCertificate (guessed); the server-certificate quota
//     answers QuotaExceeded.ServerCertificate (guessed). Changes apply at
//     once (real SLB is synchronous too).
//   - ALB: listener changes are asynchronous in the real service (a JobId,
//     IncorrectStatus.Listener while a change runs); the fake applies them
//     at once and can answer IncorrectStatus.Listener through Fail. A
//     certificate is named by "<CAS CertId>-cn-hangzhou" (the CertIdentifier
//     form). GetListenerAttribute's Certificates holds the default
//     certificate only; ListListenerCertificates lists default and
//     additional ones with IsDefault.
//   - OSS: the fake takes path-style requests only (/BUCKET/?cname), as
//     OSS does for an IP endpoint; errors are the documented XML
//     <Error><Code/><Message/><RequestId/><HostId/></Error>. PutCname with a
//     PreviousCertId that is not the bound one answers 409
//     CertificateIdNotMatch (code and status guessed); an unknown CertId
//     answers InvalidCertificate (guessed); ListCname's Certificate.CertId
//     is the "<CAS CertId>-cn-hangzhou" form and its Fingerprint the SHA-1
//     in colon-separated pairs (guessed). A RAM denial answers 403
//     AccessDenied. The per-action QPS limit is not applied to OSS.
//   - NLB (2022-04-30) answers as ALB does, for TCPSSL listeners: the same
//     actions and answer shapes (GetListenerAttribute also lists
//     CertificateIds), certificates named "<CAS CertId>-cn-hangzhou",
//     parameters CertificateIds.N (UpdateListenerAttribute) and
//     AdditionalCertificateIds.N (associate, dissociate). Listener changes
//     apply at once.
//   - WAF 3.0 (2021-10-01): DescribeInstance answers without InstanceId
//     (an empty object but RequestId) in a region where the account has no
//     instance. DescribeDomainDetail's Listen.CertId is the form ModifyDomain
//     took ("<CAS CertId>-cn-hangzhou"; the reference's example shows only
//     "123"), and its Redirect.Backends (and BackupBackends) are objects
//     {"Backend": "…"}, while ModifyDomain's Redirect takes them as strings
//     (both documented; a ModifyDomain carrying objects, or any field the
//     fake does not know, answers InvalidParameter — the real service may
//     be more lenient). ModifyDomain replaces the whole Listen and Redirect:
//     a field left out takes its zero value. HttpsPorts without a CertId
//     answers InvalidParameter; a CertId that is not a CAS certificate of
//     cn-hangzhou answers 404 Certificate.NotFound (code guessed); an
//     unknown instance (or one of another region) 404 Instance.NotFound and
//     an unknown domain 404 Domain.NotFound (codes guessed). DescribeDomains
//     takes PageSize up to 50. Changes apply at once. CAS refuses to delete
//     a certificate a WAF domain binds.
//   - STS: AssumeRole issues "STS."-prefixed keys valid one hour; a request
//     signed with them must carry the SecurityToken (else
//     InvalidSecurityToken.Mismatch, guessed code).
package aliyunfake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/certfleet/certfleet/internal/deploy"
)

// Fake is one fake Alibaba Cloud account. Its exported methods are safe for
// concurrent use with the server.
type Fake struct {
	srv *httptest.Server

	mu      sync.Mutex
	keys    map[string]string // AccessKeyId → AccessKeySecret
	tokens  map[string]string // STS AccessKeyId → SecurityToken
	roles   map[string]bool
	denied  map[string]bool // AccessKeyId + "/" + Action → Forbidden.RAM
	nonces  map[string]time.Time
	calls   map[string]int
	refused map[string]int // calls refused by Fail or SetQPS
	faults  map[string][]fault
	qps     map[string]*rate.Limiter
	latency time.Duration
	stalls  map[string]chan struct{}
	now     func() time.Time
	nextID  int64

	cas          map[int64]*CASCert
	casQuota     int
	cdn          map[string]*CDNDomain
	dcdn         map[string]*CDNDomain
	slbCerts     map[string]*SLBCert
	slbQuota     int
	lbs          map[string]*LoadBalancer
	albListeners map[string]*ALBListener
	nlbListeners map[string]*ALBListener
	buckets      map[string]*Bucket
	wafInstances map[string]*WAFInstance
	wafDomains   map[string]*WAFDomain // instance + "/" + domain
}

type fault struct {
	code string
	n    int
}

// New starts a fake on 127.0.0.1 with one AccessKey pair; Close stops it.
func New(accessKeyID, accessKeySecret string) *Fake {
	f := &Fake{keys: map[string]string{accessKeyID: accessKeySecret}, tokens: map[string]string{}, roles: map[string]bool{},
		denied: map[string]bool{}, nonces: map[string]time.Time{}, calls: map[string]int{}, refused: map[string]int{}, faults: map[string][]fault{},
		qps: map[string]*rate.Limiter{}, stalls: map[string]chan struct{}{}, now: time.Now, nextID: 1000,
		cas: map[int64]*CASCert{}, cdn: map[string]*CDNDomain{}, dcdn: map[string]*CDNDomain{}, slbCerts: map[string]*SLBCert{}, lbs: map[string]*LoadBalancer{},
		albListeners: map[string]*ALBListener{}, nlbListeners: map[string]*ALBListener{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// URL is the fake's address, for a credential's Endpoints {"*": URL}.
func (f *Fake) URL() string { return f.srv.URL }

// Close stops the server.
func (f *Fake) Close() { f.srv.Close() }

// AddKey adds an AccessKey pair to the account.
func (f *Fake) AddKey(id, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[id] = secret
}

// AddRole lets AssumeRole assume roleArn.
func (f *Fake) AddRole(roleArn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roles[roleArn] = true
}

// Deny makes action answer Forbidden.RAM to accessKeyID.
func (f *Fake) Deny(accessKeyID, action string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denied[accessKeyID+"/"+action] = true
}

// Fail makes the next n calls of action answer with code (Throttling.User,
// ServiceUnavailable, InternalError, IncorrectStatus.Listener, or any code;
// its status comes from the guesses above). action "*" matches every action.
func (f *Fake) Fail(action, code string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[action] = append(f.faults[action], fault{code, n})
}

// SetLatency delays every answer by d.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// SetQPS limits action to qps calls a second; the excess answers
// Throttling.User. 0 removes the limit.
func (f *Fake) SetQPS(action string, qps int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if qps <= 0 {
		delete(f.qps, action)
		return
	}
	f.qps[action] = rate.NewLimiter(rate.Limit(qps), qps)
}

// Stall makes every call of action block until the client gives up; the
// returned channel is closed when the first one arrives.
func (f *Fake) Stall(action string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	f.stalls[action] = ch
	return ch
}

// SetCASQuota limits how many certificates CAS holds (0: no limit).
func (f *Fake) SetCASQuota(n int) { f.mu.Lock(); f.casQuota = n; f.mu.Unlock() }

// SetSLBQuota limits how many server certificates SLB holds (0: no limit).
func (f *Fake) SetSLBQuota(n int) { f.mu.Lock(); f.slbQuota = n; f.mu.Unlock() }

// Calls returns how many signed requests named action (all answers
// counted, errors included).
func (f *Fake) Calls(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

// AllCalls returns a copy of the per-action call counts.
func (f *Fake) AllCalls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]int, len(f.calls))
	for k, v := range f.calls {
		m[k] = v
	}
	return m
}

// Refused returns a copy of the per-action counts of calls refused by an
// injected fault or a QPS limit (included in AllCalls).
func (f *Fake) Refused() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]int, len(f.refused))
	for k, v := range f.refused {
		m[k] = v
	}
	return m
}

// ResetCalls zeroes the call counts.
func (f *Fake) ResetCalls() { f.mu.Lock(); clear(f.calls); clear(f.refused); f.mu.Unlock() }

// apiError is an error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func errorf(status int, code, format string, a ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, a...)}
}

var statusOf = map[string]int{
	"Throttling": 503, "Throttling.User": 400, "Throttling.Api": 400, "ServiceUnavailable": 503, "InternalError": 500,
	"Forbidden.RAM": 403, "InvalidAccessKeyId.NotFound": 404, "IncorrectStatus.Listener": 400,
}

func faultError(code string) *apiError {
	st, ok := statusOf[code]
	if !ok {
		st = 400
		if strings.HasSuffix(code, ".NotFound") {
			st = 404
		}
	}
	msg := map[string]string{
		"Throttling.User":    "Request was denied due to user flow control.",
		"Throttling":         "Request was denied due to request throttling.",
		"ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
		"InternalError":      "The request processing has failed due to some unknown error, exception or failure.",
	}[code]
	if msg == "" {
		msg = "Injected fault " + code + "."
	}
	return &apiError{st, code, msg}
}

func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// call is one verified request.
type call struct {
	action, version string
	params          map[string]string
	akID            string
}

func (c *call) get(k string) string { return c.params[k] }

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	rid := requestID()
	if strings.HasPrefix(r.Header.Get("Authorization"), "OSS4-HMAC-SHA256 ") {
		f.serveOSS(w, r, rid)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", rid)
	c, aerr := f.verify(r)
	var out any
	if aerr == nil {
		f.mu.Lock()
		f.calls[c.action]++
		lat, stall := f.latency, f.stalls[c.action]
		f.mu.Unlock()
		if stall != nil {
			f.mu.Lock()
			select {
			case <-stall:
			default:
				close(stall)
			}
			f.mu.Unlock()
			<-r.Context().Done()
			return
		}
		if lat > 0 {
			select {
			case <-time.After(lat):
			case <-r.Context().Done():
				return
			}
		}
		out, aerr = f.dispatch(c)
	}
	if aerr != nil {
		w.WriteHeader(aerr.status)
		json.NewEncoder(w).Encode(map[string]string{"RequestId": rid, "HostId": r.Host, "Code": aerr.code,
			"Message": aerr.message, "Recommend": "https://api.aliyun.com/troubleshoot?q=" + aerr.code + "&product=fake"})
		return
	}
	m, _ := json.Marshal(out)
	var obj map[string]any
	json.Unmarshal(m, &obj)
	if obj == nil {
		obj = map[string]any{}
	}
	obj["RequestId"] = rid
	json.NewEncoder(w).Encode(obj)
}

// verify authenticates r with either signature scheme and returns its call.
func (f *Fake) verify(r *http.Request) (*call, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, errorf(400, "InvalidParameter", "The request body could not be read.")
	}
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errorf(400, "InvalidParameter", "The form body is malformed.")
		}
		for k, v := range form {
			params[k] = v[0]
		}
	}
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "ACS3-HMAC-SHA256 ") {
		return f.verifyV3(r, auth, body, params)
	}
	return f.verifyV1(r, params)
}

// percentEncode is Alibaba's encoding of names and values for signing.
func percentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

func canonicalQuery(params map[string]string, skip string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = percentEncode(k) + "=" + percentEncode(params[k])
	}
	return strings.Join(parts, "&")
}

func (f *Fake) verifyV1(r *http.Request, params map[string]string) (*call, *apiError) {
	for _, k := range []string{"AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "Action", "Version"} {
		if params[k] == "" {
			return nil, errorf(400, "MissingParameter", "The input parameter %q that is mandatory for processing this request is not supplied.", k)
		}
	}
	if params["SignatureMethod"] != "HMAC-SHA1" || params["SignatureVersion"] != "1.0" {
		return nil, errorf(400, "InvalidParameter", "The specified SignatureMethod or SignatureVersion is not supported.")
	}
	ak := params["AccessKeyId"]
	secret, aerr := f.secretFor(ak, params["SecurityToken"])
	if aerr != nil {
		return nil, aerr
	}
	toSign := r.Method + "&%2F&" + percentEncode(canonicalQuery(params, "Signature"))
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(toSign))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(params["Signature"])) {
		return nil, errorf(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:%s", toSign)
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", params["Timestamp"])
	if err != nil {
		return nil, errorf(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if aerr := f.fresh(ts, params["SignatureNonce"]); aerr != nil {
		return nil, aerr
	}
	return &call{action: params["Action"], version: params["Version"], params: params, akID: ak}, nil
}

func (f *Fake) verifyV3(r *http.Request, auth string, body []byte, params map[string]string) (*call, *apiError) {
	fields := map[string]string{}
	for _, p := range strings.Split(strings.TrimPrefix(auth, "ACS3-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		fields[k] = v
	}
	ak, signed, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if ak == "" || signed == "" || sig == "" {
		return nil, errorf(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
	}
	action, version := r.Header.Get("x-acs-action"), r.Header.Get("x-acs-version")
	if action == "" || version == "" {
		return nil, errorf(400, "MissingParameter", "The x-acs-action and x-acs-version headers are mandatory.")
	}
	hashed := r.Header.Get("x-acs-content-sha256")
	sum := sha256.Sum256(body)
	if hashed != hex.EncodeToString(sum[:]) {
		return nil, errorf(400, "SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the body.")
	}
	secret, aerr := f.secretFor(ak, r.Header.Get("x-acs-security-token"))
	if aerr != nil {
		return nil, aerr
	}
	names := strings.Split(signed, ";")
	var hdrs strings.Builder
	hasHost := false
	for _, n := range names {
		v := r.Header.Get(n)
		if n == "host" {
			v, hasHost = r.Host, true
		}
		hdrs.WriteString(n + ":" + strings.TrimSpace(v) + "\n")
	}
	if !hasHost || !strings.Contains(signed, "x-acs-date") {
		return nil, errorf(400, "IncompleteSignature", "The host and x-acs-* headers must be signed.")
	}
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = v[0]
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon := strings.Join([]string{r.Method, path, canonicalQuery(q, ""), hdrs.String(), signed, hashed}, "\n")
	ch := sha256.Sum256([]byte(canon))
	toSign := "ACS3-HMAC-SHA256\n" + hex.EncodeToString(ch[:])
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(toSign))
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(sig)) {
		return nil, errorf(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:%s", toSign)
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", r.Header.Get("x-acs-date"))
	if err != nil {
		return nil, errorf(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if aerr := f.fresh(ts, r.Header.Get("x-acs-signature-nonce")); aerr != nil {
		return nil, aerr
	}
	return &call{action: action, version: version, params: params, akID: ak}, nil
}

func (f *Fake) secretFor(ak, token string) (string, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	secret, ok := f.keys[ak]
	if !ok {
		return "", errorf(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	if want, sts := f.tokens[ak]; sts && want != token {
		return "", errorf(400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken is not valid for this access key.")
	}
	return secret, nil
}

func (f *Fake) fresh(ts time.Time, nonce string) *apiError {
	f.mu.Lock()
	now := f.now()
	f.mu.Unlock()
	if d := now.Sub(ts); d > 15*time.Minute || d < -15*time.Minute {
		return errorf(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	if nonce == "" {
		return errorf(400, "MissingParameter", "The input parameter \"SignatureNonce\" that is mandatory for processing this request is not supplied.")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, used := f.nonces[nonce]; used {
		return errorf(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	if len(f.nonces) > 100000 {
		for k, t := range f.nonces {
			if now.Sub(t) > 15*time.Minute {
				delete(f.nonces, k)
			}
		}
	}
	f.nonces[nonce] = now
	return nil
}

type handler func(f *Fake, c *call) (any, *apiError)

// actions maps "Version/Action" to its handler.
var actions = map[string]handler{}

func (f *Fake) dispatch(c *call) (any, *apiError) {
	h, ok := actions[c.version+"/"+c.action]
	if !ok {
		return nil, errorf(404, "InvalidAction.NotFound", "Specified api %s is not found in version %s, please check your url and method.", c.action, c.version)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.denied[c.akID+"/"+c.action] {
		return nil, errorf(403, "Forbidden.RAM", "User not authorized to operate on the specified resource, or this API doesn't support RAM.")
	}
	for _, key := range []string{c.action, "*"} {
		if fs := f.faults[key]; len(fs) > 0 {
			fs[0].n--
			code := fs[0].code
			if fs[0].n <= 0 {
				f.faults[key] = fs[1:]
			}
			f.refused[c.action]++
			return nil, faultError(code)
		}
	}
	if l := f.qps[c.action]; l != nil && !l.Allow() {
		f.refused[c.action]++
		return nil, faultError("Throttling.User")
	}
	return h(f, c)
}

func (f *Fake) id() int64 { f.nextID++; return f.nextID }

func required(c *call, names ...string) *apiError {
	for _, n := range names {
		if c.get(n) == "" {
			return errorf(400, "MissingParameter", "The input parameter %q that is mandatory for processing this request is not supplied.", n)
		}
	}
	return nil
}

func atoi(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return def
	}
	return n
}

// page cuts items for PageNumber/PageSize-style paging (1-based).
func page[T any](items []T, number, size int) []T {
	start := (number - 1) * size
	if start >= len(items) {
		return nil
	}
	end := min(start+size, len(items))
	return items[start:end]
}

// tokenPage cuts items for NextToken/MaxResults-style paging.
func tokenPage[T any](items []T, token string, max int) ([]T, string) {
	start := 0
	if token != "" {
		start, _ = strconv.Atoi(token)
	}
	if start >= len(items) {
		return nil, ""
	}
	end := min(start+max, len(items))
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return items[start:end], next
}

// Access returns a credential for accessKeyID reaching this fake for every
// product (Endpoints {"*": URL}), with extra Access Config keys merged in.
func (f *Fake) Access(id int64, accessKeyID, accessKeySecret string, extra map[string]any) *deploy.Access {
	cfg := map[string]any{"Endpoints": map[string]string{"*": f.URL()}}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	return &deploy.Access{ID: id, CloudName: "aliyun", SecretID: accessKeyID, SecretKey: accessKeySecret, Config: b}
}
