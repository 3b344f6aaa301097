// Package kubetest runs a real Kubernetes control plane for tests: etcd and
// kube-apiserver, built by scripts/k8s-testbin.sh, on loopback ports, with
// RBAC authorization, client-certificate authentication for an admin user
// (group system:masters) and service-account tokens (TokenRequest) for users
// with chosen rights. One control plane serves a whole test binary: Start
// starts it on first use and Stop (from TestMain) ends it.
//
// It is for tests only. It is not envtest: no CRDs, no kubectl, nothing but
// the two processes and the clients a test needs; and no controller runs, so
// a Deployment never gets pods (its object is all a test looks at).
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/certfleet/certfleet/internal/testutil"
)

// Versions are the binaries' versions, the folder name scripts/k8s-testbin.sh
// builds into.
const Versions = "kube-apiserver-v1.37.2_etcd-v3.7.3"

// Cluster is a running control plane.
type Cluster struct {
	// Server is the apiserver's https://127.0.0.1:port address.
	Server string
	// CAPEM is the CA of the apiserver's serving certificate (and of client
	// certificates).
	CAPEM []byte
	// Admin is a client config for a system:masters user.
	Admin *rest.Config
	// Client is a clientset over Admin.
	Client *kubernetes.Clientset

	dir      string
	procs    []*proc // apiserver first, then etcd: the stop order
	adminCrt []byte
	adminKey []byte
}

var (
	mu      sync.Mutex
	running *Cluster
	failed  error
)

// BinDir returns the directory holding kube-apiserver and etcd:
// $CERTFLEET_K8S_TESTBIN, else $KUBEBUILDER_ASSETS, else the cache directory
// scripts/k8s-testbin.sh builds into. "" when none has both.
func BinDir() string {
	var cands []string
	for _, env := range []string{"CERTFLEET_K8S_TESTBIN", "KUBEBUILDER_ASSETS"} {
		if v := os.Getenv(env); v != "" {
			cands = append(cands, v)
		}
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if cache != "" {
		cands = append(cands, filepath.Join(cache, "certfleet", "k8s-testbin", Versions))
	}
	for _, d := range cands {
		if isExec(filepath.Join(d, "kube-apiserver")) && isExec(filepath.Join(d, "etcd")) {
			return d
		}
	}
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start returns the test binary's control plane, starting it on first use
// (about 10-20 s). Without the binaries the test is skipped, or fails in CI
// (testutil.Missing). Heavy: callers skip under -short first.
func Start(t testing.TB) *Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if running != nil {
		return running
	}
	if failed != nil {
		t.Fatalf("kube-apiserver did not start earlier in this run: %v", failed)
	}
	dir := BinDir()
	if dir == "" {
		testutil.Missing(t, "kube-apiserver and etcd", "run scripts/k8s-testbin.sh (builds them into the cache directory, several minutes)")
	}
	c, err := start(dir)
	if err != nil {
		failed = err
		t.Fatalf("start kube-apiserver: %v", err)
	}
	running = c
	return c
}

// Stop ends the control plane if one was started and deletes its files.
// TestMain calls it after m.Run.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if running != nil {
		running.stop()
		running = nil
	}
}

// Main is a TestMain that stops the control plane after the tests.
func Main(m interface{ Run() int }) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// proc is a started process and a channel closed when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", filepath.Base(cmd.Path), err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (c *Cluster) stop() {
	for _, p := range c.procs {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	os.RemoveAll(c.dir)
}

func start(bin string) (_ *Cluster, err error) {
	dir, err := os.MkdirTemp("", "certfleet-kubetest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	pki, err := writePKI(dir)
	if err != nil {
		return nil, err
	}
	c.CAPEM, c.adminCrt, c.adminKey = pki.ca, pki.adminCrt, pki.adminKey

	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = testutil.PickPort(); err != nil {
			return nil, err
		}
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := startProc(exec.Command(filepath.Join(bin, "etcd"),
		"--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--unsafe-no-fsync=true", "--log-level=warn"), filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, etcd)
	if err := waitHTTP(etcdURL+"/health", nil, 60*time.Second, etcd); err != nil {
		return nil, fmt.Errorf("etcd: %w\n%s", err, tail(filepath.Join(dir, "etcd.log")))
	}

	c.Server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	apisrv, err := startProc(exec.Command(filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--tls-cert-file="+pki.serverCrtFile, "--tls-private-key-file="+pki.serverKeyFile,
		"--client-ca-file="+pki.caFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+pki.saKeyFile,
		"--service-account-signing-key-file="+pki.saKeyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--enable-priority-and-fairness=false",
		// No kubernetes Service endpoints: an advertised loopback address is
		// refused by the reconciler, and no pod would use them anyway.
		"--endpoint-reconciler-type=none",
		"--v=0"), filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	c.procs = append([]*proc{apisrv}, c.procs...)

	c.Admin = &rest.Config{Host: c.Server, QPS: 1000, Burst: 2000, TLSClientConfig: rest.TLSClientConfig{
		CAData: c.CAPEM, CertData: c.adminCrt, KeyData: c.adminKey}}
	hc, err := rest.HTTPClientFor(c.Admin)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(c.Server+"/readyz", hc, 120*time.Second, apisrv); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w\n%s", err, tail(filepath.Join(dir, "kube-apiserver.log")))
	}
	if c.Client, err = kubernetes.NewForConfig(c.Admin); err != nil {
		return nil, err
	}
	// The default service account of a namespace is made by a controller
	// that does not run here: tests make their own service accounts.
	return c, nil
}

// waitHTTP polls url until it answers 200, the process exits or timeout
// passes: the processes announce readiness only there.
func waitHTTP(url string, hc *http.Client, timeout time.Duration, p *proc) error {
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			b := new(bytes.Buffer)
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(b.String()))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before %s answered (last: %s)", url, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s: %s", timeout, last)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

type pkiFiles struct {
	ca, adminCrt, adminKey                          []byte
	caFile, serverCrtFile, serverKeyFile, saKeyFile string
}

func writePKI(dir string) (pkiFiles, error) {
	var p pkiFiles
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return p, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	issue := func(serial int64, tmpl *x509.Certificate) (crtPEM, keyPEM []byte, err error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kd, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
	}
	srvCrt, srvKey, err := issue(2, &x509.Certificate{Subject: pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return p, err
	}
	if p.adminCrt, p.adminKey, err = issue(3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kubetest-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return p, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return p, err
	}
	p.caFile = filepath.Join(dir, "ca.crt")
	p.serverCrtFile = filepath.Join(dir, "server.crt")
	p.serverKeyFile = filepath.Join(dir, "server.key")
	p.saKeyFile = filepath.Join(dir, "sa.key")
	for f, b := range map[string][]byte{p.caFile: p.ca, p.serverCrtFile: srvCrt, p.serverKeyFile: srvKey,
		p.saKeyFile: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER})} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return p, err
		}
	}
	return p, nil
}

// AdminKubeconfig is a kubeconfig for the admin user with everything inline,
// its current context named "kubetest" (and a second context "other" that
// points at a closed port, so a test can check Context is honoured).
func (c *Cluster) AdminKubeconfig() []byte {
	enc := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority-data: %s
- name: nowhere
  cluster:
    server: https://127.0.0.1:1
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: admin}
- name: other
  context: {cluster: nowhere, user: admin}
current-context: kubetest
`, c.Server, enc(c.CAPEM), enc(c.CAPEM), enc(c.adminCrt), enc(c.adminKey))
}

// Namespace creates a namespace named prefix plus a random suffix and
// returns its name; it is deleted when the test ends.
func (c *Cluster) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns, err := c.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		c.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// Token creates a service account in ns bound to a Role in ns with rules
// (none: a user without any right) and returns a bearer token for it.
func (c *Cluster) Token(t testing.TB, ns string, rules ...rbacv1.PolicyRule) string {
	t.Helper()
	return c.token(t, ns, false, rules)
}

// ClusterToken is Token with a ClusterRole and ClusterRoleBinding: rights in
// every namespace.
func (c *Cluster) ClusterToken(t testing.TB, ns string, rules ...rbacv1.PolicyRule) string {
	t.Helper()
	return c.token(t, ns, true, rules)
}

func (c *Cluster) token(t testing.TB, ns string, cluster bool, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "certfleet-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service account: %v", err)
	}
	if len(rules) > 0 {
		subj := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}}
		if cluster {
			cr, err := c.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "certfleet-"}, Rules: rules}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create cluster role: %v", err)
			}
			if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "certfleet-"}, Subjects: subj,
				RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name}}, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create cluster role binding: %v", err)
			}
		} else {
			r, err := c.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "certfleet-"}, Rules: rules}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create role: %v", err)
			}
			if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "certfleet-"}, Subjects: subj,
				RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: r.Name}}, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create role binding: %v", err)
			}
		}
	}
	exp := int64(3600)
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return tr.Status.Token
}
