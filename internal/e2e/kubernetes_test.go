package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/tea"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil/kubetest"
)

// TestMain stops the kube-apiserver the kubernetes tests start, if any.
func TestMain(m *testing.M) { kubetest.Main(m) }

// kubeSecrets is how many Secrets TestJobKubernetesSecrets deploys.
const kubeSecrets = 200

// TestJobKubernetesSecrets: an SDK-driven job deploys one certificate to 200
// kubernetes/SECRET resources of a real kube-apiserver, on both engines;
// every Secret then holds it; a job rollback deletes the Secrets certfleet
// created. The job's wall time is logged.
func TestJobKubernetesSecrets(t *testing.T) {
	skipShort(t)
	c := kubetest.Start(t)
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newJobRig(t, engine, "--retry-base", "100ms", "--retry-attempts", "3")
		ns := c.Namespace(t, "e2e-"+engine)
		access := idOf(t, r.own("CreateCloudAccess", map[string]string{"CloudName": "kubernetes", "Name": "kubetest",
			"SecretId": "admin", "SecretKey": string(c.AdminKubeconfig())}), "AccessId")
		cert, ch := r.upload("wild", certstest.Options{DNSNames: []string{"*.example.test"}})
		res := make([]int64, kubeSecrets)
		for i := range res {
			res[i] = idOf(t, r.own("CreateCloudResource", map[string]string{"CloudName": "kubernetes", "CloudProduct": "SECRET",
				"Domain": fmt.Sprintf("s%03d.example.test", i), "Name": fmt.Sprintf("s%03d", i), "CloudAccessId": fmt.Sprint(access),
				"Config": jsonConfig(map[string]any{"Namespaces": []string{ns}, "SecretName": fmt.Sprintf("tls-%03d", i)})}), "Id")
		}
		job := r.createJob(jobSpec{name: "k8s", certs: []int64{cert}, resources: res})
		start := time.Now()
		r.mustSetStatus(job, "pending")
		if st := r.wait(job, 5*time.Minute, "success", "error"); st != "success" {
			t.Fatalf("job ended %s; workers: %+v", st, r.workers(job))
		}
		t.Logf("%s: job over %d kubernetes Secrets took %v (set pending → success, as seen by polling DescribeDeploymentJob)",
			engine, kubeSecrets, time.Since(start).Round(time.Millisecond))

		list, err := c.Client.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != kubeSecrets {
			t.Fatalf("namespace %s has %d Secrets, want %d", ns, len(list.Items), kubeSecrets)
		}
		for _, s := range list.Items {
			if string(s.Data["tls.crt"]) != ch.CertPEM || string(s.Data["tls.key"]) != ch.KeyPEM || s.Type != "kubernetes.io/tls" {
				t.Fatalf("Secret %s does not hold certificate %d", s.Name, cert)
			}
		}

		r.own("RollbackDeploymentJob", map[string]string{"JobId": fmt.Sprint(job)})
		waitFor(t, 5*time.Minute, "every worker rolled back", func() (bool, error) {
			cs := r.counts(job)
			return tea.Int32Value(cs.RollbackSuccessCount)+tea.Int32Value(cs.RollbackFailedCount) == kubeSecrets, nil
		})
		if cs := r.counts(job); tea.Int32Value(cs.RollbackSuccessCount) != kubeSecrets {
			t.Fatalf("rollback counts: %v", cs)
		}
		for i := range kubeSecrets {
			_, err := c.Client.CoreV1().Secrets(ns).Get(t.Context(), fmt.Sprintf("tls-%03d", i), metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Fatalf("Secret tls-%03d after the rollback: %v, want it deleted", i, err)
			}
		}
	})
}

// TestSyncKubernetes: SyncCloudResources on a kubernetes CloudAccess
// creates a SECRET resource for a TLS Secret and an INGRESS resource per
// host of an Ingress's TLS entry, showing the certfleet certificate they
// serve; a second sync creates nothing; once they are removed from the
// cluster, a sync marks them gone.
func TestSyncKubernetes(t *testing.T) {
	skipShort(t)
	c := kubetest.Start(t)
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newJobRig(t, engine)
		ns := c.Namespace(t, "sync-"+engine)
		domain := "sync-" + engine + ".example.test"
		cert, ch := r.upload("sync", certstest.Options{DNSNames: []string{domain}})
		if _, err := c.Client.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sync-tls"},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte(ch.CertPEM), "tls.key": []byte(ch.KeyPEM)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: networkingv1.IngressSpec{
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			TLS:            []networkingv1.IngressTLS{{Hosts: []string{domain}, SecretName: "sync-tls"}}}}
		if _, err := c.Client.NetworkingV1().Ingresses(ns).Create(t.Context(), ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		access := idOf(t, r.own("CreateCloudAccess", map[string]string{"CloudName": "kubernetes", "Name": "kubetest",
			"SecretId": "admin", "SecretKey": string(c.AdminKubeconfig())}), "AccessId")
		sync := func() map[string]any {
			return r.own("SyncCloudResources", map[string]string{"AccessId": fmt.Sprint(access)})
		}
		// listed returns this test's resources of the access by product.
		listed := func() map[string]map[string]any {
			body := r.own("ListCloudResources", map[string]string{"SecretId": fmt.Sprint(access), "Keyword": domain, "ShowSize": "100"})
			out := map[string]map[string]any{}
			data, _ := body["Data"].([]any)
			for _, d := range data {
				m := d.(map[string]any)
				if m["Domain"] == domain {
					out[fmt.Sprint(m["CloudProduct"])] = m
				}
			}
			return out
		}
		first := sync()
		t.Logf("first sync: %v", first)
		got := listed()
		for _, p := range []string{"SECRET", "INGRESS"} {
			m, ok := got[p]
			if !ok {
				t.Fatalf("no %s resource for %s after the sync; listed: %v", p, domain, got)
			}
			if fmt.Sprint(m["CertId"]) != fmt.Sprint(cert) || m["Status"] != "online" || m["InstanceId"] != ns {
				t.Fatalf("%s resource: CertId %v Status %v InstanceId %v; want %d, online, %s", p, m["CertId"], m["Status"], m["InstanceId"], cert, ns)
			}
		}
		if second := sync(); fmt.Sprint(second["Created"]) != "0" {
			t.Fatalf("second sync created resources again: %v", second)
		}
		if err := c.Client.NetworkingV1().Ingresses(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.Client.CoreV1().Secrets(ns).Delete(t.Context(), "sync-tls", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		sync()
		after := listed()
		if len(after) != 2 {
			t.Fatalf("after the objects were removed, %d resources are listed for %s, want the 2 marked gone: %v", len(after), domain, after)
		}
		for p, m := range after {
			if m["Status"] != "gone" {
				t.Errorf("%s resource after its object was removed: Status %v, want gone", p, m["Status"])
			}
		}
	})
}
