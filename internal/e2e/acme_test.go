package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/issuance"
	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/pebble"
)

// acmeRig is a certfleet node with an issuer "pebble": a real pebble whose
// DNS is pebble-challtestsrv.
type acmeRig struct {
	*jobRig
	peb *pebble.Server
}

// acmeArgs are the flags of a node ordering from peb: loopback allowed,
// challtestsrv as the resolver, short polls; http01 answers http-01 itself.
func acmeArgs(peb *pebble.Server, http01 bool) []string {
	args := []string{"--egress-allow", "127.0.0.1", "--acme-dns-resolvers", peb.DNSAddr, "--acme-poll", "200ms",
		"--acme-retry-base", "200ms", "--acme-challenge-port", strconv.Itoa(peb.HTTPPort), "--default-product-code", "pebble"}
	if http01 {
		args = append(args, "--acme-http-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(peb.HTTPPort)))
	}
	return args
}

func newACMERig(t *testing.T, engine string, http01 bool, extra ...string) *acmeRig {
	t.Helper()
	skipShort(t)
	peb := pebble.Start(t, pebble.Options{})
	r := &acmeRig{jobRig: newJobRig(t, engine, append(acmeArgs(peb, http01), extra...)...), peb: peb}
	r.addIssuer()
	return r
}

func (r *acmeRig) addIssuer() {
	r.t.Helper()
	r.own("CreateIssuer", map[string]string{"ProductCode": "pebble", "DirectoryUrl": r.peb.DirectoryURL,
		"Email": "ops@example.test", "TrustedCA": r.peb.TrustedCA})
}

// state is DescribeCertificateState through the generic client (with
// certfleet's Message and ACMERequests the SDK's struct leaves out).
func (r *acmeRig) state(orderID int64) map[string]any {
	r.t.Helper()
	return r.own("DescribeCertificateState", map[string]string{"OrderId": strconv.FormatInt(orderID, 10)})
}

// waitType waits until the order's Type is one of want.
func (r *acmeRig) waitType(orderID int64, timeout time.Duration, want ...string) *cas.DescribeCertificateStateResponseBody {
	r.t.Helper()
	var body *cas.DescribeCertificateStateResponseBody
	testutil.WaitFor(r.t, timeout, fmt.Sprintf("order %d to be %s", orderID, strings.Join(want, "|")), func() (bool, error) {
		resp, err := r.c.DescribeCertificateState(&cas.DescribeCertificateStateRequest{OrderId: tea.Int64(orderID)})
		if err != nil {
			return false, err
		}
		body = resp.Body
		for _, w := range want {
			if tea.StringValue(body.Type) == w {
				return true, nil
			}
		}
		return false, nil
	})
	return body
}

func (r *acmeRig) request(domain, validateType string) int64 {
	r.t.Helper()
	resp, err := r.c.CreateCertificateRequest(&cas.CreateCertificateRequestRequest{Domain: tea.String(domain),
		ValidateType: tea.String(validateType), Email: tea.String("ops@example.test"), Username: tea.String("ops"),
		Phone: tea.String("1")})
	if err != nil {
		r.t.Fatalf("CreateCertificateRequest %s: %v", domain, err)
	}
	return tea.Int64Value(resp.Body.OrderId)
}

// TestACMEOrders goes through the SDK from CreateCertificateRequest to an
// issued certificate in every validation mode, a CSR upload, a failed
// validation and a cancel, against a real pebble.
func TestACMEOrders(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newACMERig(t, engine, true)

		t.Run("http-01 automatic", func(t *testing.T) {
			r := &acmeRig{r.jobRig.with(t), r.peb}
			start := time.Now()
			id := r.request("www.auto.test", "FILE")
			st := r.waitType(id, time.Minute, "certificate", "verify_fail")
			if tea.StringValue(st.Type) != "certificate" {
				t.Fatalf("order ended %s: %v", tea.StringValue(st.Type), r.state(id)["Message"])
			}
			if !strings.Contains(tea.StringValue(st.Certificate), "BEGIN CERTIFICATE") || !strings.Contains(tea.StringValue(st.PrivateKey), "PRIVATE KEY") {
				t.Fatalf("no certificate or key in the issued state")
			}
			t.Logf("issued in %v with %v ACME requests", time.Since(start).Round(time.Millisecond), r.state(id)["ACMERequests"])
			// An ordinary certificate, listed with its order.
			list, err := r.c.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{Keyword: tea.String("www.auto.test")})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Body.CertificateOrderList) != 1 || tea.Int64Value(list.Body.CertificateOrderList[0].OrderId) != id {
				t.Fatalf("ListUserCertificateOrder does not show the certificate with order %d", id)
			}
			// Renewed on request: a new order, a new certificate.
			again, err := r.c.RenewCertificateOrderForPackageRequest(&cas.RenewCertificateOrderForPackageRequestRequest{OrderId: tea.Int64(id)})
			if err != nil {
				t.Fatal(err)
			}
			renewed := r.waitType(tea.Int64Value(again.Body.OrderId), time.Minute, "certificate", "verify_fail")
			if tea.StringValue(renewed.Type) != "certificate" || tea.StringValue(renewed.Certificate) == tea.StringValue(st.Certificate) {
				t.Fatalf("renewal order ended %s", tea.StringValue(renewed.Type))
			}
			_, err = r.c.RenewCertificateOrderForPackageRequest(&cas.RenewCertificateOrderForPackageRequestRequest{OrderId: tea.Int64(id)})
			wantAPIError(t, err, "IncorrectStatus") // renewed already
			pkg, err := r.c.DescribePackageState(&cas.DescribePackageStateRequest{ProductCode: tea.String("pebble")})
			if err != nil || tea.Int64Value(pkg.Body.IssuedCount) < 1 {
				t.Fatalf("DescribePackageState: %v %v", pkg, err)
			}
		})

		t.Run("dns-01 automatic through RFC 2136", func(t *testing.T) {
			r := &acmeRig{r.jobRig.with(t), r.peb}
			b := make([]byte, 32)
			rand.Read(b)
			sec := base64.StdEncoding.EncodeToString(b)
			ns := r.peb.StartRFC2136(t, "dyn.test", "certfleet", sec)
			r.own("CreateCloudAccess", map[string]string{"CloudName": "rfc2136", "Name": "dyn", "SecretId": "certfleet",
				"SecretKey": sec, "Config": `{"Nameserver":"` + ns.Addr + `","Zone":"dyn.test"}`})
			id := r.request("*.dyn.test", "DNS")
			st := r.waitType(id, time.Minute, "certificate", "verify_fail")
			if tea.StringValue(st.Type) != "certificate" {
				t.Fatalf("order ended %s: %v", tea.StringValue(st.Type), r.state(id)["Message"])
			}
			if ns.Updates.Load() != 2 || ns.Refused.Load() != 0 {
				t.Errorf("RFC 2136: %d updates, %d refused; want the record added and removed", ns.Updates.Load(), ns.Refused.Load())
			}
		})

		t.Run("dns-01 manual", func(t *testing.T) {
			r := &acmeRig{r.jobRig.with(t), r.peb}
			id := r.request("manual.test", "DNS")
			st := r.waitType(id, time.Minute, "domain_verify")
			testutil.WaitFor(t, 30*time.Second, "the record to publish", func() (bool, error) {
				resp, err := r.c.DescribeCertificateState(&cas.DescribeCertificateStateRequest{OrderId: tea.Int64(id)})
				st = resp.Body
				return err == nil && tea.StringValue(st.RecordValue) != "", err
			})
			if tea.StringValue(st.RecordType) != "TXT" || tea.StringValue(st.RecordDomain) != "_acme-challenge.manual.test" {
				t.Fatalf("record %s %s", tea.StringValue(st.RecordType), tea.StringValue(st.RecordDomain))
			}
			r.peb.SetTXT(t, tea.StringValue(st.RecordDomain), tea.StringValue(st.RecordValue))
			if got := tea.StringValue(r.waitType(id, time.Minute, "certificate", "verify_fail").Type); got != "certificate" {
				t.Fatalf("order ended %s: %v", got, r.state(id)["Message"])
			}
		})

		t.Run("CSR upload", func(t *testing.T) {
			r := &acmeRig{r.jobRig.with(t), r.peb}
			key, _ := issuance.GenerateKey("RSA2048")
			csr, _ := issuance.CreateCSR(key, []string{"csr.test", "www.csr.test"}, issuance.Subject{Org: "Example"})
			keyPEM, _ := issuance.EncodeKey(key)
			up, err := r.c.UploadCsr(&cas.UploadCsrRequest{Csr: tea.String(csr), Key: tea.String(keyPEM), Name: tea.String("mine")})
			if err != nil {
				t.Fatal(err)
			}
			list, err := r.c.ListCsr(&cas.ListCsrRequest{KeyWord: tea.String("csr.test")})
			if err != nil || len(list.Body.CsrList) != 1 || !tea.BoolValue(list.Body.CsrList[0].HasPrivateKey) ||
				tea.Int64Value(list.Body.CsrList[0].CsrId) != tea.Int64Value(up.Body.CsrId) {
				t.Fatalf("ListCsr: %v %v", list, err)
			}
			resp, err := r.c.CreateCertificateWithCsrRequest(&cas.CreateCertificateWithCsrRequestRequest{Csr: tea.String(csr),
				ValidateType: tea.String("FILE"), ProductCode: tea.String("pebble")})
			if err != nil {
				t.Fatal(err)
			}
			st := r.waitType(tea.Int64Value(resp.Body.OrderId), time.Minute, "certificate", "verify_fail")
			if tea.StringValue(st.Type) != "certificate" {
				t.Fatalf("order ended %s", tea.StringValue(st.Type))
			}
			// The key is the uploaded one, so the certificate is an ordinary one.
			if strings.TrimSpace(tea.StringValue(st.PrivateKey)) != strings.TrimSpace(keyPEM) {
				t.Errorf("the issued state does not carry the CSR's key")
			}
			// A created CSR keeps its generated key.
			cr, err := r.c.CreateCsr(&cas.CreateCsrRequest{CommonName: tea.String("gen.test"), Algorithm: tea.String("ECC"), KeySize: tea.Int32(256)})
			if err != nil {
				t.Fatal(err)
			}
			d, err := r.c.GetCsrDetail(&cas.GetCsrDetailRequest{CsrId: cr.Body.CsrId})
			if err != nil || !strings.Contains(tea.StringValue(d.Body.PrivateKey), "PRIVATE KEY") || tea.StringValue(d.Body.Csr) != tea.StringValue(cr.Body.Csr) {
				t.Fatalf("GetCsrDetail: %v", err)
			}
			if _, err := r.c.DeleteCsr(&cas.DeleteCsrRequest{CsrId: cr.Body.CsrId}); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("failed validation", func(t *testing.T) {
			r := &acmeRig{r.jobRig.with(t), r.peb}
			r.peb.SetA(t, "down.test", "127.0.0.2") // nothing answers there
			id := r.request("down.test", "FILE")
			if got := tea.StringValue(r.waitType(id, time.Minute, "certificate", "verify_fail").Type); got != "verify_fail" {
				t.Fatalf("order ended %s, want verify_fail", got)
			}
			msg, _ := r.state(id)["Message"].(string)
			for _, want := range []string{"down.test", "http-01", "the CA answered"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Message %q does not say %q", msg, want)
				}
			}
			if _, err := r.c.DeleteCertificateRequest(&cas.DeleteCertificateRequestRequest{OrderId: tea.Int64(id)}); err != nil {
				t.Fatal(err)
			}
			_, err := r.c.DescribeCertificateState(&cas.DescribeCertificateStateRequest{OrderId: tea.Int64(id)})
			wantAPIError(t, err, "NotFound")
		})

		t.Run("cancel", func(t *testing.T) {
			r := &acmeRig{r.jobRig.with(t), r.peb}
			id := r.request("cancel.test", "DNS") // manual: waits for the record
			r.waitType(id, time.Minute, "domain_verify")
			if _, err := r.c.CancelOrderRequest(&cas.CancelOrderRequestRequest{OrderId: tea.Int64(id)}); err != nil {
				t.Fatal(err)
			}
			if got := tea.StringValue(r.waitType(id, 10*time.Second, "cancelled").Type); got != "cancelled" {
				t.Fatalf("Type %s", got)
			}
			_, err := r.c.CancelOrderRequest(&cas.CancelOrderRequestRequest{OrderId: tea.Int64(id)})
			wantAPIError(t, err, "IncorrectStatus")
		})
	})
}

// TestACMEKillResume kills certfleet with SIGKILL while an order waits for
// its DNS record, restarts it and finishes the same order: pebble sees one
// order, not two.
func TestACMEKillResume(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newACMERig(t, engine, false)
		id := r.request("resume.test", "DNS")
		var st *cas.DescribeCertificateStateResponseBody
		testutil.WaitFor(t, time.Minute, "the record to publish", func() (bool, error) {
			resp, err := r.c.DescribeCertificateState(&cas.DescribeCertificateStateRequest{OrderId: tea.Int64(id)})
			if err != nil {
				return false, err
			}
			st = resp.Body
			return tea.StringValue(st.RecordValue) != "", nil
		})
		if n := r.peb.Orders(); n != 1 {
			t.Fatalf("pebble has %d orders before the kill", n)
		}
		r.srv.restart() // SIGKILL, then the same data
		r.peb.SetTXT(t, tea.StringValue(st.RecordDomain), tea.StringValue(st.RecordValue))
		if got := tea.StringValue(r.waitType(id, time.Minute, "certificate", "verify_fail").Type); got != "certificate" {
			t.Fatalf("order ended %s: %v", got, r.state(id)["Message"])
		}
		if n := r.peb.Orders(); n != 1 {
			t.Errorf("pebble created %d orders; the restarted node must resume the first", n)
		}

		// http-01 manual (this node has no --acme-http-addr): the order says
		// what to serve, the CA is asked once it is served.
		id = r.request("file.test", "FILE")
		testutil.WaitFor(t, time.Minute, "the file to publish", func() (bool, error) {
			resp, err := r.c.DescribeCertificateState(&cas.DescribeCertificateStateRequest{OrderId: tea.Int64(id)})
			if err != nil {
				return false, err
			}
			st = resp.Body
			return tea.StringValue(st.Content) != "", nil
		})
		uri := tea.StringValue(st.Uri)
		if !strings.HasPrefix(uri, "http://file.test/.well-known/acme-challenge/") {
			t.Fatalf("Uri %q", uri)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.peb.HTTPPort)))
		if err != nil {
			t.Fatal(err)
		}
		path := strings.TrimPrefix(uri, "http://file.test")
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path != path {
				http.NotFound(w, req)
				return
			}
			io.WriteString(w, tea.StringValue(st.Content))
		})}
		go srv.Serve(ln)
		defer srv.Close()
		if got := tea.StringValue(r.waitType(id, time.Minute, "certificate", "verify_fail").Type); got != "certificate" {
			t.Fatalf("order ended %s: %v", got, r.state(id)["Message"])
		}
	})
}

// TestACMERenewalNginx issues a certificate, deploys it to a real nginx,
// and lets it renew itself: pebble's certificates live 20 s and its ACME
// Renewal Information window spans their life, so the renewal is ordered
// within seconds, and a trustee job deploys it to nginx and verifies what
// nginx serves. Then renewals fail, and the contacts are told.
func TestACMERenewalNginx(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		skipShort(t)
		peb := pebble.Start(t, pebble.Options{Validity: 20 * time.Second})
		const domain = "site.renew.test"
		v := newVerifyRig(t, engine, domain, append(acmeArgs(peb, true), "--renew-check-interval", "1s")...)
		r := &acmeRig{v.jobRig, peb}
		r.addIssuer()

		start := time.Now()
		id := r.request(domain, "FILE")
		st := r.waitType(id, time.Minute, "certificate", "verify_fail")
		if tea.StringValue(st.Type) != "certificate" {
			t.Fatalf("order ended %s: %v", tea.StringValue(st.Type), r.state(id)["Message"])
		}
		issuedIn := time.Since(start)
		acmeRequests := r.state(id)["ACMERequests"]
		certID := idOf(t, r.state(id), "CertId")
		res := v.resource("site", v.reloadCommand(), map[string]any{"AutoRenew": true})
		job := r.createJob(jobSpec{certs: []int64{certID}, resources: []int64{res}})
		r.mustSetStatus(job, "pending")
		r.waitEnd(job, "success")
		first := leafSHA(t, tea.StringValue(st.Certificate))
		waitServed(t, v.nginx, domain, first)
		t.Logf("request to served: %v (issued in %v, %v ACME requests)", time.Since(start).Round(time.Millisecond),
			issuedIn.Round(time.Millisecond), acmeRequests)

		// The renewal: a second certificate from an order of its own, deployed
		// by a trustee job and verified on nginx.
		var renewed string
		testutil.WaitFor(t, 90*time.Second, "nginx to serve the renewal", func() (bool, error) {
			got, err := served(v.nginx, domain)
			if err == nil && got != first && got != leafSHA(t, v.initial.CertPEM) {
				renewed = got
				return true, nil
			}
			return false, nil
		})
		t.Logf("nginx serves the renewal %s", renewed)
		jobs, err := r.c.ListDeploymentJob(&cas.ListDeploymentJobRequest{JobType: tea.String("trustee")})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs.Body.Data) == 0 {
			t.Fatalf("no trustee job deployed the renewal")
		}
		tj := tea.Int64Value(jobs.Body.Data[len(jobs.Body.Data)-1].Id)
		r.waitEnd(tj, "success")
		if w := r.worker(tj, res); w.Status != "success" {
			t.Fatalf("trustee worker %s: %s", w.Status, w.ErrorMessage)
		}

		// From now on renewals fail (pebble's ARI window for 30-second
		// certificates keeps them coming): the contacts are told, with the
		// days left, and the served certificate stays.
		r.peb.SetA(t, domain, "127.0.0.2")
		testutil.WaitFor(t, 30*time.Second, "a renewal_failed notification", func() (bool, error) {
			body, err := r.srv.callOwn("ListNotification", nil)
			if err != nil {
				return false, err
			}
			return strings.Contains(toJSONString(body), "renewal_failed") && strings.Contains(toJSONString(body), "days left"), nil
		})
	})
}

func toJSONString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
