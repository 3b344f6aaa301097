package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	ram "github.com/alibabacloud-go/ram-20150501/v2/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestRAMPrivateKeyRead: GetUserCertificateDetail answers Key only to
// callers allowed yundun-cert:GetUserCertificatePrivateKey, and each answer
// that carries a key is an audit event naming who read which certificate.
func TestRAMPrivateKeyRead(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := startServer(t, engine, serverOpts{})
		rc := s.ramClient(s.keyID, s.secret)
		ch := certstest.New(t, certstest.Options{DNSNames: []string{"keys.example.test"}})
		up, err := s.client(false).UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String("keyed"),
			Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
		if err != nil {
			t.Fatal(err)
		}
		certID := tea.Int64Value(up.Body.CertId)
		detail := func(c *cas.Client) *cas.GetUserCertificateDetailResponseBody {
			t.Helper()
			r, err := c.GetUserCertificateDetail(&cas.GetUserCertificateDetailRequest{CertId: tea.Int64(certID), CertFilter: tea.Bool(false)})
			if err != nil {
				t.Fatalf("GetUserCertificateDetail: %v", err)
			}
			return r.Body
		}

		rid, rsec := ramUser(t, rc, "reader", "System:AliyunYundunCertReadOnlyAccess")
		b := detail(s.clientWith(rid, rsec, false, nil))
		if tea.StringValue(b.Key) != "" {
			t.Error("a read-only user was answered the private key")
		}
		if !strings.Contains(tea.StringValue(b.Cert), "BEGIN CERTIFICATE") || tea.Int64Value(b.Id) != certID {
			t.Errorf("a read-only user's detail lacks the certificate: %+v", b)
		}

		fid, fsec := ramUser(t, rc, "keeper", "System:AliyunYundunCertFullAccess")
		if got := tea.StringValue(detail(s.clientWith(fid, fsec, true, nil)).Key); strings.TrimSpace(got) != strings.TrimSpace(ch.KeyPEM) {
			t.Errorf("a full-access user got Key %q", got)
		}
		if got := tea.StringValue(detail(s.client(false)).Key); strings.TrimSpace(got) != strings.TrimSpace(ch.KeyPEM) {
			t.Error("the root was not answered the private key")
		}

		body := s.mustOwn("LookupAuditEvents", map[string]string{"EventAction": "yundun-cert:GetUserCertificatePrivateKey", "ShowSize": "100"})
		events, _ := body["Events"].([]any)
		readers := map[string]string{}
		for _, e := range events {
			m := e.(map[string]any)
			p, _ := m["Parameters"].(string)
			readers[m["Principal"].(string)] = p
			if strings.Contains(p, "PRIVATE KEY") {
				t.Errorf("the key itself is in the audit trail: %s", p)
			}
		}
		if len(events) != 2 || readers["reader"] != "" {
			t.Errorf("key-read events = %v, want one for keeper and one for root", readers)
		}
		for _, who := range []string{"keeper", "root"} {
			if p := readers[who]; !strings.Contains(p, `"CertId":"`+itoaTest(certID)+`"`) {
				t.Errorf("%s's key read: parameters %q do not name certificate %d", who, p, certID)
			}
		}
	})
}

// TestNotifyWebhookTokenRedacted: a contact webhook whose URL carries an
// access_token (DingTalk's robot URLs) is delivered to as given, but the token
// is redacted in ListNotification's Target, in the audit trail and in logs.
func TestNotifyWebhookTokenRedacted(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newJobRig(t, engine)
		chat := newChatReceiver(t)
		const token = "dt-token-5c1e9a77"
		r.contact = r.contactWith("", chat.URL+"/robot/send?access_token="+token)
		rcv := newCountingReceiver(t)
		cert, _ := r.upload("tokened", certstest.Options{DNSNames: []string{"token.notify.test"}})
		job := r.createJob(jobSpec{name: "tokened", certs: []int64{cert}, resources: []int64{r.webhook(rcv.URL, "token.notify.test")}})
		r.run(job, "success")
		ns := r.allSent(job, 1)
		chat.wait(t, 1)
		for _, n := range ns {
			if strings.Contains(n.Target, token) || !strings.Contains(n.Target, "access_token=***") {
				t.Errorf("ListNotification Target = %q, want the access_token redacted", n.Target)
			}
		}
		audit := r.own("LookupAuditEvents", map[string]string{"EventAction": "yundun-cert:CreateContact"})
		b, _ := json.Marshal(audit)
		if !strings.Contains(string(b), "robot/send") || strings.Contains(string(b), token) {
			t.Errorf("audit of CreateContact lacks the webhook or shows its token: %s", b)
		}
		if strings.Contains(r.srv.Logs(), token) {
			t.Error("the server log holds the webhook's access_token")
		}
	})
}

// TestRenewUntrustedRefused: a renewal from another CA, or uploaded by a
// user not allowed to deploy, creates no trustee job and tells the contacts
// why (renewal_refused); one from the same CA by the root still does.
func TestRenewUntrustedRefused(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		chat := newChatReceiver(t)
		srv := startServer(t, engine, serverOpts{args: []string{"--notify-retry-base", "200ms"}})
		r := &jobRig{t: t, srv: srv, c: srv.client(false)}
		r.contact = r.contactWith("", chat.URL)
		rcv := newCountingReceiver(t)
		res := idOf(t, r.own("CreateCloudResource", map[string]string{"CloudName": "webhook", "CloudProduct": "WEBHOOK", "Domain": "a.trust.test",
			"Name": "a.trust.test", "Config": jsonConfig(map[string]any{"Url": rcv.URL, "TimeoutSeconds": 5, "AutoRenew": true})}), "Id")
		certA, chA := r.upload("trust-a", certstest.Options{DNSNames: []string{"*.trust.test"}})
		r.run(r.createJob(jobSpec{name: "first", certs: []int64{certA}, resources: []int64{res}}), "success")
		chat.wait(t, 1)
		trustees := func() int {
			t.Helper()
			l, err := r.c.ListDeploymentJob(&cas.ListDeploymentJobRequest{JobType: tea.String("trustee")})
			if err != nil {
				t.Fatal(err)
			}
			return len(l.Body.Data)
		}
		later := func(days int) time.Time { return time.Now().Add(time.Duration(days) * 24 * time.Hour) }

		// The same names from another CA: uploaded, not deployed, told.
		r.upload("trust-other-ca", certstest.Options{DNSNames: []string{"*.trust.test"}, NotAfter: later(200)})
		if n := trustees(); n != 0 {
			t.Fatalf("an untrusted renewal created %d trustee jobs", n)
		}
		if texts := chat.wait(t, 2); !strings.Contains(texts[1], "not deployed") || !strings.Contains(texts[1], "does not chain") {
			t.Errorf("refusal message: %s", texts[1])
		}

		// The same CA, uploaded by a user allowed to upload but not to deploy.
		rc := srv.ramClient(srv.keyID, srv.secret)
		doc := `{"Version":"1","Statement":[{"Effect":"Allow","Action":"yundun-cert:UploadUserCertificate","Resource":"*"}]}`
		if _, err := rc.CreatePolicy(&ram.CreatePolicyRequest{PolicyName: tea.String("UploadOnly"), PolicyDocument: tea.String(doc)}); err != nil {
			t.Fatal(err)
		}
		kid, ksec := ramUser(t, rc, "uploader", "Custom:UploadOnly")
		chB := certstest.New(t, certstest.Options{DNSNames: []string{"*.trust.test"}, NotAfter: later(210), From: &chA})
		if err := upload(srv.clientWith(kid, ksec, false, nil), "trust-by-uploader", chB); err != nil {
			t.Fatal(err)
		}
		if n := trustees(); n != 0 {
			t.Fatalf("a renewal by a user not allowed to deploy created %d trustee jobs", n)
		}
		if texts := chat.wait(t, 3); !strings.Contains(texts[2], "not allowed yundun-cert:CreateDeploymentJob") {
			t.Errorf("refusal message: %s", texts[2])
		}
		refused := 0
		for _, n := range r.notifications(0) {
			if n.Event == "renewal_refused" {
				refused++
			}
		}
		if refused != 2 {
			t.Errorf("%d renewal_refused notifications, want 2", refused)
		}

		// The same CA by the root: the trustee job.
		r.upload("trust-same-ca", certstest.Options{DNSNames: []string{"*.trust.test"}, NotAfter: later(220), From: &chA})
		if n := trustees(); n != 1 {
			t.Errorf("a trusted renewal created %d trustee jobs, want 1", n)
		}
	})
}
