package rollout

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/store"
)

func TestTrustedSuccessor(t *testing.T) {
	t.Parallel()
	old := certstest.New(t, certstest.Options{DNSNames: []string{"www.example.test"}})
	same := certstest.New(t, certstest.Options{DNSNames: []string{"www.example.test"}, From: &old})
	other := certstest.New(t, certstest.Options{DNSNames: []string{"www.example.test"}})
	otherRoot := x509.NewCertPool()
	otherRoot.AppendCertsFromPEM([]byte(other.RootPEM))
	rec := func(id int64, ch certstest.Chain) store.Certificate {
		return store.Certificate{ID: id, CertPEM: ch.CertPEM}
	}
	for _, tc := range []struct {
		desc  string
		c     certstest.Chain
		roots *x509.CertPool
		want  string // "" or a part of the reason
	}{
		{desc: "same CA", c: same},
		{desc: "another CA", c: other, want: "does not chain"},
		{desc: "another CA in the trust store", c: other, roots: otherRoot},
		{desc: "leaf alone from the same CA", c: certstest.Chain{CertPEM: same.LeafPEM}},
	} {
		oldRec := rec(1, old)
		if tc.desc == "leaf alone from the same CA" {
			oldRec = store.Certificate{ID: 1, CertPEM: old.LeafPEM}
		}
		got := TrustedSuccessor(rec(2, tc.c), oldRec, tc.roots)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: reason %q, want %q", tc.desc, got, tc.want)
		}
	}
}
