package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/store/sqlite"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
	"github.com/certfleet/certfleet/internal/testutil"
)

// fixture is an API on a fresh SQLite store with one active root access key,
// served on a loopback listener for the SDK.
type fixture struct {
	api    *API
	store  *sqlstore.DB
	box    *secret.Box
	root   int64
	keyID  string
	secret string
	addr   string // host:port of the httptest server serving api.Handler()
	path   string // the SQLite file
}

type nopWaker struct{}

func (nopWaker) Wake() {}

var testMasterKey = bytes.Repeat([]byte{0x5c}, 32)

func setup(t *testing.T, opts Options) *fixture {
	t.Helper()
	return setupCatalog(t, opts, registry.New(registry.Options{}))
}

// setupCatalog is setup with the given products.
func setupCatalog(t *testing.T, opts Options, products deploy.Catalog) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "certfleet.db")
	st, err := sqlite.Open(ctx, path)
	if err == nil {
		err = st.StartLocalNonces(ctx) // as serve does
	}
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.New(testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := st.AccountEnsure(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, box: box, root: root, keyID: "LTAIunittest", secret: "unit-test-secret", path: path}
	f.addKey(t, f.keyID, f.secret, store.AccessKeyActive)
	f.api = New(st, box, slog.New(slog.DiscardHandler), nopWaker{}, products, root, opts)
	f.addr = newServer(t, f.api.Handler())
	return f
}

func (f *fixture) addKey(t *testing.T, id, sec string, status store.AccessKeyStatus) {
	t.Helper()
	f.addKeyFor(t, id, sec, status, f.root)
}

func (f *fixture) addKeyFor(t *testing.T, id, sec string, status store.AccessKeyStatus, account int64) {
	t.Helper()
	err := f.store.AccessKeyUpsert(context.Background(), store.AccessKey{ID: id, AccountID: account, Status: status,
		SecretEnc: f.box.Seal([]byte(sec), secret.PurposeAccessKey)})
	if err != nil {
		t.Fatal(err)
	}
}

// newServer serves h on loopback until the test ends and returns its host:port.
func newServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// logTo makes the API log JSON into a buffer the test can read.
func (f *fixture) logTo() *syncBuffer {
	b := &syncBuffer{}
	f.api.log = slog.New(slog.NewJSONHandler(b, nil))
	return b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (f *fixture) config(keyID, sec string, v1 bool, hc dara.HttpClient) *openapi.Config {
	cfg := &openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(sec),
		Endpoint: tea.String(f.addr), Protocol: tea.String("http")}
	if hc != nil {
		cfg.HttpClient = hc
	}
	if v1 {
		cfg.SignatureAlgorithm = tea.String("v2")
	}
	return cfg
}

// sdk is the official CAS client; hc, when not nil, carries its HTTP.
func (f *fixture) sdk(t *testing.T, keyID, sec string, v1 bool, hc dara.HttpClient) *cas.Client {
	t.Helper()
	c, err := cas.NewClient(f.config(keyID, sec, v1, hc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// generic is the SDK's generic client, for requests the CAS client cannot shape.
func (f *fixture) generic(t *testing.T, keyID, sec string, v1 bool, hc dara.HttpClient) *openapi.Client {
	t.Helper()
	c, err := openapi.NewClient(f.config(keyID, sec, v1, hc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callAPI calls action through the generic client, with extra query
// parameters and headers (which override the SDK's own, before signing).
func callAPI(c *openapi.Client, action string, query, headers map[string]string) (map[string]any, error) {
	ptrs := func(m map[string]string) map[string]*string {
		out := map[string]*string{}
		for k, v := range m {
			out[k] = tea.String(v)
		}
		return out
	}
	params := &openapiutil.Params{Action: tea.String(action), Version: tea.String(Version), Protocol: tea.String("HTTP"),
		Pathname: tea.String("/"), Method: tea.String("POST"), AuthType: tea.String("AK"), Style: tea.String("RPC"),
		ReqBodyType: tea.String("formData"), BodyType: tea.String("json")}
	resp, err := c.CallApi(params, &openapiutil.OpenApiRequest{Query: ptrs(query), Headers: ptrs(headers)}, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	body, _ := resp["body"].(map[string]any)
	return body, nil
}

// sdkCode extracts the error code and HTTP status the SDK reports.
func sdkCode(t *testing.T, err error) (string, int) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got success")
	}
	var se *tea.SDKError
	if !errors.As(err, &se) {
		t.Fatalf("not an SDK error: %T %v", err, err)
	}
	return tea.StringValue(se.Code), tea.IntValue(se.StatusCode)
}

// rewriter is a dara.HttpClient that lets edit change a request after the
// SDK signed it.
type rewriter struct{ edit func(*http.Request) }

func (rw rewriter) Call(req *http.Request, tr *http.Transport) (*http.Response, error) {
	if rw.edit != nil {
		rw.edit(req)
	}
	hc := &http.Client{}
	if tr != nil {
		hc.Transport = tr
	}
	return hc.Do(req)
}

// setRawHeader sets name exactly as spelled, dropping other spellings (the
// SDK keeps its headers under lower-case keys).
func setRawHeader(h http.Header, name, value string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
	h[name] = []string{value}
}

// serve sends r to h and returns the status, the headers and the JSON body.
func serve(t *testing.T, h http.Handler, r *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var body map[string]any
	if b := rec.Body.Bytes(); len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("response body is not a JSON object: %v: %q", err, b)
		}
	}
	return rec.Code, rec.Header(), body
}

func newRequest(method, target, contentType, body string, headers map[string]string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

var requestIDPattern = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)

// wantError asserts an error answer: status, code, the five body fields, JSON
// content type, and (when msg is set) a message containing msg.
func wantError(t *testing.T, status int, header http.Header, body map[string]any, wantStatus int, wantCode, msg string) {
	t.Helper()
	if status != wantStatus || body["Code"] != wantCode {
		t.Fatalf("got %d %v, want %d %s; body %v", status, body["Code"], wantStatus, wantCode, body)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, k := range []string{"RequestId", "HostId", "Code", "Message", "Recommend"} {
		if s, _ := body[k].(string); s == "" {
			t.Errorf("error body lacks %s: %v", k, body)
		}
	}
	if len(body) != 5 {
		t.Errorf("error body has %d fields, want 5: %v", len(body), body)
	}
	if id, _ := body["RequestId"].(string); !requestIDPattern.MatchString(id) {
		t.Errorf("RequestId %q is not an upper-case UUID", id)
	}
	if m, _ := body["Message"].(string); msg != "" && !strings.Contains(m, msg) {
		t.Errorf("Message %q does not contain %q", m, msg)
	}
}

// setupPostgres is setup on PostgreSQL (the test's own database).
func setupPostgres(t *testing.T) *fixture {
	t.Helper()
	f := setup(t, Options{})
	st, err := postgres.Open(context.Background(), testutil.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root, err := st.AccountEnsure(context.Background(), "root")
	if err != nil {
		t.Fatal(err)
	}
	f.store, f.root = st, root
	f.addKey(t, f.keyID, f.secret, store.AccessKeyActive)
	f.api = New(st, f.box, slog.New(slog.DiscardHandler), nopWaker{}, registry.New(registry.Options{}), root, Options{})
	f.addr = newServer(t, f.api.Handler())
	return f
}
