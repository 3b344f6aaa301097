package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
)

// TestWithRateLimit checks the token bucket middleware on its own: requests go
// through it with a resolved AccessKeyId, as withSignature leaves them.
func TestWithRateLimit(t *testing.T) {
	t.Parallel()
	// Rates are tiny so no token comes back while a case runs.
	tests := []struct {
		desc string
		opts Options
		keys []string // one request per entry, by this AccessKeyId
		want []bool   // admitted?
	}{
		{desc: "burst, then throttled", opts: Options{RateLimit: 0.001, RateBurst: 2},
			keys: []string{"k1", "k1", "k1", "k1"}, want: []bool{true, true, false, false}},
		{desc: "each key has its own bucket", opts: Options{RateLimit: 0.001, RateBurst: 1},
			keys: []string{"k1", "k2", "k1", "k2", "k3"}, want: []bool{true, true, false, false, true}},
		{desc: "the burst defaults to twice the rate", opts: Options{RateLimit: 2},
			keys: []string{"k", "k", "k", "k", "k"}, want: []bool{true, true, true, true, false}},
		{desc: "a rate under one per second still admits a first request", opts: Options{RateLimit: 0.01},
			keys: []string{"k", "k"}, want: []bool{true, false}},
		{desc: "a negative rate turns the limit off", opts: Options{RateLimit: -1},
			keys: strings.Split(strings.Repeat("k,", 200), ",")[:200], want: repeatBool(true, 200)},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tc.opts)
			h := f.api.withRateLimit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}))
			for i, key := range tc.keys {
				c := &call{requestID: "TEST-REQUEST", action: "ListContact", accessKeyID: key}
				r := newRequest("GET", "/", "", "", nil)
				r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
				status, header, body := serve(t, h, r)
				if tc.want[i] {
					if status != http.StatusNoContent {
						t.Fatalf("request %d (key %s) refused: %d %v", i+1, key, status, body)
					}
					continue
				}
				if status != 400 || body["Code"] != "Throttling.User" {
					t.Fatalf("request %d (key %s): %d %v, want Throttling.User 400", i+1, key, status, body)
				}
				if !strings.HasPrefix(header.Get("x-ratelimit-user-api"), "Limit:") {
					t.Errorf("x-ratelimit-user-api = %q", header.Get("x-ratelimit-user-api"))
				}
				if m, _ := body["Message"].(string); !strings.Contains(m, "--rate-limit") {
					t.Errorf("message %q does not say what to do", m)
				}
			}
		})
	}
}

func repeatBool(v bool, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestRateLimitAfterSignature checks, through the whole chain and the SDK,
// that requests with a bad signature do not spend the key's tokens, and that
// the throttled answer is one the SDK understands.
func TestRateLimitAfterSignature(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{RateLimit: 0.001, RateBurst: 1})
	list := func(sec string) error {
		_, err := f.sdk(t, f.keyID, sec, false, nil).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
		return err
	}
	for i := 0; i < 3; i++ {
		if code, _ := sdkCode(t, list("wrong")); code != "SignatureDoesNotMatch" {
			t.Fatalf("bad signature %d: %s", i, code)
		}
	}
	if err := list(f.secret); err != nil {
		t.Fatalf("the first good request was refused after bad ones: %v", err)
	}
	if code, status := sdkCode(t, list(f.secret)); code != "Throttling.User" || status != 400 {
		t.Fatalf("second good request: %s %d, want Throttling.User 400", code, status)
	}
}
