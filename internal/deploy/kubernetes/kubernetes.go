// Package kubernetes deploys certificates to Kubernetes clusters (CloudName
// "kubernetes"): SECRET writes a kubernetes.io/tls Secret in one or more
// namespaces, INGRESS writes one and points an Ingress's spec.tls entry for
// the resource's Domain at it. Both snapshot what they change per namespace,
// roll it back (deleting a Secret only when certfleet created it), compare
// the certificate itself for already-deployed, read every write back, retry
// conflicts on the fresh object, and list what a credential reaches for
// discovery. k8s.io/client-go is imported here and nowhere else in certfleet.
//
// It is not a controller: nothing watches the cluster between deployments,
// and it never touches an object it was not configured to write (other
// Secrets, other spec.tls entries, labels and annotations others set).
package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

// CloudName is the products' CloudName and their CloudAccess's.
const CloudName = "kubernetes"

// Annotations certfleet sets on what it writes.
const (
	// AnnotationManaged marks a Secret (and an Ingress) certfleet writes to.
	AnnotationManaged = "certfleet.io/managed-by"
	// AnnotationCreated marks a Secret certfleet created: only such a Secret
	// is deleted by a rollback to "nothing before".
	AnnotationCreated = "certfleet.io/created"
	// AnnotationCertificate is the SHA-256 of the leaf certfleet wrote
	// (upper-case hex), for people reading the object.
	AnnotationCertificate = "certfleet.io/certificate-sha256"
	// AnnotationRestartedAt is the pod template annotation kubectl rollout
	// restart sets; changing it rolls the Deployment's pods.
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
	managedValue          = "certfleet"
)

// Access is what a kubernetes CloudAccess holds, shared by both products.
var Access = deploy.AccessSpec{
	Need:      deploy.AccessRequired,
	CloudName: CloudName,
	SecretId:  "any label",
	SecretKey: "a kubeconfig with its credentials inline; or a bearer token (with Config Server); any placeholder with InCluster",
	Config: []deploy.Field{
		{Name: "Context", Type: deploy.TypeString, Help: "The kubeconfig context to use; default its current-context."},
		{Name: "Server", Type: deploy.TypeString, Help: "The API server's https:// address: SecretKey is then a bearer token."},
		{Name: "CertificateAuthority", Type: deploy.TypeString, Help: "With Server: the PEM CA certificate(s) the API server's certificate is checked against."},
		{Name: "InCluster", Type: deploy.TypeBoolean, Default: "false", Help: "Use the service account of the pod certfleet runs in; SecretKey is ignored."},
	},
}

// SecretDescription is kubernetes/SECRET's Description.
var SecretDescription = deploy.Description{
	CloudName:    CloudName,
	CloudProduct: "SECRET",
	Summary:      "Writes a kubernetes.io/tls Secret (tls.crt, tls.key) in one or more namespaces, optionally restarting Deployments that use it.",
	Config: []deploy.Field{
		{Name: "Namespaces", Type: deploy.TypeStringList, Required: true, Help: "The namespaces to write the Secret in (at least one; each must exist)."},
		{Name: "SecretName", Type: deploy.TypeString, Required: true, Help: "The Secret's name, the same in every namespace."},
		{Name: "IncludeCA", Type: deploy.TypeBoolean, Default: "false", Help: "Also write ca.crt: the certificate's chain (intermediates)."},
		{Name: "RestartDeployments", Type: deploy.TypeStringList, Help: "Deployments (namespace/name) restarted after the Secret changes, as kubectl rollout restart does."},
	},
	Access: Access,
}

// IngressDescription is kubernetes/INGRESS's Description.
var IngressDescription = deploy.Description{
	CloudName:    CloudName,
	CloudProduct: "INGRESS",
	Summary:      "Writes a kubernetes.io/tls Secret and makes an Ingress's spec.tls entry for the resource's Domain use it.",
	Config: []deploy.Field{
		{Name: "Namespace", Type: deploy.TypeString, Required: true, Help: "The namespace of the Ingress and the Secret."},
		{Name: "IngressName", Type: deploy.TypeString, Required: true, Help: "The Ingress whose spec.tls gets an entry for the Domain; it must exist."},
		{Name: "SecretName", Type: deploy.TypeString, Required: true, Help: "The Secret written, and named by the spec.tls entry."},
		{Name: "IncludeCA", Type: deploy.TypeBoolean, Default: "false", Help: "Also write ca.crt: the certificate's chain (intermediates)."},
	},
	Access: Access,
}

// SecretConfig is a kubernetes/SECRET resource's Config.
type SecretConfig struct {
	// Namespaces are the namespaces the Secret is written in. Required.
	Namespaces []string
	// SecretName is the Secret's name in each. Required.
	SecretName string
	// IncludeCA also writes ca.crt (the chain). Defaults to false; without
	// it, a ca.crt someone else wrote is left alone.
	IncludeCA bool
	// RestartDeployments are namespace/name of Deployments whose pod
	// template gets kubectl's restartedAt annotation after the Secret
	// changes (and after a rollback changes it back).
	RestartDeployments []string
}

// IngressConfig is a kubernetes/INGRESS resource's Config.
type IngressConfig struct {
	Namespace   string
	IngressName string
	SecretName  string
	IncludeCA   bool
}

// Options are the server's settings for kubernetes targets.
type Options struct {
	// Egress makes the connections to API servers, under the egress policy
	// of the resource's account. nil: the default policy with every account
	// treated as the root account.
	Egress *egress.Dialer
	// Timeout bounds one request to an API server. Defaults to 30 s.
	Timeout time.Duration
}

type kind int

const (
	kindSecret kind = iota
	kindIngress
)

// Deployer is one of the two products. It is safe for concurrent use.
type Deployer struct {
	desc    deploy.Description
	kind    kind
	clients *clients
	now     func() time.Time
	// beforeUpdate, when set (tests), runs after a Secret is read and
	// before certfleet's update of it is sent.
	beforeUpdate func(namespace, name string)
}

var (
	_ deploy.Product         = (*Deployer)(nil)
	_ deploy.Rollbacker      = (*Deployer)(nil)
	_ deploy.Snapshotter     = (*Deployer)(nil)
	_ deploy.Checker         = (*Deployer)(nil)
	_ deploy.ConfigValidator = (*Deployer)(nil)
	_ deploy.Discoverer      = (*Deployer)(nil)
)

// NewSecret returns kubernetes/SECRET.
func NewSecret(o Options) *Deployer {
	return &Deployer{desc: SecretDescription, kind: kindSecret, clients: newClients(o), now: time.Now}
}

// NewIngress returns kubernetes/INGRESS.
func NewIngress(o Options) *Deployer {
	return &Deployer{desc: IngressDescription, kind: kindIngress, clients: newClients(o), now: time.Now}
}

// Describe returns the product's Description.
func (d *Deployer) Describe() deploy.Description { return d.desc }

// plan is a resource's Config in the one shape both products share.
type plan struct {
	namespaces []string
	secretName string
	includeCA  bool
	restarts   []objectRef
	ingress    *objectRef // INGRESS only
}

type objectRef struct{ namespace, name string }

func (r objectRef) String() string { return r.namespace + "/" + r.name }

// ValidateConfig checks names as the API server would: namespaces are DNS
// labels, Secret, Ingress and Deployment names DNS subdomains.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	_, err := d.plan(config)
	return err
}

func (d *Deployer) plan(config json.RawMessage) (plan, error) {
	var p plan
	switch d.kind {
	case kindSecret:
		var c SecretConfig
		if err := d.desc.DecodeConfig(config, &c); err != nil {
			return p, err
		}
		seen := map[string]bool{}
		for _, ns := range c.Namespaces {
			if err := checkName("Namespaces", ns, true); err != nil {
				return p, err
			}
			if seen[ns] {
				return p, deploy.Permanentf("Config key \"Namespaces\" lists %q twice", ns)
			}
			seen[ns] = true
		}
		for _, r := range c.RestartDeployments {
			ns, name, ok := strings.Cut(r, "/")
			if !ok || ns == "" || name == "" {
				return p, deploy.Permanentf("Config key \"RestartDeployments\" value %q must be namespace/name", r)
			}
			if err := checkName("RestartDeployments", ns, true); err != nil {
				return p, err
			}
			if err := checkName("RestartDeployments", name, false); err != nil {
				return p, err
			}
			p.restarts = append(p.restarts, objectRef{ns, name})
		}
		p.namespaces, p.secretName, p.includeCA = c.Namespaces, c.SecretName, c.IncludeCA
	case kindIngress:
		var c IngressConfig
		if err := d.desc.DecodeConfig(config, &c); err != nil {
			return p, err
		}
		if err := checkName("Namespace", c.Namespace, true); err != nil {
			return p, err
		}
		if err := checkName("IngressName", c.IngressName, false); err != nil {
			return p, err
		}
		p.namespaces, p.secretName, p.includeCA = []string{c.Namespace}, c.SecretName, c.IncludeCA
		p.ingress = &objectRef{c.Namespace, c.IngressName}
	}
	if err := checkName("SecretName", p.secretName, false); err != nil {
		return p, err
	}
	return p, nil
}

// checkName refuses what the API server would refuse, with its reasons.
func checkName(key, v string, label bool) error {
	var errs []string
	if label {
		errs = validation.IsDNS1123Label(v)
	} else {
		errs = validation.IsDNS1123Subdomain(v)
	}
	if len(errs) > 0 {
		what := "a name"
		if label {
			what = "a namespace name"
		}
		return deploy.Permanentf("Config key %q: %q is not %s Kubernetes accepts: %s", key, v, what, strings.Join(errs, "; "))
	}
	return nil
}

// prepare decodes the target and checks the bundle: what every call starts with.
func (d *Deployer) prepare(ctx context.Context, req deploy.Request, needKey bool) (plan, *kubeClient, error) {
	if err := ctx.Err(); err != nil {
		return plan{}, nil, fmt.Errorf("%s: %w", d.desc.Name(), err)
	}
	p, err := d.plan(req.Target.Config)
	if err != nil {
		return p, nil, err
	}
	if p.ingress != nil && req.Target.Domain == "" {
		return p, nil, deploy.Permanentf("%s: the resource has no Domain, which the spec.tls entry names", d.desc.Name())
	}
	if needKey {
		if req.Bundle.KeyPEM == "" {
			return p, nil, deploy.Permanentf("%s: certificate %d has no private key to deploy", d.desc.Name(), req.Bundle.CertID)
		}
		if req.Bundle.CertPEM == "" && req.Bundle.FullChainPEM == "" {
			return p, nil, deploy.Permanentf("%s: certificate %d has no certificate to deploy", d.desc.Name(), req.Bundle.CertID)
		}
		if p.includeCA && strings.TrimSpace(req.Bundle.ChainPEM) == "" {
			return p, nil, deploy.Permanentf("%s: IncludeCA is set but certificate %d has no chain to write as ca.crt", d.desc.Name(), req.Bundle.CertID)
		}
	}
	kc, err := d.clients.get(req.Target)
	if err != nil {
		return p, nil, err
	}
	return p, kc, nil
}

// desired is the Secret data for b.
func desired(p plan, b deploy.Bundle) map[string][]byte {
	full := b.FullChainPEM
	if full == "" {
		full = b.CertPEM + b.ChainPEM
	}
	m := map[string][]byte{"tls.crt": []byte(full), "tls.key": []byte(b.KeyPEM)}
	if p.includeCA {
		m["ca.crt"] = []byte(b.ChainPEM)
	}
	return m
}
