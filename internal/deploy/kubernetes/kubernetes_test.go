package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/testutil/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

var bg = context.Background()

func cluster(t *testing.T) *kubetest.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	return kubetest.Start(t)
}

var resourceIDs atomic.Int64

func adminAccess(c *kubetest.Cluster) *deploy.Access {
	return &deploy.Access{ID: 1, CloudName: CloudName, SecretID: "admin", SecretKey: string(c.AdminKubeconfig())}
}

func tokenAccess(c *kubetest.Cluster, token string) *deploy.Access {
	cfg, _ := json.Marshal(map[string]string{"Server": c.Server, "CertificateAuthority": string(c.CAPEM)})
	return &deploy.Access{ID: 2, CloudName: CloudName, SecretID: "token", SecretKey: token, Config: cfg}
}

func secretTarget(a *deploy.Access, cfg SecretConfig) deploy.Target {
	b, _ := json.Marshal(cfg)
	return deploy.Target{AccountID: 1, ResourceID: resourceIDs.Add(1), CloudName: CloudName, CloudProduct: "SECRET",
		Domain: "www.example.com", Config: b, Access: a}
}

func ingressTarget(a *deploy.Access, domain string, cfg IngressConfig) deploy.Target {
	b, _ := json.Marshal(cfg)
	return deploy.Target{AccountID: 1, ResourceID: resourceIDs.Add(1), CloudName: CloudName, CloudProduct: "INGRESS",
		Domain: domain, Config: b, Access: a}
}

func req(tgt deploy.Target, b deploy.Bundle) deploy.Request {
	return deploy.Request{JobID: 1, WorkerID: tgt.ResourceID, Target: tgt, Bundle: b}
}

func getSecret(t *testing.T, c *kubetest.Cluster, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := c.Client.CoreV1().Secrets(ns).Get(bg, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get Secret %s/%s: %v", ns, name, err)
	}
	return s
}

// served is a fingerprint of what ns/name holds: tls.crt and tls.key; nil
// when there is no such Secret.
func served(t *testing.T, c *kubetest.Cluster, ns, name string) []byte {
	s := getSecret(t, c, ns, name)
	if s == nil {
		return nil
	}
	sum := sha256.Sum256(append(append([]byte(s.Type+"\x00"), s.Data["tls.crt"]...), s.Data["tls.key"]...))
	return sum[:]
}

// wantHolds fails unless ns/name is a TLS Secret holding b.
func wantHolds(t *testing.T, c *kubetest.Cluster, ns, name string, b deploy.Bundle) *corev1.Secret {
	t.Helper()
	s := getSecret(t, c, ns, name)
	switch {
	case s == nil:
		t.Fatalf("Secret %s/%s does not exist", ns, name)
	case s.Type != corev1.SecretTypeTLS:
		t.Fatalf("Secret %s/%s has type %s", ns, name, s.Type)
	case string(s.Data["tls.crt"]) != b.FullChainPEM || string(s.Data["tls.key"]) != b.KeyPEM:
		t.Fatalf("Secret %s/%s does not hold certificate %d (tls.crt %d bytes)", ns, name, b.CertID, len(s.Data["tls.crt"]))
	case s.Annotations[AnnotationManaged] != managedValue || s.Annotations[AnnotationCertificate] != b.Sha2:
		t.Fatalf("Secret %s/%s annotations %v: want certfleet's", ns, name, s.Annotations)
	}
	return s
}

func createSecret(t *testing.T, c *kubetest.Cluster, s *corev1.Secret) {
	t.Helper()
	if _, err := c.Client.CoreV1().Secrets(s.Namespace).Create(bg, s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Secret %s/%s: %v", s.Namespace, s.Name, err)
	}
}

// minimalRules is the Role docs/deployers.md gives for SECRET.
var minimalRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update", "delete"}},
}

func TestSchema(t *testing.T) {
	deploytest.CheckSchema(t, SecretDescription.Config, SecretConfig{})
	deploytest.CheckSchema(t, IngressDescription.Config, IngressConfig{})
	deploytest.CheckSchema(t, Access.Config, accessConfig{})
}

// TestConformanceSecret runs the deployer contract suite against a real
// kube-apiserver, with a bearer token holding exactly the documented Role.
func TestConformanceSecret(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	home := c.Namespace(t, "conf")
	tok := c.ClusterToken(t, home, minimalRules...)
	target := func(t *testing.T) deploy.Target {
		return secretTarget(tokenAccess(c, tok), SecretConfig{Namespaces: []string{c.Namespace(t, "conf")}, SecretName: "www-tls"})
	}
	nsOf := func(tgt deploy.Target) string {
		var cfg SecretConfig
		json.Unmarshal(tgt.Config, &cfg)
		return cfg.Namespaces[0]
	}
	deploytest.Run(t, deploytest.Harness{
		Deployer: d,
		Target:   target,
		Served:   func(t *testing.T, tgt deploy.Target) []byte { return served(t, c, nsOf(tgt), "www-tls") },
		BadConfigs: []deploytest.BadConfig{
			{Desc: "no Namespaces", Config: json.RawMessage(`{"SecretName":"www-tls"}`)},
			{Desc: "an empty Namespaces", Config: json.RawMessage(`{"Namespaces":[],"SecretName":"www-tls"}`)},
			{Desc: "a namespace Kubernetes refuses", Config: json.RawMessage(`{"Namespaces":["Web_Prod"],"SecretName":"www-tls"}`)},
			{Desc: "a namespace twice", Config: json.RawMessage(`{"Namespaces":["a","a"],"SecretName":"www-tls"}`)},
			{Desc: "a SecretName Kubernetes refuses", Config: json.RawMessage(`{"Namespaces":["a"],"SecretName":"WWW TLS"}`)},
			{Desc: "a RestartDeployments without namespace", Config: json.RawMessage(`{"Namespaces":["a"],"SecretName":"x","RestartDeployments":["web"]}`)},
			{Desc: "an unknown key", Config: json.RawMessage(`{"Namespaces":["a"],"SecretName":"x","Namespace":"a"}`)},
		},
		Stall: func(t *testing.T) (deploy.Target, <-chan struct{}) {
			// An API server that takes the request and never answers.
			reached := make(chan struct{})
			var once sync.Once
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				once.Do(func() { close(reached) })
				<-r.Context().Done()
			}))
			t.Cleanup(srv.Close)
			ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
			cfg, _ := json.Marshal(map[string]string{"Server": srv.URL, "CertificateAuthority": string(ca)})
			a := &deploy.Access{ID: 3, CloudName: CloudName, SecretKey: "stall-token-0123456789", Config: cfg}
			return secretTarget(a, SecretConfig{Namespaces: []string{"web"}, SecretName: "www-tls"}), reached
		},
		Failing: []deploytest.Failing{
			{Desc: "a namespace that does not exist", Target: func(*testing.T) deploy.Target {
				return secretTarget(tokenAccess(c, tok), SecretConfig{Namespaces: []string{"no-such-namespace"}, SecretName: "www-tls"})
			}},
			{Desc: "a token without rights", Target: func(t *testing.T) deploy.Target {
				ns := c.Namespace(t, "conf")
				return secretTarget(tokenAccess(c, c.Token(t, ns)), SecretConfig{Namespaces: []string{ns}, SecretName: "www-tls"})
			}},
			{Desc: "a token the API server does not know", Target: func(t *testing.T) deploy.Target {
				return secretTarget(tokenAccess(c, "certfleet-test-unknown-token-0123456789"), SecretConfig{Namespaces: []string{home}, SecretName: "www-tls"})
			}},
		},
	})
}

// TestConformanceIngress: the suite for INGRESS, on Ingresses that already
// have an entry for another host.
func TestConformanceIngress(t *testing.T) {
	c := cluster(t)
	d := NewIngress(Options{})
	target := func(t *testing.T) deploy.Target {
		ns := c.Namespace(t, "ing")
		createIngress(t, c, ns, "web", networkingv1.IngressTLS{Hosts: []string{"other.example.com"}, SecretName: "other-tls"})
		return ingressTarget(adminAccess(c), "www.example.com", IngressConfig{Namespace: ns, IngressName: "web", SecretName: "www-tls"})
	}
	deploytest.Run(t, deploytest.Harness{
		Deployer: d,
		Target:   target,
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			var cfg IngressConfig
			json.Unmarshal(tgt.Config, &cfg)
			ing, err := c.Client.NetworkingV1().Ingresses(cfg.Namespace).Get(bg, cfg.IngressName, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get Ingress: %v", err)
			}
			fp := served(t, c, cfg.Namespace, cfg.SecretName)
			entries, _ := json.Marshal(ing.Spec.TLS)
			if fp == nil && !strings.Contains(string(entries), tgt.Domain) {
				return nil
			}
			return append(fp, entries...)
		},
		BadConfigs: []deploytest.BadConfig{
			{Desc: "no IngressName", Config: json.RawMessage(`{"Namespace":"a","SecretName":"x"}`)},
			{Desc: "a Namespaces list (SECRET's key)", Config: json.RawMessage(`{"Namespaces":["a"],"IngressName":"web","SecretName":"x"}`)},
		},
		Failing: []deploytest.Failing{
			{Desc: "an Ingress that does not exist", Target: func(t *testing.T) deploy.Target {
				return ingressTarget(adminAccess(c), "www.example.com", IngressConfig{Namespace: c.Namespace(t, "ing"), IngressName: "nope", SecretName: "www-tls"})
			}},
		},
	})
}

func createIngress(t *testing.T, c *kubetest.Cluster, ns, name string, tls ...networkingv1.IngressTLS) {
	t.Helper()
	pt := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: networkingv1.IngressSpec{TLS: tls, Rules: []networkingv1.IngressRule{{Host: "www.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
	if _, err := c.Client.NetworkingV1().Ingresses(ns).Create(bg, ing, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Ingress: %v", err)
	}
}

// TestThreeNamespaces deploys to three namespaces (one already holding a
// Secret with others' labels and annotations), updates, checks
// already-deployed in every namespace, and rolls back: the Secrets certfleet
// created are deleted, the other one gets its old certificate back.
func TestThreeNamespaces(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	ns := []string{c.Namespace(t, "a"), c.Namespace(t, "b"), c.Namespace(t, "c")}
	old := deploytest.Bundle(t, "www.example.com")
	createSecret(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "www-tls", Namespace: ns[1],
		Labels: map[string]string{"team": "web"}, Annotations: map[string]string{"owner": "ops"}},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte(old.FullChainPEM), "tls.key": []byte(old.KeyPEM), "extra": []byte("kept")}})
	tgt := secretTarget(adminAccess(c), SecretConfig{Namespaces: ns, SecretName: "www-tls", IncludeCA: true})
	a, b := deploytest.Bundle(t, "www.example.com"), deploytest.Bundle(t, "www.example.com")
	a.CertID, b.CertID = 101, 102

	snapA, err := d.Snapshot(bg, req(tgt, a))
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if _, err := d.Deploy(bg, req(tgt, a)); err != nil {
		t.Fatalf("Deploy a: %v", err)
	}
	for _, n := range ns {
		s := wantHolds(t, c, n, "www-tls", a)
		if string(s.Data["ca.crt"]) != a.ChainPEM {
			t.Errorf("Secret in %s: ca.crt is not the chain (IncludeCA)", n)
		}
	}
	kept := getSecret(t, c, ns[1], "www-tls")
	if kept.Labels["team"] != "web" || kept.Annotations["owner"] != "ops" || string(kept.Data["extra"]) != "kept" {
		t.Errorf("the existing Secret lost others' labels, annotations or data: %v %v %v", kept.Labels, kept.Annotations, kept.Data["extra"])
	}
	if kept.Annotations[AnnotationCreated] != "" {
		t.Errorf("the existing Secret is marked as created by certfleet")
	}
	if ok, err := d.AlreadyDeployed(bg, req(tgt, a)); !ok || err != nil {
		t.Fatalf("AlreadyDeployed(a) after deploying a = %v, %v", ok, err)
	}

	// Update to b.
	snapB, err := d.Snapshot(bg, req(tgt, b))
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if _, err := d.Deploy(bg, req(tgt, b)); err != nil {
		t.Fatalf("Deploy b: %v", err)
	}
	for _, n := range ns {
		wantHolds(t, c, n, "www-tls", b)
	}
	// Already-deployed looks at every namespace's certificate: one Secret
	// changed behind certfleet's back is enough to deploy again.
	s := getSecret(t, c, ns[2], "www-tls")
	s.Data["tls.crt"] = []byte(a.FullChainPEM)
	if _, err := c.Client.CoreV1().Secrets(ns[2]).Update(bg, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.AlreadyDeployed(bg, req(tgt, b)); ok || err != nil {
		t.Fatalf("AlreadyDeployed(b) with namespace %s changed = %v, %v; want false", ns[2], ok, err)
	}
	if _, err := d.Deploy(bg, req(tgt, b)); err != nil {
		t.Fatalf("Deploy b again: %v", err)
	}
	if ok, err := d.AlreadyDeployed(bg, req(tgt, b)); !ok || err != nil {
		t.Fatalf("AlreadyDeployed(b) = %v, %v", ok, err)
	}

	// Roll back b: a everywhere.
	if err := d.Rollback(bg, req(tgt, a), snapB); err != nil {
		t.Fatalf("Rollback b: %v", err)
	}
	for _, n := range ns {
		wantHolds(t, c, n, "www-tls", a)
	}
	// Roll back a: the Secrets certfleet created are gone, the other one
	// holds the old certificate, with its labels, without ca.crt.
	if err := d.Rollback(bg, req(tgt, deploy.Bundle{}), snapA); err != nil {
		t.Fatalf("Rollback a: %v", err)
	}
	for _, n := range []string{ns[0], ns[2]} {
		if s := getSecret(t, c, n, "www-tls"); s != nil {
			t.Errorf("Secret in %s that certfleet created survived the rollback", n)
		}
	}
	s = getSecret(t, c, ns[1], "www-tls")
	if s == nil || string(s.Data["tls.crt"]) != old.FullChainPEM || string(s.Data["tls.key"]) != old.KeyPEM || s.Data["ca.crt"] != nil ||
		s.Labels["team"] != "web" || s.Annotations[AnnotationManaged] != "" || string(s.Data["extra"]) != "kept" {
		t.Fatalf("the pre-existing Secret after the rollback: %+v", s)
	}
}

// TestRollbackSparesOthersSecret: a Secret certfleet did not create is not
// deleted by a rollback to "nothing before", even if it appeared at that
// name after certfleet's was removed.
func TestRollbackSparesOthersSecret(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	ns := c.Namespace(t, "spare")
	tgt := secretTarget(adminAccess(c), SecretConfig{Namespaces: []string{ns}, SecretName: "www-tls"})
	a := deploytest.Bundle(t, "www.example.com")
	snap, err := d.Snapshot(bg, req(tgt, a))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deploy(bg, req(tgt, a)); err != nil {
		t.Fatal(err)
	}
	// Someone deletes it and creates their own.
	if err := c.Client.CoreV1().Secrets(ns).Delete(bg, "www-tls", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	theirs := deploytest.Bundle(t, "www.example.com")
	createSecret(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "www-tls", Namespace: ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte(theirs.FullChainPEM), "tls.key": []byte(theirs.KeyPEM)}})
	if err := d.Rollback(bg, req(tgt, deploy.Bundle{}), snap); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if s := getSecret(t, c, ns, "www-tls"); s == nil || string(s.Data["tls.key"]) != theirs.KeyPEM {
		t.Fatal("the rollback deleted or changed a Secret certfleet did not create")
	}
}

// TestForeignSecretRefused: a Secret of another type at that name is never
// overwritten; the error names it and every namespace's outcome, and the
// namespace already written is restored.
func TestForeignSecretRefused(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	good, bad, later := c.Namespace(t, "good"), c.Namespace(t, "foreign"), c.Namespace(t, "later")
	createSecret(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "www-tls", Namespace: bad}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"password": []byte("hunter2")}})
	tgt := secretTarget(adminAccess(c), SecretConfig{Namespaces: []string{good, bad, later}, SecretName: "www-tls"})
	_, err := d.Deploy(bg, req(tgt, deploytest.Bundle(t, "www.example.com")))
	if err == nil || !deploy.IsPermanent(err) {
		t.Fatalf("Deploy over an Opaque Secret: %v, want a permanent error", err)
	}
	for _, want := range []string{"Secret " + bad + "/www-tls exists with type Opaque", good + ": written, then restored",
		later + ": written, then restored", "1 of 3 namespaces failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if s := getSecret(t, c, bad, "www-tls"); s.Type != corev1.SecretTypeOpaque || string(s.Data["password"]) != "hunter2" || len(s.Data) != 1 {
		t.Errorf("the Opaque Secret was changed: %v %v", s.Type, s.Data)
	}
	for _, n := range []string{good, later} {
		if s := getSecret(t, c, n, "www-tls"); s != nil {
			t.Errorf("Secret in %s left behind after the failed deployment", n)
		}
	}
}

// TestMissingNamespace: one namespace that does not exist fails the
// deployment permanently, saying so, and the other is restored.
func TestMissingNamespace(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	good := c.Namespace(t, "good")
	old := deploytest.Bundle(t, "www.example.com")
	createSecret(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "www-tls", Namespace: good}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte(old.FullChainPEM), "tls.key": []byte(old.KeyPEM)}})
	tgt := secretTarget(adminAccess(c), SecretConfig{Namespaces: []string{good, "missing-" + good}, SecretName: "www-tls"})
	_, err := d.Deploy(bg, req(tgt, deploytest.Bundle(t, "www.example.com")))
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), `namespace "missing-`+good+`" does not exist`) ||
		!strings.Contains(err.Error(), good+": written, then restored") {
		t.Fatalf("Deploy with a missing namespace: %v", err)
	}
	if s := getSecret(t, c, good, "www-tls"); string(s.Data["tls.key"]) != old.KeyPEM {
		t.Fatal("the namespace written before the failure was not restored")
	}
}

// TestTokenRights: RBAC enforced by the API server. A token without any
// right is refused permanently; one whose Role covers one of two
// namespaces writes there, fails the other, and restores the first.
func TestTokenRights(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	mine, theirs := c.Namespace(t, "mine"), c.Namespace(t, "theirs")
	b := deploytest.Bundle(t, "www.example.com")

	none := secretTarget(tokenAccess(c, c.Token(t, mine)), SecretConfig{Namespaces: []string{mine}, SecretName: "www-tls"})
	_, err := d.Deploy(bg, req(none, b))
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "cannot get resource \"secrets\"") {
		t.Fatalf("Deploy with a token without rights: %v", err)
	}
	if _, err := d.Snapshot(bg, req(none, b)); err == nil || !deploy.IsPermanent(err) {
		t.Fatalf("Snapshot with a token without rights: %v", err)
	}

	half := secretTarget(tokenAccess(c, c.Token(t, mine, minimalRules...)), SecretConfig{Namespaces: []string{mine, theirs}, SecretName: "www-tls"})
	_, err = d.Deploy(bg, req(half, b))
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), mine+": written, then restored") ||
		!strings.Contains(err.Error(), theirs+": secrets \"www-tls\" is forbidden") {
		t.Fatalf("Deploy with rights in one namespace of two: %v", err)
	}
	if s := getSecret(t, c, mine, "www-tls"); s != nil {
		t.Fatal("the Secret written in the allowed namespace was left behind")
	}
	// The documented Role suffices for a deployment and its rollback.
	full := secretTarget(half.Access, SecretConfig{Namespaces: []string{mine}, SecretName: "www-tls"})
	snap, err := d.Snapshot(bg, req(full, b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deploy(bg, req(full, b)); err != nil {
		t.Fatalf("Deploy with the documented Role: %v", err)
	}
	if err := d.Rollback(bg, req(full, deploy.Bundle{}), snap); err != nil {
		t.Fatalf("Rollback with the documented Role: %v", err)
	}
}

// TestConflictRetried: someone updates the Secret between certfleet's read
// and its write; the API server answers Conflict and certfleet redoes its
// change on the fresh object, keeping the other writer's change.
func TestConflictRetried(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	ns := c.Namespace(t, "race")
	old := deploytest.Bundle(t, "www.example.com")
	createSecret(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "www-tls", Namespace: ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte(old.FullChainPEM), "tls.key": []byte(old.KeyPEM)}})
	var calls atomic.Int32
	d.beforeUpdate = func(n, name string) {
		if calls.Add(1) != 1 {
			return
		}
		s := getSecret(t, c, n, name)
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels["concurrent"] = "writer"
		if _, err := c.Client.CoreV1().Secrets(n).Update(bg, s, metav1.UpdateOptions{}); err != nil {
			t.Errorf("concurrent update: %v", err)
		}
	}
	b := deploytest.Bundle(t, "www.example.com")
	tgt := secretTarget(adminAccess(c), SecretConfig{Namespaces: []string{ns}, SecretName: "www-tls"})
	if _, err := d.Deploy(bg, req(tgt, b)); err != nil {
		t.Fatalf("Deploy racing another writer: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("certfleet tried to update %d times, want 2 (a conflict, then a retry on the fresh object)", n)
	}
	s := wantHolds(t, c, ns, "www-tls", b)
	if s.Labels["concurrent"] != "writer" {
		t.Fatalf("the other writer's change was overwritten: labels %v", s.Labels)
	}
}

// TestIngressEntry: the entry for the Domain is appended without touching
// the others, repointed when it lists the Domain alone, refused when it
// lists other hosts too; rollback undoes exactly certfleet's change.
func TestIngressEntry(t *testing.T) {
	c := cluster(t)
	d := NewIngress(Options{})
	ns := c.Namespace(t, "ing")
	others := []networkingv1.IngressTLS{
		{Hosts: []string{"a.example.com", "b.example.com"}, SecretName: "ab-tls"},
		{Hosts: []string{"old.example.com"}, SecretName: "old-tls"},
		{Hosts: []string{"shared.example.com", "c.example.com"}, SecretName: "shared-tls"},
	}
	createIngress(t, c, ns, "web", others...)
	tlsOf := func() []networkingv1.IngressTLS {
		ing, err := c.Client.NetworkingV1().Ingresses(ns).Get(bg, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ing.Labels["app"] != "web" {
			t.Errorf("the Ingress lost its labels: %v", ing.Labels)
		}
		return ing.Spec.TLS
	}
	same := func(got, want []networkingv1.IngressTLS) bool {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		return string(g) == string(w)
	}
	b := deploytest.Bundle(t, "www.example.com")

	add := ingressTarget(adminAccess(c), "www.example.com", IngressConfig{Namespace: ns, IngressName: "web", SecretName: "www-tls"})
	snap, err := d.Snapshot(bg, req(add, b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deploy(bg, req(add, b)); err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	wantHolds(t, c, ns, "www-tls", b)
	want := append(append([]networkingv1.IngressTLS{}, others...), networkingv1.IngressTLS{Hosts: []string{"www.example.com"}, SecretName: "www-tls"})
	if got := tlsOf(); !same(got, want) {
		t.Fatalf("spec.tls after Deploy: %+v\nwant %+v", got, want)
	}
	if ok, err := d.AlreadyDeployed(bg, req(add, b)); !ok || err != nil {
		t.Fatalf("AlreadyDeployed = %v, %v", ok, err)
	}
	if err := d.Rollback(bg, req(add, deploy.Bundle{}), snap); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if got := tlsOf(); !same(got, others) {
		t.Fatalf("spec.tls after Rollback: %+v\nwant %+v", got, others)
	}
	if s := getSecret(t, c, ns, "www-tls"); s != nil {
		t.Fatal("the Secret certfleet created survived the rollback")
	}

	// An entry for the domain alone is repointed, and pointed back.
	re := ingressTarget(adminAccess(c), "old.example.com", IngressConfig{Namespace: ns, IngressName: "web", SecretName: "new-tls"})
	snap, err = d.Snapshot(bg, req(re, b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deploy(bg, req(re, b)); err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	want = append([]networkingv1.IngressTLS{}, others...)
	want[1].SecretName = "new-tls"
	if got := tlsOf(); !same(got, want) {
		t.Fatalf("spec.tls after repointing: %+v", got)
	}
	if err := d.Rollback(bg, req(re, deploy.Bundle{}), snap); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if got := tlsOf(); !same(got, others) {
		t.Fatalf("spec.tls after rolling back the repointing: %+v", got)
	}

	// An entry shared with other hosts is not split.
	shared := ingressTarget(adminAccess(c), "shared.example.com", IngressConfig{Namespace: ns, IngressName: "web", SecretName: "mine-tls"})
	_, err = d.Deploy(bg, req(shared, b))
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "does not split an entry") {
		t.Fatalf("Deploy to a shared entry: %v", err)
	}
	if got := tlsOf(); !same(got, others) {
		t.Fatalf("spec.tls after the refused deployment: %+v", got)
	}
	if s := getSecret(t, c, ns, "mine-tls"); s != nil {
		t.Fatal("the Secret of the refused deployment was left behind")
	}
}

// TestRestartDeployments: after the Secret changes, the Deployments get
// kubectl's restartedAt annotation; an unchanged Secret restarts nothing.
func TestRestartDeployments(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	ns := c.Namespace(t, "restart")
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"keep": "me"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}}}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(bg, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	restartedAt := func() map[string]string {
		got, err := c.Client.AppsV1().Deployments(ns).Get(bg, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got.Spec.Template.Annotations
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	tgt := secretTarget(adminAccess(c), SecretConfig{Namespaces: []string{ns}, SecretName: "www-tls", RestartDeployments: []string{ns + "/web"}})
	b := deploytest.Bundle(t, "www.example.com")
	if _, err := d.Deploy(bg, req(tgt, b)); err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if a := restartedAt(); a[AnnotationRestartedAt] != "2026-12-01T10:00:00Z" || a["keep"] != "me" {
		t.Fatalf("pod template annotations after Deploy: %v", a)
	}
	now = now.Add(time.Hour)
	if _, err := d.Deploy(bg, req(tgt, b)); err != nil {
		t.Fatalf("Deploy again: %v", err)
	}
	if a := restartedAt(); a[AnnotationRestartedAt] != "2026-12-01T10:00:00Z" {
		t.Fatalf("an unchanged Secret restarted the Deployment: %v", a)
	}
	// A Deployment that does not exist fails the deployment, and the
	// Secret change is undone.
	missing := secretTarget(adminAccess(c), SecretConfig{Namespaces: []string{ns}, SecretName: "other-tls", RestartDeployments: []string{ns + "/nope"}})
	_, err := d.Deploy(bg, req(missing, b))
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "Deployment "+ns+"/nope: it does not exist") {
		t.Fatalf("Deploy restarting a missing Deployment: %v", err)
	}
	if s := getSecret(t, c, ns, "other-tls"); s != nil {
		t.Fatal("the Secret was left behind after the restart failed")
	}
}

// TestCredentials: kubeconfig contexts, and what a kubeconfig may not do.
func TestCredentials(t *testing.T) {
	c := cluster(t)
	d := NewSecret(Options{})
	ns := c.Namespace(t, "cred")
	b := deploytest.Bundle(t, "www.example.com")
	kc := string(c.AdminKubeconfig())
	for _, tc := range []struct {
		desc      string
		secretKey string
		config    string
		want      string // "" for success
		permanent bool
	}{
		{desc: "the current context", secretKey: kc},
		{desc: "a named context", secretKey: kc, config: `{"Context":"kubetest"}`},
		{desc: "a context that does not exist", secretKey: kc, config: `{"Context":"prod"}`, want: `no context "prod"; it has "kubetest", "other"`, permanent: true},
		{desc: "a context whose server is down", secretKey: kc, config: `{"Context":"other"}`, want: "127.0.0.1:1"},
		{desc: "not a kubeconfig", secretKey: "just-a-token-without-server", want: "not a kubeconfig", permanent: true},
		{desc: "an exec plugin", secretKey: strings.Replace(kc, "    client-certificate-data:", "    exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}\n    client-certificate-data:", 1),
			want: "exec credential plugin", permanent: true},
		{desc: "a CA file", secretKey: strings.Replace(kc, "    server: "+c.Server, "    server: "+c.Server+"\n    certificate-authority: /etc/ssl/ca.pem", 1),
			want: "from a file", permanent: true},
		{desc: "a token with Server but no CA", secretKey: "tok", config: fmt.Sprintf(`{"Server":%q}`, c.Server), want: "set CertificateAuthority", permanent: true},
		{desc: "an http Server", secretKey: "tok", config: `{"Server":"http://127.0.0.1:1","CertificateAuthority":"x"}`, want: "https://", permanent: true},
		{desc: "InCluster outside a cluster", secretKey: "-", config: `{"InCluster":true}`, want: "InCluster", permanent: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tgt := secretTarget(&deploy.Access{ID: 9, CloudName: CloudName, SecretKey: tc.secretKey, Config: json.RawMessage(tc.config)},
				SecretConfig{Namespaces: []string{ns}, SecretName: "www-tls"})
			ctx, cancel := context.WithTimeout(bg, 20*time.Second)
			defer cancel()
			_, err := d.Deploy(ctx, req(tgt, b))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Deploy: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Deploy: %v; want an error saying %q", err, tc.want)
			case tc.want != "" && deploy.IsPermanent(err) != tc.permanent:
				t.Fatalf("Deploy: %v; permanent %v, want %v", err, deploy.IsPermanent(err), tc.permanent)
			}
			if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error quotes a key: %v", err)
			}
		})
	}
}

// TestDiscover lists TLS Secrets and Ingress TLS entries, with
// certificates and Configs that pass validation.
func TestDiscover(t *testing.T) {
	c := cluster(t)
	ns := c.Namespace(t, "disc")
	b := deploytest.Bundle(t, "shop.example.com")
	createSecret(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-tls", Namespace: ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte(b.FullChainPEM), "tls.key": []byte(b.KeyPEM)}})
	createSecret(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"password": []byte("x")}})
	createIngress(t, c, ns, "shop", networkingv1.IngressTLS{Hosts: []string{"shop.example.com", "www.shop.example.com"}, SecretName: "shop-tls"},
		networkingv1.IngressTLS{Hosts: []string{"default.example.com"}})
	// Discovery lists every namespace: a ClusterRole with list.
	tok := c.ClusterToken(t, ns, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}},
		rbacv1.PolicyRule{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"list"}})
	tgt := deploy.Target{AccountID: 1, CloudName: CloudName, Access: tokenAccess(c, tok)}

	sec := NewSecret(Options{})
	found, err := sec.Discover(bg, tgt)
	if err != nil {
		t.Fatalf("Discover SECRET: %v", err)
	}
	var got []deploy.Discovered
	for _, f := range found {
		if f.InstanceID == ns {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Key != ns+"/shop-tls" || got[0].Domain != "shop.example.com" || got[0].CertSha2 != b.Sha2 || got[0].CloudProduct != "SECRET" {
		t.Fatalf("SECRET discovered in %s: %+v", ns, got)
	}
	if err := deploy.Validate(sec, got[0].Config, true); err != nil {
		t.Fatalf("discovered Config %s: %v", got[0].Config, err)
	}

	ing := NewIngress(Options{})
	found, err = ing.Discover(bg, tgt)
	if err != nil {
		t.Fatalf("Discover INGRESS: %v", err)
	}
	got = got[:0]
	for _, f := range found {
		if f.InstanceID == ns {
			got = append(got, f)
		}
	}
	if len(got) != 2 || got[0].Key != ns+"/shop/shop.example.com" || got[1].Domain != "www.shop.example.com" || got[1].CertSha2 != b.Sha2 {
		t.Fatalf("INGRESS discovered in %s: %+v", ns, got)
	}
	for _, g := range got {
		if err := deploy.Validate(ing, g.Config, true); err != nil {
			t.Fatalf("discovered Config %s: %v", g.Config, err)
		}
	}
	// Without list rights: a permanent error.
	tgt.Access = tokenAccess(c, c.Token(t, ns))
	if _, err := sec.Discover(bg, tgt); err == nil || !deploy.IsPermanent(err) {
		t.Fatalf("Discover without rights: %v", err)
	}
}

// TestEgressPolicy: the API server connection goes through the egress
// policy: an account the policy keeps off loopback is refused permanently,
// naming the policy, and the root account reaches it.
func TestEgressPolicy(t *testing.T) {
	c := cluster(t)
	accounts := func(_ context.Context, id int64) (egress.Scope, error) { return egress.Scope{Root: id == 1}, nil }
	d := NewSecret(Options{Egress: egress.New(egress.Policy{}, accounts, nil)})
	ns := c.Namespace(t, "egress")
	b := deploytest.Bundle(t, "www.example.com")
	tgt := secretTarget(adminAccess(c), SecretConfig{Namespaces: []string{ns}, SecretName: "www-tls"})
	tgt.AccountID = 7
	_, err := d.Deploy(bg, req(tgt, b))
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "refused by the egress policy") {
		t.Fatalf("tenant: %v, want a permanent egress refusal", err)
	}
	if s := getSecret(t, c, ns, "www-tls"); s != nil {
		t.Fatal("the tenant's Secret was written")
	}
	tgt.AccountID = 1
	if _, err := d.Deploy(bg, req(tgt, b)); err != nil {
		t.Fatalf("root: %v", err)
	}
	wantHolds(t, c, ns, "www-tls", b)
}

// TestDocumentedRole: the namespaced Role docs/deployers.md gives (secrets:
// get, create, update, delete; ingresses: get, update; deployments: patch)
// is enough for INGRESS and for SECRET with RestartDeployments, deploy and
// rollback, with the API server enforcing RBAC.
func TestDocumentedRole(t *testing.T) {
	c := cluster(t)
	ns := c.Namespace(t, "role")
	tok := c.Token(t, ns, append(slices.Clone(minimalRules),
		rbacv1.PolicyRule{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"get", "update"}},
		rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"patch"}})...)
	createIngress(t, c, ns, "web")
	labels := map[string]string{"app": "web"}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(bg, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := deploytest.Bundle(t, "www.example.com")
	for _, tc := range []struct {
		d   *Deployer
		tgt deploy.Target
	}{
		{NewIngress(Options{}), ingressTarget(tokenAccess(c, tok), "www.example.com", IngressConfig{Namespace: ns, IngressName: "web", SecretName: "ing-tls"})},
		{NewSecret(Options{}), secretTarget(tokenAccess(c, tok), SecretConfig{Namespaces: []string{ns}, SecretName: "sec-tls", RestartDeployments: []string{ns + "/web"}})},
	} {
		name := tc.d.Describe().Name()
		snap, err := tc.d.Snapshot(bg, req(tc.tgt, b))
		if err != nil {
			t.Fatalf("%s Snapshot: %v", name, err)
		}
		if _, err := tc.d.Deploy(bg, req(tc.tgt, b)); err != nil {
			t.Fatalf("%s Deploy with the documented Role: %v", name, err)
		}
		if ok, err := tc.d.AlreadyDeployed(bg, req(tc.tgt, b)); !ok || err != nil {
			t.Fatalf("%s AlreadyDeployed = %v, %v", name, ok, err)
		}
		if err := tc.d.Rollback(bg, req(tc.tgt, deploy.Bundle{}), snap); err != nil {
			t.Fatalf("%s Rollback with the documented Role: %v", name, err)
		}
	}
	dep, err := c.Client.AppsV1().Deployments(ns).Get(bg, "web", metav1.GetOptions{})
	if err != nil || dep.Spec.Template.Annotations[AnnotationRestartedAt] == "" {
		t.Fatalf("Deployment not restarted: %v %v", err, dep.Spec.Template.Annotations)
	}
	// Without the deployments rule, the restart is refused and the Secret
	// change undone.
	bare := c.Token(t, ns, minimalRules...)
	tgt := secretTarget(tokenAccess(c, bare), SecretConfig{Namespaces: []string{ns}, SecretName: "bare-tls", RestartDeployments: []string{ns + "/web"}})
	if _, err := NewSecret(Options{}).Deploy(bg, req(tgt, b)); err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "cannot patch resource \"deployments\"") {
		t.Fatalf("Deploy restarting without the deployments rule: %v", err)
	}
	if s := getSecret(t, c, ns, "bare-tls"); s != nil {
		t.Fatal("the Secret was left behind after the refused restart")
	}
}
