package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// The engines' own nonce tests (restarts, several nodes, a crash-lost
// nonce) need stores opened in ways Run cannot, so they live next to each
// engine; these are the two helpers they share.

// SignedNonce is a nonce as the API records it: signed at signed, kept for
// the signature window.
func SignedNonce(nonce string, signed time.Time) store.NonceParams {
	return store.NonceParams{Nonce: nonce, Signed: signed, Expires: signed.Add(16 * time.Minute)}
}

// CheckVerdicts records ns in s and fails t unless the verdicts print as
// want (e.g. "[fresh used]").
func CheckVerdicts(t *testing.T, s store.Store, what, want string, ns ...store.NonceParams) {
	t.Helper()
	v, err := s.NonceUseMany(t.Context(), ns)
	if err != nil {
		t.Fatalf("%s: NonceUseMany: %v", what, err)
	}
	if got := fmt.Sprint(v); got != want {
		t.Fatalf("%s: verdicts %s, want %s", what, got, want)
	}
}
