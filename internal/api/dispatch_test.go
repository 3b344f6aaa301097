package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDispatch checks how a handler's result becomes the response: RequestId
// first, the handler's fields after it, an error as an error body.
func TestDispatch(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	tests := []struct {
		desc   string
		result any
		err    error
		status int
		want   string // the body with RequestId replaced by R
	}{
		{desc: "fields follow RequestId", result: struct {
			B int
			A string
		}{2, "x"}, status: 200, want: `{"RequestId":"R","B":2,"A":"x"}`},
		{desc: "no result is RequestId alone", result: nil, status: 200, want: `{"RequestId":"R"}`},
		{desc: "an empty object is RequestId alone", result: struct{}{}, status: 200, want: `{"RequestId":"R"}`},
		{desc: "an error is an error body", err: errNotFound("Contact", 3), status: 404},
		{desc: "a result that cannot be encoded is an InternalError", result: map[string]any{"f": func() {}}, status: 500},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := &call{requestID: "R", action: "TestAction"}
			a := New(f.store, f.box, f.api.log, nopWaker{}, f.api.products, f.root, Options{})
			a.actions = map[string]handler{"TestAction": func(context.Context, *call) (any, error) { return tc.result, tc.err }}
			r := newRequest("POST", "/", "", "", nil)
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
			rec := httptest.NewRecorder()
			a.dispatch(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if tc.want != "" && rec.Body.String() != tc.want {
				t.Errorf("body = %s, want %s", rec.Body, tc.want)
			}
			if tc.status >= 400 {
				var body map[string]any
				json.Unmarshal(rec.Body.Bytes(), &body)
				if body["RequestId"] != "R" || body["Code"] == nil {
					t.Errorf("error body = %s", rec.Body)
				}
			}
		})
	}
}

// TestHandlerChain runs real actions through the whole chain (signatures
// skipped): a create, a list, a delete with no result, a delete of what is
// gone.
func TestHandlerChain(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{SkipSignature: true})
	h := f.api.Handler()
	do := func(body string) (int, http.Header, map[string]any) {
		t.Helper()
		return serve(t, h, newRequest("POST", "/", "application/x-www-form-urlencoded", "Version=2020-04-07&"+body, nil))
	}
	status, _, body := do("Action=CreateContact&Name=ops&Email=ops%40example.test")
	if status != 200 {
		t.Fatalf("CreateContact: %d %v", status, body)
	}
	if !requestIDPattern.MatchString(fmt.Sprint(body["RequestId"])) {
		t.Errorf("RequestId = %v", body["RequestId"])
	}
	id := fmt.Sprint(body["ContactId"])
	status, _, body = do("Action=ListContact")
	if status != 200 || !strings.Contains(fmt.Sprint(body["ContactList"]), "ops@example.test") {
		t.Fatalf("ListContact: %d %v", status, body)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("POST", "/", "application/x-www-form-urlencoded", "Version=2020-04-07&Action=DeleteContact&ContactId="+id, nil))
	if rec.Code != 200 || !bytes.HasPrefix(rec.Body.Bytes(), []byte(`{"RequestId":"`)) || bytes.Count(rec.Body.Bytes(), []byte(`":`)) != 1 {
		t.Fatalf("DeleteContact: %d %s, want RequestId alone", rec.Code, rec.Body)
	}
	status, header, body := do("Action=DeleteContact&ContactId=" + id)
	wantError(t, status, header, body, 404, "NotFound", "Contact "+id)
	status, header, body = do("Action=DeleteContact&ContactId=abc")
	wantError(t, status, header, body, 400, "InvalidParameter", "ContactId")
	status, header, body = do("Action=DeleteContact")
	wantError(t, status, header, body, 400, "MissingParameter", "ContactId is mandatory")
}
