package auth

import (
	"regexp"
	"testing"
	"time"
)

func TestNewAccessKey(t *testing.T) {
	t.Parallel()
	idRE, secretRE := regexp.MustCompile(`^CF[0-9A-F]{20}$`), regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`)
	seen := map[string]bool{}
	for range 100 {
		id, secret := NewAccessKey()
		if !idRE.MatchString(id) || !secretRE.MatchString(secret) {
			t.Fatalf("NewAccessKey = %q, %q", id, secret)
		}
		if seen[id] || seen[secret] {
			t.Fatalf("NewAccessKey repeated %q or %q", id, secret)
		}
		seen[id], seen[secret] = true, true
	}
}

// TestNonceExpiry checks that a nonce is remembered for as long as Verify
// accepts its timestamp.
func TestNonceExpiry(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if last := ts.Add(MaxSkew); !NonceExpiry(ts).After(last) {
		t.Errorf("NonceExpiry(%v) = %v, not after the last accepted moment %v", ts, NonceExpiry(ts), last)
	}
}
