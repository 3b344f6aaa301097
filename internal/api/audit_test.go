package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/store"
)

// TestWithAudit checks the audit middleware on its own: requests go through it
// with a call as withSignature and withAuthorize leave it, and the next
// handler answers (an error through writeError, which records the code).
func TestWithAudit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		version string
		action  string
		userID  int64
		code    string // the error code answered; "" for success

		wantAction    string // the recorded RAM action; "" when nothing is recorded
		wantCode      string
		wantPrincipal string
	}{
		{desc: "a change is recorded", action: "CreateContact",
			wantAction: "yundun-cert:CreateContact", wantCode: "Success", wantPrincipal: "root"},
		{desc: "a refused change is recorded with its code", action: "DeleteContact", code: "InUse",
			wantAction: "yundun-cert:DeleteContact", wantCode: "InUse", wantPrincipal: "root"},
		{desc: "a read is not recorded", action: "ListContact"},
		{desc: "a read that failed otherwise is not recorded", action: "DescribeDeploymentJob", code: "NotFound"},
		{desc: "a read denied by RAM is recorded, with the user before it was named", action: "ListContact", userID: 7,
			code: "Forbidden.RAM", wantAction: "yundun-cert:ListContact", wantCode: "Forbidden.RAM", wantPrincipal: "user:7"},
		{desc: "a RAM change is recorded under its RAM name", version: RAMVersion, action: "CreateUser",
			wantAction: "ram:CreateUser", wantCode: "Success", wantPrincipal: "root"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			f := setup(t, Options{})
			version := tt.version
			if version == "" {
				version = Version
			}
			h := f.api.withAudit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.code != "" {
					f.api.writeError(w, callFrom(r.Context()), &Error{Code: tt.code, Status: http.StatusBadRequest, Message: "refused"})
					return
				}
				w.WriteHeader(http.StatusOK)
			}))
			c := &call{requestID: "TEST-REQUEST", action: tt.action, version: version, accountID: f.root, accessKeyID: f.keyID,
				userID: tt.userID, principal: "root",
				params: params{url.Values{"Name": {"n"}, "Signature": {"sig"}, "Action": {tt.action}}}}
			r := newRequest("POST", "/", "", "", nil)
			r.RemoteAddr = "192.0.2.1:4000"
			serve(t, h, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))

			events, _, err := f.store.AuditList(context.Background(), store.AuditListParams{AccountID: f.root, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantAction == "" {
				if len(events) != 0 {
					t.Fatalf("recorded %+v, want nothing", events)
				}
				return
			}
			if len(events) != 1 {
				t.Fatalf("recorded %d events, want 1: %+v", len(events), events)
			}
			e := events[0]
			if e.Action != tt.wantAction || e.Code != tt.wantCode || e.Principal != tt.wantPrincipal ||
				e.RequestID != "TEST-REQUEST" || e.AccessKeyID != f.keyID || e.SourceIP != "192.0.2.1" {
				t.Errorf("recorded %+v", e)
			}
			if !strings.Contains(e.Params, `"Name"`) || strings.Contains(e.Params, "sig") {
				t.Errorf("recorded parameters %s: want Name kept and the signature left out", e.Params)
			}
		})
	}
}
