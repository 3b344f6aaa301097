package ramapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/api/apierr"
	"github.com/certfleet/certfleet/internal/store/sqlite"
)

// values reads parameters as the front does (internal/api's params), for
// calling the handlers without HTTP.
type values url.Values

func (v values) Has(name string) bool   { return url.Values(v).Get(name) != "" }
func (v values) Given(name string) bool { return url.Values(v).Has(name) }
func (v values) Str(name string) string { return strings.TrimSpace(url.Values(v).Get(name)) }
func (v values) Required(name string) (string, error) {
	if s := v.Str(name); s != "" {
		return s, nil
	}
	return "", apierr.Missing(name)
}
func (v values) Text(name string, max int) (string, error) {
	if s := v.Str(name); len([]rune(s)) <= max {
		return s, nil
	}
	return "", apierr.Invalid(name, "longer than %d characters", max)
}
func (v values) Int64(name string) (int64, bool, error) {
	s := v.Str(name)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, apierr.Invalid(name, "%q is not an integer", s)
	}
	return n, true, nil
}
func (v values) Bool(name string) (bool, error) { return v.Str(name) == "true", nil }

// TestHandlers runs calls in order on one account of a real SQLite store
// and checks each one's error code (or success) and the hooks it called.
func TestHandlers(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "certfleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	account, err := st.AccountEnsure(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	changed, keysChanged := 0, 0
	srv := New(Config{Store: st, SealSecret: func(b []byte) []byte { return append([]byte("sealed:"), b...) },
		Changed: func() { changed++ }, KeyChanged: func(string) { keysChanged++ }})
	routes := srv.Routes()
	var keyID string
	for _, tc := range []struct {
		desc        string
		action      string
		params      url.Values
		wantCode    string // "" for success
		wantChanged bool   // Changed was called
	}{
		{desc: "user name missing", action: "CreateUser", params: url.Values{}, wantCode: "MissingParameter"},
		{desc: "user name with a space", action: "CreateUser", params: url.Values{"UserName": {"a b"}}, wantCode: "InvalidParameter"},
		{desc: "user created", action: "CreateUser", params: url.Values{"UserName": {"alice"}}, wantChanged: true},
		{desc: "user exists", action: "CreateUser", params: url.Values{"UserName": {"alice"}}, wantCode: "EntityAlreadyExists.User"},
		{desc: "second user", action: "CreateUser", params: url.Values{"UserName": {"bob"}}, wantChanged: true},
		{desc: "unknown user", action: "GetUser", params: url.Values{"UserName": {"carol"}}, wantCode: "EntityNotExist.User"},
		{desc: "MaxItems 0", action: "ListUsers", params: url.Values{"MaxItems": {"0"}}, wantCode: "InvalidParameter"},
		{desc: "bad Marker", action: "ListUsers", params: url.Values{"Marker": {"x"}}, wantCode: "InvalidParameter"},
		{desc: "first key", action: "CreateAccessKey", params: url.Values{"UserName": {"alice"}}},
		{desc: "second key", action: "CreateAccessKey", params: url.Values{"UserName": {"alice"}}},
		{desc: "third key", action: "CreateAccessKey", params: url.Values{"UserName": {"alice"}}, wantCode: "LimitExceeded.User.AccessKey"},
		{desc: "user with keys", action: "DeleteUser", params: url.Values{"UserName": {"alice"}}, wantCode: "DeleteConflict.User.AccessKey"},
		{desc: "bad key status", action: "UpdateAccessKey", params: url.Values{"UserName": {"alice"}, "UserAccessKeyId": {"K"}, "Status": {"Off"}},
			wantCode: "InvalidParameter"},
		{desc: "malformed policy", action: "CreatePolicy", params: url.Values{"PolicyName": {"p1"}, "PolicyDocument": {"{"}},
			wantCode: "MalformedPolicyDocument"},
		{desc: "system policy name taken", action: "CreatePolicy", params: url.Values{"PolicyName": {"AliyunYundunCertFullAccess"},
			"PolicyDocument": {`{"Version":"1","Statement":[]}`}}, wantCode: "EntityAlreadyExists.Policy"},
		{desc: "PolicyType missing", action: "GetPolicy", params: url.Values{"PolicyName": {"p1"}}, wantCode: "MissingParameter"},
		{desc: "system policy attached", action: "AttachPolicyToUser", params: url.Values{"PolicyType": {"System"},
			"PolicyName": {"AliyunYundunCertReadOnlyAccess"}, "UserName": {"bob"}}, wantChanged: true},
		{desc: "attached twice", action: "AttachPolicyToUser", params: url.Values{"PolicyType": {"System"},
			"PolicyName": {"AliyunYundunCertReadOnlyAccess"}, "UserName": {"bob"}}, wantCode: "EntityAlreadyExists.User.Policy"},
	} {
		before := changed
		resp, err := routes[tc.action](ctx, &Call{AccountID: account, Params: values(tc.params)})
		var e *apierr.Error
		switch {
		case tc.wantCode == "" && err != nil:
			t.Fatalf("%s: %v", tc.desc, err)
		case tc.wantCode != "" && (!errors.As(err, &e) || e.Code != tc.wantCode):
			t.Fatalf("%s: err = %v, want code %s", tc.desc, err, tc.wantCode)
		}
		if (changed > before) != tc.wantChanged {
			t.Errorf("%s: Changed called %d times", tc.desc, changed-before)
		}
		if tc.action == "CreateAccessKey" && err == nil && keyID == "" {
			var body struct {
				AccessKey struct{ AccessKeyId, AccessKeySecret string }
			}
			b, _ := json.Marshal(resp)
			if err := json.Unmarshal(b, &body); err != nil || body.AccessKey.AccessKeyId == "" || body.AccessKey.AccessKeySecret == "" {
				t.Fatalf("%s: response %s", tc.desc, b)
			}
			keyID = body.AccessKey.AccessKeyId
		}
	}
	if _, err := routes["DeleteAccessKey"](ctx, &Call{AccountID: account, Params: values{"UserName": {"alice"}, "UserAccessKeyId": {keyID}}}); err != nil {
		t.Fatal(err)
	}
	if keysChanged != 1 {
		t.Errorf("KeyChanged called %d times after a delete, want 1", keysChanged)
	}
}
