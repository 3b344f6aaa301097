package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

// dataKeys are the Secret data keys certfleet writes and restores.
var dataKeys = []string{"tls.crt", "tls.key", "ca.crt"}

// conflictBackoff paces the retries of a write that lost a race: each try
// reads the object afresh first.
var conflictBackoff = wait.Backoff{Steps: 8, Duration: 20 * time.Millisecond, Factor: 2, Jitter: 0.2, Cap: 2 * time.Second}

// secretState is what a namespace's Secret held before a change: what
// Rollback restores.
type secretState struct {
	Exists bool
	// Foreign is a Secret of another type: never written, never restored.
	Foreign bool `json:",omitempty"`
	// Data holds the values of dataKeys it had.
	Data map[string][]byte `json:",omitempty"`
	// Annotations holds the values of certfleet's annotations it had.
	Annotations map[string]string `json:",omitempty"`
}

func stateOf(s *corev1.Secret) secretState {
	st := secretState{Exists: true, Foreign: s.Type != corev1.SecretTypeTLS}
	if st.Foreign {
		return st
	}
	st.Data = map[string][]byte{}
	for _, k := range dataKeys {
		if v, ok := s.Data[k]; ok {
			st.Data[k] = v
		}
	}
	for _, k := range []string{AnnotationManaged, AnnotationCreated, AnnotationCertificate} {
		if v, ok := s.Annotations[k]; ok {
			if st.Annotations == nil {
				st.Annotations = map[string]string{}
			}
			st.Annotations[k] = v
		}
	}
	return st
}

// holds reports whether s holds want (every key of want, byte for byte).
func holds(s *corev1.Secret, want map[string][]byte) bool {
	if s.Type != corev1.SecretTypeTLS {
		return false
	}
	for k, v := range want {
		if !bytes.Equal(s.Data[k], v) {
			return false
		}
	}
	return true
}

// kubeErr classifies an API error: refusals (forbidden, unauthorized,
// invalid, not found) are permanent, the rest transient. The API server's
// message names the object and the reason; it never quotes the credential.
func kubeErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || deploy.IsPermanent(err) {
		return err
	}
	switch {
	case egress.IsRefused(err):
		return deploy.Permanent(err)
	case apierrors.IsForbidden(err):
		return deploy.Permanentf("%w (grant the credential the Role under \"Minimal RBAC\" in docs/deployers.md)", err)
	case apierrors.IsUnauthorized(err):
		return deploy.Permanentf("the API server rejected the credential (Unauthorized): %w", err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsMethodNotSupported(err):
		return deploy.Permanent(err)
	}
	return err
}

// namespaceMissing turns the NotFound a create answers in a missing
// namespace into a permanent error saying so.
func namespaceMissing(err error, ns string) error {
	var se apierrors.APIStatus
	if apierrors.IsNotFound(err) && errors.As(err, &se) {
		if det := se.Status().Details; det != nil && det.Kind == "namespaces" {
			return deploy.Permanentf("namespace %q does not exist", ns)
		}
	}
	return err
}

// foreign is the permanent error for a Secret of another type.
func foreign(ns, name string, typ corev1.SecretType) error {
	return deploy.Permanentf("Secret %s/%s exists with type %s, not kubernetes.io/tls: certfleet never overwrites it; choose another SecretName or remove that Secret", ns, name, typ)
}

// readSecret returns the Secret, nil when it does not exist.
func readSecret(ctx context.Context, kc *kubeClient, ns, name string) (*corev1.Secret, error) {
	s, err := kc.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, kubeErr(err)
	}
	return s, nil
}

// upsertSecret makes ns/name a kubernetes.io/tls Secret holding want,
// creating it or updating it in place (labels, annotations and other data
// keys kept). A conflict or a create race is retried on the object read
// afresh. It returns what the Secret held before the write that succeeded,
// and whether it wrote; the write is read back.
func (d *Deployer) upsertSecret(ctx context.Context, kc *kubeClient, ns, name string, want map[string][]byte, sha string) (before secretState, wrote bool, err error) {
	api := kc.cs.CoreV1().Secrets(ns)
	err = retry.OnError(conflictBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() error {
		cur, err := readSecret(ctx, kc, ns, name)
		if err != nil {
			return err
		}
		if cur == nil {
			before = secretState{}
			s := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{
					AnnotationManaged: managedValue, AnnotationCreated: "true", AnnotationCertificate: sha}},
				Type: corev1.SecretTypeTLS,
				Data: maps.Clone(want),
			}
			if _, err := api.Create(ctx, s, metav1.CreateOptions{FieldManager: "certfleet"}); err != nil {
				return namespaceMissing(err, ns)
			}
			wrote = true
			return nil
		}
		before = stateOf(cur)
		if before.Foreign {
			return foreign(ns, name, cur.Type)
		}
		if holds(cur, want) && cur.Annotations[AnnotationManaged] == managedValue {
			return nil
		}
		upd := cur.DeepCopy()
		if upd.Data == nil {
			upd.Data = map[string][]byte{}
		}
		maps.Copy(upd.Data, want)
		if upd.Annotations == nil {
			upd.Annotations = map[string]string{}
		}
		upd.Annotations[AnnotationManaged] = managedValue
		upd.Annotations[AnnotationCertificate] = sha
		if d.beforeUpdate != nil {
			d.beforeUpdate(ns, name)
		}
		if _, err := api.Update(ctx, upd, metav1.UpdateOptions{FieldManager: "certfleet"}); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if err != nil {
		return before, wrote, kubeErr(err)
	}
	// Read back: what a client gets now is what was meant.
	got, err := readSecret(ctx, kc, ns, name)
	switch {
	case err != nil:
		return before, wrote, fmt.Errorf("read back: %w", err)
	case got == nil:
		return before, wrote, fmt.Errorf("read back: the Secret is gone right after it was written")
	case !holds(got, want):
		return before, wrote, fmt.Errorf("read back: the Secret does not hold the certificate just written (changed concurrently?)")
	}
	return before, wrote, nil
}

// restoreSecret puts back what st recorded: the old data and certfleet's
// old annotations, or, for a Secret that did not exist, deletes it if
// certfleet created it. It reports whether it changed anything.
func (d *Deployer) restoreSecret(ctx context.Context, kc *kubeClient, ns, name string, st secretState) (changed bool, err error) {
	if st.Foreign {
		return false, nil
	}
	api := kc.cs.CoreV1().Secrets(ns)
	err = retry.OnError(conflictBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() error {
		changed = false
		cur, err := readSecret(ctx, kc, ns, name)
		if err != nil {
			return err
		}
		switch {
		case cur == nil && !st.Exists:
			return nil
		case cur == nil: // deleted meanwhile: bring back what was there
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: st.Annotations},
				Type: corev1.SecretTypeTLS, Data: st.Data}
			if _, err := api.Create(ctx, s, metav1.CreateOptions{FieldManager: "certfleet"}); err != nil {
				return namespaceMissing(err, ns)
			}
			changed = true
			return nil
		case cur.Type != corev1.SecretTypeTLS:
			return nil // replaced by someone else's Secret: not certfleet's to touch
		case !st.Exists:
			if cur.Annotations[AnnotationCreated] != "true" {
				return nil // someone else made this one after certfleet's was gone
			}
			uid, rv := cur.UID, cur.ResourceVersion
			err := api.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err == nil {
				changed = true
			}
			return err
		}
		upd := cur.DeepCopy()
		if upd.Data == nil {
			upd.Data = map[string][]byte{}
		}
		for _, k := range dataKeys {
			if v, ok := st.Data[k]; ok {
				upd.Data[k] = v
			} else {
				delete(upd.Data, k)
			}
		}
		for _, k := range []string{AnnotationManaged, AnnotationCreated, AnnotationCertificate} {
			if v, ok := st.Annotations[k]; ok {
				if upd.Annotations == nil {
					upd.Annotations = map[string]string{}
				}
				upd.Annotations[k] = v
			} else {
				delete(upd.Annotations, k)
			}
		}
		if equalSecret(cur, upd) {
			return nil
		}
		if _, err := api.Update(ctx, upd, metav1.UpdateOptions{FieldManager: "certfleet"}); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return changed, kubeErr(err)
}

func equalSecret(a, b *corev1.Secret) bool {
	if !maps.Equal(a.Annotations, b.Annotations) || len(a.Data) != len(b.Data) {
		return false
	}
	for k, v := range a.Data {
		if w, ok := b.Data[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// outcome is what happened in one namespace.
type outcome struct {
	ns       string
	wrote    bool
	err      error
	restored bool  // its write was undone after another namespace failed
	undoErr  error // undoing it failed
	skipped  bool  // not attempted
}

func (o outcome) String() string {
	var s string
	switch {
	case o.skipped:
		s = "not attempted"
	case o.err != nil:
		s = o.err.Error()
	case o.wrote:
		s = "written"
	default:
		s = "unchanged"
	}
	switch {
	case o.undoErr != nil:
		s += ", and undoing it failed: " + o.undoErr.Error()
	case o.restored:
		s += ", then restored"
	}
	return o.ns + ": " + s
}

// multiError is one failure over several namespaces: its message lists
// every namespace's outcome; it wraps each error, so errors.Is finds a
// cancellation.
type multiError struct {
	msg  string
	errs []error
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.errs }

// failure builds the error for outcomes of which at least one failed:
// permanent when every failure is.
func (d *Deployer) failure(what string, outs []outcome, extra ...error) error {
	var errs []error
	permanent := true
	failed := 0
	var parts []string
	for _, o := range outs {
		parts = append(parts, o.String())
		for _, e := range []error{o.err, o.undoErr} {
			if e != nil {
				errs = append(errs, e)
				permanent = permanent && deploy.IsPermanent(e)
			}
		}
		if o.err != nil {
			failed++
		}
	}
	for _, e := range extra {
		if e != nil {
			errs = append(errs, e)
			permanent = permanent && deploy.IsPermanent(e)
			parts = append(parts, e.Error())
		}
	}
	msg := fmt.Sprintf("%s: %s: %d of %d namespaces failed: %s", d.desc.Name(), what, failed, len(outs), strings.Join(parts, "; "))
	if failed == 0 {
		msg = fmt.Sprintf("%s: %s: %s", d.desc.Name(), what, strings.Join(parts, "; "))
	}
	err := error(&multiError{msg: msg, errs: errs})
	if permanent {
		return deploy.Permanent(err)
	}
	return err
}
