package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/notify/notifytest"
	"github.com/certfleet/certfleet/internal/testutil"
)

// chatReceiver is a chat-bot webhook on loopback that records the JSON it receives.
type chatReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []map[string]any
	arrived chan struct{} // closed and replaced on each message
}

func newChatReceiver(t *testing.T) *chatReceiver {
	t.Helper()
	c := &chatReceiver{arrived: make(chan struct{})}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var v map[string]any
		json.Unmarshal(body, &v)
		c.mu.Lock()
		c.got = append(c.got, v)
		close(c.arrived)
		c.arrived = make(chan struct{})
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

// texts returns the "text" of every message received (Slack format).
func (c *chatReceiver) texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, v := range c.got {
		s, _ := v["text"].(string)
		out = append(out, s)
	}
	return out
}

// wait waits until n messages have arrived and returns them all.
func (c *chatReceiver) wait(t *testing.T, n int) []string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		got, arrived := len(c.got), c.arrived
		c.mu.Unlock()
		if got >= n {
			return c.texts()
		}
		select {
		case <-arrived:
		case <-timeout:
			t.Fatalf("%d chat messages after 30s, want %d", got, n)
		}
	}
}

// notifyPassed returns once the server's dispatcher has emitted the events
// due when it was called: it runs a one-resource job for contact to its end
// and waits for that end's notification. Each dispatcher pass emits every
// due event, so an event told twice would be visible by then: a test
// asserts "told once" after this, not after a sleep.
func notifyPassed(t *testing.T, srv *server, contact int64) {
	t.Helper()
	r := &jobRig{t: t, srv: srv, c: srv.client(false), contact: contact}
	rcv := newCountingReceiver(t)
	domain := fmt.Sprintf("sentinel%d.notify.test", time.Now().UnixNano())
	cert, _ := r.upload("sentinel", certstest.Options{DNSNames: []string{domain}})
	job := r.createJob(jobSpec{name: "sentinel", certs: []int64{cert}, resources: []int64{r.webhook(rcv.URL, domain)}})
	r.run(job, "success")
	waitFor(t, 30*time.Second, "the sentinel job's end told", func() (bool, error) { return len(r.notifications(job)) > 0, nil })
}

// allSent waits until every notification of job is sent and returns them.
// A sent notification is never claimed again, so what its channel received
// is final then.
func (r *jobRig) allSent(job int64, want int) []notificationInfo {
	r.t.Helper()
	var ns []notificationInfo
	waitFor(r.t, 30*time.Second, fmt.Sprintf("%d notifications of job %d sent", want, job), func() (bool, error) {
		ns = r.notifications(job)
		for _, n := range ns {
			if n.Status != "sent" {
				return false, nil
			}
		}
		return len(ns) >= want, nil
	})
	return ns
}

func (r *jobRig) contactWith(email string, hooks ...string) int64 {
	r.t.Helper()
	q := map[string]string{"Name": "team"}
	if email != "" {
		q["Email"] = email
	}
	if len(hooks) > 0 {
		b, _ := json.Marshal(hooks)
		q["Webhooks"] = string(b)
	}
	return idOf(r.t, r.own("CreateContact", q), "ContactId")
}

type notificationInfo struct {
	ID        int64 `json:"Id"`
	JobID     int64 `json:"JobId"`
	Event     string
	Channel   string
	Target    string
	Status    string
	Attempts  int
	LastError string
	GmtSent   string
}

func (r *jobRig) notifications(jobID int64) []notificationInfo {
	r.t.Helper()
	q := map[string]string{"ShowSize": "100"}
	if jobID != 0 {
		q["JobId"] = strconv.FormatInt(jobID, 10)
	}
	body := r.own("ListNotification", q)
	b, _ := json.Marshal(body["NotificationList"])
	var out []notificationInfo
	if err := json.Unmarshal(b, &out); err != nil {
		r.t.Fatalf("decode notifications: %v (%s)", err, b)
	}
	return out
}

// TestNotifyJobEnd runs a job that fails on one of two resources and checks
// that its contact gets one email (through a real SMTP server, STARTTLS and
// PLAIN auth) and one chat message, each listing the failed resource; that
// a job where nothing changed tells nobody; and that a rollback is told.
func TestNotifyJobEnd(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		const password = "smtp-pass-7f3a"
		smtpSrv := notifytest.Start(t, notifytest.Options{STARTTLS: true, User: "certfleet", Password: password})
		chat := newChatReceiver(t)
		srv := startServer(t, engine, serverOpts{args: []string{"--retry-attempts", "1", "--smtp-addr", smtpSrv.Addr, "--smtp-user", "certfleet",
			"--smtp-from", "certfleet@example.test", "--smtp-insecure-skip-verify", "--notify-retry-base", "200ms"},
			env: []string{"CERTFLEET_SMTP_PASSWORD=" + password}})
		r := &jobRig{t: t, srv: srv, c: srv.client(false)}
		r.contact = r.contactWith("ops@example.test", chat.URL+"/hook")
		rcv := newCountingReceiver(t)
		rcv.answer("bad.notify.test", http.StatusBadRequest)
		cert, _ := r.upload("notify", certstest.Options{DNSNames: []string{"*.notify.test"}})
		ok, bad := r.webhook(rcv.URL, "ok.notify.test"), r.webhook(rcv.URL, "bad.notify.test")
		job := r.createJob(jobSpec{name: "www-rollout", certs: []int64{cert}, resources: []int64{ok, bad}})
		r.run(job, "error")

		m := smtpSrv.Wait(t, 1, 30*time.Second)[0]
		if len(m.To) != 1 || m.To[0] != "ops@example.test" || m.AuthUser != "certfleet" || !m.TLS {
			t.Fatalf("email envelope: to %v, auth %q, TLS %v", m.To, m.AuthUser, m.TLS)
		}
		if !strings.Contains(m.Subject, "Deployment failed on 1 of 2 resources") || !strings.Contains(m.Subject, "www-rollout") {
			t.Fatalf("subject %q", m.Subject)
		}
		for _, part := range []struct{ desc, body string }{{"text", m.Text}, {"html", m.HTML}} {
			if !strings.Contains(part.body, "bad.notify.test") || !strings.Contains(part.body, "400") || strings.Contains(part.body, "ok.notify.test (") {
				t.Fatalf("%s part does not list exactly the failed resource with its error:\n%s", part.desc, part.body)
			}
		}
		texts := chat.wait(t, 1)
		if !strings.Contains(texts[0], "bad.notify.test") || !strings.Contains(texts[0], "failed on 1 of 2") {
			t.Fatalf("chat message: %s", texts[0])
		}
		waitFor(t, 10*time.Second, "both notifications sent", func() (bool, error) {
			ns := r.notifications(job)
			sent := 0
			for _, n := range ns {
				if n.Status == "sent" && n.Event == "job_error" && n.GmtSent != "" {
					sent++
				}
			}
			return len(ns) == 2 && sent == 2, nil
		})

		// Nothing happened: the resource already serves the certificate.
		again := r.createJob(jobSpec{name: "again", certs: []int64{cert}, resources: []int64{ok}})
		r.run(again, "success")

		// A rollback is told once it ends.
		r.rollback(job, ok, "rollback_success")
		mails := smtpSrv.Wait(t, 2, 30*time.Second)
		if !strings.Contains(mails[1].Subject, "Rollback succeeded on 1 resources") || !strings.Contains(mails[1].Text, "ok.notify.test") {
			t.Fatalf("rollback email: %q\n%s", mails[1].Subject, mails[1].Text)
		}
		chat.wait(t, 2)
		// The rollback's end was emitted after "again" ended, by a pass
		// that would have told "again" too.
		if ns := r.notifications(again); len(ns) != 0 {
			t.Fatalf("a job that changed nothing was told: %+v", ns)
		}
		if ns := r.allSent(job, 4); len(ns) != 4 {
			t.Fatalf("%d notifications of the job, want 4 (two events, two channels): %+v", len(ns), ns)
		}
		if n := len(smtpSrv.Mail()); n != 2 {
			t.Fatalf("%d emails, want 2 (one per event)", n)
		}
		if strings.Contains(srv.Logs(), password) {
			t.Fatal("the SMTP password appears in the logs")
		}
	})
}

// TestNotifyCrashBeforeDelivery ends a job while the SMTP server is down,
// kills certfleet with SIGKILL, starts the SMTP server and certfleet again:
// the message arrives, once.
func TestNotifyCrashBeforeDelivery(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		smtpAddr := testutil.FreeAddr(t) // nothing listens there yet
		srv := startServer(t, engine, serverOpts{args: []string{"--smtp-addr", smtpAddr, "--smtp-tls", "none",
			"--notify-retry-base", "300ms", "--notify-timeout", "3s"}})
		r := &jobRig{t: t, srv: srv, c: srv.client(false)}
		r.contact = r.contactWith("oncall@example.test")
		rcv := newCountingReceiver(t)
		cert, _ := r.upload("crash", certstest.Options{DNSNames: []string{"www.crash.test"}})
		job := r.createJob(jobSpec{name: "crash", certs: []int64{cert}, resources: []int64{r.webhook(rcv.URL, "www.crash.test")}})
		r.run(job, "success")
		waitFor(t, 20*time.Second, "a failed delivery attempt", func() (bool, error) {
			ns := r.notifications(job)
			return len(ns) == 1 && ns[0].Attempts >= 1 && ns[0].Status == "pending" && ns[0].LastError != "", nil
		})
		srv.kill()
		smtpSrv := notifytest.Start(t, notifytest.Options{Addr: smtpAddr})
		srv.start()
		m := smtpSrv.Wait(t, 1, 30*time.Second)
		if m[0].To[0] != "oncall@example.test" || !strings.Contains(m[0].Subject, "Deployment succeeded on 1 resources") {
			t.Fatalf("received %+v", m[0])
		}
		if ns := r.allSent(job, 1); len(ns) != 1 {
			t.Fatalf("notifications %+v, want one", ns)
		}
		if n := len(smtpSrv.Mail()); n != 1 {
			t.Fatalf("%d emails arrived, want exactly 1", n)
		}
	})
}

// TestRenewRedeploys uploads a renewal of a certificate deployed to two
// AutoRenew resources (and one without) and checks that a trustee job
// deploys it to exactly those two, and that the contact is told.
func TestRenewRedeploys(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		chat := newChatReceiver(t)
		srv := startServer(t, engine, serverOpts{args: []string{"--notify-retry-base", "200ms"}})
		r := &jobRig{t: t, srv: srv, c: srv.client(false)}
		r.contact = r.contactWith("", chat.URL)
		rcv := newCountingReceiver(t)
		resource := func(domain string, autoRenew bool) int64 {
			return idOf(t, r.own("CreateCloudResource", map[string]string{"CloudName": "webhook", "CloudProduct": "WEBHOOK", "Domain": domain,
				"Name": domain, "Config": jsonConfig(map[string]any{"Url": rcv.URL, "TimeoutSeconds": 5, "AutoRenew": autoRenew})}), "Id")
		}
		a, b, manual := resource("a.renew.test", true), resource("b.renew.test", true), resource("c.renew.test", false)
		certA, chA := r.upload("renew-a", certstest.Options{DNSNames: []string{"*.renew.test"}})
		job := r.createJob(jobSpec{name: "first", certs: []int64{certA}, resources: []int64{a, b, manual}})
		r.run(job, "success")
		chat.wait(t, 1)

		certB, chB := r.upload("renew-b", certstest.Options{DNSNames: []string{"*.renew.test"}, NotAfter: time.Now().Add(200 * 24 * time.Hour), From: &chA})
		var trustee int64
		waitFor(t, 10*time.Second, "a trustee job", func() (bool, error) {
			l, err := r.c.ListDeploymentJob(&cas.ListDeploymentJobRequest{JobType: tea.String("trustee")})
			if err != nil {
				return false, err
			}
			if len(l.Body.Data) > 0 {
				trustee = tea.Int64Value(l.Body.Data[0].Id)
			}
			return len(l.Body.Data) == 1, nil
		})
		r.waitEnd(trustee, "success")
		ws := r.workers(trustee)
		if len(ws) != 2 {
			t.Fatalf("trustee job has %d workers, want 2: %+v", len(ws), ws)
		}
		for _, res := range []struct {
			id     int64
			domain string
			want   int64
		}{{a, "a.renew.test", certB}, {b, "b.renew.test", certB}, {manual, "c.renew.test", certA}} {
			if got := r.servedCert(res.id); got != res.want {
				t.Errorf("%s serves certificate %d, want %d", res.domain, got, res.want)
			}
		}
		for _, d := range []string{"a.renew.test", "b.renew.test"} {
			if p := rcv.last(d); p["Certificate"] != chB.LeafPEM {
				t.Errorf("%s last received %v", d, p["CertId"])
			}
		}
		texts := chat.wait(t, 2)
		if !strings.Contains(texts[1], "renew renew-b") || !strings.Contains(texts[1], "trustee") {
			t.Fatalf("renewal message: %s", texts[1])
		}
	})
}

// TestExpiryNotice deploys a certificate five days from expiry and checks
// that the contact is told once (the 7-day threshold), however often the
// scan runs.
func TestExpiryNotice(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		chat := newChatReceiver(t)
		srv := startServer(t, engine, serverOpts{args: []string{"--expiry-scan-interval", "500ms", "--notify-retry-base", "200ms", "--log-level", "debug"}})
		r := &jobRig{t: t, srv: srv, c: srv.client(false)}
		r.contact = r.contactWith("", chat.URL)
		rcv := newCountingReceiver(t)
		cert, _ := r.upload("soon", certstest.Options{DNSNames: []string{"soon.expiry.test"}, NotAfter: time.Now().Add(5*24*time.Hour + time.Hour)})
		// Scans run while the certificate is deployed nowhere: nobody to tell.
		srv.waitLog(srv.logCount(expiryScanDone)+2, expiryScanDone)
		job := r.createJob(jobSpec{name: "soon", certs: []int64{cert}, resources: []int64{r.webhook(rcv.URL, "soon.expiry.test")}})
		r.run(job, "success")
		chat.wait(t, 2)
		// Two more scans after both messages: a third would be queued by now.
		srv.waitLog(srv.logCount(expiryScanDone)+2, expiryScanDone)
		var expiryRows int
		for _, n := range r.notifications(0) {
			if n.Event == "cert_expiring" {
				expiryRows++
			}
		}
		if expiryRows != 1 {
			t.Fatalf("%d cert_expiring notifications, want 1", expiryRows)
		}
		r.allSent(0, 2)
		texts := chat.texts()
		expiring := 0
		for _, s := range texts {
			if strings.Contains(s, "expires in 5 days") {
				expiring++
				if !strings.Contains(s, "soon.expiry.test") || !strings.Contains(s, "less than 7 days") {
					t.Errorf("expiry message: %s", s)
				}
			}
		}
		if expiring != 1 || len(texts) != 2 {
			t.Fatalf("%d expiry messages among %d, want 1 of 2: %q", expiring, len(texts), texts)
		}
		found := false
		for _, n := range r.notifications(0) {
			found = found || (n.Event == "cert_expiring" && n.Status == "sent")
		}
		if !found {
			t.Fatalf("no sent cert_expiring notification listed: %+v", r.notifications(0))
		}
	})
}
