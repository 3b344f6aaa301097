package e2e

import (
	"strings"
	"testing"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
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
