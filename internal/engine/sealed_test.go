package engine

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// TestRequestOpensSealedConfig: secret Config values stored sealed (as the
// API stores them) reach the deployer opened, for the resource and for its
// CloudAccess.
func TestRequestOpensSealedConfig(t *testing.T) {
	t.Parallel()
	r := setup(t)
	isPass := func(k string) bool { return k == "Passphrase" || k == "Token" }
	acConfig, err := r.box.SealConfig(`{"Passphrase":"hunter2"}`, isPass)
	if err != nil {
		t.Fatal(err)
	}
	ac := store.CloudAccess{AccountID: r.account, CloudName: "webhook", Name: "a", SecretID: "id", SecretKeyEnc: r.box.Seal([]byte("k"), secret.PurposeAccessSecret),
		Config: acConfig}
	if err := r.st.AccessCreate(r.ctx, &ac); err != nil {
		t.Fatal(err)
	}
	resConfig, err := r.box.SealConfig(`{"Url":"`+r.url+`","Token":"t0k"}`, isPass)
	if err != nil {
		t.Fatal(err)
	}
	res := store.Resource{AccountID: r.account, CloudName: "webhook", CloudProduct: "WEBHOOK", Domain: "a.example.test", Name: "a",
		CloudAccessID: ac.ID, Config: resConfig}
	if err := r.st.ResourceCreate(r.ctx, &res); err != nil {
		t.Fatal(err)
	}
	e := New(r.st, r.box, registry.New(registry.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	w := store.Worker{AccountID: r.account, ResourceID: res.ID, CertID: r.cert.ID}
	req, _, _, err := e.request(r.ctx, w, e.readClaim(r.ctx, []store.Worker{w}))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Token, Passphrase string }
	json.Unmarshal(req.Target.Config, &got)
	json.Unmarshal(req.Target.Access.Config, &got)
	if got.Token != "t0k" || got.Passphrase != "hunter2" {
		t.Errorf("deployer sees Token %q, Passphrase %q; Config %s, Access.Config %s", got.Token, got.Passphrase, req.Target.Config, req.Target.Access.Config)
	}
}
