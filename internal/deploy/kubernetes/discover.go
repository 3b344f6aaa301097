package kubernetes

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/deploy"
)

// listPage is how many objects one list request asks for.
const listPage = 500

// Discover lists what the credential reaches, in every namespace it may
// list: for SECRET, each kubernetes.io/tls Secret whose tls.crt parses (Key
// "namespace/name", Domain the leaf's first DNS name, else its Common
// Name); for INGRESS, each host of each spec.tls entry that names a Secret
// (Key "namespace/ingress/host"), with the certificate of that Secret when
// the credential may read it. Needs list on secrets (and ingresses) in
// every namespace (a ClusterRole: docs/deployers.md, Minimal RBAC).
func (d *Deployer) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", d.desc.Name(), err)
	}
	kc, err := d.clients.get(t)
	if err != nil {
		return nil, err
	}
	secrets, err := listTLSSecrets(ctx, kc)
	if err != nil && (d.kind == kindSecret || !apierrors.IsForbidden(err)) {
		return nil, fmt.Errorf("%s: list Secrets: %w", d.desc.Name(), err)
	}
	var out []deploy.Discovered
	switch d.kind {
	case kindSecret:
		for _, s := range secrets {
			leaf := leafOf(s)
			if leaf == nil {
				continue
			}
			cfg, _ := json.Marshal(SecretConfig{Namespaces: []string{s.Namespace}, SecretName: s.Name})
			out = append(out, discovered(d.desc.CloudProduct, s.Namespace+"/"+s.Name, domainOf(leaf), s.Namespace, cfg, leaf))
		}
	case kindIngress:
		bySecret := map[string]*x509.Certificate{}
		for _, s := range secrets {
			if leaf := leafOf(s); leaf != nil {
				bySecret[s.Namespace+"/"+s.Name] = leaf
			}
		}
		opts := metav1.ListOptions{Limit: listPage}
		for {
			list, err := kc.cs.NetworkingV1().Ingresses("").List(ctx, opts)
			if err != nil {
				return nil, fmt.Errorf("%s: list Ingresses: %w", d.desc.Name(), kubeErr(err))
			}
			for _, ing := range list.Items {
				for _, e := range ing.Spec.TLS {
					if e.SecretName == "" {
						continue // the controller's default certificate: nothing to deploy to
					}
					for _, h := range e.Hosts {
						cfg, _ := json.Marshal(struct{ Namespace, IngressName, SecretName string }{ing.Namespace, ing.Name, e.SecretName})
						out = append(out, discovered(d.desc.CloudProduct, ing.Namespace+"/"+ing.Name+"/"+h, h, ing.Namespace,
							cfg, bySecret[ing.Namespace+"/"+e.SecretName]))
					}
				}
			}
			if opts.Continue = list.Continue; opts.Continue == "" {
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func discovered(product, key, domain, ns string, cfg []byte, leaf *x509.Certificate) deploy.Discovered {
	r := deploy.Discovered{Key: key, CloudProduct: product, Domain: domain, InstanceID: ns, Config: cfg, EnableHTTPS: true}
	if leaf != nil {
		sum := sha256.Sum256(leaf.Raw)
		r.CertSha2 = strings.ToUpper(hex.EncodeToString(sum[:]))
		r.CertEndTime = leaf.NotAfter
	}
	return r
}

// listTLSSecrets lists every kubernetes.io/tls Secret the credential may
// list, a page at a time.
func listTLSSecrets(ctx context.Context, kc *kubeClient) ([]corev1.Secret, error) {
	var all []corev1.Secret
	opts := metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeTLS), Limit: listPage}
	for {
		list, err := kc.cs.CoreV1().Secrets("").List(ctx, opts)
		if err != nil {
			return nil, kubeErr(err)
		}
		all = append(all, list.Items...)
		if opts.Continue = list.Continue; opts.Continue == "" {
			return all, nil
		}
	}
}

// leafOf parses the first certificate of tls.crt; nil when there is none.
func leafOf(s corev1.Secret) *x509.Certificate {
	b, _ := pem.Decode(s.Data["tls.crt"])
	if b == nil || b.Type != "CERTIFICATE" {
		return nil
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return c
}

func domainOf(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.CommonName
}
