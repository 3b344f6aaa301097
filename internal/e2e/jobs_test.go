package e2e

import (
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

func TestJobWebhookLifecycle(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{args: []string{"--retry-base", "100ms"}})
		c := srv.client(false)
		rcv := newReceiver(t)
		certID, ch := uploadCert(t, c, "www", "www.example.test", "api.example.test")
		r1 := srv.webhookResource(rcv.URL, "www.example.test")
		r2 := srv.webhookResource(rcv.URL, "api.example.test")
		contact := srv.contact()
		rcv.failures["api.example.test"] = 2
		job, err := c.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String("first"), JobType: tea.String("user"),
			CertIds: tea.String(joinIDs(certID)), ResourceIds: tea.String(joinIDs(r1, r2)), ContactIds: tea.String(joinIDs(contact))})
		if err != nil {
			t.Fatalf("create job: %v", err)
		}
		jobID := tea.Int64Value(job.Body.JobId)
		if st := srv.jobStatus(c, jobID); st != "editing" {
			t.Fatalf("new job status = %s", st)
		}
		if _, err := c.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("pending")}); err != nil {
			t.Fatalf("pending: %v", err)
		}
		if st := srv.waitJob(c, jobID, 30*time.Second, "success", "error"); st != "success" {
			t.Fatalf("job ended %s; workers: %v", st, srv.workers(c, jobID))
		}
		for _, d := range []string{"www.example.test", "api.example.test"} {
			p := rcv.last(d)
			if p == nil || p["Certificate"] != ch.LeafPEM || p["PrivateKey"] != ch.KeyPEM {
				t.Fatalf("%s received %v", d, p)
			}
		}
		st, err := c.DescribeDeploymentJobStatus(&cas.DescribeDeploymentJobStatusRequest{JobId: tea.Int64(jobID)})
		if err != nil || tea.Int32Value(st.Body.SuccessCount) != 2 || tea.Int32Value(st.Body.WorkerCount) != 2 {
			t.Fatalf("status = %v, %v", st, err)
		}
	})
}
