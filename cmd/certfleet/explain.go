package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alibabacloud-go/tea/dara"
)

// conn is the SDK's HTTP client for one endpoint. It sends requests as the
// SDK's own client would, and remembers what the transport saw (the last
// network error, the server's Date) so that a failure can be explained: the
// SDK flattens both into strings.
type conn struct {
	settings settings
	url      string // scheme://host[:port] as dialled

	mu      sync.Mutex
	lastErr error
	skew    time.Duration // server Date minus the local time, when a response came
	hasSkew bool
}

var _ dara.HttpClient = (*conn)(nil)

// Call implements dara.HttpClient with the transport the SDK built (its
// timeouts, proxies and TLS settings, including --ca-file).
func (c *conn) Call(req *http.Request, transport *http.Transport) (*http.Response, error) {
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second} // the ReadTimeout dial gives the SDK
	resp, err := hc.Do(req)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
	if err == nil {
		if d, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			c.skew, c.hasSkew = d.Sub(now), true
		}
	}
	return resp, err
}

// explain turns a client command's error into one line that says what to
// do, when it is a failure the user can fix on their side: the endpoint
// unreachable, an untrusted certificate, a secret that does not match, a
// clock that is off. Anything else is errorLine's rendering.
func explain(err error) string {
	if session == nil {
		return errorLine(err)
	}
	c := session
	c.mu.Lock()
	netErr, skew, hasSkew := c.lastErr, c.skew, c.hasSkew
	c.mu.Unlock()
	s := c.settings
	at := fmt.Sprintf("%s (from %s)", c.url, s.EndpointFrom)
	if netErr != nil {
		return explainNet(netErr, at, s)
	}
	line := errorLine(err)
	switch code, _, _ := strings.Cut(line, ":"); code {
	case "SignatureDoesNotMatch":
		return fmt.Sprintf("SignatureDoesNotMatch: the AccessKey secret (from %s) does not match AccessKeyId %s (from %s) on %s; check the secret, or create a new key with \"certfleet account\" or the RAM API%s",
			s.SecretFrom, s.AccessKeyID, s.AccessKeyIDFrom, at, requestSuffix(line))
	case "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId":
		return fmt.Sprintf("%s: %s has no AccessKeyId %s (from %s); check it, or run: certfleet configure%s", code, at, s.AccessKeyID, s.AccessKeyIDFrom, requestSuffix(line))
	case "InvalidTimeStamp.Expired":
		// certfleet's message carries the request's timestamp and the
		// server's time: their difference is exact. Other servers: the Date
		// header of the response.
		if m := skewMessage.FindStringSubmatch(line); m != nil {
			req, err1 := time.Parse(time.RFC3339, m[1])
			srv, err2 := time.Parse(time.RFC3339, m[2])
			if err1 == nil && err2 == nil {
				skew, hasSkew = srv.Sub(req), true
			}
		}
		if hasSkew {
			dir := "behind"
			if skew < 0 {
				dir, skew = "ahead of", -skew
			}
			return fmt.Sprintf("InvalidTimeStamp.Expired: this machine's clock is %s %s the server's (%s); set it right (for example with NTP) and retry%s",
				skew.Round(time.Second), dir, c.url, requestSuffix(line))
		}
		return line + "; check this machine's clock"
	}
	return line
}

// skewMessage finds the two times in certfleet's InvalidTimeStamp.Expired message.
var skewMessage = regexp.MustCompile(`request timestamp (\S+) is more than .* server time ([0-9TZ:-]+)`)

// requestSuffix is errorLine's " (request …)" ending of line, if any.
func requestSuffix(line string) string {
	if i := strings.LastIndex(line, " (request "); i >= 0 {
		return line[i:]
	}
	return ""
}

// explainNet explains a transport error reaching at.
func explainNet(err error, at string, s settings) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordHdr tls.RecordHeaderError
	var dns *net.DNSError
	var ne net.Error
	caHint := "give the CA's certificate with --ca-file FILE, " + envCAFile + " or CAFile in the profile"
	if s.CAFile != "" {
		caHint = fmt.Sprintf("the CA file %s (from %s) is not the CA that signed it", s.CAFile, s.CAFileFrom)
	}
	switch {
	case errors.As(err, &unknown):
		return fmt.Sprintf("cannot trust certfleet at %s: its certificate is signed by an unknown authority; if the server uses a private CA, %s", at, caHint)
	case errors.As(err, &host):
		return fmt.Sprintf("cannot trust certfleet at %s: its certificate is not valid for that host name (%s); use the name the certificate was issued for", at, oneLine(host.Error()))
	case errors.As(err, &invalid):
		return fmt.Sprintf("cannot trust certfleet at %s: %s", at, oneLine(invalid.Error()))
	case errors.As(err, &recordHdr):
		return fmt.Sprintf("cannot reach certfleet at %s: the server does not speak TLS; use http:// in the endpoint", at)
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot reach certfleet at %s: no such host %q — check the endpoint", at, dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach certfleet at %s: connection refused — is `certfleet serve` running?", at)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("cannot reach certfleet at %s: timed out — is the address right, and does a firewall let it through?", at)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("cannot reach certfleet at %s: timed out", at)
	}
	// The innermost message, without Go's `Post "http://…":` wrapping.
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u
	}
	return fmt.Sprintf("cannot reach certfleet at %s: %s — is `certfleet serve` running there?", at, oneLine(err.Error()))
}
