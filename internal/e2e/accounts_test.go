package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
)

// createAccount runs `certfleet account create` against the server's
// database and returns the new account's root key.
func (s *server) createAccount(name string) (keyID, secret string) {
	s.t.Helper()
	out, err := exec.Command(certfleetBinary(s.t), "account", "create", name, "--data-dir", s.dataDir, "--database", s.database).Output()
	if err != nil {
		s.t.Fatalf("account create %s: %v", name, err)
	}
	var c struct{ AccessKeyId, AccessKeySecret string }
	if err := json.Unmarshal(out, &c); err != nil || c.AccessKeyId == "" || c.AccessKeySecret == "" {
		s.t.Fatalf("account create %s printed %q", name, out)
	}
	return c.AccessKeyId, c.AccessKeySecret
}

// wantNotFound asserts err is the API's NotFound.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded on another account's object, want NotFound", what)
		return
	}
	if code, status := sdkErr(t, err); code != "NotFound" || status != 404 {
		t.Errorf("%s: %s (%d), want NotFound (404)", what, code, status)
	}
}

func TestAccountIsolation(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := startServer(t, engine, serverOpts{})
		a := s.client(false)
		rcv := newReceiver(t)

		// Account A (the root account) owns one of everything.
		certID, _ := uploadCert(t, a, "a-cert", "a.example.test")
		resID := s.webhookResource(rcv.URL, "a.example.test")
		contactID := s.contact()
		accessID := idOf(t, s.mustOwn("CreateCloudAccess", map[string]string{"CloudName": "webhook", "SecretId": "a-id", "SecretKey": "a-secret"}), "AccessId")
		job, err := a.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String("a-job"), JobType: tea.String("user"),
			CertIds: tea.String(joinIDs(certID)), ResourceIds: tea.String(joinIDs(resID)), ContactIds: tea.String(joinIDs(contactID))})
		if err != nil {
			t.Fatalf("A CreateDeploymentJob: %v", err)
		}
		jobID := tea.Int64Value(job.Body.JobId)
		workers := s.workers(a, jobID)
		if len(workers) != 1 {
			t.Fatalf("A's job has %d workers, want 1", len(workers))
		}
		workerID := tea.Int64Value(workers[0].Id)

		// Account B, created by the operator on the server host.
		bKey, bSecret := s.createAccount("tenant-b")
		b := s.clientWith(bKey, bSecret, false, nil)
		bOwn := func(action string, q map[string]string) error {
			_, err := callGeneric(s.genericVia(bKey, bSecret, false, nil), action, "2020-04-07", q, nil)
			return err
		}
		id := func(v int64) string { return strconv.FormatInt(v, 10) }

		_, err = b.GetUserCertificateDetail(&cas.GetUserCertificateDetailRequest{CertId: tea.Int64(certID)})
		wantNotFound(t, "GetUserCertificateDetail", err)
		_, err = b.DeleteUserCertificate(&cas.DeleteUserCertificateRequest{CertId: tea.Int64(certID)})
		wantNotFound(t, "DeleteUserCertificate", err)
		wantNotFound(t, "UpdateCloudResource", bOwn("UpdateCloudResource", map[string]string{"Id": id(resID), "Name": "stolen"}))
		wantNotFound(t, "DeleteCloudResource", bOwn("DeleteCloudResource", map[string]string{"Id": id(resID)}))
		wantNotFound(t, "UpdateContact", bOwn("UpdateContact", map[string]string{"ContactId": id(contactID), "Name": "stolen"}))
		wantNotFound(t, "DeleteContact", bOwn("DeleteContact", map[string]string{"ContactId": id(contactID)}))
		wantNotFound(t, "DeleteCloudAccess", bOwn("DeleteCloudAccess", map[string]string{"AccessId": id(accessID)}))
		_, err = b.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(jobID)})
		wantNotFound(t, "DescribeDeploymentJob", err)
		_, err = b.DescribeDeploymentJobStatus(&cas.DescribeDeploymentJobStatusRequest{JobId: tea.Int64(jobID)})
		wantNotFound(t, "DescribeDeploymentJobStatus", err)
		_, err = b.UpdateDeploymentJob(&cas.UpdateDeploymentJobRequest{JobId: tea.Int64(jobID), Name: tea.String("stolen")})
		wantNotFound(t, "UpdateDeploymentJob", err)
		_, err = b.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("pending")})
		wantNotFound(t, "UpdateDeploymentJobStatus", err)
		_, err = b.UpdateWorkerResourceStatus(&cas.UpdateWorkerResourceStatusRequest{JobId: tea.Int64(jobID), WorkerId: tea.Int64(workerID), Status: tea.String("rollback")})
		wantNotFound(t, "UpdateWorkerResourceStatus", err)
		_, err = b.DeleteWorkerResource(&cas.DeleteWorkerResourceRequest{JobId: tea.Int64(jobID), WorkerId: tea.Int64(workerID)})
		wantNotFound(t, "DeleteWorkerResource", err)
		_, err = b.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String("b-job"), JobType: tea.String("user"),
			CertIds: tea.String(joinIDs(certID)), ResourceIds: tea.String(joinIDs(resID)), ContactIds: tea.String(joinIDs(contactID))})
		wantNotFound(t, "CreateDeploymentJob with A's IDs", err)
		if lw, err := b.ListWorkerResource(&cas.ListWorkerResourceRequest{JobId: tea.Int64(jobID)}); err != nil {
			wantNotFound(t, "ListWorkerResource", err)
		} else if len(lw.Body.Data) != 0 {
			t.Errorf("B sees %d of A's workers", len(lw.Body.Data))
		}
		if lc, err := b.ListDeploymentJobCert(&cas.ListDeploymentJobCertRequest{JobId: tea.Int64(jobID)}); err != nil {
			wantNotFound(t, "ListDeploymentJobCert", err)
		} else if len(lc.Body.Data) != 0 {
			t.Errorf("B sees %d of A's job certificates", len(lc.Body.Data))
		}
		_, err = b.DeleteDeploymentJob(&cas.DeleteDeploymentJobRequest{JobId: tea.Int64(jobID)})
		wantNotFound(t, "DeleteDeploymentJob", err)

		// B's lists are empty.
		if n := certTotal(t, b); n != 0 {
			t.Errorf("B lists %d certificates", n)
		}
		lr, err := b.ListCloudResources(&cas.ListCloudResourcesRequest{})
		if err != nil || tea.Int64Value(lr.Body.Total) != 0 {
			t.Errorf("B ListCloudResources: %v %v", err, lr)
		}
		lj, err := b.ListDeploymentJob(&cas.ListDeploymentJobRequest{})
		if err != nil || tea.Int64Value(lj.Body.Total) != 0 {
			t.Errorf("B ListDeploymentJob: %v %v", err, lj)
		}
		for _, action := range []string{"ListContact", "ListCloudAccess"} {
			body, err := callGeneric(s.genericVia(bKey, bSecret, false, nil), action, "2020-04-07", nil, nil)
			if err != nil {
				t.Fatalf("B %s: %v", action, err)
			}
			if n := idOf(t, body, "TotalCount"); n != 0 {
				t.Errorf("B %s lists %d", action, n)
			}
		}

		// A still has everything.
		if _, err := a.GetUserCertificateDetail(&cas.GetUserCertificateDetailRequest{CertId: tea.Int64(certID)}); err != nil {
			t.Errorf("A lost its certificate: %v", err)
		}
		if s.jobStatus(a, jobID) != "editing" {
			t.Errorf("A's job changed")
		}
	})
}
