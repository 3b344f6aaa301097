// Package auth verifies the signatures of requests to certfleet's API, which is wire-compatible with
// Alibaba Cloud's RPC-style OpenAPI: the V3 scheme ACS3-HMAC-SHA256 (an Authorization header, the
// official SDKs' default) and the legacy V1 scheme HMAC-SHA1 (Signature* request parameters).
//
// A request is checked in two steps, because the secret is not known until the key is looked up:
// Parse reads the identity a request claims (scheme, AccessKeyId, nonce, timestamp) and rejects a
// request whose signature pieces are malformed; Verify recomputes the signature with the secret and
// checks the timestamp window. NewAccessKey makes the credentials it checks; NonceExpiry says how
// long a nonce must be remembered for the window to stop replays.
//
// It is not for looking up or storing access keys, remembering nonces (Verify does not check that a
// nonce is fresh: the caller records it after Verify succeeds), authorization (RAM policies) or rate
// limiting. It holds no state: every function is safe for concurrent use.
//
// Every error it returns is an *Error carrying the Alibaba error code and HTTP status to answer with.
package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Scheme names, as they appear in the Authorization header (V3) or the SignatureMethod parameter (V1).
const (
	SchemeV3 = "ACS3-HMAC-SHA256"
	SchemeV1 = "HMAC-SHA1"
)

// MaxSkew is how far a request's timestamp may be from the server's clock, either way, inclusive.
const MaxSkew = 15 * time.Minute

// TimeLayout is the layout of x-acs-date (V3) and the Timestamp parameter (V1): yyyy-MM-ddTHH:mm:ssZ, UTC.
const TimeLayout = "2006-01-02T15:04:05Z"

// Error codes returned by Parse and Verify.
const (
	CodeIncompleteSignature   = "IncompleteSignature"
	CodeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	CodeTimeStampExpired      = "InvalidTimeStamp.Expired"
)

// Signed is the identity a request claims, read by Parse before the secret is known.
type Signed struct {
	Scheme      string // SchemeV3 or SchemeV1
	AccessKeyID string
	Nonce       string    // x-acs-signature-nonce (V3) or SignatureNonce (V1); never empty
	Timestamp   time.Time // x-acs-date (V3) or Timestamp (V1), in UTC
}

// Error is an API error: an Alibaba error code, the HTTP status to answer with, and a message for the
// caller. Messages never contain a secret or the signature the server expected.
type Error struct {
	Code    string
	Status  int
	Message string
}

// Error returns "auth: <Code>: <Message>".
func (e *Error) Error() string { return "auth: " + e.Code + ": " + e.Message }

func incomplete(format string, args ...any) *Error {
	return &Error{Code: CodeIncompleteSignature, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func mismatch(format string, args ...any) *Error {
	return &Error{Code: CodeSignatureDoesNotMatch, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Parse extracts the identity r claims, without checking the signature.
//
// params are all the request's parameters, as the caller parsed them: the query string plus, for a
// POST with Content-Type application/x-www-form-urlencoded, the form fields of the body. Parse does not
// read r.Body.
//
// The scheme is V3 when the Authorization header starts with "ACS3-", else V1 when params has a
// Signature. For V3, Parse also checks that SignedHeaders covers host, content-type when present and
// every x-acs-* header of r, and that x-acs-date, x-acs-signature-nonce and x-acs-content-sha256 are
// present and well-formed. For V1, it checks that AccessKeyId, SignatureMethod=HMAC-SHA1,
// SignatureVersion=1.0, SignatureNonce and Timestamp are present, each once.
//
// Any failure is an *Error with Code IncompleteSignature (400) whose message names the missing or
// malformed piece; a request with neither an Authorization header nor a Signature parameter gets
// "the request is not signed".
func Parse(r *http.Request, params url.Values) (Signed, error) {
	v3, v1, err := parse(r, params)
	if err != nil {
		return Signed{}, err
	}
	return identity(v3, v1), nil
}

// parse returns exactly one of a V3 or a V1 request, or an *Error.
func parse(r *http.Request, params url.Values) (*v3, *v1, error) {
	if r == nil {
		return nil, nil, incomplete("the request is not signed")
	}
	authzs := r.Header.Values("Authorization")
	if len(authzs) > 1 {
		return nil, nil, incomplete("the request has %d Authorization headers; send one", len(authzs))
	}
	var authz string
	if len(authzs) == 1 {
		authz = authzs[0]
	}
	if strings.HasPrefix(authz, "ACS3-") {
		v, err := parseV3(r, authz)
		return v, nil, err
	}
	if _, ok := params["Signature"]; ok {
		v, err := parseV1(params)
		return nil, v, err
	}
	if authz != "" {
		return nil, nil, incomplete("the Authorization header is not %s and there is no Signature parameter", SchemeV3)
	}
	return nil, nil, incomplete("the request is not signed")
}

// Verify checks r's signature with secret, the secret of s.AccessKeyID, and that r's timestamp is
// within MaxSkew of now. r, params and s are what the caller gave and got from Parse; body is the raw
// request body the caller read (empty when there is none) — r.Body is not read. A V3 signature covers
// the query string of r.URL, the signed headers and body (through x-acs-content-sha256), so params only
// matters for V1, whose signature covers every parameter, form fields included.
//
// It returns nil when the request is authentic and fresh, else an *Error:
//   - IncompleteSignature (400) when Parse would fail on r and params, or s is not what Parse returns
//     for them;
//   - SignatureDoesNotMatch (400) when the signature is wrong, or (V3) x-acs-content-sha256 is not the
//     SHA-256 of body; the message may carry the server's V3 StringToSign, never the secret nor the
//     expected signature;
//   - InvalidTimeStamp.Expired (400) when the timestamp is more than MaxSkew from now; it is only
//     reported for a request whose signature is right.
//
// Signatures are compared in constant time. Nonces are not checked: the caller must reject a nonce
// already used within the window, and record it, after Verify returns nil.
func Verify(r *http.Request, params url.Values, body []byte, s Signed, secret string, now time.Time) error {
	v3, v1, err := parse(r, params)
	if err != nil {
		return err
	}
	got := identity(v3, v1)
	if got.Scheme != s.Scheme || got.AccessKeyID != s.AccessKeyID || got.Nonce != s.Nonce || !got.Timestamp.Equal(s.Timestamp) {
		return incomplete("the claimed identity does not match the request (Verify must get what Parse returned for this request)")
	}
	if v3 != nil {
		err = v3.verify(r, body, secret)
	} else {
		err = v1.verify(r.Method, params, secret)
	}
	if err != nil {
		return err
	}
	return checkSkew(got.Timestamp, now)
}

// VerifyHead checks a V3 (ACS3-HMAC-SHA256) request's signature and timestamp before its body is
// read: the V3 signature covers the body only through the x-acs-content-sha256 header, so a request
// signed with another secret is refused without reading a byte of its body. s is what Parse returned
// for r. The caller must then hash the body as it reads it and check the sum with CheckBody; only
// both together mean what Verify means.
//
// It returns the errors Verify returns, except that it does not look at the body; for a V1 request
// (whose signature covers parameters that may be in the body) it returns IncompleteSignature.
func VerifyHead(r *http.Request, s Signed, secret string, now time.Time) error {
	v, err := parseHeadV3(r, s)
	if err != nil {
		return err
	}
	if err := v.verifyHead(r, secret); err != nil {
		return err
	}
	return checkSkew(s.Timestamp, now)
}

// CheckBody checks that sum, the SHA-256 of the body received, is the x-acs-content-sha256 of r, a V3
// request VerifyHead accepted. It returns SignatureDoesNotMatch when it is not.
func CheckBody(r *http.Request, s Signed, sum []byte) error {
	v, err := parseHeadV3(r, s)
	if err != nil {
		return err
	}
	return v.checkBody(sum)
}

func parseHeadV3(r *http.Request, s Signed) (*v3, error) {
	if r == nil || s.Scheme != SchemeV3 {
		return nil, incomplete("only a request signed with %s can be checked before its body is read", SchemeV3)
	}
	v, v1, err := parse(r, nil)
	if err != nil {
		return nil, err
	}
	if v == nil || v1 != nil || v.signed.AccessKeyID != s.AccessKeyID || v.signed.Nonce != s.Nonce || !v.signed.Timestamp.Equal(s.Timestamp) {
		return nil, incomplete("the claimed identity does not match the request (VerifyHead must get what Parse returned for this request)")
	}
	return v, nil
}

func checkSkew(ts, now time.Time) error {
	if skew := now.Sub(ts); skew > MaxSkew || skew < -MaxSkew {
		return &Error{
			Code:   CodeTimeStampExpired,
			Status: http.StatusBadRequest,
			Message: fmt.Sprintf("the request timestamp %s is more than %d minutes from the server time %s; check the client's clock",
				ts.UTC().Format(TimeLayout), int(MaxSkew/time.Minute), now.UTC().Format(TimeLayout)),
		}
	}
	return nil
}

// v3 is a parsed ACS3-HMAC-SHA256 request.
type v3 struct {
	signed        Signed
	signedHeaders string   // as sent
	headerNames   []string // signedHeaders split on ";"
	signature     []byte   // decoded from hex
	contentSHA256 string   // x-acs-content-sha256 as sent
}

func parseV3(r *http.Request, authz string) (*v3, error) {
	alg, rest, _ := strings.Cut(authz, " ")
	if alg != SchemeV3 {
		return nil, incomplete("unsupported signature algorithm %q in the Authorization header; use %s", truncate(alg), SchemeV3)
	}
	var credential, signedHeaders, signature string
	var seen [3]bool
	for field := range strings.SplitSeq(rest, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return nil, incomplete("the Authorization header has a field %q without '='", truncate(field))
		}
		var i int
		switch name {
		case "Credential":
			i, credential = 0, value
		case "SignedHeaders":
			i, signedHeaders = 1, value
		case "Signature":
			i, signature = 2, value
		default:
			return nil, incomplete("the Authorization header has an unknown field %q", truncate(name))
		}
		if seen[i] {
			return nil, incomplete("the Authorization header has %s more than once", name)
		}
		seen[i] = true
	}
	switch {
	case credential == "":
		return nil, incomplete("the Authorization header has no Credential (the AccessKeyId)")
	case signedHeaders == "":
		return nil, incomplete("the Authorization header has no SignedHeaders")
	case signature == "":
		return nil, incomplete("the Authorization header has no Signature")
	}
	sig, err := hex.DecodeString(signature)
	if err != nil || len(sig) != sha256.Size {
		return nil, incomplete("the Authorization header's Signature is not %d hex digits", 2*sha256.Size)
	}

	names := strings.Split(signedHeaders, ";")
	signedSet := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") {
			return nil, incomplete("SignedHeaders %q must be lower-case header names separated by ';'", truncate(signedHeaders))
		}
		if signedSet[n] {
			return nil, incomplete("SignedHeaders lists %q more than once", n)
		}
		signedSet[n] = true
	}
	if !signedSet["host"] {
		return nil, incomplete("SignedHeaders must include host")
	}
	// Go canonicalizes header names (X-Acs-Date); compare in lower case. Sorted for a stable message.
	present := make([]string, 0, len(r.Header))
	for k := range r.Header {
		present = append(present, strings.ToLower(k))
	}
	sort.Strings(present)
	for _, k := range present {
		if (strings.HasPrefix(k, "x-acs-") || k == "content-type") && !signedSet[k] {
			return nil, incomplete("header %s is present but not in SignedHeaders; every x-acs-* header and content-type must be signed", k)
		}
	}

	date := r.Header.Get("x-acs-date")
	if date == "" {
		return nil, incomplete("the x-acs-date header is missing")
	}
	ts, err := time.Parse(TimeLayout, date)
	if err != nil {
		return nil, incomplete("the x-acs-date header %q is not in the form yyyy-MM-ddTHH:mm:ssZ", truncate(date))
	}
	nonce := r.Header.Get("x-acs-signature-nonce")
	if nonce == "" {
		return nil, incomplete("the x-acs-signature-nonce header is missing")
	}
	contentSHA := r.Header.Get("x-acs-content-sha256")
	if contentSHA == "" {
		return nil, incomplete("the x-acs-content-sha256 header is missing")
	}
	if h, err := hex.DecodeString(contentSHA); err != nil || len(h) != sha256.Size {
		return nil, incomplete("the x-acs-content-sha256 header is not %d hex digits", 2*sha256.Size)
	}
	return &v3{
		signed:        Signed{Scheme: SchemeV3, AccessKeyID: credential, Nonce: nonce, Timestamp: ts},
		signedHeaders: signedHeaders,
		headerNames:   names,
		signature:     sig,
		contentSHA256: contentSHA,
	}, nil
}

func (v *v3) verify(r *http.Request, body []byte, secret string) error {
	sum := sha256.Sum256(body)
	if err := v.checkBody(sum[:]); err != nil {
		return err
	}
	return v.verifyHead(r, secret)
}

// checkBody compares the SHA-256 of the body received with x-acs-content-sha256.
func (v *v3) checkBody(sum []byte) error {
	claimed, _ := hex.DecodeString(v.contentSHA256) // checked by parseV3
	if !bytes.Equal(claimed, sum) {
		return mismatch("the x-acs-content-sha256 header %s differs from the SHA-256 of the body received, %x; the body was changed or hashed wrongly",
			v.contentSHA256, sum)
	}
	return nil
}

// verifyHead checks the signature, which covers the body only through x-acs-content-sha256.
func (v *v3) verifyHead(r *http.Request, secret string) error {
	sts, err := v.stringToSign(r)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(sts))
	if !hmac.Equal(mac.Sum(nil), v.signature) {
		return mismatch("the request signature does not match the signature the server calculated (check the AccessKeySecret and the signing steps); the server's StringToSign is %q",
			sts)
	}
	return nil
}

// stringToSign is "ACS3-HMAC-SHA256\n" + hex(sha256(CanonicalRequest)), exactly as the darabonba
// SDK's GetAuthorization builds it.
func (v *v3) stringToSign(r *http.Request) (string, error) {
	cr, err := v.canonicalRequest(r)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(cr))
	return SchemeV3 + "\n" + hex.EncodeToString(h[:]), nil
}

// canonicalRequest is
//
//	METHOD \n path \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n x-acs-content-sha256
//
// where CanonicalHeaders is "name:value\n" per signed header, so a blank line follows it.
func (v *v3) canonicalRequest(r *http.Request) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalPath(r.URL))
	b.WriteByte('\n')
	var rawQuery string
	if r.URL != nil {
		rawQuery = r.URL.RawQuery
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", incomplete("the query string is malformed: %v", err)
	}
	writeCanonicalParams(&b, query, "")
	b.WriteByte('\n')
	for _, name := range v.headerNames {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(v.signedHeaders)
	b.WriteByte('\n')
	b.WriteString(v.contentSHA256)
	return b.String(), nil
}

// canonicalPath is the escaped path, "/" when empty, with the SDK's fix-ups (+ → %20, * → %2A,
// %7E → ~) applied, as the SDK applies them to the path it signs.
func canonicalPath(u *url.URL) string {
	if u == nil {
		return "/"
	}
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	p = strings.ReplaceAll(p, "+", "%20")
	p = strings.ReplaceAll(p, "*", "%2A")
	return strings.ReplaceAll(p, "%7E", "~")
}

// canonicalHeaderValue is the header's values, each trimmed, sorted and joined by ","; for host, r.Host.
func canonicalHeaderValue(r *http.Request, name string) string {
	if name == "host" {
		return strings.TrimSpace(r.Host)
	}
	vals := r.Header.Values(name)
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return strings.TrimSpace(vals[0])
	}
	trimmed := make([]string, len(vals))
	for i, val := range vals {
		trimmed[i] = strings.TrimSpace(val)
	}
	sort.Strings(trimmed)
	return strings.Join(trimmed, ",")
}

// writeCanonicalParams writes pct(k)=pct(v) for every parameter but skip, sorted by key (byte-wise,
// on the raw key, as the SDKs sort) then by value, joined by "&".
func writeCanonicalParams(b *strings.Builder, params url.Values, skip string) {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	first := true
	for _, k := range keys {
		vals := params[k]
		if len(vals) > 1 {
			vals = append([]string(nil), vals...)
			sort.Strings(vals)
		}
		for _, val := range vals {
			if !first {
				b.WriteByte('&')
			}
			first = false
			b.WriteString(pct(k))
			b.WriteByte('=')
			b.WriteString(pct(val))
		}
	}
}

// pct is RFC 3986 percent-encoding: every byte but A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex).
// It equals the SDKs' url.QueryEscape followed by + → %20, * → %2A, %7E → ~.
func pct(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexUpper = "0123456789ABCDEF"
	out := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			out = append(out, c)
		} else {
			out = append(out, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return string(out)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// identity returns the claim of whichever of a and b parse returned.
func identity(a *v3, b *v1) Signed {
	if a != nil {
		return a.signed
	}
	return b.signed
}

// v1 is a parsed HMAC-SHA1 request.
type v1 struct {
	signed    Signed
	signature []byte // decoded from base64
}

func parseV1(params url.Values) (*v1, error) {
	one := func(name string) (string, error) {
		vals := params[name]
		switch {
		case len(vals) == 0 || vals[0] == "":
			return "", incomplete("%s is mandatory for a request signed with %s", name, SchemeV1)
		case len(vals) > 1:
			return "", incomplete("%s is given more than once", name)
		}
		return vals[0], nil
	}
	var got [6]string
	for i, name := range []string{"Signature", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"} {
		v, err := one(name)
		if err != nil {
			return nil, err
		}
		got[i] = v
	}
	signature, keyID, method, version, nonce, stamp := got[0], got[1], got[2], got[3], got[4], got[5]
	if method != SchemeV1 {
		return nil, incomplete("SignatureMethod %q is not supported; use %s (or the %s Authorization header)", truncate(method), SchemeV1, SchemeV3)
	}
	if version != "1.0" {
		return nil, incomplete("SignatureVersion %q is not supported; use 1.0", truncate(version))
	}
	ts, err := time.Parse(TimeLayout, stamp)
	if err != nil {
		return nil, incomplete("Timestamp %q is not in the form yyyy-MM-ddTHH:mm:ssZ", truncate(stamp))
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) != sha1.Size {
		return nil, incomplete("Signature is not a base64 HMAC-SHA1 (%d bytes)", sha1.Size)
	}
	return &v1{
		signed:    Signed{Scheme: SchemeV1, AccessKeyID: keyID, Nonce: nonce, Timestamp: ts},
		signature: sig,
	}, nil
}

func (v *v1) verify(method string, params url.Values, secret string) error {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSignV1(method, params)))
	if !hmac.Equal(mac.Sum(nil), v.signature) {
		// The V1 StringToSign holds every parameter value (which may include credentials a caller is
		// registering), so unlike V3 it is not echoed back, lest it reach a log.
		return mismatch("%s", "the request signature does not match the signature the server calculated; check the AccessKeySecret and that "+
			"StringToSign = METHOD&%2F&pct(sorted pct(key)=pct(value) of every parameter but Signature, query and form body, joined by '&') "+
			"and Signature = base64(HMAC-SHA1(AccessKeySecret + \"&\", StringToSign))")
	}
	return nil
}

// stringToSignV1 is METHOD "&" pct("/") "&" pct(canonical parameters), as the SDK's GetRPCSignature
// builds it.
func stringToSignV1(method string, params url.Values) string {
	var b strings.Builder
	writeCanonicalParams(&b, params, "Signature")
	return method + "&%2F&" + pct(b.String())
}

// truncate keeps client-supplied text in messages short.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
