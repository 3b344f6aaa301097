package rollout

import (
	"errors"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func TestMatch(t *testing.T) {
	now := time.Now()
	cert := func(id int64, days int, sans ...string) store.Certificate {
		return store.Certificate{ID: id, SANs: sans, NotAfter: now.Add(time.Duration(days) * 24 * time.Hour)}
	}
	www := cert(1, 30, "www.example.test", "example.test")
	wild := cert(2, 60, "*.example.test")
	wwwLater := cert(3, 90, "www.example.test")
	wildSame := cert(4, 60, "*.example.test")
	for _, tc := range []struct {
		desc    string
		certs   []store.Certificate
		domains []string // one resource per domain, IDs 10, 11…
		want    []int64  // certificate per resource
		wantErr *MatchError
	}{
		{desc: "exact name", certs: []store.Certificate{www}, domains: []string{"www.example.test"}, want: []int64{1}},
		{desc: "second SAN", certs: []store.Certificate{www}, domains: []string{"example.test"}, want: []int64{1}},
		{desc: "case and trailing dot", certs: []store.Certificate{www}, domains: []string{"WWW.Example.Test."}, want: []int64{1}},
		{desc: "wildcard covers one label", certs: []store.Certificate{wild}, domains: []string{"a.example.test"}, want: []int64{2}},
		{desc: "wildcard does not cover two labels", certs: []store.Certificate{wild}, domains: []string{"x.a.example.test"},
			wantErr: &MatchError{ResourceID: 10, Domain: "x.a.example.test"}},
		{desc: "wildcard does not cover the bare domain", certs: []store.Certificate{wild}, domains: []string{"example.test"},
			wantErr: &MatchError{ResourceID: 10, Domain: "example.test"}},
		{desc: "later expiry wins over exact", certs: []store.Certificate{www, wild}, domains: []string{"www.example.test"}, want: []int64{2}},
		{desc: "later expiry wins over wildcard", certs: []store.Certificate{wild, wwwLater, www}, domains: []string{"www.example.test"}, want: []int64{3}},
		{desc: "same expiry: higher ID", certs: []store.Certificate{wildSame, wild}, domains: []string{"a.example.test"}, want: []int64{4}},
		{desc: "each resource its own", certs: []store.Certificate{www, wild}, domains: []string{"example.test", "api.example.test"}, want: []int64{1, 2}},
		{desc: "no domain, one certificate", certs: []store.Certificate{www}, domains: []string{""}, want: []int64{1}},
		{desc: "no domain, several certificates", certs: []store.Certificate{www, wild}, domains: []string{""},
			wantErr: &MatchError{ResourceID: 10}},
		{desc: "second resource uncovered", certs: []store.Certificate{www}, domains: []string{"www.example.test", "other.test"},
			wantErr: &MatchError{ResourceID: 11, Domain: "other.test"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var rs []store.Resource
			for i, d := range tc.domains {
				rs = append(rs, store.Resource{ID: int64(10 + i), AccountID: 7, Domain: d, CloudName: "webhook", CloudProduct: "WEBHOOK"})
			}
			ws, err := Match(tc.certs, rs)
			if tc.wantErr != nil {
				var me *MatchError
				if !errors.As(err, &me) || *me != *tc.wantErr {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) != len(tc.want) {
				t.Fatalf("%d workers, want %d", len(ws), len(tc.want))
			}
			for i, w := range ws {
				if w.CertID != tc.want[i] || w.ResourceID != rs[i].ID || w.AccountID != 7 || w.CloudName != "webhook" || w.CloudProduct != "WEBHOOK" {
					t.Errorf("worker %d = %+v, want certificate %d for resource %d", i, w, tc.want[i], rs[i].ID)
				}
			}
		})
	}
}
