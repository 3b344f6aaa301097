package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/deploy/tencent/tcfake"
)

// cloudResources maps the Domain of every resource of cloud to its ID, as
// ListCloudResources shows them through the official SDK.
func (r *jobRig) cloudResources(cloud string) map[string]*cas.ListCloudResourcesResponseBodyData {
	r.t.Helper()
	resp, err := r.c.ListCloudResources(&cas.ListCloudResourcesRequest{CloudName: tea.String(cloud), ShowSize: tea.Int32(1000)})
	if err != nil {
		r.t.Fatalf("ListCloudResources %s: %v", cloud, err)
	}
	out := map[string]*cas.ListCloudResourcesResponseBodyData{}
	for _, d := range resp.Body.Data {
		out[tea.StringValue(d.CloudProduct)+" "+tea.StringValue(d.Domain)] = d
	}
	return out
}

// shaOf is the leaf's SHA-256 as the fakes show it (upper-case hex).
func shaOf(ch certstest.Chain) string {
	sum := sha256.Sum256(ch.Leaf.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func (r *jobRig) sync(access int64) string {
	r.t.Helper()
	b := r.own("SyncCloudResources", map[string]string{"AccessId": strconv.FormatInt(access, 10)})
	return fmt.Sprintf("found=%v created=%v updated=%v gone=%v", b["Found"], b["Created"], b["Updated"], b["Gone"])
}

// TestTencentTargets: through the official CAS SDK, a credential for the
// Tencent fake is synced (discovery creates the resources), one job
// deploys to a CDN domain, a CLB listener's default certificate, one SNI
// domain of another listener and an EdgeOne domain — uploading once — and
// reads back; a second job changes nothing; a rollback restores every
// binding; the SNI neighbour is never touched.
func TestTencentTargets(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		f := tcfake.New(t, "AKIDe2etest", "e2e-tencent-secret-key-0001")
		old := certstest.New(t, certstest.Options{DNSNames: []string{"lb.example.com", "sni.example.com"}})
		apiCert := certstest.New(t, certstest.Options{DNSNames: []string{"api.example.com"}})
		oldID, apiID := f.Upload(old.CertPEM, "mine"), f.Upload(apiCert.CertPEM, "api")
		f.AddCDNDomain("cdn.example.com")
		f.AddTEODomain("zone-e2e", "edge.example.com")
		def := f.AddListener("ap-guangzhou", "lb-def", 443, oldID)
		sni := f.AddListener("ap-guangzhou", "lb-sni", 443, oldID, "sni.example.com", "api.example.com")
		f.BindSNI(sni, "api.example.com", apiID) // the neighbour has its own certificate
		// Two unused uploads certfleet made in earlier runs (its Alias):
		// cleanup keeps the newer one (KeepPrevious 1), deletes the older.
		var leftovers []string
		for _, n := range []string{"older.example.com", "newer.example.com"} {
			ch := certstest.New(t, certstest.Options{DNSNames: []string{n}})
			leftovers = append(leftovers, f.Upload(ch.CertPEM, "certfleet-"+strings.ToLower(shaOf(ch))))
			f.Advance(2 * time.Second)
		}
		r := newJobRig(t, engine)

		access := idOf(t, r.own("CreateCloudAccess", map[string]string{"CloudName": "Tencent", "Name": "tencent-e2e",
			"SecretId": "AKIDe2etest", "SecretKey": "e2e-tencent-secret-key-0001",
			"Config": jsonConfig(map[string]any{"Endpoints": map[string]string{"*": f.URL}, "Regions": []string{"ap-guangzhou"}, "MaxQPS": 1000})}), "AccessId")
		if got := r.sync(access); got != "found=5 created=5 updated=0 gone=0" {
			t.Fatalf("first sync: %s", got)
		}
		if got := r.sync(access); got != "found=5 created=0 updated=0 gone=0" {
			t.Errorf("second sync: %s, want nothing changed", got)
		}
		res := r.cloudResources("Tencent")
		var ids []int64
		for _, k := range []string{"TencentCDN cdn.example.com", "CLB lb.example.com", "CLB sni.example.com", "TEO edge.example.com"} {
			d := res[k]
			if d == nil {
				t.Fatalf("discovery made no resource %q; have %v", k, res)
			}
			ids = append(ids, tea.Int64Value(d.Id))
		}
		if d := res["CLB lb.example.com"]; tea.Int32Value(d.DefaultResource) != 1 || tea.Int32Value(d.EnableHttps) != 1 || tea.StringValue(d.Status) != "online" {
			t.Errorf("the default listener's row: DefaultResource %d EnableHttps %d Status %s", tea.Int32Value(d.DefaultResource), tea.Int32Value(d.EnableHttps), tea.StringValue(d.Status))
		}

		cert, ch := r.upload("tencent-e2e", certstest.Options{DNSNames: []string{"cdn.example.com", "lb.example.com", "sni.example.com", "edge.example.com"}})
		sha := shaOf(ch)
		job := r.createJob(jobSpec{certs: []int64{cert}, resources: ids})
		r.run(job, "success")
		check := func(when string, wantNew bool) {
			t.Helper()
			cdn, teo := f.CDN("cdn.example.com"), f.TEO("zone-e2e", "edge.example.com")
			l1, l2 := f.Listener(def), f.Listener(sni)
			got := []bool{cdn.Switch == "on" && f.Sha(cdn.CertID) == sha, f.Sha(l1.CertID) == sha,
				f.Sha(l2.Domains["sni.example.com"]) == sha, teo.Mode == "sslcert" && len(teo.CertIDs) == 1 && f.Sha(teo.CertIDs[0]) == sha}
			for i, g := range got {
				if g != wantNew {
					t.Errorf("%s: binding %d (CDN, CLB default, CLB SNI, TEO) shows the new certificate: %v, want %v", when, i, g, wantNew)
				}
			}
			if l2.Domains["api.example.com"] != apiID {
				t.Errorf("%s: the neighbouring SNI domain api.example.com is bound to %s, want %s untouched", when, l2.Domains["api.example.com"], apiID)
			}
		}
		check("after the job", true)
		// After the job the engine sweeps once per product and credential.
		r.srv.waitLog(3, `"msg":"cleanup after job done"`)
		if n := r.srv.logCount(`"msg":"cleanup after job failed"`); n != 0 {
			t.Errorf("%d cleanups failed", n)
		}
		if f.Sha(leftovers[0]) != "" || f.Sha(leftovers[1]) == "" || f.Sha(oldID) == "" || f.Sha(apiID) == "" {
			t.Errorf("after the cleanup: older leftover kept=%v (want false), newer kept=%v, users' kept=%v %v (want true)",
				f.Sha(leftovers[0]) != "", f.Sha(leftovers[1]) != "", f.Sha(oldID) != "", f.Sha(apiID) != "")
		}
		if n := f.Calls("UploadCertificate"); n != 1 {
			t.Errorf("UploadCertificate called %d times, want 1 for four resources", n)
		}
		// Discovery now sees certfleet's certificate on the CDN domain.
		r.sync(access)
		if got := tea.Int64Value(r.cloudResources("Tencent")["TencentCDN cdn.example.com"].CertId); got != cert {
			t.Errorf("ListCloudResources CertId of the CDN domain = %d, want %d", got, cert)
		}

		// The same job again: already deployed, no write, no upload.
		writes := f.Writes("cdn:cdn.example.com") + f.Writes("clb:"+def) + f.Writes("clb:"+sni+"/sni.example.com") + f.Writes("teo:zone-e2e/edge.example.com")
		again := r.createJob(jobSpec{certs: []int64{cert}, resources: ids})
		r.run(again, "success")
		if w := f.Writes("cdn:cdn.example.com") + f.Writes("clb:"+def) + f.Writes("clb:"+sni+"/sni.example.com") + f.Writes("teo:zone-e2e/edge.example.com"); w != writes || f.Calls("UploadCertificate") != 1 {
			t.Errorf("the second job wrote %d times and uploaded %d times, want 0 writes and 1 upload in all", w-writes, f.Calls("UploadCertificate"))
		}

		// Roll the first job back: every binding as it was.
		body := r.own("RollbackDeploymentJob", map[string]string{"JobId": strconv.FormatInt(job, 10)})
		if fmt.Sprint(body["WorkerCount"]) != "4" {
			t.Fatalf("RollbackDeploymentJob answered %v, want WorkerCount 4", body)
		}
		for _, id := range ids {
			w := r.worker(job, id)
			waitFor(t, time.Minute, fmt.Sprintf("worker %d to end its rollback", w.ID), func() (bool, error) {
				w = r.worker(job, id)
				return w.Status == "rollback_success" || w.Status == "rollback_error", nil
			})
			if w.Status != "rollback_success" {
				t.Errorf("worker for resource %d: %s (%s)", id, w.Status, w.ErrorMessage)
			}
		}
		check("after the rollback", false)
		if cdn := f.CDN("cdn.example.com"); cdn.Switch != "off" {
			t.Errorf("after the rollback the CDN domain's HTTPS is %s, want off as before", cdn.Switch)
		}
		if l := f.Listener(def); l.CertID != oldID {
			t.Errorf("after the rollback the default listener holds %s, want %s", l.CertID, oldID)
		}
	})
}
