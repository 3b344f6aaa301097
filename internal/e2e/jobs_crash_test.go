package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestCrashKill9 kills the server with SIGKILL, again and again, while a job
// of 200 webhook resources runs, and checks that the job still ends with
// every resource deployed, and never two deliveries to one resource at once.
// Delivery is at least once: a resource whose delivery was cut by a kill gets
// it again.
func TestCrashKill9(t *testing.T) {
	const (
		resources = 200
		minKills  = 5
		maxKills  = 8
		lease     = 2 * time.Second
	)
	forEachEngine(t, func(t *testing.T, engine string) {
		// One delivery at a time, 20 ms each: at least four seconds of work.
		r := newJobRig(t, engine, "--per-host", "1", "--retry-base", "100ms", "--retry-attempts", "5", "--lease", lease.String())
		rcv := newCountingReceiver(t)
		rcv.setDelay(20 * time.Millisecond)
		cert, ch := r.upload("crash", certstest.Options{DNSNames: []string{"*.crash.test"}})
		ids := make([]int64, resources)
		domains := make([]string, resources)
		for i := range ids {
			domains[i] = fmt.Sprintf("r%03d.crash.test", i)
			ids[i] = r.webhook(rcv.URL, domains[i])
		}
		job := r.createJob(jobSpec{name: "crash", certs: []int64{cert}, resources: ids})
		r.mustSetStatus(job, "pending")
		r.wait(job, 20*time.Second, "processing", "success", "error")

		// Each kill lands after 8 to 15 more deliveries: mid-job, at a
		// random point, whatever the machine's speed (8 kills need at most
		// 120 of the 200).
		kills := 0
		for kills < maxKills {
			rcv.waitTotal(t, rcv.requestsTotal()+8+rand.IntN(8), 30*time.Second)
			if st := r.status(job); st != "processing" {
				break
			}
			before := rcv.requestsTotal()
			r.srv.restart()
			kills++
			t.Logf("kill %d: %d requests had reached the receiver", kills, before)
		}
		if kills < minKills {
			t.Fatalf("the job ended after %d kills; the test needs at least %d (make the job slower)", kills, minKills)
		}

		st := r.wait(job, 120*time.Second, "success", "error")
		ws := r.workers(job)
		if st != "success" {
			t.Fatalf("job ended %s after %d kills; workers: %+v", st, kills, ws)
		}
		if len(ws) != resources {
			t.Fatalf("%d workers, want %d", len(ws), resources)
		}
		for _, w := range ws {
			if w.Status != "success" {
				t.Errorf("worker %d (%s) is %s: %s", w.ID, w.ResourceDomain, w.Status, w.ErrorMessage)
			}
		}
		dups := 0
		for _, d := range domains {
			n := rcv.accepted(d)
			if n == 0 {
				t.Errorf("%s never received the certificate", d)
				continue
			}
			if p := rcv.last(d); p["Certificate"] != ch.LeafPEM {
				t.Errorf("%s last received %v", d, p["CertId"])
			}
			dups += n - 1
		}
		if o := rcv.overlaps(); o != 0 {
			t.Errorf("%d deliveries overlapped another to the same resource", o)
		}
		t.Logf("%s: %d kills; %d deliveries for %d resources (%d duplicates, %d requests in all)",
			engine, kills, resources+dups, resources, dups, rcv.requestsTotal())
	})
}
