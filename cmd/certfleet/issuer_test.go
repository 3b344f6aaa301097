package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestCLIIssuer: issuer add (with a TrustedCA file and the EAB key from the
// environment), list, delete; the HMAC key never shows.
func TestCLIIssuer(t *testing.T) {
	n := setupWith(t, "--default-product-code", "le")
	n.configure()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte(certstest.New(t, certstest.Options{DNSNames: []string{"ca.test"}}).CertPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	r := n.run([]string{"CERTFLEET_EAB_HMAC_KEY=aG1hYy1zZWNyZXQ"}, "", "issuer", "add", "le", "--directory", "https://ca.test/directory",
		"--email", "ops@example.test", "--key-type", "RSA2048", "--eab-key-id", "kid-1", "--trusted-ca", ca)
	if r.code != 0 || !strings.Contains(r.stdout, "Created issuer le") {
		t.Fatalf("issuer add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := n.ok("issuer", "list")
	if !strings.Contains(out, "le") || !strings.Contains(out, "RSA2048") || !strings.Contains(out, "yes") {
		t.Errorf("issuer list:\n%s", out)
	}
	var list []struct {
		ProductCode, EabKeyId string
		Default               bool
	}
	n.okJSON(&list, "issuer", "list")
	if len(list) != 1 || list[0].EabKeyId != "kid-1" || !list[0].Default {
		t.Errorf("issuer list -o json: %+v", list)
	}
	if strings.Contains(n.ok("issuer", "list", "-o", "json"), "aG1hYy1zZWNyZXQ") {
		t.Errorf("the EAB HMAC key shows in the list")
	}
	r = n.run(nil, "", "issuer", "add", "bad", "--directory", "http://ca.test/directory")
	if r.code == 0 || !strings.Contains(r.stderr, "DirectoryUrl") {
		t.Errorf("issuer add with an http:// directory: exit %d\n%s", r.code, r.stderr)
	}
	n.ok("issuer", "delete", "le")
	n.okJSON(&list, "issuer", "list")
	if len(list) != 0 {
		t.Errorf("issuers after delete: %+v", list)
	}
}
