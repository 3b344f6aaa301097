package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/tea"
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
