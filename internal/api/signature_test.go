package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"

	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
	"github.com/certfleet/certfleet/internal/testutil"
)

// signedOnly is withRequest and withSignature around a handler that answers
// with the account and key the signature check resolved.
func signedOnly(a *API) http.Handler {
	return a.withRequest(a.withSignature(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := callFrom(r.Context())
		writeJSON(w, http.StatusOK, map[string]any{"RequestId": c.requestID, "AccountId": c.accountID, "AccessKeyId": c.accessKeyID})
	})))
}

// TestWithSignature sends requests signed by the official SDK through the
// signature middleware.
func TestWithSignature(t *testing.T) {
	t.Parallel()
	now := time.Now
	tests := []struct {
		desc   string
		clock  func() time.Time
		keyID  string // default: the fixture's active key
		secret string // default: its secret
		v1     bool
		code   string // "" for success
		status int
	}{
		{desc: "V3"},
		{desc: "V1", v1: true},
		{desc: "V3 wrong secret", secret: "wrong", code: "SignatureDoesNotMatch", status: 400},
		{desc: "V1 wrong secret", secret: "wrong", v1: true, code: "SignatureDoesNotMatch", status: 400},
		{desc: "V3 unknown key", keyID: "LTAInobody", code: "InvalidAccessKeyId.NotFound", status: 404},
		{desc: "V1 unknown key", keyID: "LTAInobody", v1: true, code: "InvalidAccessKeyId.NotFound", status: 404},
		{desc: "V3 inactive key", keyID: "LTAIinactive", secret: "inactive-secret", code: "InvalidAccessKeyId.NotFound", status: 404},
		{desc: "V1 inactive key", keyID: "LTAIinactive", secret: "inactive-secret", v1: true, code: "InvalidAccessKeyId.NotFound", status: 404},
		{desc: "V3 server clock 20 minutes ahead", clock: func() time.Time { return now().Add(20 * time.Minute) },
			code: "InvalidTimeStamp.Expired", status: 400},
		{desc: "V3 server clock 20 minutes behind", clock: func() time.Time { return now().Add(-20 * time.Minute) },
			code: "InvalidTimeStamp.Expired", status: 400},
		{desc: "V1 server clock 20 minutes ahead", v1: true, clock: func() time.Time { return now().Add(20 * time.Minute) },
			code: "InvalidTimeStamp.Expired", status: 400},
		{desc: "V3 server clock 14 minutes ahead", clock: func() time.Time { return now().Add(14 * time.Minute) }},
		{desc: "V1 server clock 14 minutes behind", v1: true, clock: func() time.Time { return now().Add(-14 * time.Minute) }},
		{desc: "V3 wrong secret and a skewed clock: the signature is reported first", secret: "wrong",
			clock: func() time.Time { return now().Add(time.Hour) }, code: "SignatureDoesNotMatch", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f := setup(t, Options{Clock: tc.clock})
			f.addKey(t, "LTAIinactive", "inactive-secret", store.AccessKeyInactive)
			keyID, sec := f.keyID, f.secret
			if tc.keyID != "" {
				keyID = tc.keyID
			}
			if tc.secret != "" {
				sec = tc.secret
			}
			// Through the whole chain, so the SDK gets real answers.
			_, err := f.sdk(t, keyID, sec, tc.v1, nil).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("signed request refused: %v", err)
				}
				return
			}
			code, status := sdkCode(t, err)
			if code != tc.code || status != tc.status {
				t.Fatalf("got %s %d, want %s %d (%v)", code, status, tc.code, tc.status, err)
			}
		})
	}
}

// TestSignatureResolvesAccount checks the middleware hands the next handler
// the key's account, and SkipSignature the root account without a signature.
func TestSignatureResolvesAccount(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	other, err := f.store.AccountEnsure(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	f.addKeyFor(t, "LTAIother", "other-secret", store.AccessKeyActive, other)
	f.addr = newServer(t, signedOnly(f.api))
	for _, tc := range []struct {
		desc    string
		keyID   string
		secret  string
		account int64
	}{
		{desc: "root key", keyID: f.keyID, secret: f.secret, account: f.root},
		{desc: "another account's key", keyID: "LTAIother", secret: "other-secret", account: other},
	} {
		body, err := callAPI(f.generic(t, tc.keyID, tc.secret, false, nil), "ListContact", nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		if fmt.Sprint(body["AccountId"]) != fmt.Sprint(tc.account) || body["AccessKeyId"] != tc.keyID {
			t.Errorf("%s: handler saw %v, want account %d key %s", tc.desc, body, tc.account, tc.keyID)
		}
	}

	skip := setup(t, Options{SkipSignature: true})
	status, _, body := serve(t, signedOnly(skip.api), newRequest("GET", "/?Action=ListContact&Version=2020-04-07", "", "", nil))
	if status != 200 || fmt.Sprint(body["AccountId"]) != fmt.Sprint(skip.root) {
		t.Fatalf("SkipSignature: %d %v, want the root account %d", status, body, skip.root)
	}
	status, header, body := serve(t, signedOnly(f.api), newRequest("GET", "/?Action=ListContact&Version=2020-04-07", "", "", nil))
	wantError(t, status, header, body, 400, "IncompleteSignature", "not signed")
}

// TestNonce checks a nonce is accepted once, is only spent by a request whose
// signature is right, and is bounded in length, on both engines: SQLite
// answers reads' nonces from memory, PostgreSQL records them in batches
// while the read runs. A replayed read is refused without being logged as a
// failed request.
func TestNonce(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, v1 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/v1=%v", engine, v1), func(t *testing.T) {
				t.Parallel()
				testNonce(t, engine, v1)
			})
		}
	}
}

func testNonce(t *testing.T, engine string, v1 bool) {
	var f *fixture
	if engine == "postgres" {
		f = setupPostgres(t)
	} else {
		f = setup(t, Options{})
	}
	logged := f.logTo()
	// The generic client lets a test choose the nonce: for V3 it is a
	// header, for V1 a query parameter; either way the SDK signs it.
	withNonce := func(n string) (map[string]string, map[string]string) {
		if v1 {
			return map[string]string{"SignatureNonce": n}, nil
		}
		return nil, map[string]string{"x-acs-signature-nonce": n}
	}
	call := func(sec, nonce string) error {
		q, h := withNonce(nonce)
		_, err := callAPI(f.generic(t, f.keyID, sec, v1, nil), "ListContact", q, h)
		return err
	}
	nonce := fmt.Sprintf("fixed-nonce-%d", time.Now().UnixNano())
	if code, _ := sdkCode(t, call("wrong", nonce)); code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %s", code)
	}
	if err := call(f.secret, nonce); err != nil {
		t.Fatalf("the nonce of a request with a bad signature was spent: %v", err)
	}
	if code, status := sdkCode(t, call(f.secret, nonce)); code != "SignatureNonceUsed" || status != 400 {
		t.Fatalf("replayed nonce: %s %d, want SignatureNonceUsed 400", code, status)
	}
	if err := call(f.secret, nonce+"-2"); err != nil {
		t.Fatalf("a fresh nonce: %v", err)
	}
	// A call that writes waits for its nonce; a read's runs alongside
	// (signature.go): the two share one set of nonces.
	create := func(nonce string) error {
		q, h := withNonce(nonce)
		if q == nil {
			q = map[string]string{}
		}
		q["Name"], q["Email"] = "ops-"+nonce, "ops@example.test"
		_, err := callAPI(f.generic(t, f.keyID, f.secret, v1, nil), "CreateContact", q, h)
		return err
	}
	if code, status := sdkCode(t, create(nonce)); code != "SignatureNonceUsed" || status != 400 {
		t.Fatalf("a write reusing a read's nonce: %s %d, want SignatureNonceUsed 400", code, status)
	}
	if err := create(nonce + "-3"); err != nil {
		t.Fatalf("a write with a fresh nonce: %v", err)
	}
	if code, status := sdkCode(t, create(nonce+"-3")); code != "SignatureNonceUsed" || status != 400 {
		t.Fatalf("a replayed write: %s %d, want SignatureNonceUsed 400", code, status)
	}
	if err := call(f.secret, strings.Repeat("n", 128)); err != nil {
		t.Fatalf("a 128-character nonce: %v", err)
	}
	if code, status := sdkCode(t, call(f.secret, strings.Repeat("n", 129))); code != "IncompleteSignature" || status != 400 {
		t.Fatalf("a 129-character nonce: %s %d, want IncompleteSignature 400", code, status)
	}
	if strings.Contains(logged.String(), "request failed") {
		t.Fatalf("a refused nonce was logged as a failed request:\n%s", logged.String())
	}
}

// TestActionSelection pins the rule: a V3 request's action is its signed
// x-acs-action header; a V1 request's is its signed Action parameter, whatever
// unsigned x-acs-* headers it also carries.
func TestActionSelection(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	t.Run("V1 with forged x-acs-action and x-acs-version headers", func(t *testing.T) {
		t.Parallel()
		forge := rewriter{edit: func(r *http.Request) {
			setRawHeader(r.Header, "x-acs-action", "UploadUserCertificate")
			setRawHeader(r.Header, "x-acs-version", "2019-01-01")
		}}
		resp, err := f.sdk(t, f.keyID, f.secret, true, forge).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
		if err != nil {
			t.Fatalf("the forged header was used: %v", err)
		}
		if resp.Body.CertificateOrderList == nil || resp.Body.TotalCount == nil {
			t.Fatalf("not a ListUserCertificateOrder answer: %v", resp.Body)
		}
	})
	t.Run("V3 with Action and Version parameters", func(t *testing.T) {
		t.Parallel()
		// Signed, so not forged; still the header decides.
		body, err := callAPI(f.generic(t, f.keyID, f.secret, false, nil), "ListContact",
			map[string]string{"Action": "DeleteContact", "Version": "2019-01-01"}, nil)
		if err != nil {
			t.Fatalf("the Action parameter was used: %v", err)
		}
		if _, ok := body["ContactList"]; !ok {
			t.Fatalf("not a ListContact answer: %v", body)
		}
	})
	t.Run("V1 with an x-acs-action header the signature covers", func(t *testing.T) {
		t.Parallel()
		// Even a header in the V1 request before signing is not the action.
		body, err := callAPI(f.generic(t, f.keyID, f.secret, true, nil), "ListContact", nil,
			map[string]string{"x-acs-action": "DeleteContact"})
		if err != nil {
			t.Fatalf("the header was used: %v", err)
		}
		if _, ok := body["ContactList"]; !ok {
			t.Fatalf("not a ListContact answer: %v", body)
		}
	})
}

// TestReplayAfterCrash replays a captured signed read to a server started
// after a crash that lost the read's nonce (SQLite answers nonces from
// memory and writes them behind): the new server must refuse it, as
// InvalidTimeStamp.Expired, while the old one still refuses it as a replay.
func TestReplayAfterCrash(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	var captured *http.Request
	var body []byte
	capture := rewriter{edit: func(r *http.Request) {
		if r.Body != nil { // a List has none
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		captured = r.Clone(context.Background())
	}}
	if _, err := f.sdk(t, f.keyID, f.secret, false, capture).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{}); err != nil {
		t.Fatalf("the captured read: %v", err)
	}
	replay := func(addr string) (int, map[string]any) {
		r := captured.Clone(context.Background())
		r.URL.Host, r.RequestURI = addr, "" // Host stays as signed
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	// The crash: the nonce, once written behind, is lost, and the run never
	// ends cleanly; a new server starts on the same file.
	var nonce string
	for k, v := range captured.Header { // the SDK's keys are lower-case, not canonical
		if strings.EqualFold(k, "x-acs-signature-nonce") {
			nonce = f.keyID + ":" + v[0]
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the nonce written behind", func() (bool, error) {
		res, err := f.store.SQL().Exec(`DELETE FROM nonces WHERE nonce = ?`, nonce)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n == 1, err
	})
	st, err := sqlite.Open(t.Context(), f.path)
	if err == nil {
		err = st.StartLocalNonces(t.Context())
	}
	if err != nil {
		t.Fatalf("the restart: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	restarted := newServer(t, New(st, f.box, slog.New(slog.DiscardHandler), nopWaker{}, registry.New(registry.Options{}), f.root, Options{}).Handler())

	if status, out := replay(restarted); status != 400 || out["Code"] != "InvalidTimeStamp.Expired" {
		t.Fatalf("replayed after the crash: %d %v, want 400 InvalidTimeStamp.Expired", status, out)
	}
	if status, out := replay(f.addr); status != 400 || out["Code"] != "SignatureNonceUsed" {
		t.Fatalf("replayed to the first server: %d %v, want 400 SignatureNonceUsed", status, out)
	}
	// A new request is served by the restarted node.
	f.addr = restarted
	if _, err := f.sdk(t, f.keyID, f.secret, false, nil).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{}); err != nil {
		t.Fatalf("a new read after the restart: %v", err)
	}
}
