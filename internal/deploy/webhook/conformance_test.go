package webhook

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

// installer is a receiver that does what docs/deployers.md asks of one: it
// installs each delivered bundle for its ResourceId, and on a rollback with
// CertId 0 removes what it installed. Paths other than "/" misbehave.
type installer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	serving map[int64][]byte // ResourceId → SHA-256 of FullChain and PrivateKey
	got     map[int64]int    // deliveries per ResourceId
	reached chan struct{}    // closed when /stall receives a delivery
	once    sync.Once
}

func newInstaller(t *testing.T) *installer {
	in := &installer{serving: map[int64][]byte{}, got: map[int64]int{}, reached: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", in.install)
	// /stall holds every delivery until the client gives up.
	mux.HandleFunc("POST /stall", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices the client leaving only once the body is read
		in.once.Do(func() { close(in.reached) })
		<-r.Context().Done()
	})
	// /echo answers 500 quoting the request, private key included.
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(b)
	})
	// /refuse answers 403 quoting the request.
	mux.HandleFunc("POST /refuse", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		http.Error(w, "refused: "+string(b), http.StatusForbidden)
	})
	in.srv = httptest.NewServer(mux)
	t.Cleanup(in.srv.Close)
	return in
}

func (in *installer) install(w http.ResponseWriter, r *http.Request) {
	var p Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.got[p.ResourceID]++
	switch {
	case p.Action == "rollback" && p.CertID == 0:
		delete(in.serving, p.ResourceID)
	case p.FullChain == "" || p.PrivateKey == "":
		http.Error(w, "no certificate or key", http.StatusUnprocessableEntity)
	default:
		sum := sha256.Sum256([]byte(p.FullChain + p.PrivateKey))
		in.serving[p.ResourceID] = sum[:]
	}
}

// TestConformance runs the deployer contract suite against a real HTTP
// receiver, with signed deliveries.
func TestConformance(t *testing.T) {
	t.Parallel()
	in := newInstaller(t)
	var n atomic.Int64
	target := func(path string) deploy.Target {
		cfg, _ := json.Marshal(map[string]any{"Url": in.srv.URL + path, "TimeoutSeconds": 30})
		return deploy.Target{ResourceID: n.Add(1), CloudName: "webhook", CloudProduct: "WEBHOOK", Domain: "www.example.com",
			Config: cfg, Access: &deploy.Access{ID: 5, CloudName: "webhook", SecretKey: secret}}
	}
	deploytest.Run(t, deploytest.Harness{
		Deployer: New(Options{}),
		Target:   func(*testing.T) deploy.Target { return target("/") },
		Served: func(_ *testing.T, tgt deploy.Target) []byte {
			in.mu.Lock()
			defer in.mu.Unlock()
			return in.serving[tgt.ResourceID]
		},
		Effects: func(_ *testing.T, tgt deploy.Target) int {
			in.mu.Lock()
			defer in.mu.Unlock()
			return in.got[tgt.ResourceID]
		},
		BadConfigs: []deploytest.BadConfig{
			{Desc: "no Url", Config: json.RawMessage(`{"TimeoutSeconds":5}`)},
			{Desc: "an ftp Url", Config: json.RawMessage(`{"Url":"ftp://example.com/x"}`)},
			{Desc: "a Url without a host", Config: json.RawMessage(`{"Url":"https:///x"}`)},
			{Desc: "TimeoutSeconds too large", Config: json.RawMessage(fmt.Sprintf(`{"Url":"%s","TimeoutSeconds":301}`, in.srv.URL))},
			{Desc: "an unknown key", Config: json.RawMessage(fmt.Sprintf(`{"Url":"%s","Secret":"x"}`, in.srv.URL))},
		},
		Stall: func(*testing.T) (deploy.Target, <-chan struct{}) { return target("/stall"), in.reached },
		Failing: []deploytest.Failing{
			{Desc: "a receiver answering 500 with the request", Target: func(*testing.T) deploy.Target { return target("/echo") }},
			{Desc: "a receiver answering 403 with the request", Target: func(*testing.T) deploy.Target { return target("/refuse") }},
			{Desc: "nothing listening", Target: func(*testing.T) deploy.Target {
				tgt := target("/")
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Close()
				tgt.Config, _ = json.Marshal(map[string]any{"Url": srv.URL + "/?token=" + secret})
				return tgt
			}},
		},
	})
}
