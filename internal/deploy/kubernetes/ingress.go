package kubernetes

import (
	"context"
	"fmt"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/certfleet/certfleet/internal/deploy"
)

// ingressState is the Ingress's spec.tls entry for the Domain before a
// change: whether one listed the Domain alone, and the Secret it named.
type ingressState struct {
	HadEntry   bool
	SecretName string `json:",omitempty"`
}

func (d *Deployer) getIngress(ctx context.Context, kc *kubeClient, ref objectRef) (*networkingv1.Ingress, error) {
	ing, err := kc.cs.NetworkingV1().Ingresses(ref.namespace).Get(ctx, ref.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, deploy.Permanentf("Ingress %s does not exist (IngressName)", ref)
	}
	return ing, kubeErr(err)
}

// entryFor finds the spec.tls entry listing domain: its index, or -1.
func entryFor(ing *networkingv1.Ingress, domain string) int {
	for i, e := range ing.Spec.TLS {
		if slices.Contains(e.Hosts, domain) {
			return i
		}
	}
	return -1
}

func (d *Deployer) readIngressState(ctx context.Context, kc *kubeClient, ref objectRef, domain string) (ingressState, error) {
	ing, err := d.getIngress(ctx, kc, ref)
	if err != nil {
		return ingressState{}, fmt.Errorf("Ingress %s: %w", ref, err)
	}
	if i := entryFor(ing, domain); i >= 0 {
		return ingressState{HadEntry: true, SecretName: ing.Spec.TLS[i].SecretName}, nil
	}
	return ingressState{}, nil
}

// bindIngress makes the Ingress's spec.tls have an entry for domain naming
// secret: an entry listing the domain alone is pointed at it, otherwise an
// entry is appended; no other entry is touched, so an entry listing the
// domain with other hosts and another Secret is a permanent error. It
// returns the entry before, and whether it wrote.
func (d *Deployer) bindIngress(ctx context.Context, kc *kubeClient, ref objectRef, domain, secret string) (before ingressState, wrote bool, err error) {
	err = retry.RetryOnConflict(conflictBackoff, func() error {
		wrote = false
		ing, err := d.getIngress(ctx, kc, ref)
		if err != nil {
			return err
		}
		upd := ing.DeepCopy()
		switch i := entryFor(ing, domain); {
		case i < 0:
			before = ingressState{}
			upd.Spec.TLS = append(upd.Spec.TLS, networkingv1.IngressTLS{Hosts: []string{domain}, SecretName: secret})
		case ing.Spec.TLS[i].SecretName == secret:
			before = ingressState{HadEntry: true, SecretName: secret}
			return nil
		case len(ing.Spec.TLS[i].Hosts) == 1:
			before = ingressState{HadEntry: true, SecretName: ing.Spec.TLS[i].SecretName}
			upd.Spec.TLS[i].SecretName = secret
		default:
			return deploy.Permanentf("its spec.tls entry for %s also lists %v and uses Secret %q; certfleet does not split an entry: give %s an entry of its own, or use that SecretName",
				domain, otherHosts(ing.Spec.TLS[i].Hosts, domain), ing.Spec.TLS[i].SecretName, domain)
		}
		if upd.Annotations == nil {
			upd.Annotations = map[string]string{}
		}
		upd.Annotations[AnnotationManaged] = managedValue
		if _, err := kc.cs.NetworkingV1().Ingresses(ref.namespace).Update(ctx, upd, metav1.UpdateOptions{FieldManager: "certfleet"}); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	return before, wrote, kubeErr(err)
}

// unbindIngress puts the entry for domain back as before recorded: removes
// the entry certfleet appended, or points the entry back at its old Secret.
// An entry changed by someone else since is left alone.
func (d *Deployer) unbindIngress(ctx context.Context, kc *kubeClient, ref objectRef, domain, secret string, before ingressState) error {
	return kubeErr(retry.RetryOnConflict(conflictBackoff, func() error {
		ing, err := d.getIngress(ctx, kc, ref)
		if err != nil {
			return err
		}
		i := entryFor(ing, domain)
		if i < 0 || ing.Spec.TLS[i].SecretName != secret || len(ing.Spec.TLS[i].Hosts) != 1 {
			return nil // not certfleet's entry (any more)
		}
		upd := ing.DeepCopy()
		switch {
		case !before.HadEntry:
			upd.Spec.TLS = slices.Delete(upd.Spec.TLS, i, i+1)
		case before.SecretName != secret:
			upd.Spec.TLS[i].SecretName = before.SecretName
		default:
			return nil
		}
		_, err = kc.cs.NetworkingV1().Ingresses(ref.namespace).Update(ctx, upd, metav1.UpdateOptions{FieldManager: "certfleet"})
		return err
	}))
}

func otherHosts(hosts []string, domain string) []string {
	var out []string
	for _, h := range hosts {
		if h != domain {
			out = append(out, h)
		}
	}
	return out
}
