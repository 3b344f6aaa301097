package issuance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
)

// TestClassify: what the CA answers decides between failing the order and
// retrying, and a rate limit waits at least the CA's Retry-After (an hour at
// the least), so a limited CA sees no storm.
func TestClassify(t *testing.T) {
	problem := func(typ string, status int) error {
		return fmt.Errorf("new order: %w", &acme.ProblemDetails{Type: "urn:ietf:params:acme:error:" + typ, HTTPStatus: status})
	}
	cases := []struct {
		desc  string
		err   error
		perm  bool
		after time.Duration
	}{
		{desc: "network failure", err: errors.New("dial tcp: connection refused")},
		{desc: "rate limited with Retry-After", err: &acme.RateLimitedError{ProblemDetails: &acme.ProblemDetails{Type: acme.RateLimitedErrorType, HTTPStatus: 429}, RetryAfter: 3 * time.Hour}, after: 3 * time.Hour},
		{desc: "rate limited, short Retry-After", err: &acme.RateLimitedError{ProblemDetails: &acme.ProblemDetails{Type: acme.RateLimitedErrorType, HTTPStatus: 429}, RetryAfter: time.Second}, after: time.Hour},
		{desc: "rate limited problem", err: problem("rateLimited", 429), after: time.Hour},
		{desc: "server error", err: problem("serverInternal", 500)},
		{desc: "5xx of another type", err: problem("somethingNew", 503)},
		{desc: "rejected identifier", err: problem("rejectedIdentifier", 400), perm: true},
		{desc: "unauthorized", err: problem("unauthorized", 403), perm: true},
		{desc: "marked permanent", err: fmt.Errorf("x: %w", permanent(errors.New("bad CSR"))), perm: true},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			perm, after := classify(tc.err)
			if perm != tc.perm || after != tc.after {
				t.Errorf("classify = %v, %v; want %v, %v", perm, after, tc.perm, tc.after)
			}
		})
	}
}
