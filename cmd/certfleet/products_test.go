package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIProducts: "resource products" shows what the server deploys to,
// "resource add <cloud> <PRODUCT>" takes flags generated from the product's
// keys, and the friendly forms keep working.
func TestCLIProducts(t *testing.T) {
	n := setup(t)
	n.configure()

	out := n.ok("resource", "products")
	for _, want := range []string{"ssh NGINX", "--cert-path", "--host-key", "webhook WEBHOOK", "every product also takes:", "--verify-address"} {
		if !strings.Contains(out, want) {
			t.Errorf("resource products lacks %q:\n%s", want, out)
		}
	}
	var listed struct {
		Products []struct {
			CloudName, CloudProduct string
			Config                  []struct{ Name, Type string }
		}
	}
	if err := json.Unmarshal([]byte(n.ok("resource", "products", "--cloud-name", "webhook", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Products) != 1 || listed.Products[0].CloudProduct != "WEBHOOK" || listed.Products[0].Config[1].Name != "TimeoutSeconds" {
		t.Errorf("resource products --cloud-name webhook -o json: %+v", listed)
	}

	// Generated flags: typed, named after the keys, and the generic keys too.
	var r struct{ Id int64 }
	n.okJSON(&r, "resource", "add", "local", "FILE", "--domain", "a.example.test",
		"--cert-path", filepath.Join(n.localRoot, "a.pem"), "--key-path", filepath.Join(n.localRoot, "a.key"),
		"--key-mode", "0640", "--reload-timeout-seconds", "5", "--verify-address", "127.0.0.1:1", "--auto-rollback=false")
	n.okJSON(&r, "resource", "add", "webhook", "WEBHOOK", "--domain", "b.example.test", "--url", "https://hooks.example.test/b", "--timeout-seconds", "20")
	var resources []struct {
		Id           int64
		CloudProduct string
	}
	n.okJSON(&resources, "resource", "list")
	if len(resources) != 2 {
		t.Fatalf("resource list: %+v, want the two resources just added", resources)
	}

	// The friendly forms still work.
	n.okJSON(&r, "resource", "add", "webhook", "--domain", "c.example.test", "--url", "https://hooks.example.test/c", "--timeout", "5")
	n.fileResource("d.example.test", n.localRoot)

	// Usage errors exit 2: a missing required key, a number that is not one,
	// a product that does not exist, an ssh resource without a credential.
	for _, args := range [][]string{
		{"resource", "add", "local", "FILE", "--domain", "e.example.test", "--key-path", "/x"},
		{"resource", "add", "webhook", "WEBHOOK", "--domain", "e.example.test", "--url", "https://h.test/", "--timeout-seconds", "abc"},
		{"resource", "add", "ssh", "APACHE", "--domain", "e.example.test"},
		{"resource", "add", "ssh", "NGINX", "--domain", "e.example.test", "--host", "web1", "--host-key", "SHA256:x", "--cert-path", "/a", "--key-path", "/b"},
	} {
		if res := n.run(nil, "", args...); res.code != exitUsage {
			t.Errorf("certfleet %v: exit %d, want 2\n%s%s", args, res.code, res.stdout, res.stderr)
		}
	}
	// The server's words for a misspelt key, through the JSON form.
	res := n.run(nil, "", "resource", "add", "--cloud-name", "local", "--product", "FILE", "--domain", "f.example.test",
		"--config", `{"CertPth":"/a.pem","KeyPath":"/a.key"}`)
	if res.code != 1 || !strings.Contains(res.stderr, `Config key "CertPth" is unknown for local/FILE (did you mean "CertPath"?)`) {
		t.Errorf("misspelt key: exit %d, stderr %q", res.code, res.stderr)
	}
}
