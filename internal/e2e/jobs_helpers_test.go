package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// callOwn calls one of certfleet's own operations through the SDK's generic
// client (the CAS SDK has no method for them).
func (s *server) callOwn(action string, query map[string]string) (map[string]any, error) {
	s.t.Helper()
	cfg := &client.Config{AccessKeyId: tea.String(s.keyID), AccessKeySecret: tea.String(s.secret),
		Endpoint: tea.String(s.addr), Protocol: tea.String("http")}
	c, err := client.NewClient(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	q := map[string]*string{}
	for k, v := range query {
		q[k] = tea.String(v)
	}
	params := &openapiutil.Params{Action: tea.String(action), Version: tea.String("2020-04-07"), Protocol: tea.String("HTTP"),
		Pathname: tea.String("/"), Method: tea.String("POST"), AuthType: tea.String("AK"), Style: tea.String("RPC"),
		ReqBodyType: tea.String("formData"), BodyType: tea.String("json")}
	resp, err := c.CallApi(params, &openapiutil.OpenApiRequest{Query: q}, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	body, _ := resp["body"].(map[string]any)
	return body, nil
}

func (s *server) mustOwn(action string, query map[string]string) map[string]any {
	s.t.Helper()
	body, err := s.callOwn(action, query)
	if err != nil {
		s.t.Fatalf("%s: %v", action, err)
	}
	return body
}

func idOf(t *testing.T, body map[string]any, field string) int64 {
	t.Helper()
	switch v := body[field].(type) {
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			t.Fatalf("%s = %v", field, v)
		}
		return n
	case float64:
		return int64(v)
	}
	t.Fatalf("no %s in %v", field, body)
	return 0
}

func jsonConfig(v map[string]any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// uploadCert uploads a fresh certificate for names and returns its ID and chain.
func uploadCert(t *testing.T, c *cas.Client, name string, names ...string) (int64, certstest.Chain) {
	t.Helper()
	ch := certstest.New(t, certstest.Options{DNSNames: names})
	up, err := c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(name), Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return tea.Int64Value(up.Body.CertId), ch
}

func (s *server) contact() int64 {
	return idOf(s.t, s.mustOwn("CreateContact", map[string]string{"Name": "ops", "Email": "ops@example.test"}), "ContactId")
}

// receiver is a webhook target that records deliveries and can be told to fail.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      map[string][]map[string]any // resource domain → payloads
	inflight map[string]int
	overlap  int
	failures map[string]int // domain → remaining failures (status 503)
	status   map[string]int // domain → fixed status to answer
	delay    time.Duration
	total    int
	served   chan struct{} // closed and replaced after each request
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: map[string][]map[string]any{}, inflight: map[string]int{}, failures: map[string]int{}, status: map[string]int{},
		served: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var p map[string]any
	json.Unmarshal(body, &p)
	domain, _ := p["Domain"].(string)
	r.mu.Lock()
	r.inflight[domain]++
	if r.inflight[domain] > 1 {
		r.overlap++
	}
	delay := r.delay
	r.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight[domain]--
	r.total++
	close(r.served)
	r.served = make(chan struct{})
	if st := r.status[domain]; st != 0 {
		w.WriteHeader(st)
		fmt.Fprintf(w, "configured to answer %d", st)
		return
	}
	if r.failures[domain] > 0 {
		r.failures[domain]--
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "try later")
		return
	}
	r.got[domain] = append(r.got[domain], p)
	w.WriteHeader(http.StatusOK)
}

// waitTotal waits until the receiver has answered n requests in all.
func (r *receiver) waitTotal(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		total, served := r.total, r.served
		r.mu.Unlock()
		if total >= n {
			return
		}
		select {
		case <-served:
		case <-deadline:
			t.Fatalf("the receiver answered %d requests in %v, want %d", total, timeout, n)
		}
	}
}

func (r *receiver) last(domain string) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.got[domain]
	if len(g) == 0 {
		return nil
	}
	return g[len(g)-1]
}

func (s *server) webhookResource(url, domain string) int64 {
	return idOf(s.t, s.mustOwn("CreateCloudResource", map[string]string{"CloudName": "webhook", "CloudProduct": "WEBHOOK",
		"Domain": domain, "Name": domain, "Config": jsonConfig(map[string]any{"Url": url, "TimeoutSeconds": 5})}), "Id")
}

func joinIDs(ids ...int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

func (s *server) jobStatus(c *cas.Client, jobID int64) string {
	s.t.Helper()
	d, err := c.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(jobID)})
	if err != nil {
		s.t.Fatalf("describe job %d: %v", jobID, err)
	}
	return tea.StringValue(d.Body.Status)
}

func (s *server) waitJob(c *cas.Client, jobID int64, timeout time.Duration, want ...string) string {
	s.t.Helper()
	var st string
	waitFor(s.t, timeout, fmt.Sprintf("job %d to reach %v", jobID, want), func() (bool, error) {
		st = s.jobStatus(c, jobID)
		for _, w := range want {
			if st == w {
				return true, nil
			}
		}
		return false, nil
	})
	return st
}

func (s *server) workers(c *cas.Client, jobID int64) []*cas.ListWorkerResourceResponseBodyData {
	s.t.Helper()
	r, err := c.ListWorkerResource(&cas.ListWorkerResourceRequest{JobId: tea.Int64(jobID), ShowSize: tea.Int32(1000)})
	if err != nil {
		s.t.Fatalf("list workers: %v", err)
	}
	return r.Body.Data
}
