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

	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// holdReceiver is a webhook target that holds deliveries for one domain
// until released (so a worker is mid-flight) and answers 503 to the others
// until told to accept.
type holdReceiver struct {
	*httptest.Server
	held    string
	arrived chan struct{} // closed when the held delivery arrives
	release chan struct{} // closed to let it through

	mu     sync.Mutex
	accept bool
	failed map[string]int // domain → 503s answered
	once   sync.Once
}

func newHoldReceiver(t *testing.T, held string) *holdReceiver {
	h := &holdReceiver{held: held, arrived: make(chan struct{}), release: make(chan struct{}), failed: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p struct{ Domain, Action string }
		json.Unmarshal(body, &p)
		if p.Domain == h.held && p.Action != "rollback" {
			h.once.Do(func() { close(h.arrived) })
			<-h.release
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.accept {
			h.failed[p.Domain]++
			http.Error(w, "try later", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(func() {
		h.let()
		h.Close()
	})
	return h
}

func (h *holdReceiver) let() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

func (h *holdReceiver) acceptAll() {
	h.mu.Lock()
	h.accept = true
	h.mu.Unlock()
}

// ownWorker is a ListWorkerResource item with certfleet's retry fields.
type ownWorker struct {
	Id, ResourceId, NextRunAt int64
	Status, ErrorMessage      string
	Attempts                  int
	Running                   bool
}

func (r *jobRig) ownWorkers(jobID int64) map[int64]ownWorker {
	r.t.Helper()
	body := r.own("ListWorkerResource", map[string]string{"JobId": strconv.FormatInt(jobID, 10), "ShowSize": "1000"})
	b, _ := json.Marshal(body["Data"])
	var list []ownWorker
	if err := json.Unmarshal(b, &list); err != nil {
		r.t.Fatalf("decode workers: %v", err)
	}
	out := map[int64]ownWorker{}
	for _, w := range list {
		out[w.ResourceId] = w
	}
	return out
}

// TestJobCancelRetryRollback: a job with one worker mid-flight and two
// waiting for a retry is cancelled (CancelDeploymentJob): the waiting ones
// end "cancelled", the running one finishes, the job ends error with
// Cancelled = 1 and its contact is told once. RetryDeploymentJob runs the
// failed workers again and the job succeeds; RollbackDeploymentJob rolls
// back every worker; each operation refuses a job in the wrong status.
func TestJobCancelRetryRollback(t *testing.T) {
	skipShort(t)
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		t.Parallel()
		chat := newChatReceiver(t)
		srv := startServer(t, engine, serverOpts{args: []string{"--retry-attempts", "5", "--retry-base", "1h"}})
		r := &jobRig{t: t, srv: srv, c: srv.client(false)}
		r.contact = r.contactWith("", chat.URL+"/hook")
		hold := newHoldReceiver(t, "a.cancel.test")
		cert, _ := r.upload("cancel", certstest.Options{DNSNames: []string{"*.cancel.test"}})
		a, b, c := r.webhook(hold.URL, "a.cancel.test"), r.webhook(hold.URL, "b.cancel.test"), r.webhook(hold.URL, "c.cancel.test")
		job := r.createJob(jobSpec{name: "cancel-me", certs: []int64{cert}, resources: []int64{a, b, c}})
		jobQ := map[string]string{"JobId": strconv.FormatInt(job, 10)}

		_, err := r.srv.callOwn("CancelDeploymentJob", jobQ)
		wantAPIError(t, err, "IncorrectStatus", "editing")
		r.mustSetStatus(job, "pending")

		select {
		case <-hold.arrived:
		case <-time.After(30 * time.Second):
			t.Fatal("the held delivery never arrived")
		}
		waitFor(t, 30*time.Second, "b and c to wait for a retry", func() (bool, error) {
			ws := r.ownWorkers(job)
			return ws[b].NextRunAt > 0 && ws[c].NextRunAt > 0, nil
		})
		ws := r.ownWorkers(job)
		if w := ws[b]; w.Attempts != 1 || w.Running || !strings.Contains(w.ErrorMessage, "503") {
			t.Errorf("retrying worker: %+v, want attempt 1, not running, a 503 error", w)
		}
		if !ws[a].Running {
			t.Errorf("held worker: %+v, want running", ws[a])
		}

		body := r.own("CancelDeploymentJob", jobQ)
		if body["Status"] != "processing" {
			t.Errorf("CancelDeploymentJob answered %v, want Status processing (a worker runs)", body)
		}
		_, err = r.srv.callOwn("CancelDeploymentJob", jobQ)
		wantAPIError(t, err, "IncorrectStatus", "cancelled already")
		ws = r.ownWorkers(job)
		for _, id := range []int64{b, c} {
			if ws[id].Status != "error" || !strings.HasPrefix(ws[id].ErrorMessage, "cancelled") {
				t.Errorf("waiting worker after cancel: %+v, want error \"cancelled …\"", ws[id])
			}
		}
		hold.let()
		r.waitEnd(job, "error")
		if st := r.ownWorkers(job)[a].Status; st != "success" {
			t.Errorf("the running worker ended %s, want success (it finishes)", st)
		}
		var d struct{ Cancelled int32 }
		b2, _ := json.Marshal(r.own("DescribeDeploymentJob", jobQ))
		json.Unmarshal(b2, &d)
		if d.Cancelled != 1 {
			t.Errorf("DescribeDeploymentJob Cancelled = %d, want 1", d.Cancelled)
		}
		if texts := chat.wait(t, 1); !strings.Contains(texts[0], "Deployment cancelled, 2 of 3") {
			t.Errorf("the job's end message does not say it was cancelled: %q", texts[0])
		}

		// Retry: the failed workers run again, the job succeeds.
		hold.acceptAll()
		_, err = r.srv.callOwn("RetryDeploymentJob", map[string]string{"JobId": jobQ["JobId"], "WorkerIds": fmt.Sprint(a)})
		wantAPIError(t, err, "IncorrectStatus", "no error worker")
		body = r.own("RetryDeploymentJob", jobQ)
		if fmt.Sprint(body["WorkerCount"]) != "2" {
			t.Errorf("RetryDeploymentJob answered %v, want WorkerCount 2", body)
		}
		r.waitEnd(job, "success")
		texts := chat.wait(t, 2)
		if n := strings.Count(strings.Join(texts, "\n"), "Deployment cancelled"); n != 1 || len(texts) != 2 {
			t.Errorf("messages mentioning the cancel: %d, want 1 (told once):\n%s", n, strings.Join(texts, "\n---\n"))
		}
		_, err = r.srv.callOwn("RetryDeploymentJob", jobQ)
		wantAPIError(t, err, "IncorrectStatus", "no error worker")

		// Roll the whole job back.
		body = r.own("RollbackDeploymentJob", jobQ)
		if fmt.Sprint(body["WorkerCount"]) != "3" {
			t.Errorf("RollbackDeploymentJob answered %v, want WorkerCount 3", body)
		}
		waitFor(t, 30*time.Second, "the rollbacks to end", func() (bool, error) {
			s := r.counts(job)
			return tea.Int32Value(s.RollbackSuccessCount)+tea.Int32Value(s.RollbackFailedCount) == 3, nil
		})
		if s := r.counts(job); tea.Int32Value(s.RollbackSuccessCount) != 3 {
			t.Errorf("rollback counts: %+v, want 3 restored", s)
		}
		_, err = r.srv.callOwn("RollbackDeploymentJob", jobQ)
		wantAPIError(t, err, "IncorrectStatus", "nothing to roll back")
	})
}
