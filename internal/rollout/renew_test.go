package rollout

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func TestRenews(t *testing.T) {
	t.Parallel()
	now := time.Now()
	cert := func(id int64, days int, sans ...string) store.Certificate {
		return store.Certificate{ID: id, SANs: sans, NotAfter: now.Add(time.Duration(days) * 24 * time.Hour)}
	}
	for _, tc := range []struct {
		desc   string
		c, old store.Certificate
		want   bool
	}{
		{desc: "same names, later", c: cert(2, 90, "a.test", "b.test"), old: cert(1, 30, "b.test", "a.test"), want: true},
		{desc: "more names, later", c: cert(2, 90, "a.test", "b.test"), old: cert(1, 30, "a.test"), want: true},
		{desc: "wildcard covers the old names", c: cert(2, 90, "*.a.test"), old: cert(1, 30, "www.a.test", "api.a.test"), want: true},
		{desc: "fewer names", c: cert(2, 90, "a.test"), old: cert(1, 30, "a.test", "b.test")},
		{desc: "expires sooner", c: cert(2, 10, "a.test"), old: cert(1, 30, "a.test")},
		{desc: "expires at the same time", c: cert(2, 30, "a.test"), old: cert(1, 30, "a.test")},
		{desc: "itself", c: cert(1, 30, "a.test"), old: cert(1, 30, "a.test")},
		{desc: "old without names", c: cert(2, 90, "a.test"), old: cert(1, 30)},
		{desc: "wildcard old, exact new", c: cert(2, 90, "www.a.test"), old: cert(1, 30, "*.a.test")},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := Renews(tc.c, tc.old); got != tc.want {
				t.Fatalf("Renews = %v, want %v", got, tc.want)
			}
		})
	}
}
