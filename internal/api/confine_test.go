package api

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/deploy/local"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/store"
)

// localFixture is the API with local targets under a temporary --local-root
// and a second account, "acme", with its own key.
type localFixture struct {
	*fixture
	localRoot string
	acme      int64
}

const acmeKey, acmeSecret = "LTAIacme", "acme-secret"

func setupLocal(t *testing.T) *localFixture {
	t.Helper()
	f := setup(t, Options{})
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f.api = New(f.store, f.box, slog.New(slog.DiscardHandler), nopWaker{},
		registry.New(registry.Options{Local: local.Options{Root: root}}), f.root, Options{})
	f.addr = newServer(t, f.api.Handler())
	acme, err := f.store.AccountEnsure(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	f.addKeyFor(t, acmeKey, acmeSecret, store.AccessKeyActive, acme)
	return &localFixture{fixture: f, localRoot: root, acme: acme}
}

func (f *localFixture) createLocal(t *testing.T, keyID, sec, certPath string) (map[string]any, error) {
	t.Helper()
	return callAPI(f.generic(t, keyID, sec, false, nil), "CreateCloudResource", map[string]string{
		"CloudName": "local", "CloudProduct": "FILE", "Domain": "www.example.com",
		"Config": `{"CertPath":"` + certPath + `","KeyPath":"` + certPath + `.key"}`,
	}, nil)
}

// TestLocalConfinement: an account other than root writes no local file
// without a LocalRoot, and with one only inside it.
func TestLocalConfinement(t *testing.T) {
	t.Parallel()
	f := setupLocal(t)
	for _, d := range []string{"acme", "other"} {
		if err := os.Mkdir(filepath.Join(f.localRoot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in := func(p ...string) string { return filepath.Join(append([]string{f.localRoot}, p...)...) }

	_, err := f.createLocal(t, acmeKey, acmeSecret, in("acme", "a.pem"))
	if code, status := sdkCode(t, err); code != "InvalidParameter" || status != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "may not write local files") {
		t.Errorf("without a LocalRoot: %s %d %v, want InvalidParameter saying it may not write local files", code, status, err)
	}

	if err := f.store.AccountSetSettings(context.Background(), f.acme, store.AccountSettings{LocalRoot: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.createLocal(t, acmeKey, acmeSecret, in("acme", "a.pem")); err != nil {
		t.Errorf("inside its LocalRoot: %v", err)
	}
	for _, p := range []string{in("b.pem"), in("other", "b.pem"), in("acme", "..", "other", "c.pem")} {
		_, err := f.createLocal(t, acmeKey, acmeSecret, p)
		if code, _ := sdkCode(t, err); code != "InvalidParameter" || !strings.Contains(err.Error(), "outside the account's local root") {
			t.Errorf("%s: %v, want InvalidParameter outside the account's local root", p, err)
		}
	}
	// Root keeps the whole --local-root.
	if _, err := f.createLocal(t, f.keyID, f.secret, in("other", "r.pem")); err != nil {
		t.Errorf("root: %v", err)
	}
}

// TestLocalClaims: one file belongs to one resource across accounts; the
// refusal names nothing of the other account, and a delete releases it.
func TestLocalClaims(t *testing.T) {
	t.Parallel()
	f := setupLocal(t)
	if err := os.Mkdir(filepath.Join(f.localRoot, "acme"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AccountSetSettings(context.Background(), f.acme, store.AccountSettings{LocalRoot: "acme"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.localRoot, "acme", "shared.pem")
	body, err := f.createLocal(t, f.keyID, f.secret, path)
	if err != nil {
		t.Fatal(err)
	}
	rootRes := idOf(t, body)

	_, err = f.createLocal(t, acmeKey, acmeSecret, path)
	code, status := sdkCode(t, err)
	if code != "InUse" || status != http.StatusBadRequest || !strings.Contains(err.Error(), "already written by another resource") {
		t.Errorf("second claim: %s %d %v, want InUse", code, status, err)
	}
	// The message is the caller's own path and nothing else: not the other
	// resource's ID, its account or its key.
	var se *tea.SDKError
	if errors.As(err, &se) {
		want := "Config: " + path + " is already written by another resource; each file belongs to one resource."
		if got := tea.StringValue(se.Message); !strings.Contains(got, want) || strings.Contains(got, "root") || strings.Contains(got, "Id") {
			t.Errorf("message %q, want %q alone", got, want)
		}
	}

	// An update of acme's own resource onto the path is refused the same way.
	body, err = f.createLocal(t, acmeKey, acmeSecret, filepath.Join(f.localRoot, "acme", "own.pem"))
	if err != nil {
		t.Fatal(err)
	}
	own := idOf(t, body)
	_, err = callAPI(f.generic(t, acmeKey, acmeSecret, false, nil), "UpdateCloudResource", map[string]string{
		"Id": itoa(own), "Config": `{"CertPath":"` + path + `","KeyPath":"` + path + `.key2"}`}, nil)
	if code, _ := sdkCode(t, err); code != "InUse" {
		t.Errorf("update onto a claimed path: %v, want InUse", err)
	}

	// Deleting the root resource releases the path.
	if _, err := callAPI(f.generic(t, f.keyID, f.secret, false, nil), "DeleteCloudResource",
		map[string]string{"Id": itoa(rootRes)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.createLocal(t, acmeKey, acmeSecret, path); err != nil {
		t.Errorf("after the delete: %v", err)
	}
}

// TestNULParameters: a NUL byte in any parameter is InvalidParameter naming
// it, on both engines, through the official SDK.
func TestNULParameters(t *testing.T) {
	t.Parallel()
	engines := map[string]func(t *testing.T) *fixture{
		"sqlite":   func(t *testing.T) *fixture { return setup(t, Options{}) },
		"postgres": setupPostgres,
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := open(t)
			c := f.sdk(t, f.keyID, f.secret, false, nil)
			_, err := c.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{Keyword: tea.String("a\x00b")})
			if code, status := sdkCode(t, err); code != "InvalidParameter" || status != http.StatusBadRequest || !strings.Contains(err.Error(), "Keyword") {
				t.Errorf("Keyword: %s %d %v, want InvalidParameter naming Keyword", code, status, err)
			}
			chain := certstest.New(t, certstest.Options{})
			_, err = c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String("n\x00"),
				Cert: tea.String(chain.CertPEM), Key: tea.String(chain.KeyPEM)})
			if code, status := sdkCode(t, err); code != "InvalidParameter" || status != http.StatusBadRequest || !strings.Contains(err.Error(), "Name") {
				t.Errorf("Name: %s %d %v, want InvalidParameter naming Name", code, status, err)
			}
		})
	}
}

// idOf is the Id of a create's answer.
func idOf(t *testing.T, body map[string]any) int64 {
	t.Helper()
	id, err := strconv.ParseInt(fmt.Sprint(body["Id"]), 10, 64)
	if err != nil {
		t.Fatalf("answer %v has no Id", body)
	}
	return id
}

// TestUploadRSA1024: refused by default, accepted with AllowRSA1024.
func TestUploadRSA1024(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	chain := certstest.New(t, certstest.Options{Key: key})
	req := &cas.UploadUserCertificateRequest{Name: tea.String("legacy"), Cert: tea.String(chain.CertPEM), Key: tea.String(chain.KeyPEM)}

	f := setup(t, Options{})
	_, err = f.sdk(t, f.keyID, f.secret, false, nil).UploadUserCertificate(req)
	if code, _ := sdkCode(t, err); code != "InvalidParameter" || !strings.Contains(err.Error(), "1024 bits") {
		t.Errorf("default: %v, want InvalidParameter about 1024 bits", err)
	}
	f = setup(t, Options{AllowRSA1024: true})
	if _, err := f.sdk(t, f.keyID, f.secret, false, nil).UploadUserCertificate(req); err != nil {
		t.Errorf("with AllowRSA1024: %v", err)
	}
}
