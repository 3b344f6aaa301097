package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
)

// authzSetup creates RAM user "u" with n custom policies attached, the last
// one allowing yundun-cert:List*.
func authzSetup(t testing.TB, f *fixture, n int) int64 {
	ctx := context.Background()
	u := store.RAMUser{AccountID: f.root, Name: "u"}
	if err := f.store.RAMUserCreate(ctx, &u); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		action := fmt.Sprintf("yundun-cert:Describe%d*", i)
		if i == n-1 {
			action = "yundun-cert:List*"
		}
		p := store.RAMPolicy{AccountID: f.root, Name: fmt.Sprintf("p%d", i)}
		doc := fmt.Sprintf(`{"Version":"1","Statement":[{"Effect":"Allow","Action":[%q],"Resource":"acs:yundun-cert:*:%d:*"},
			{"Effect":"Deny","Action":"yundun-cert:Delete*","Resource":"*","Condition":{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}]}`, action, f.root)
		if err := f.store.RAMPolicyCreate(ctx, &p, doc); err != nil {
			t.Fatal(err)
		}
		if err := f.store.RAMAttach(ctx, store.RAMAttachment{AccountID: f.root, PrincipalType: store.PrincipalUser, PrincipalID: u.ID,
			PolicyType: store.PolicyCustom, PolicyName: p.Name}); err != nil {
			t.Fatal(err)
		}
	}
	return u.ID
}

func serveAuthorize(a *API, userID int64, action string) *httptest.ResponseRecorder {
	c := &call{requestID: "R", action: action, version: Version, accountID: a.rootAccount, userID: userID, principal: "root"}
	r := httptest.NewRequest("POST", "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
	rec := httptest.NewRecorder()
	a.withAuthorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })).ServeHTTP(rec, r)
	return rec
}

func TestWithAuthorize(t *testing.T) {
	f := setup(t, Options{})
	uid := authzSetup(t, f, 3)
	tests := []struct {
		desc   string
		userID int64
		action string
		status int
		deny   string
	}{
		{desc: "root may do anything", userID: 0, action: "DeleteUserCertificate", status: 204},
		{desc: "allowed by a policy", userID: uid, action: "ListContact", status: 204},
		{desc: "nothing allows", userID: uid, action: "UploadUserCertificate", status: 403, deny: "ImplicitDeny"},
		{desc: "a Deny matches", userID: uid, action: "DeleteContact", status: 403, deny: "ExplicitDeny"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			rec := serveAuthorize(f.api, tt.userID, tt.action)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.deny == "" {
				return
			}
			var body struct {
				Code               string
				AccessDeniedDetail map[string]string
			}
			json.Unmarshal(rec.Body.Bytes(), &body)
			if body.Code != "Forbidden.RAM" || body.AccessDeniedDetail["NoPermissionType"] != tt.deny ||
				body.AccessDeniedDetail["AuthAction"] != "yundun-cert:"+tt.action || body.AccessDeniedDetail["AuthPrincipalDisplayName"] != "u" {
				t.Errorf("body = %s", rec.Body)
			}
		})
	}
	// A RAM change through this node applies at once.
	if err := f.store.RAMDetach(context.Background(), store.RAMAttachment{AccountID: f.root, PrincipalType: store.PrincipalUser, PrincipalID: uid,
		PolicyType: store.PolicyCustom, PolicyName: "p2"}); err != nil {
		t.Fatal(err)
	}
	f.api.changed()
	if rec := serveAuthorize(f.api, uid, "ListContact"); rec.Code != 403 {
		t.Errorf("after detach: status %d, want 403", rec.Code)
	}
}

// BenchmarkAuthorize is the per-request cost of authorization (cache warm):
// root, and a RAM user with 10 attached policies.
func BenchmarkAuthorize(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "certfleet.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	box, _ := secret.New(testMasterKey)
	root, err := st.AccountEnsure(ctx, "root")
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{store: st, box: box, root: root}
	f.api = New(st, box, slog.New(slog.DiscardHandler), nopWaker{}, registry.New(registry.Options{}), root, Options{})
	uid := authzSetup(b, f, 10)
	for _, bc := range []struct {
		name   string
		userID int64
	}{{"root", 0}, {"ram-user-10-policies", uid}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if rec := serveAuthorize(f.api, bc.userID, "ListContact"); rec.Code != 204 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
