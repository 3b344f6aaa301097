// Package pebble runs Let's Encrypt's ACME test server, pebble, and its
// companion pebble-challtestsrv (the DNS server pebble resolves names with,
// managed over HTTP) on loopback for tests, plus a small RFC 2136 server
// that applies TSIG-signed updates to challtestsrv's records.
//
// It is not a fake: the binaries are the real ones, v2.10.3, installed by
// scripts/install-pebble.sh (.ci/run runs it).
package pebble

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testutil"
)

// Version is the pebble release the tests run.
const Version = "v2.10.3"

// Options of Start.
type Options struct {
	// HTTPPort is the port pebble validates http-01 challenges on (at the
	// address challtestsrv resolves every name to: 127.0.0.1). 0: a free one.
	HTTPPort int
	// Validity of issued certificates. Defaults to 90 days.
	Validity time.Duration
	// EAB, when set, makes external account binding required, with these
	// key IDs and base64url HMAC keys.
	EAB map[string]string
}

// Server is a running pebble with its challtestsrv.
type Server struct {
	// DirectoryURL is pebble's ACME directory.
	DirectoryURL string
	// TrustedCA is the PEM CA that signed pebble's TLS certificate (an
	// issuer's TrustedCA).
	TrustedCA string
	// DNSAddr is challtestsrv's DNS server (host:port), pebble's resolver.
	DNSAddr string
	// HTTPPort is where pebble looks for http-01 answers.
	HTTPPort int
	mgmt     string // challtestsrv management base URL
	// PebbleMgmt is pebble's management base URL (/roots/0 …).
	PebbleMgmt string
	pebble     *exec.Cmd
	logs       *syncBuffer
}

// syncBuffer is a buffer both processes write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// binDir is where scripts/install-pebble.sh puts the binaries.
func binDir() string {
	if d := os.Getenv("CERTFLEET_PEBBLE_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "certfleet", "pebble-"+Version)
}

// Binary returns the path of name (pebble or pebble-challtestsrv), or
// reports it missing (skip locally, fail in CI).
func Binary(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(binDir(), name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	testutil.Missing(t, name+" "+Version, "run scripts/install-pebble.sh")
	return ""
}

// Start runs challtestsrv and pebble for the test; both stop at its end.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	pebbleBin, challBin := Binary(t, "pebble"), Binary(t, "pebble-challtestsrv")
	if o.HTTPPort == 0 {
		o.HTTPPort = testutil.FreePort(t)
	}
	if o.Validity == 0 {
		o.Validity = 90 * 24 * time.Hour
	}
	dir := t.TempDir()
	s := &Server{HTTPPort: o.HTTPPort, logs: &syncBuffer{}}
	dnsPort, mgmtPort := testutil.FreePort(t), testutil.FreePort(t)
	s.DNSAddr = fmt.Sprintf("127.0.0.1:%d", dnsPort)
	s.mgmt = fmt.Sprintf("http://127.0.0.1:%d", mgmtPort)
	chall := exec.Command(challBin, "-dnsserver", s.DNSAddr, "-management", fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	chall.Stdout, chall.Stderr = s.logs, s.logs
	start(t, chall)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", mgmtPort), s.logs)

	caPEM, certFile, keyFile := tlsFiles(t, dir)
	s.TrustedCA = caPEM
	port, pmgmt := testutil.FreePort(t), testutil.FreePort(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": fmt.Sprintf("127.0.0.1:%d", port), "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", pmgmt),
		"certificate": certFile, "privateKey": keyFile, "httpPort": o.HTTPPort, "tlsPort": testutil.FreePort(t),
		"ocspResponderURL": "", "externalAccountBindingRequired": len(o.EAB) > 0, "externalAccountMACKeys": o.EAB, "retryAfter": map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm": "ecdsa",
		"profiles":     map[string]any{"default": map[string]any{"description": "tests", "validityPeriod": int64(o.Validity.Seconds())}},
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.pebble = exec.Command(pebbleBin, "-config", confFile, "-dnsserver", s.DNSAddr)
	// Deterministic: no sleeps before validation, no rejected nonces, no
	// reused authorizations (each order answers its own challenges).
	s.pebble.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0",
		"PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_CHAIN_LENGTH=2")
	s.pebble.Stdout, s.pebble.Stderr = s.logs, s.logs
	start(t, s.pebble)
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), s.logs)
	s.DirectoryURL = fmt.Sprintf("https://127.0.0.1:%d/dir", port)
	s.PebbleMgmt = fmt.Sprintf("https://127.0.0.1:%d", pmgmt)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble logs:\n%s", s.Logs())
		}
	})
	return s
}

// Logs returns what pebble and challtestsrv printed.
func (s *Server) Logs() string { return s.logs.String() }

// Orders counts the orders pebble created (its "Added order" log lines).
func (s *Server) Orders() int { return strings.Count(s.Logs(), "Added order") }

// ClearA makes challtestsrv answer A queries for host with 127.0.0.1 again.
func (s *Server) ClearA(t testing.TB, host string) {
	t.Helper()
	s.post(t, "/clear-a", map[string]any{"host": dnsFqdn(host)})
}

// SetA makes challtestsrv answer A queries for host with addr (instead of 127.0.0.1).
func (s *Server) SetA(t testing.TB, host, addr string) {
	t.Helper()
	s.post(t, "/add-a", map[string]any{"host": dnsFqdn(host), "addresses": []string{addr}})
}

func start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

func waitTCP(t testing.TB, addr string, logs *syncBuffer) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, addr+" listening", func() (bool, error) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
}

// SetTXT publishes a TXT record in challtestsrv (a manual DNS answer).
func (s *Server) SetTXT(t testing.TB, host, value string) {
	t.Helper()
	s.post(t, "/set-txt", map[string]string{"host": dnsFqdn(host), "value": value})
}

// ClearTXT removes host's TXT records.
func (s *Server) ClearTXT(t testing.TB, host string) {
	t.Helper()
	s.post(t, "/clear-txt", map[string]string{"host": dnsFqdn(host)})
}

func dnsFqdn(h string) string {
	if !strings.HasSuffix(h, ".") {
		return h + "."
	}
	return h
}

func (s *Server) post(t testing.TB, path string, body any) {
	t.Helper()
	if err := postJSON(s.mgmt+path, body); err != nil {
		t.Fatal(err)
	}
}

func postJSON(url string, body any) error {
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("challtestsrv %s: %s", url, resp.Status)
	}
	return nil
}

// tlsFiles writes a CA and a certificate for 127.0.0.1/localhost signed by
// it, and returns the CA's PEM and the two file names.
func tlsFiles(t testing.TB, dir string) (caPEM, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certfleet test pebble TLS CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), certFile, keyFile
}

// RootPEM returns pebble's current issuing root (what certificates it
// issues chain to), from its management interface.
func (s *Server) RootPEM(t testing.TB) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(s.TrustedCA))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := c.Get(s.PebbleMgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return buf.String()
}
