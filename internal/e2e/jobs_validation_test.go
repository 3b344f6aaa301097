package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestJobCreateValidation checks what CreateDeploymentJob refuses, how it
// matches resources to certificates, and the InUse rule of deletes.
func TestJobCreateValidation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := newFileRoot(t)
		r := newJobRig(t, engine, append(f.args(), "--retry-base", "100ms", "--retry-attempts", "3", "--lease", "3s")...)
		rcv := newCountingReceiver(t)
		now := time.Now()
		www, _ := r.upload("www", certstest.Options{DNSNames: []string{"www.example.test"}})
		exact, _ := r.upload("a-exact", certstest.Options{DNSNames: []string{"a.example.test"}, NotAfter: now.Add(30 * 24 * time.Hour)})
		wild, _ := r.upload("wild", certstest.Options{DNSNames: []string{"*.example.test"}, NotAfter: now.Add(90 * 24 * time.Hour)})
		exactLong, _ := r.upload("a-exact-long", certstest.Options{DNSNames: []string{"a.example.test"}, NotAfter: now.Add(120 * 24 * time.Hour)})
		wwwRes := r.webhook(rcv.URL, "www.example.test")
		other := r.webhook(rcv.URL, "other.test")
		a := r.webhook(rcv.URL, "a.example.test")
		deep := r.webhook(rcv.URL, "x.a.example.test")

		t.Run("refused", func(t *testing.T) {
			r := r.with(t)
			for _, tc := range []struct {
				desc  string
				job   jobSpec
				code  string
				parts []string
			}{
				{desc: "domain no certificate covers", job: jobSpec{certs: []int64{www}, resources: []int64{wwwRes, other}},
					code: "InvalidParameter", parts: []string{"ResourceIds", fmt.Sprint(other), "other.test"}},
				{desc: "wildcard covers one label only", job: jobSpec{certs: []int64{wild}, resources: []int64{deep}},
					code: "InvalidParameter", parts: []string{fmt.Sprint(deep), "x.a.example.test"}},
				{desc: "unknown certificate", job: jobSpec{certs: []int64{www, 987654}, resources: []int64{wwwRes}},
					code: "NotFound", parts: []string{"987654"}},
				{desc: "unknown resource", job: jobSpec{certs: []int64{www}, resources: []int64{wwwRes, 876543}},
					code: "NotFound", parts: []string{"876543"}},
				{desc: "unknown contact", job: jobSpec{certs: []int64{www}, resources: []int64{wwwRes}, contacts: []int64{765432}},
					code: "NotFound", parts: []string{"765432"}},
				{desc: "trustee job type", job: jobSpec{jobType: "trustee", certs: []int64{www}, resources: []int64{wwwRes}},
					code: "InvalidParameter", parts: []string{"JobType"}},
				{desc: "no contacts", job: jobSpec{certs: []int64{www}, resources: []int64{wwwRes}, contacts: []int64{}},
					code: "MissingParameter", parts: []string{"ContactIds"}},
				{desc: "no certificates", job: jobSpec{resources: []int64{wwwRes}},
					code: "MissingParameter", parts: []string{"CertIds"}},
				{desc: "no resources", job: jobSpec{certs: []int64{www}},
					code: "MissingParameter", parts: []string{"ResourceIds"}},
			} {
				t.Run(tc.desc, func(t *testing.T) {
					_, err := r.with(t).tryCreateJob(tc.job)
					wantAPIError(t, err, tc.code, tc.parts...)
				})
			}
		})

		t.Run("matching", func(t *testing.T) {
			r := r.with(t)
			for _, tc := range []struct {
				desc  string
				certs []int64
				want  int64
			}{
				{desc: "wildcard covers a name", certs: []int64{wild}, want: wild},
				{desc: "later-expiring wildcard beats exact", certs: []int64{exact, wild}, want: wild},
				{desc: "later-expiring exact beats wildcard", certs: []int64{wild, exactLong, exact}, want: exactLong},
			} {
				t.Run(tc.desc, func(t *testing.T) {
					r := r.with(t)
					job := r.createJob(jobSpec{certs: tc.certs, resources: []int64{a}})
					if w := r.workers(job); len(w) != 1 || w[0].CertID != tc.want {
						t.Fatalf("workers %+v, want one with CertId %d", w, tc.want)
					}
					if _, err := r.c.DeleteDeploymentJob(&cas.DeleteDeploymentJobRequest{JobId: tea.Int64(job)}); err != nil {
						t.Fatal(err)
					}
				})
			}
		})

		t.Run("in use", func(t *testing.T) {
			r := r.with(t)
			cert, _ := r.upload("in-use", certstest.Options{DNSNames: []string{"use.example.test"}})
			res := r.webhook(rcv.URL, "use.example.test")
			contact := idOf(t, r.own("CreateContact", map[string]string{"Name": "in-use"}), "ContactId")
			job := r.createJob(jobSpec{certs: []int64{cert}, resources: []int64{res}, contacts: []int64{contact}})
			deletes := []struct {
				desc string
				del  func() error
			}{
				{"certificate", func() error {
					_, err := r.c.DeleteUserCertificate(&cas.DeleteUserCertificateRequest{CertId: tea.Int64(cert)})
					return err
				}},
				{"resource", func() error {
					_, err := r.srv.callOwn("DeleteCloudResource", map[string]string{"Id": fmt.Sprint(res)})
					return err
				}},
				{"contact", func() error {
					_, err := r.srv.callOwn("DeleteContact", map[string]string{"ContactId": fmt.Sprint(contact)})
					return err
				}},
			}
			for _, d := range deletes {
				t.Run(d.desc+" of an editing job", func(t *testing.T) {
					wantAPIError(t, d.del(), "InUse")
				})
			}
			r.run(job, "success")
			for _, d := range deletes {
				t.Run(d.desc+" of a finished job", func(t *testing.T) {
					if err := d.del(); err != nil {
						t.Fatalf("delete: %v", err)
					}
				})
			}
		})

		t.Run("FILE path outside the local root", func(t *testing.T) {
			inside := f.files("inside")
			outside := filepath.Join(filepath.Dir(f.root), "outside.key")
			_, err := r.srv.callOwn("CreateCloudResource", map[string]string{"CloudName": "local", "CloudProduct": "FILE", "Domain": "www.example.test",
				"Config": jsonConfig(map[string]any{"CertPath": inside.cert, "KeyPath": outside})})
			wantAPIError(t, err, "InvalidParameter", "Config", "outside")
		})
	})
}

// TestJobAutoStart checks that --auto-start runs a new job without a status change.
func TestJobAutoStart(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newJobRig(t, engine, "--auto-start", "--retry-base", "100ms", "--retry-attempts", "3", "--lease", "3s")
		rcv := newCountingReceiver(t)
		cert, ch := r.upload("www", certstest.Options{DNSNames: []string{"www.example.test"}})
		res := r.webhook(rcv.URL, "www.example.test")
		job := r.createJob(jobSpec{certs: []int64{cert}, resources: []int64{res}})
		r.waitEnd(job, "success")
		if p := rcv.last("www.example.test"); p == nil || p["Certificate"] != ch.LeafPEM {
			t.Fatalf("the receiver got %v", p)
		}
	})
}
