package e2e

import (
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil"
)

// clusterRig is several certfleet nodes on one PostgreSQL database, with the
// same master key and root key, each on its own port with its own --node-id.
type clusterRig struct {
	t     *testing.T
	nodes []*server
	down  []atomic.Bool // killed, stopping or frozen: no API calls go there
	db    *sql.DB       // the test's own view of the database, for assertions
	next  atomic.Int64
}

const clusterLease = 2 * time.Second

// startCluster starts n nodes at once on a fresh database: their migrations
// race, and must serialise.
func startCluster(t *testing.T, n int, args ...string) *clusterRig {
	t.Helper()
	skipShort(t)
	// Three nodes under the test server's max_connections (100).
	url := testutil.PostgresURL(t) + "&pool_max_conns=16"
	key := make([]byte, 32)
	crand.Read(key)
	r := &clusterRig{t: t, down: make([]atomic.Bool, n)}
	secret := "cluster-secret-" + fmt.Sprint(time.Now().UnixNano())
	for i := range n {
		s := &server{t: t, engine: "postgres", dataDir: t.TempDir(), database: url, keyID: "LTAIcluster", secret: secret,
			args: append([]string{"--node-id", fmt.Sprintf("node%d", i), "--lease", clusterLease.String(),
				"--leader-lease", clusterLease.String(), "--rate-limit", "-1"}, args...),
			env: []string{"CERTFLEET_MASTER_KEY=" + hex.EncodeToString(key)}}
		r.nodes = append(r.nodes, s)
	}
	var wg sync.WaitGroup
	for _, s := range r.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); s.start() }()
	}
	wg.Wait()
	for _, s := range r.nodes {
		t.Cleanup(s.stop) // a frozen node is thawed to stop
	}
	if t.Failed() {
		t.FailNow()
	}
	db, err := sql.Open("pgx", strings.TrimSuffix(url, "&pool_max_conns=16"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db
	return r
}

// retryable reports an error a load balancer would retry on another node:
// the node is down, restarting or was killed mid-call.
func retryable(err error) bool {
	s := err.Error()
	for _, m := range []string{"connection refused", "connection reset", "EOF", "timeout", "broken pipe"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// call runs fn against the nodes in turn, skipping those down, until it
// succeeds or fails with a non-retryable error (returned).
func (r *clusterRig) call(fn func(s *server) error) error {
	var err error
	for range 60 {
		i := int(r.next.Add(1)) % len(r.nodes)
		if r.down[i].Load() {
			continue
		}
		if err = fn(r.nodes[i]); err == nil || !retryable(err) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (r *clusterRig) own(action string, q map[string]string) map[string]any {
	r.t.Helper()
	var body map[string]any
	if err := r.call(func(s *server) (err error) { body, err = s.callOwn(action, q); return err }); err != nil {
		r.t.Fatalf("%s: %v", action, err)
	}
	return body
}

func (r *clusterRig) sdk(fn func(c *cas.Client) error) {
	r.t.Helper()
	if err := r.call(func(s *server) error { return fn(s.client(false)) }); err != nil {
		r.t.Fatalf("API call: %v", err)
	}
}

func (r *clusterRig) jobStatus(job int64) string {
	r.t.Helper()
	var st string
	r.sdk(func(c *cas.Client) error {
		d, err := c.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(job)})
		if err == nil {
			st = tea.StringValue(d.Body.Status)
		}
		return err
	})
	return st
}

func (r *clusterRig) waitJob(job int64, timeout time.Duration, want ...string) string {
	r.t.Helper()
	var st string
	waitFor(r.t, timeout, fmt.Sprintf("job %d to reach %v", job, want), func() (bool, error) {
		st = r.jobStatus(job)
		for _, w := range want {
			if st == w {
				return true, nil
			}
		}
		return false, nil
	})
	return st
}

// leader returns the index of the node holding the duties' lease.
func (r *clusterRig) leader() int {
	r.t.Helper()
	var holder string
	var exp, now int64
	err := r.db.QueryRow(`SELECT holder, expires_ms, (extract(epoch from clock_timestamp()) * 1000)::bigint FROM leader WHERE name = 'duties'`).
		Scan(&holder, &exp, &now)
	if err != nil || exp < now {
		return -1
	}
	var i int
	fmt.Sscanf(holder, "node%d", &i)
	return i
}

// watchWorkers polls the job's workers until stop and counts any that left
// success: a stale holder overwriting a rescued outcome.
func (r *clusterRig) watchWorkers(job int64) (stop func() int) {
	done := make(chan struct{})
	var regressions atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		succeeded := map[int64]bool{}
		for {
			rows, err := r.db.Query(`SELECT id, status FROM workers WHERE job_id = $1`, job)
			if err == nil {
				for rows.Next() {
					var id int64
					var st string
					rows.Scan(&id, &st)
					if st == "success" {
						succeeded[id] = true
					} else if succeeded[id] {
						regressions.Add(1)
						r.t.Errorf("worker %d went from success back to %s", id, st)
					}
				}
				rows.Close()
			}
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() int { close(done); wg.Wait(); return int(regressions.Load()) }
}

// TestCluster runs three nodes on one PostgreSQL database through a 2,000-
// resource webhook job three times: with nodes killed (SIGKILL) and
// restarted, with a rolling restart (SIGTERM), and with the leader frozen
// (SIGSTOP) past its leases. Every worker must end success, no resource may
// see two deliveries at once, no worker may leave success, each job's end
// must be told exactly once, and API calls spread over the nodes must all
// succeed.
func TestCluster(t *testing.T) {
	const resources = 2000
	if testing.Short() {
		t.Skip("the cluster chaos test takes about a minute")
	}
	setupStart := time.Now()
	// One delivery at a time per node, 15 ms each: a job lasts several
	// seconds on three nodes, long enough to disturb.
	r := startCluster(t, 3, "--per-host", "1", "--retry-base", "100ms", "--retry-attempts", "8")
	rcv := newCountingReceiver(t)
	rcv.setDelay(15 * time.Millisecond)
	chat := newChatReceiver(t)
	hooks, _ := json.Marshal([]string{chat.URL + "/hooks/slack"})
	contact := idOf(t, r.own("CreateContact", map[string]string{"Name": "team", "Webhooks": string(hooks)}), "ContactId")

	ids := make([]int64, resources)
	domains := make([]string, resources)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				domains[i] = fmt.Sprintf("r%04d.cluster.test", i)
				var body map[string]any
				err := r.call(func(s *server) (err error) {
					body, err = s.callOwn("CreateCloudResource", map[string]string{"CloudName": "webhook", "CloudProduct": "WEBHOOK",
						"Domain": domains[i], "Name": domains[i], "Config": jsonConfig(map[string]any{"Url": rcv.URL, "TimeoutSeconds": 5})})
					return err
				})
				if err != nil {
					t.Errorf("create resource %d: %v", i, err)
					continue
				}
				ids[i] = idOf(t, body, "Id")
			}
		}()
	}
	for i := range resources {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("3 nodes up and %d resources created in %v", resources, time.Since(setupStart).Round(time.Millisecond))

	// runJob deploys a fresh certificate to every resource while disturb
	// runs, and checks the outcome.
	runJob := func(t *testing.T, name string, disturb func(job int64) string) {
		r.t = t
		for _, s := range r.nodes {
			s.t = t
		}
		ch := certstest.New(t, certstest.Options{DNSNames: []string{"*.cluster.test"}})
		var cert int64
		r.sdk(func(c *cas.Client) error {
			up, err := c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(name), Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
			if err == nil {
				cert = tea.Int64Value(up.Body.CertId)
			}
			return err
		})
		var job int64
		r.sdk(func(c *cas.Client) error {
			resp, err := c.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String(name), JobType: tea.String("user"),
				CertIds: tea.String(joinIDs(cert)), ResourceIds: tea.String(joinIDs(ids...)), ContactIds: tea.String(joinIDs(contact))})
			if err == nil {
				job = tea.Int64Value(resp.Body.JobId)
			}
			return err
		})
		stopWatch := r.watchWorkers(job)
		start := time.Now()
		r.sdk(func(c *cas.Client) error {
			_, err := c.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(job), Status: tea.String("pending")})
			return err
		})
		r.waitJob(job, 20*time.Second, "processing", "success", "error")
		what := disturb(job)
		st := r.waitJob(job, 120*time.Second, "success", "error")
		took := time.Since(start)
		regressions := stopWatch()

		var bad int
		rows, err := r.db.Query(`SELECT id, status, last_error FROM workers WHERE job_id = $1 AND status <> 'success'`, job)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var status, lastErr string
			rows.Scan(&id, &status, &lastErr)
			if bad++; bad <= 10 {
				t.Errorf("worker %d is %s: %s", id, status, lastErr)
			}
		}
		rows.Close()
		if st != "success" || bad > 0 {
			t.Fatalf("job ended %s with %d workers not success (%s)", st, bad, what)
		}
		missing, dups := 0, 0
		for _, d := range domains {
			n := rcv.accepted(d)
			if p := rcv.last(d); p == nil || p["Certificate"] != ch.LeafPEM {
				missing++
				continue
			}
			dups += n - 1
		}
		if missing > 0 {
			t.Errorf("%d resources did not last receive this job's certificate", missing)
		}
		if o := rcv.overlaps(); o != 0 {
			t.Errorf("%d deliveries overlapped another to the same resource", o)
		}
		if regressions > 0 {
			t.Errorf("%d workers left success", regressions)
		}
		// Exactly one job-end message: wait for it, then for a possible second.
		tag := fmt.Sprintf("(job %d,", job)
		told := func() int {
			n := 0
			for _, s := range chat.texts() {
				if strings.Contains(s, tag) {
					n++
				}
			}
			return n
		}
		waitFor(t, 30*time.Second, "the job-end message", func() (bool, error) { return told() >= 1, nil })
		// Each event is one row per channel, written once; a sent row is
		// never claimed again, so once all are sent the count is final.
		var notes int
		waitFor(t, 30*time.Second, "the job's notifications sent", func() (bool, error) {
			var unsent int
			err := r.db.QueryRow(`SELECT COUNT(*), COUNT(*) FILTER (WHERE status <> 'sent') FROM notifications WHERE job_id = $1`, job).Scan(&notes, &unsent)
			return unsent == 0, err
		})
		if n := told(); n != 1 || notes != 1 {
			t.Errorf("%d job-end messages (%d notification rows) for job %d, want exactly 1", n, notes, job)
		}
		t.Logf("%s: %s; job of %d workers ended %s in %v; %d requests in all so far, %d repeated deliveries this job",
			name, what, resources, st, took.Round(time.Millisecond), rcv.requestsTotal(), dups)
		rcv.mu.Lock()
		clear(rcv.got)
		rcv.mu.Unlock()
	}

	t.Run("Kill9", func(t *testing.T) {
		runJob(t, "cluster-kill9", func(job int64) string {
			kills := 0
			for i := 0; i < 6; i++ {
				// After 100 to 199 more deliveries: mid-job, at a random
				// point (six kills need at most 1,200 of the 2,000).
				rcv.waitTotal(t, rcv.requestsTotal()+100+rand.IntN(100), 60*time.Second)
				if r.jobStatus(job) != "processing" {
					break
				}
				n := i % len(r.nodes)
				r.down[n].Store(true)
				r.nodes[n].kill()
				kills++
				r.nodes[n].start()
				r.down[n].Store(false)
			}
			if kills < 2 {
				t.Errorf("only %d kills before the job ended; make it slower", kills)
			}
			return fmt.Sprintf("%d kills (SIGKILL, restarted at once)", kills)
		})
	})
	t.Run("RollingRestart", func(t *testing.T) {
		runJob(t, "cluster-rolling", func(job int64) string {
			restarts := 0
			for n, s := range r.nodes {
				rcv.waitTotal(t, rcv.requestsTotal()+50+rand.IntN(50), 60*time.Second)
				r.down[n].Store(true)
				s.stop()
				// A graceful stop hands every lease back.
				var held int
				if err := r.db.QueryRow(`SELECT COUNT(*) FROM workers WHERE lease_owner = $1`, fmt.Sprintf("node%d", n)).Scan(&held); err != nil {
					t.Fatal(err)
				}
				if held != 0 {
					t.Errorf("node%d still holds %d leases after a graceful stop", n, held)
				}
				s.start()
				r.down[n].Store(false)
				restarts++
			}
			return fmt.Sprintf("rolling restart of %d nodes (SIGTERM)", restarts)
		})
	})
	t.Run("Freeze", func(t *testing.T) {
		runJob(t, "cluster-freeze", func(job int64) string {
			rcv.waitTotal(t, rcv.requestsTotal()+100, 60*time.Second)
			n := r.leader()
			if n < 0 {
				n = 0
			}
			r.down[n].Store(true)
			s := r.nodes[n]
			s.signal(syscall.SIGSTOP)
			thawed := false
			defer func() {
				if !thawed { // a failed wait must not leave it frozen
					s.signal(syscall.SIGCONT)
				}
			}()
			// Frozen past its leases (by the database's clock): every worker
			// lease it held has expired and another node leads.
			node := fmt.Sprintf("node%d", n)
			waitFor(t, 10*clusterLease, fmt.Sprintf("node%d's leases expired and another node leading", n), func() (bool, error) {
				var live int
				err := r.db.QueryRow(`SELECT COUNT(*) FROM workers WHERE lease_owner = $1 AND status = 'processing'
					AND lease_expires_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint`, node).Scan(&live)
				l := r.leader()
				return l >= 0 && l != n && live == 0, err
			})
			other := r.leader()
			s.signal(syscall.SIGCONT)
			thawed = true
			r.down[n].Store(false)
			if other < 0 || other == n {
				t.Errorf("no other node took over leadership while node%d was frozen (leader: %d)", n, other)
			}
			return fmt.Sprintf("node%d (leader) frozen until its leases expired, node%d led meanwhile", n, other)
		})
	})

	// Operations endpoints on every node.
	hc := &http.Client{Timeout: 10 * time.Second}
	for i, s := range r.nodes {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := hc.Get("http://" + s.addr + path)
			if err != nil {
				t.Fatalf("node%d %s: %v", i, path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("node%d %s: %d %s", i, path, resp.StatusCode, b)
			}
			if path == "/metrics" {
				for _, want := range []string{"certfleet_api_requests_total{", `certfleet_workers{status="success"}`, "certfleet_leader "} {
					if !strings.Contains(string(b), want) {
						t.Errorf("node%d /metrics lacks %s", i, want)
					}
				}
			}
		}
	}

}

// TestClusterStartTogether starts three nodes at once on a fresh database:
// their migrations race and must serialise, and every node must be ready
// with one leader among them.
func TestClusterStartTogether(t *testing.T) {
	t.Parallel()
	r := startCluster(t, 3)
	var applied int
	if err := r.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	var want int
	if err := r.db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&want); err != nil || want < 6 {
		t.Fatalf("latest migration %d (%v), want ≥ 6", want, err)
	}
	for i, s := range r.nodes {
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("node%d not ready: %v", i, err)
		}
		resp.Body.Close()
	}
	waitFor(t, 10*time.Second, "a leader", func() (bool, error) { return r.leader() >= 0, nil })
	t.Logf("%d migrations applied once by three nodes started together; node%d leads", applied, r.leader())
}
