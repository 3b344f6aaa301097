package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/store"
)

// TestConsoleHandler: console calls run the API's chain with the session's
// identity instead of a signature — refused without one, authorized by RAM
// policies, audited with AccessKeyId console/<session>.
func TestConsoleHandler(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	ctx := context.Background()
	u := store.RAMUser{AccountID: f.root, Name: "viewer", DisplayName: "viewer"}
	if err := f.store.RAMUserCreate(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RAMAttach(ctx, store.RAMAttachment{AccountID: f.root, PrincipalType: store.PrincipalUser, PrincipalID: u.ID,
		PolicyType: store.PolicySystem, PolicyName: "AliyunYundunCertReadOnlyAccess"}); err != nil {
		t.Fatal(err)
	}
	h := f.api.ConsoleHandler()
	do := func(cc *ConsoleCaller, form url.Values) (int, map[string]any) {
		t.Helper()
		r := httptest.NewRequest("POST", "/console/api", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cc != nil {
			r = r.WithContext(WithConsoleCaller(r.Context(), *cc))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var body map[string]any
		json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body
	}
	contact := url.Values{"Action": {"CreateContact"}, "Version": {Version}, "Name": {"ops"}, "Email": {"ops@example.test"}}
	for _, tc := range []struct {
		desc   string
		cc     *ConsoleCaller
		form   url.Values
		status int
		code   string
	}{
		{"no console caller", nil, contact, http.StatusBadRequest, "IncompleteSignature"},
		{"read-only user writes", &ConsoleCaller{AccountID: f.root, UserID: u.ID, Session: "aaaaaaaaaaaa"}, contact, http.StatusForbidden, "Forbidden.RAM"},
		{"read-only user reads", &ConsoleCaller{AccountID: f.root, UserID: u.ID, Session: "aaaaaaaaaaaa"},
			url.Values{"Action": {"ListContact"}, "Version": {Version}}, http.StatusOK, ""},
		{"root writes", &ConsoleCaller{AccountID: f.root, Session: "bbbbbbbbbbbb"}, contact, http.StatusOK, ""},
	} {
		status, body := do(tc.cc, tc.form)
		if status != tc.status || (tc.code != "" && body["Code"] != tc.code) {
			t.Errorf("%s: %d %v, want %d %s", tc.desc, status, body, tc.status, tc.code)
		}
	}
	events, _, err := f.store.AuditList(ctx, store.AuditListParams{AccountID: f.root, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"viewer console/aaaaaaaaaaaa Forbidden.RAM": false, "root console/bbbbbbbbbbbb Success": false}
	for _, e := range events {
		if e.Action == "yundun-cert:CreateContact" {
			want[e.Principal+" "+e.AccessKeyID+" "+e.Code] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no audit event %q in %+v", k, events)
		}
	}
	allowed, err := f.api.Allowed(ctx, f.root, u.ID, []string{"yundun-cert:ListContact", "yundun-cert:CreateContact", ActionReadPrivateKey})
	if err != nil || !allowed["yundun-cert:ListContact"] || allowed["yundun-cert:CreateContact"] || allowed[ActionReadPrivateKey] {
		t.Fatalf("Allowed = %v, %v", allowed, err)
	}
}
