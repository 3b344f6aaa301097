package api

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestWithRequest checks the first middleware on its own: path and method,
// body bound and form merging, and where Action and Version are read from.
func TestWithRequest(t *testing.T) {
	t.Parallel()
	// SkipSignature: the checks made before the body is read (signature,
	// key, per-source limit) have their own tests in stranger_test.go.
	f := setup(t, Options{MaxBodyBytes: 64, SkipSignature: true})
	const form = "application/x-www-form-urlencoded"
	v3 := "ACS3-HMAC-SHA256 Credential=LTAIunittest,SignedHeaders=host,Signature=00"
	tests := []struct {
		desc        string
		method      string
		target      string
		contentType string
		body        string
		headers     map[string]string

		wantStatus int    // 0: reached the next handler
		wantCode   string // when wantStatus is set
		wantMsg    string
		wantAction string
		wantParams url.Values // a subset of the parsed parameters
	}{
		{desc: "GET with query parameters", method: "GET", target: "/?Action=ListContact&Version=2020-04-07&Keyword=a",
			wantAction: "ListContact", wantParams: url.Values{"Keyword": {"a"}}},
		{desc: "POST with parameters in the query and no body (the Go SDK)", method: "POST", target: "/?Action=ListContact&Version=2020-04-07&ShowSize=5",
			wantAction: "ListContact", wantParams: url.Values{"ShowSize": {"5"}}},
		{desc: "form body merges with the query, query first", method: "POST", target: "/?Action=ListContact&Keyword=q",
			contentType: form, body: "Version=2020-04-07&Keyword=b&Name=n",
			wantAction: "ListContact", wantParams: url.Values{"Keyword": {"q", "b"}, "Name": {"n"}, "Version": {"2020-04-07"}}},
		{desc: "form body with a charset", method: "POST", target: "/",
			contentType: form + "; charset=UTF-8", body: "Action=ListContact&Version=2020-04-07&Name=%E2%9C%93",
			wantAction: "ListContact", wantParams: url.Values{"Name": {"✓"}}},
		{desc: "a JSON body is not read as parameters", method: "POST", target: "/",
			contentType: "application/json", body: "Action=ListContact&Version=2020-04-07",
			wantStatus: 400, wantCode: "MissingParameter", wantMsg: "Action is mandatory"},
		{desc: "a GET form body is merged too", method: "GET", target: "/?Action=ListContact",
			contentType: form, body: "Version=2020-04-07",
			wantAction: "ListContact"},
		{desc: "malformed form body", method: "POST", target: "/?Action=ListContact&Version=2020-04-07",
			contentType: form, body: "Name=%zz", wantStatus: 400, wantCode: "InvalidParameter", wantMsg: "form body"},
		{desc: "body at the limit", method: "POST", target: "/?Action=ListContact&Version=2020-04-07",
			contentType: form, body: "Name=" + strings.Repeat("x", 59),
			wantAction: "ListContact"},
		{desc: "body over the limit", method: "POST", target: "/?Action=ListContact&Version=2020-04-07",
			contentType: form, body: "Name=" + strings.Repeat("x", 60),
			wantStatus: 413, wantCode: "InvalidParameter", wantMsg: "64 bytes"},
		{desc: "path other than /", method: "POST", target: "/api?Action=ListContact&Version=2020-04-07",
			wantStatus: 404, wantCode: "InvalidAction.NotFound", wantMsg: "path /"},
		{desc: "path //", method: "GET", target: "//?Action=ListContact&Version=2020-04-07",
			wantStatus: 404, wantCode: "InvalidAction.NotFound"},
		{desc: "PUT", method: "PUT", target: "/?Action=ListContact&Version=2020-04-07",
			wantStatus: 405, wantCode: "InvalidParameter", wantMsg: "POST or GET"},
		{desc: "DELETE", method: "DELETE", target: "/?Action=ListContact&Version=2020-04-07",
			wantStatus: 405, wantCode: "InvalidParameter"},
		{desc: "no Action", method: "GET", target: "/?Version=2020-04-07",
			wantStatus: 400, wantCode: "MissingParameter", wantMsg: "Action is mandatory for this action."},
		{desc: "empty Action", method: "GET", target: "/?Action=&Version=2020-04-07",
			wantStatus: 400, wantCode: "MissingParameter", wantMsg: "Action"},
		{desc: "no Version", method: "GET", target: "/?Action=ListContact",
			wantStatus: 400, wantCode: "MissingParameter", wantMsg: "Version is mandatory for this action."},
		{desc: "another Version", method: "GET", target: "/?Action=ListContact&Version=2019-01-01",
			wantStatus: 400, wantCode: "InvalidVersion", wantMsg: "2019-01-01"},
		{desc: "the RAM Version has its own actions", method: "GET", target: "/?Action=ListContact&Version=2015-05-01",
			wantStatus: 404, wantCode: "InvalidAction.NotFound", wantMsg: "2015-05-01"},
		{desc: "unknown Action", method: "GET", target: "/?Action=NoSuchAction&Version=2020-04-07",
			wantStatus: 404, wantCode: "InvalidAction.NotFound", wantMsg: "NoSuchAction"},
		{desc: "Action names are case-sensitive", method: "GET", target: "/?Action=listcontact&Version=2020-04-07",
			wantStatus: 404, wantCode: "InvalidAction.NotFound"},
		{desc: "V3 reads Action and Version from x-acs headers, not parameters", method: "POST",
			target:     "/?Action=DeleteContact&Version=2019-01-01",
			headers:    map[string]string{"Authorization": v3, "x-acs-action": "ListContact", "x-acs-version": "2020-04-07"},
			wantAction: "ListContact"},
		{desc: "V3 without x-acs-action does not fall back to the Action parameter", method: "POST",
			target:     "/?Action=ListContact&Version=2020-04-07",
			headers:    map[string]string{"Authorization": v3, "x-acs-version": "2020-04-07"},
			wantStatus: 400, wantCode: "MissingParameter", wantMsg: "Action"},
		{desc: "V3 with a wrong x-acs-version", method: "POST", target: "/?Version=2020-04-07",
			headers:    map[string]string{"Authorization": v3, "x-acs-action": "ListContact", "x-acs-version": "2019-01-01"},
			wantStatus: 400, wantCode: "InvalidVersion"},
		{desc: "V1 ignores forged, unsigned x-acs-action and x-acs-version headers", method: "GET",
			target:     "/?Action=ListContact&Version=2020-04-07&Signature=x",
			headers:    map[string]string{"x-acs-action": "DeleteContact", "x-acs-version": "2019-01-01"},
			wantAction: "ListContact"},
		{desc: "an Authorization that is not ACS3 counts as V1", method: "GET",
			target:     "/?Action=ListContact&Version=2020-04-07",
			headers:    map[string]string{"Authorization": "Bearer abc", "x-acs-action": "DeleteContact"},
			wantAction: "ListContact"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var got *call
			h := f.api.withRequest(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = callFrom(r.Context())
				w.WriteHeader(http.StatusNoContent)
			}))
			r := newRequest(tc.method, tc.target, tc.contentType, tc.body, tc.headers)
			status, header, body := serve(t, h, r)
			if tc.wantStatus != 0 {
				wantError(t, status, header, body, tc.wantStatus, tc.wantCode, tc.wantMsg)
				if got != nil {
					t.Errorf("the next handler ran for a refused request (action %q)", got.action)
				}
				return
			}
			if status != http.StatusNoContent || got == nil {
				t.Fatalf("status %d, body %v: the request did not reach the next handler", status, body)
			}
			if got.action != tc.wantAction {
				t.Errorf("action = %q, want %q", got.action, tc.wantAction)
			}
			for k, want := range tc.wantParams {
				if g := got.params.v[k]; !reflect.DeepEqual(g, want) {
					t.Errorf("param %s = %q, want %q", k, g, want)
				}
			}
			if string(got.body) != tc.body {
				t.Errorf("body = %q, want %q", got.body, tc.body)
			}
			if !requestIDPattern.MatchString(got.requestID) {
				t.Errorf("requestID %q is not an upper-case UUID", got.requestID)
			}
		})
	}
}

// TestRequestID checks every request gets its own RequestId and that an error
// body carries the one the request was given.
func TestRequestID(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	var ids []string
	h := f.api.withRequest(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callFrom(r.Context())
		ids = append(ids, c.requestID)
		f.api.writeError(w, c, errMissing("Name"))
	}))
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		status, header, body := serve(t, h, newRequest("GET", "/?Action=ListContact&Version=2020-04-07", "", "", nil))
		wantError(t, status, header, body, 400, "MissingParameter", "Name")
		id := body["RequestId"].(string)
		if id != ids[i] {
			t.Fatalf("body RequestId %s, the request's %s", id, ids[i])
		}
		if seen[id] {
			t.Fatalf("RequestId %s given twice", id)
		}
		seen[id] = true
	}
}

// TestPanicRecovery checks a panicking handler becomes an InternalError whose
// RequestId is in the log line with the panic.
func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	logs := f.logTo()
	h := f.api.withRequest(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("handler exploded")
	}))
	status, header, body := serve(t, h, newRequest("GET", "/?Action=ListContact&Version=2020-04-07", "", "", nil))
	wantError(t, status, header, body, 500, "InternalError", "RequestId")
	if strings.Contains(body["Message"].(string), "exploded") {
		t.Errorf("the panic reached the caller: %v", body)
	}
	if l := logs.String(); !strings.Contains(l, body["RequestId"].(string)) || !strings.Contains(l, "handler exploded") {
		t.Errorf("log lacks the RequestId or the panic:\n%s", l)
	}
}
