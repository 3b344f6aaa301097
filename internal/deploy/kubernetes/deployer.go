package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/certfleet/certfleet/internal/deploy"
)

// snapshot is the previous state Snapshot and Deploy return: per namespace,
// what the Secret held; for INGRESS, the spec.tls entry for the Domain.
type snapshot struct {
	V       int
	Secrets map[string]secretState
	Ingress *ingressState `json:",omitempty"`
}

func decodeSnapshot(b []byte) (*snapshot, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil || s.V != 1 {
		return nil, deploy.Permanentf("kubernetes: the recorded previous state is not one this version wrote; cannot roll back")
	}
	return &s, nil
}

// Snapshot reads, in every namespace, what the Secret holds now (and the
// Ingress's entry for the Domain), before Deploy changes it.
func (d *Deployer) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	p, kc, err := d.prepare(ctx, req, false)
	if err != nil {
		return nil, err
	}
	snap := snapshot{V: 1, Secrets: map[string]secretState{}}
	outs := make([]outcome, len(p.namespaces))
	failed := false
	for i, ns := range p.namespaces {
		outs[i].ns = ns
		s, err := readSecret(ctx, kc, ns, p.secretName)
		if err != nil {
			outs[i].err, failed = err, true
			continue
		}
		if s == nil {
			snap.Secrets[ns] = secretState{}
		} else {
			snap.Secrets[ns] = stateOf(s)
		}
	}
	if failed {
		return nil, d.failure(fmt.Sprintf("read Secret %s", p.secretName), outs)
	}
	if p.ingress != nil {
		st, err := d.readIngressState(ctx, kc, *p.ingress, req.Target.Domain)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.desc.Name(), err)
		}
		snap.Ingress = &st
	}
	return json.Marshal(snap)
}

// Deploy writes the Secret in every namespace (creating or updating it in
// place), reads each back, binds the Ingress entry (INGRESS), then restarts
// RestartDeployments if any Secret changed. It is all or nothing: when a
// namespace fails (missing, forbidden, a foreign Secret), the namespaces
// already written are restored and the error lists every namespace's
// outcome; it is permanent when every failure is. It returns the snapshot
// of what it changed.
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	p, kc, err := d.prepare(ctx, req, true)
	if err != nil {
		return nil, err
	}
	want := desired(p, req.Bundle)
	snap := snapshot{V: 1, Secrets: map[string]secretState{}}
	outs := make([]outcome, len(p.namespaces))
	failed, changed := false, false
	for i, ns := range p.namespaces {
		outs[i].ns = ns
		if err := ctx.Err(); err != nil {
			outs[i].err, failed = err, true
			continue
		}
		before, wrote, err := d.upsertSecret(ctx, kc, ns, p.secretName, want, req.Bundle.Sha2)
		outs[i].wrote, outs[i].err = wrote, err
		if wrote {
			snap.Secrets[ns] = before
			changed = true
		}
		if err != nil {
			failed = true
		}
	}
	var tail error
	if !failed && p.ingress != nil {
		st, bound, err := d.bindIngress(ctx, kc, *p.ingress, req.Target.Domain, p.secretName)
		if bound {
			snap.Ingress = &st
			changed = true
		}
		if err != nil {
			failed, tail = true, fmt.Errorf("Ingress %s: %w", p.ingress, err)
		}
	}
	if !failed && changed {
		if err := d.restart(ctx, kc, p.restarts); err != nil {
			failed, tail = true, err
		}
	}
	if !failed {
		return json.Marshal(snap)
	}
	// A cancelled call returns at once and undoes nothing: the engine lost
	// the lease or is stopping, and another attempt (or a rollback from the
	// recorded snapshot) may already be writing the same objects.
	if ctx.Err() != nil {
		return nil, d.failure(fmt.Sprintf("Secret %s", p.secretName), outs, tail, fmt.Errorf("stopped: %w", ctx.Err()))
	}
	// Undo what this call wrote, so a failure leaves the cluster as it was.
	undo, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if snap.Ingress != nil {
		if err := d.unbindIngress(undo, kc, *p.ingress, req.Target.Domain, p.secretName, *snap.Ingress); err != nil {
			tail = fmt.Errorf("%v; and restoring Ingress %s failed: %w", tail, p.ingress, err)
		}
	}
	for i := range outs {
		if !outs[i].wrote {
			continue
		}
		if _, err := d.restoreSecret(undo, kc, outs[i].ns, p.secretName, snap.Secrets[outs[i].ns]); err != nil {
			outs[i].undoErr = err
		} else {
			outs[i].restored = true
		}
	}
	return nil, d.failure(fmt.Sprintf("Secret %s", p.secretName), outs, tail)
}

// AlreadyDeployed reports whether every namespace's Secret holds exactly
// this certificate and key (and ca.crt with IncludeCA) and, for INGRESS,
// the Ingress's entry for the Domain names the Secret. It compares the
// data, not resourceVersions.
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	p, kc, err := d.prepare(ctx, req, true)
	if err != nil {
		return false, err
	}
	want := desired(p, req.Bundle)
	for _, ns := range p.namespaces {
		s, err := readSecret(ctx, kc, ns, p.secretName)
		if err != nil {
			return false, fmt.Errorf("%s: Secret %s/%s: %w", d.desc.Name(), ns, p.secretName, err)
		}
		if s == nil || !holds(s, want) {
			return false, nil
		}
	}
	if p.ingress != nil {
		st, err := d.readIngressState(ctx, kc, *p.ingress, req.Target.Domain)
		if err != nil {
			return false, fmt.Errorf("%s: %w", d.desc.Name(), err)
		}
		if !st.HadEntry || st.SecretName != p.secretName {
			return false, nil
		}
	}
	return true, nil
}

// Rollback restores what previous recorded in each namespace: the old data,
// or no Secret at all where certfleet created it (a Secret it did not
// create is left alone). For INGRESS, the entry it added is removed, or the
// one it repointed points back. RestartDeployments restart if a Secret
// changed. Without a recorded state it deploys req.Bundle again, or, when
// the resource held nothing, deletes the Secrets certfleet created.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	p, kc, err := d.prepare(ctx, req, false)
	if err != nil {
		return err
	}
	var snap *snapshot
	switch {
	case previous != nil:
		if snap, err = decodeSnapshot(previous); err != nil {
			return err
		}
	case req.Bundle.CertID != 0 && req.Bundle.KeyPEM != "":
		_, err := d.Deploy(ctx, req)
		return err
	default:
		snap = &snapshot{V: 1, Secrets: map[string]secretState{}}
		for _, ns := range p.namespaces {
			snap.Secrets[ns] = secretState{}
		}
	}
	var tail error
	changed := false
	if p.ingress != nil && snap.Ingress != nil {
		if err := d.unbindIngress(ctx, kc, *p.ingress, req.Target.Domain, p.secretName, *snap.Ingress); err != nil {
			tail = fmt.Errorf("Ingress %s: %w", p.ingress, err)
		}
	}
	var outs []outcome
	failed := tail != nil
	for _, ns := range p.namespaces {
		st, ok := snap.Secrets[ns]
		if !ok {
			continue // unchanged by the deployment being undone
		}
		o := outcome{ns: ns}
		o.wrote, o.err = d.restoreSecret(ctx, kc, ns, p.secretName, st)
		changed = changed || o.wrote
		failed = failed || o.err != nil
		outs = append(outs, o)
	}
	if !failed && changed {
		tail = d.restart(ctx, kc, p.restarts)
		failed = tail != nil
	}
	if failed {
		return d.failure(fmt.Sprintf("roll back Secret %s", p.secretName), outs, tail)
	}
	return nil
}

// restart sets kubectl's restartedAt annotation on each Deployment's pod
// template, as kubectl rollout restart does.
func (d *Deployer) restart(ctx context.Context, kc *kubeClient, refs []objectRef) error {
	if len(refs) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{AnnotationRestartedAt: d.now().UTC().Format(time.RFC3339)}}}}})
	if err != nil {
		return err
	}
	for _, r := range refs {
		_, err := kc.cs.AppsV1().Deployments(r.namespace).Patch(ctx, r.name, types.StrategicMergePatchType, patch,
			metav1.PatchOptions{FieldManager: "certfleet"})
		if apierrors.IsNotFound(err) {
			return deploy.Permanentf("restart Deployment %s: it does not exist (RestartDeployments)", r)
		}
		if err != nil {
			return fmt.Errorf("restart Deployment %s: %w", r, kubeErr(err))
		}
	}
	return nil
}
