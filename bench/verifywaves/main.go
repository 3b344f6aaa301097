// Command verifywaves measures how verification and staged rollouts (waves)
// change the duration of one 50-resource deployment job.
//
//	go run ./bench/verifywaves -resources 50 -runs 3
//
// In one run, on loopback only, it builds certfleet, starts `certfleet
// serve` (fresh data directory, --local-root, the nginx reload allowed) and
// a real nginx with one TLS server block per resource (server_name
// vNN.example.test on one port, told apart by SNI) whose certificate and
// key files live under the --local-root. It then times one job of every
// local/FILE resource, from UpdateDeploymentJobStatus pending until
// DescribeDeploymentJob says success (polled every 20 ms), in four
// configurations:
//
//   - plain: write the files, reload nginx;
//   - verify: the same resources' twins with VerifyAddress (nginx's
//     address, VerifyGraceSeconds 30): each worker succeeds only once nginx
//     serves the new certificate;
//   - waves: Strategy {"Waves":[5,"50%","100%"],"BakeSeconds":0};
//   - both.
//
// Each attempt deploys a new certificate, checked afterwards with one TLS
// handshake per vhost. The table gives medians of -runs attempts and ratios
// to plain. It is not a test: it asserts no timing. docs/benchmarks-verify.md
// gives the numbers last measured. Everything it starts is stopped, and its
// temporary directory removed, at the end, on Ctrl-C, or when -timeout passes.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/certfleet/certfleet/bench/internal/benchkit"
	"github.com/certfleet/certfleet/internal/testutil/proc"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"
)

const nginxBin = "/usr/sbin/nginx"

type config struct {
	resources int
	runs      int
	timeout   time.Duration
	keep      bool
	workers   int
}

func main() {
	var c config
	flag.IntVar(&c.resources, "resources", 50, "resources (nginx vhosts) in the job")
	flag.IntVar(&c.runs, "runs", 3, "timed jobs per configuration")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on the whole benchmark, setup and cleanup included")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (logs, configs) for inspection")
	flag.IntVar(&c.workers, "workers", 1, "certfleet serve --workers: concurrent deployments (above 1, one resource's reload can read another's half-written cert/key pair and fail)")
	flag.Parse()
	if c.resources < 1 || c.resources > 999 || c.runs < 1 {
		fmt.Fprintln(os.Stderr, "verifywaves: -resources must be 1..999 and -runs at least 1")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	cancel()
	cleanups.run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifywaves:", err)
		os.Exit(1)
	}
}

// cleanups run in reverse order at the end, whatever happens.
var cleanups cleanupList

type cleanupList struct {
	mu sync.Mutex
	fs []func()
}

func (c *cleanupList) add(f func()) { c.mu.Lock(); c.fs = append(c.fs, f); c.mu.Unlock() }

func (c *cleanupList) run() {
	c.mu.Lock()
	fs := c.fs
	c.fs = nil
	c.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// variant is one configuration of the job.
type variant struct {
	name     string
	verify   bool
	strategy string
}

var variants = []variant{
	{name: "plain"},
	{name: "verify", verify: true},
	{name: "waves", strategy: `{"Waves":[5,"50%","100%"],"BakeSeconds":0}`},
	{name: "verify+waves", verify: true, strategy: `{"Waves":[5,"50%","100%"],"BakeSeconds":0}`},
}

func run(ctx context.Context, c config) error {
	if _, err := os.Stat(nginxBin); err != nil {
		return fmt.Errorf("needs nginx at %s (apt-get install nginx-light): %w", nginxBin, err)
	}
	base, err := os.MkdirTemp("", "certfleet-verifywaves-")
	if err != nil {
		return err
	}
	if base, err = filepath.EvalSymlinks(base); err != nil {
		return err
	}
	if c.keep {
		fmt.Println("keeping", base)
	} else {
		cleanups.add(func() { os.RemoveAll(base) })
	}
	binary, err := proc.Binary()
	if err != nil {
		return err
	}
	sites := make([]string, c.resources)
	for i := range sites {
		sites[i] = fmt.Sprintf("v%02d.example.test", i)
	}
	initial, err := newCert("initial")
	if err != nil {
		return err
	}
	root := filepath.Join(base, "root")
	n, err := startNginx(ctx, filepath.Join(base, "nginx"), filepath.Join(root, "tls"), sites, initial)
	if err != nil {
		return err
	}
	cf, err := startCertfleet(ctx, binary, filepath.Join(base, "data"), root, n, c.workers)
	if err != nil {
		return err
	}
	plain, err := cf.resources(n, false)
	if err != nil {
		return err
	}
	verified, err := cf.resources(n, true)
	if err != nil {
		return err
	}

	times := map[string][]time.Duration{}
	attempt := 0
	for r := range c.runs {
		order := slices.Clone(variants)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, v := range order {
			attempt++
			res := plain
			if v.verify {
				res = verified
			}
			d, err := cf.deploy(ctx, n, res, v, attempt)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", v.name, r+1, err)
			}
			fmt.Printf("run %d %-13s %8.3f s\n", r+1, v.name, d.Seconds())
			times[v.name] = append(times[v.name], d)
		}
	}
	fmt.Printf("\n%d resources (local/FILE, nginx reload each), --workers %d, median of %d runs\n\n", c.resources, c.workers, c.runs)
	fmt.Println("| configuration | median | runs | vs plain |")
	fmt.Println("|---------------|-------:|------|---------:|")
	p := median(times["plain"])
	for _, v := range variants {
		m := median(times[v.name])
		var rs []string
		for _, d := range times[v.name] {
			rs = append(rs, fmt.Sprintf("%.2f", d.Seconds()))
		}
		fmt.Printf("| %s | %.2f s | %s | %.2f× |\n", v.name, m.Seconds(), strings.Join(rs, ", "), m.Seconds()/p.Seconds())
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cert is a self-signed certificate for *.example.test and its key.
type cert struct {
	certPEM, keyPEM string
	sha             [32]byte
}

func newCert(name string) (cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cert{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return cert{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial,
		Subject:   pkix.Name{CommonName: "*.example.test", Organization: []string{"certfleet bench " + name}},
		DNSNames:  []string{"*.example.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return cert{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return cert{}, err
	}
	return cert{certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), sha: sha256.Sum256(der)}, nil
}

func waitListening(ctx context.Context, addr string, exited <-chan struct{}, logPath string) error {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("server for %s exited during start:\n%s", addr, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	log, _ := os.ReadFile(logPath)
	return fmt.Errorf("nothing listens on %s:\n%s", addr, log)
}

// nginxHost is an nginx master with one TLS server block per site on one
// loopback port, each with its own certificate and key file in tlsDir.
type nginxHost struct {
	dir, conf, addr, tlsDir string
	sites                   []string
}

func (n *nginxHost) certPath(site string) string { return filepath.Join(n.tlsDir, site+".pem") }
func (n *nginxHost) keyPath(site string) string  { return filepath.Join(n.tlsDir, site+".key") }
func (n *nginxHost) reloadCommand() string       { return nginxBin + " -s reload -c " + n.conf }

func startNginx(ctx context.Context, dir, tlsDir string, sites []string, initial cert) (*nginxHost, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	n := &nginxHost{dir: dir, conf: filepath.Join(dir, "nginx.conf"), addr: addr, tlsDir: tlsDir, sites: sites}
	for _, d := range []string{tlsDir, filepath.Join(dir, "tmp"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := benchkit.WriteNginxSites(dir, n.conf, addr, sites, n.certPath, n.keyPath, initial.certPEM, initial.keyPEM); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, nginxBin, "-e", filepath.Join(dir, "logs", "error.log"), "-c", n.conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start nginx: %w\n%s", err, out)
	}
	cleanups.add(func() { benchkit.StopByPidFile(filepath.Join(dir, "nginx.pid"), syscall.SIGQUIT) })
	return n, waitListening(ctx, addr, nil, filepath.Join(dir, "logs", "error.log"))
}

// check verifies, with one TLS handshake per vhost (SNI), that every vhost
// serves c, waiting up to 15 s for nginx's new workers to take over.
func (n *nginxHost) check(ctx context.Context, c cert) error {
	deadline := time.Now().Add(15 * time.Second)
	for _, site := range n.sites {
		for {
			got, err := benchkit.Served(n.addr, site)
			if err == nil && got == c.sha {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("vhost %s does not serve the deployed certificate (err %v)", site, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// certfleetRun is a running `certfleet serve` with a contact.
type certfleetRun struct {
	addr, logPath string
	cas           *cas.Client
	generic       *openapi.Client
	contact       int64
}

func startCertfleet(ctx context.Context, binary, dataDir, root string, n *nginxHost, workers int) (*certfleetRun, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	keyID, secret := "LTAIbenchverify", rand.Text()
	r := &certfleetRun{logPath: dataDir + ".log"}
	node, err := benchkit.StartCertfleet(ctx, benchkit.Certfleet{Binary: binary, KeyID: keyID, Secret: secret, LogPath: r.logPath,
		Args: []string{"--data-dir", dataDir, "--workers", strconv.Itoa(workers), "--per-host", "64",
			"--rate-limit", "-1", "--log-format", "json", "--local-root", root, "--local-reload-allow", n.reloadCommand()}})
	if err != nil {
		return nil, err
	}
	cleanups.add(func() { node.Stop(30 * time.Second) })
	addr := node.Addr()
	r.addr = addr
	cfg := &openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(secret), Endpoint: tea.String(addr), Protocol: tea.String("http")}
	if r.cas, err = cas.NewClient(cfg); err != nil {
		return nil, err
	}
	if r.generic, err = openapi.NewClient(cfg); err != nil {
		return nil, err
	}
	body, err := r.call("CreateContact", map[string]string{"Name": "ops", "Email": "ops@example.test"})
	if err != nil {
		return nil, fmt.Errorf("create contact: %w", err)
	}
	if r.contact, err = benchkit.IDOf(body, "ContactId"); err != nil {
		return nil, err
	}
	return r, nil
}

// resources creates one local/FILE resource per vhost, writing its files
// and reloading nginx; with verify, nginx's address is its VerifyAddress.
func (r *certfleetRun) resources(n *nginxHost, verify bool) ([]int64, error) {
	var ids []int64
	for _, site := range n.sites {
		cfg := map[string]any{"CertPath": n.certPath(site), "KeyPath": n.keyPath(site), "ReloadCommand": n.reloadCommand()}
		name := site
		if verify {
			cfg["VerifyAddress"], cfg["VerifyGraceSeconds"] = n.addr, 30
			name += " (verified)"
		}
		b, _ := json.Marshal(cfg)
		body, err := r.call("CreateCloudResource", map[string]string{"CloudName": "local", "CloudProduct": "FILE", "Domain": site,
			"Name": name, "Config": string(b)})
		if err != nil {
			return nil, fmt.Errorf("create resource %s: %w", site, err)
		}
		id, err := benchkit.IDOf(body, "Id")
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// deploy uploads a new certificate, creates a job of resources in
// configuration v and times it from pending until success; then checks
// that nginx serves the certificate on every vhost.
func (r *certfleetRun) deploy(ctx context.Context, n *nginxHost, resources []int64, v variant, attempt int) (time.Duration, error) {
	c, err := newCert(fmt.Sprint(attempt))
	if err != nil {
		return 0, err
	}
	up, err := r.cas.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(fmt.Sprintf("bench-%d", attempt)),
		Cert: tea.String(c.certPEM), Key: tea.String(c.keyPEM)})
	if err != nil {
		return 0, fmt.Errorf("upload: %w", err)
	}
	q := map[string]string{"Name": fmt.Sprintf("%s-%d", v.name, attempt), "JobType": "user",
		"CertIds": strconv.FormatInt(tea.Int64Value(up.Body.CertId), 10), "ResourceIds": benchkit.JoinIDs(resources),
		"ContactIds": strconv.FormatInt(r.contact, 10)}
	if v.strategy != "" {
		q["Strategy"] = v.strategy
	}
	body, err := r.call("CreateDeploymentJob", q)
	if err != nil {
		return 0, fmt.Errorf("create job: %w", err)
	}
	job, err := benchkit.IDOf(body, "JobId")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := r.cas.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(job), Status: tea.String("pending")}); err != nil {
		return 0, fmt.Errorf("start job: %w", err)
	}
	for {
		d, err := r.cas.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(job)})
		if err != nil {
			return 0, fmt.Errorf("describe job %d: %w", job, err)
		}
		switch st := tea.StringValue(d.Body.Status); st {
		case "success":
			took := time.Since(start)
			return took, n.check(ctx, c)
		case "error":
			return 0, fmt.Errorf("job %d ended error (log: %s)", job, r.logPath)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *certfleetRun) call(action string, query map[string]string) (map[string]any, error) {
	return benchkit.CallOwn(r.generic, action, query)
}
