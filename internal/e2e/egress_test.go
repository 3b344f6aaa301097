package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil"
)

// caller is one account's view of a server: its SDK client and its own operations.
type caller struct {
	t           *testing.T
	srv         *server
	key, secret string
	c           *cas.Client
}

func (s *server) as(keyID, secret string) *caller {
	return &caller{t: s.t, srv: s, key: keyID, secret: secret, c: s.clientWith(keyID, secret, false, nil)}
}

func (c *caller) own(action string, q map[string]string) map[string]any {
	c.t.Helper()
	body, err := callGeneric(c.srv.genericVia(c.key, c.secret, false, nil), action, "2020-04-07", q, nil)
	if err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
	return body
}

// deployOnce uploads a certificate for domain, deploys it to a webhook
// resource posting to url with a contact whose chat webhook is hook, and
// returns the job's final status, its worker and its notifications once
// they are final.
func (c *caller) deployOnce(domain, url, hook string) (string, workerInfo, []notificationInfo) {
	c.t.Helper()
	ch := certstest.New(c.t, certstest.Options{DNSNames: []string{domain}})
	up, err := c.c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(domain), Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
	if err != nil {
		c.t.Fatalf("upload: %v", err)
	}
	res := idOf(c.t, c.own("CreateCloudResource", map[string]string{"CloudName": "webhook", "CloudProduct": "WEBHOOK",
		"Domain": domain, "Name": domain, "Config": jsonConfig(map[string]any{"Url": url, "TimeoutSeconds": 5})}), "Id")
	hooks, _ := json.Marshal([]string{hook})
	contact := idOf(c.t, c.own("CreateContact", map[string]string{"Name": "team", "Webhooks": string(hooks)}), "ContactId")
	job, err := c.c.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String(domain), JobType: tea.String("user"),
		CertIds: tea.String(joinIDs(tea.Int64Value(up.Body.CertId))), ResourceIds: tea.String(joinIDs(res)), ContactIds: tea.String(joinIDs(contact))})
	if err != nil {
		c.t.Fatalf("create job: %v", err)
	}
	jobID := tea.Int64Value(job.Body.JobId)
	if _, err := c.c.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("pending")}); err != nil {
		c.t.Fatalf("start job: %v", err)
	}
	status := c.srv.waitJob(c.c, jobID, 60*time.Second, "success", "error")
	var ws []workerInfo
	b, _ := json.Marshal(c.own("ListWorkerResource", map[string]string{"JobId": strconv.FormatInt(jobID, 10)})["Data"])
	if err := json.Unmarshal(b, &ws); err != nil || len(ws) != 1 {
		c.t.Fatalf("workers of job %d: %v %s", jobID, err, b)
	}
	var ns []notificationInfo
	waitFor(c.t, 60*time.Second, "the job's notification final", func() (bool, error) {
		b, _ := json.Marshal(c.own("ListNotification", map[string]string{"JobId": strconv.FormatInt(jobID, 10)})["NotificationList"])
		ns = nil
		if err := json.Unmarshal(b, &ns); err != nil {
			return false, err
		}
		return len(ns) == 1 && (ns[0].Status == "sent" || ns[0].Status == "failed"), nil
	})
	return status, ws[0], ns
}

// TestEgressPolicy: an account other than root cannot make certfleet
// connect to loopback (a webhook target, a contact's chat webhook) — the
// operator's internal services — while the root account can; once the
// operator allows 127.0.0.1/32 for that account, it can too.
func TestEgressPolicy(t *testing.T) {
	t.Parallel()
	s := startServer(t, "sqlite", serverOpts{})
	rcv := newReceiver(t)
	chat := newChatReceiver(t)

	key, secret := s.createAccount("tenant-egress")
	tenant := s.as(key, secret)
	status, w, ns := tenant.deployOnce("tenant.egress.test", rcv.URL, chat.URL)
	if status != "error" || w.Status != "error" || !strings.Contains(w.ErrorMessage, "refused by the egress policy") ||
		!strings.Contains(w.ErrorMessage, "--egress-allow") || w.Attempts != 1 {
		t.Errorf("tenant's deployment to loopback: job %s, worker %s after %d attempts: %q; want a permanent egress refusal", status, w.Status, w.Attempts, w.ErrorMessage)
	}
	if ns[0].Status != "failed" || !strings.Contains(ns[0].LastError, "refused by the egress policy") {
		t.Errorf("tenant's chat webhook on loopback: %s %q, want failed by the egress policy", ns[0].Status, ns[0].LastError)
	}
	if rcv.last("tenant.egress.test") != nil || len(chat.texts()) != 0 {
		t.Fatalf("a refused connection reached loopback: %d deliveries, %d chat messages", rcv.total, len(chat.texts()))
	}

	// CheckCloudResource cannot tell an open loopback port from a closed one.
	closed := testutil.FreeAddr(t)
	var seen []string
	for _, addr := range []string{strings.TrimPrefix(rcv.URL, "http://"), closed} {
		id := idOf(t, tenant.own("CreateCloudResource", map[string]string{"CloudName": "webhook", "CloudProduct": "WEBHOOK",
			"Domain": "probe.egress.test", "Name": addr, "Config": jsonConfig(map[string]any{"Url": "https://example.com/hook", "VerifyAddress": []string{addr}})}), "Id")
		body := tenant.own("CheckCloudResource", map[string]string{"Id": strconv.FormatInt(id, 10)})
		data, _ := body["Data"].(map[string]any)
		e, _ := data["ObservedError"].(string)
		seen = append(seen, e)
	}
	if seen[0] != seen[1] || !strings.Contains(seen[0], "refused by the egress policy") {
		t.Errorf("CheckCloudResource of an open and a closed loopback port: %q and %q; want the same egress refusal", seen[0], seen[1])
	}

	root := s.as(s.keyID, s.secret)
	if status, w, ns := root.deployOnce("root.egress.test", rcv.URL, chat.URL); status != "success" || ns[0].Status != "sent" {
		t.Errorf("root's deployment to loopback: job %s (%q), notification %s %q; want success and sent", status, w.ErrorMessage, ns[0].Status, ns[0].LastError)
	}

	out, err := exec.Command(certfleetBinary(t), "account", "update", "tenant-egress", "--egress-allow", "127.0.0.1/32",
		"--data-dir", s.dataDir, "--database", s.database).CombinedOutput()
	if err != nil {
		t.Fatalf("account update: %v\n%s", err, out)
	}
	status, w, ns = tenant.deployOnce("allowed.egress.test", rcv.URL, chat.URL)
	if status != "success" || ns[0].Status != "sent" {
		t.Errorf("tenant allowed 127.0.0.1/32: job %s (%q), notification %s %q; want success and sent", status, w.ErrorMessage, ns[0].Status, ns[0].LastError)
	}
	if rcv.last("allowed.egress.test") == nil {
		t.Error("the allowed tenant's delivery did not arrive")
	}
}
