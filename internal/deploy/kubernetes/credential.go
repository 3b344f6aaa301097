package kubernetes

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

// accessConfig is a kubernetes CloudAccess's Config.
type accessConfig struct {
	Context              string
	Server               string
	CertificateAuthority string
	InCluster            bool
}

// kubeClient is a clientset for one credential and account, and the
// server's address for messages.
type kubeClient struct {
	cs     kubernetes.Interface
	server string
}

// clients keeps one clientset per (account, credential), so that its
// connections are reused across deployments and never across accounts,
// whose egress policies differ.
type clients struct {
	egress  *egress.Dialer
	timeout time.Duration
	mu      sync.Mutex
	m       map[string]*kubeClient
}

func newClients(o Options) *clients {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &clients{egress: o.Egress, timeout: o.Timeout, m: map[string]*kubeClient{}}
}

// inClusterConfig is rest.InClusterConfig; tests replace it.
var inClusterConfig = rest.InClusterConfig

func (c *clients) get(t deploy.Target) (*kubeClient, error) {
	a := t.Access
	if a == nil {
		return nil, deploy.Permanentf("kubernetes: the resource has no CloudAccessId; create a kubernetes CloudAccess (SecretKey: a kubeconfig, or a bearer token with Config Server)")
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d\x00%d\x00%s\x00%s", t.AccountID, a.ID, a.SecretKey, a.Config)))
	key := hex.EncodeToString(sum[:])
	c.mu.Lock()
	kc, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return kc, nil
	}
	cfg, err := restConfig(a)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = c.timeout
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "certfleet"
	cfg.WarningHandler = rest.NoWarnings{} // client-go would print them to stderr through klog
	// Every connection goes through the egress policy; a proxy would
	// connect where the policy never looked.
	cfg.Dial = c.egress.For(t.AccountID).DialContext
	cfg.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, deploy.Permanentf("kubernetes: CloudAccess %d: %v", a.ID, err)
	}
	kc = &kubeClient{cs: cs, server: cfg.Host}
	c.mu.Lock()
	if len(c.m) > 1024 { // credentials rotated many times: start over
		clear(c.m)
	}
	c.m[key] = kc
	c.mu.Unlock()
	return kc, nil
}

// restConfig turns a CloudAccess into a client config. Its errors are
// permanent and never quote SecretKey.
func restConfig(a *deploy.Access) (*rest.Config, error) {
	var ac accessConfig
	if err := deploy.DecodeFields(fmt.Sprintf("kubernetes CloudAccess %d", a.ID), "Config", Access.Config, a.Config, &ac); err != nil {
		return nil, err
	}
	who := fmt.Sprintf("kubernetes: CloudAccess %d", a.ID)
	switch {
	case ac.InCluster:
		if ac.Server != "" || ac.Context != "" || ac.CertificateAuthority != "" {
			return nil, deploy.Permanentf("%s: InCluster takes no Server, Context or CertificateAuthority", who)
		}
		cfg, err := inClusterConfig()
		if err != nil {
			return nil, deploy.Permanentf("%s: InCluster: %v (certfleet must run in a pod with a service account)", who, err)
		}
		return cfg, nil
	case ac.Server != "":
		u, err := url.Parse(ac.Server)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, deploy.Permanentf("%s: Config Server must be an https:// address like https://k8s.example.com:6443", who)
		}
		if ac.Context != "" {
			return nil, deploy.Permanentf("%s: Context applies to a kubeconfig, not to a bearer token with Server", who)
		}
		if strings.TrimSpace(ac.CertificateAuthority) == "" {
			return nil, deploy.Permanentf("%s: with Server, set CertificateAuthority to the PEM CA of the API server's certificate", who)
		}
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(ac.CertificateAuthority)) {
			return nil, deploy.Permanentf("%s: CertificateAuthority holds no PEM certificate", who)
		}
		tok := strings.TrimSpace(a.SecretKey)
		if tok == "" || strings.ContainsAny(tok, " \n\t") {
			return nil, deploy.Permanentf("%s: with Server, SecretKey must be a bearer token (one line, no spaces)", who)
		}
		return &rest.Config{Host: ac.Server, BearerToken: tok,
			TLSClientConfig: rest.TLSClientConfig{CAData: []byte(ac.CertificateAuthority)}}, nil
	}
	if ac.CertificateAuthority != "" {
		return nil, deploy.Permanentf("%s: CertificateAuthority applies with Server (a bearer token); a kubeconfig carries its own certificate-authority-data", who)
	}
	kc, err := clientcmd.Load([]byte(a.SecretKey))
	if err != nil || len(kc.Contexts) == 0 {
		// The parser's message may quote the document: not shown.
		return nil, deploy.Permanentf("%s: SecretKey is not a kubeconfig with a context (to use a bearer token, set Config Server and CertificateAuthority)", who)
	}
	name := ac.Context
	if name == "" {
		name = kc.CurrentContext
	}
	if name == "" {
		return nil, deploy.Permanentf("%s: the kubeconfig has no current-context; set Config Context to one of %s", who, contextNames(kc))
	}
	ctx, ok := kc.Contexts[name]
	if !ok {
		return nil, deploy.Permanentf("%s: the kubeconfig has no context %q; it has %s", who, name, contextNames(kc))
	}
	cl, ok := kc.Clusters[ctx.Cluster]
	if !ok {
		return nil, deploy.Permanentf("%s: context %q names cluster %q, which the kubeconfig does not define", who, name, ctx.Cluster)
	}
	user, ok := kc.AuthInfos[ctx.AuthInfo]
	if !ok {
		return nil, deploy.Permanentf("%s: context %q names user %q, which the kubeconfig does not define", who, name, ctx.AuthInfo)
	}
	// What would read files or run programs on certfleet's server, or leave
	// the egress policy, is refused: the kubeconfig comes from a user.
	switch {
	case cl.CertificateAuthority != "":
		return nil, deploy.Permanentf("%s: cluster %q reads certificate-authority from a file; inline it as certificate-authority-data", who, ctx.Cluster)
	case cl.ProxyURL != "":
		return nil, deploy.Permanentf("%s: cluster %q sets proxy-url, which certfleet does not use (connections follow its egress policy)", who, ctx.Cluster)
	case cl.InsecureSkipTLSVerify:
		return nil, deploy.Permanentf("%s: cluster %q sets insecure-skip-tls-verify; certfleet sends private keys to it, so give certificate-authority-data instead", who, ctx.Cluster)
	case user.Exec != nil:
		return nil, deploy.Permanentf("%s: user %q runs an exec credential plugin, which certfleet never runs; use a token or client certificate inline", who, ctx.AuthInfo)
	case user.AuthProvider != nil:
		return nil, deploy.Permanentf("%s: user %q uses an auth-provider plugin, which certfleet never runs; use a token or client certificate inline", who, ctx.AuthInfo)
	case user.ClientCertificate != "" || user.ClientKey != "" || user.TokenFile != "":
		return nil, deploy.Permanentf("%s: user %q reads its credential from a file; inline it (client-certificate-data, client-key-data, token)", who, ctx.AuthInfo)
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*kc, name, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, deploy.Permanentf("%s: context %q: %s", who, name, redact(err.Error(), a.SecretKey))
	}
	return cfg, nil
}

func contextNames(kc *clientcmdapi.Config) string {
	names := make([]string, 0, len(kc.Contexts))
	for n := range kc.Contexts {
		names = append(names, fmt.Sprintf("%q", n))
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// redact drops any line of secret found in msg.
func redact(msg, secret string) string {
	for _, line := range strings.Split(secret, "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 8 && strings.Contains(msg, line) {
			msg = strings.ReplaceAll(msg, line, "[redacted]")
		}
	}
	return msg
}
