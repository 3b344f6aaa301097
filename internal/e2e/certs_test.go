package e2e

import (
	"testing"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

func TestCertificateRoundTrip(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{})
		for _, v1 := range []bool{false, true} {
			c := srv.client(v1)
			name := "site-v3"
			if v1 {
				name = "site-v1"
			}
			ch := certstest.New(t, certstest.Options{DNSNames: []string{"www.example.test", "example.test"}})
			up, err := c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(name), Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
			if err != nil {
				t.Fatalf("upload (v1=%v): %v", v1, err)
			}
			id := tea.Int64Value(up.Body.CertId)
			if id <= 0 {
				t.Fatalf("CertId = %d", id)
			}
			list, err := c.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{Keyword: tea.String(name)})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if tea.Int64Value(list.Body.TotalCount) != 1 || len(list.Body.CertificateOrderList) != 1 {
				t.Fatalf("list total = %d", tea.Int64Value(list.Body.TotalCount))
			}
			item := list.Body.CertificateOrderList[0]
			if tea.Int64Value(item.CertificateId) != id || tea.StringValue(item.Sans) != "www.example.test,example.test" ||
				tea.StringValue(item.CommonName) != "www.example.test" || tea.StringValue(item.Status) != "ISSUED" {
				t.Fatalf("list item = %v", item)
			}
			det, err := c.GetUserCertificateDetail(&cas.GetUserCertificateDetailRequest{CertId: tea.Int64(id)})
			if err != nil {
				t.Fatalf("detail: %v", err)
			}
			if tea.StringValue(det.Body.Key) == "" || tea.StringValue(det.Body.Cert) == "" || tea.StringValue(det.Body.Fingerprint) == "" ||
				tea.StringValue(det.Body.Name) != name {
				t.Fatalf("detail = %v", det.Body)
			}
			det, err = c.GetUserCertificateDetail(&cas.GetUserCertificateDetailRequest{CertId: tea.Int64(id), CertFilter: tea.Bool(true)})
			if err != nil || det.Body.Key != nil || det.Body.Cert != nil {
				t.Fatalf("CertFilter detail = %v, %v", det, err)
			}
			if _, err := c.DeleteUserCertificate(&cas.DeleteUserCertificateRequest{CertId: tea.Int64(id)}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, err = c.GetUserCertificateDetail(&cas.GetUserCertificateDetailRequest{CertId: tea.Int64(id)})
			if code, status := sdkErr(t, err); code != "NotFound" || status != 404 {
				t.Fatalf("detail after delete = %s %d", code, status)
			}
		}
	})
}
