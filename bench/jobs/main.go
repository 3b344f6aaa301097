// Command jobs measures certfleet's deployment engine end to end: a real
// `certfleet serve` process runs one job of N webhook resources, all pointed
// at a receiver on loopback, from pending to success. In the same run, a
// plain net/http client sends the same N POSTs, of the same size, at the same
// concurrency, to the same receiver; the ratio of the two rates is the
// engine's efficiency. It also measures how late scheduled jobs start, and
// the server's peak resident memory. SQLite and PostgreSQL.
//
//	go run ./bench/jobs -resources 10000 -engines sqlite,postgres
//
// Scale mode (issue #14 item 5): one job per size, each on a fresh server,
// with the server's RSS and the latency of DescribeDeploymentJob and
// ListWorkerResource sampled every -probe-interval while the job runs:
//
//	go run ./bench/jobs -sizes 10000,30000,100000 -engines sqlite
//
// It sends traffic to 127.0.0.1 only, is bounded by -timeout, and removes
// what it created (processes, data directories, PostgreSQL databases).
// docs/benchmarks.md explains the numbers.
//
// It is not a load test of the API: resources are created through the API
// only to set the job up, and that rate is printed for information.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/certfleet/certfleet/bench/internal/benchkit"
	"github.com/certfleet/certfleet/internal/testutil/proc"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" database/sql driver

	"github.com/certfleet/certfleet/internal/deploy/webhook"
)

type config struct {
	resources    int
	engines      []string
	concurrency  int
	scheduleJobs int
	scheduleLead time.Duration
	scheduleStep time.Duration
	timeout      time.Duration
	binary       string
	logLevel     string
	postgres     string
	setupClients int
	poll         time.Duration
	nodes        int  // certfleet nodes on one database (PostgreSQL only when > 1)
	poolMax      int  // pool_max_conns of each node when nodes > 1
	pgProxy      bool // count PostgreSQL protocol messages through a loopback proxy
	river        bool // run the same workload on River (bench/river, its own module)

	sizes         []int         // scale mode (issue #14 item 5): one job per size, fresh server each
	probeInterval time.Duration // scale mode: how often RSS and read latency are sampled
	jobTimeout    time.Duration // scale mode: bound on each job (reported unfinished after it)
	pprofAddr     string        // scale mode: the server's net/http/pprof address (a throwaway build), for profiles
	profileDir    string        // scale mode: where profiles fetched from pprofAddr are written
}

func main() {
	var c config
	var engines string
	flag.IntVar(&c.resources, "resources", 10000, "webhook resources in the measured job")
	flag.StringVar(&engines, "engines", "sqlite,postgres", "storage engines to measure, comma-separated: sqlite, postgres")
	flag.IntVar(&c.concurrency, "concurrency", 64, "server --workers and --per-host, and the baseline client's concurrency")
	flag.IntVar(&c.scheduleJobs, "schedule-jobs", 100, "single-resource jobs scheduled in the future, for the schedule delay")
	flag.DurationVar(&c.scheduleLead, "schedule-lead", 2*time.Second, "how far ahead the first scheduled job is set")
	flag.DurationVar(&c.scheduleStep, "schedule-step", 20*time.Millisecond, "spacing of the scheduled jobs' ScheduleTime")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.StringVar(&c.binary, "binary", "", "certfleet binary to run (default: built from this checkout once, cached under $TMPDIR/certfleet-proc)")
	flag.StringVar(&c.logLevel, "log-level", "info", "the server's --log-level (its logs go to a file, shown when a run fails)")
	flag.StringVar(&c.postgres, "postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server to create the benchmark database on (loopback only)")
	flag.IntVar(&c.setupClients, "setup-clients", 16, "concurrent API calls while creating resources")
	flag.DurationVar(&c.poll, "poll", 50*time.Millisecond, "how often DescribeDeploymentJob is polled while a job runs")
	flag.IntVar(&c.nodes, "nodes", 1, "certfleet nodes on one PostgreSQL database (> 1 needs -engines postgres)")
	flag.IntVar(&c.poolMax, "pool-max-conns", 20, "each node's pool_max_conns when -nodes > 1 (nodes × (pool+2) must stay under max_connections)")
	flag.BoolVar(&c.pgProxy, "pg-proxy", false, "PostgreSQL: route the nodes through a loopback proxy that counts statements and round trips (it adds a hop to every round trip of certfleet's, not River's: leave it off when comparing rates)")
	flag.BoolVar(&c.river, "river", true, "also run the workload on River v0.51.2 (bench/river, built with go build from its own module)")
	var sizes string
	flag.StringVar(&sizes, "sizes", "", "scale mode: comma-separated job sizes (e.g. 10000,30000,100000); each gets a fresh server, and RSS and DescribeDeploymentJob/ListWorkerResource latency are sampled during the job (no baseline, River or scheduled jobs)")
	flag.DurationVar(&c.probeInterval, "probe-interval", time.Second, "scale mode: how often RSS and read latency are sampled during the job")
	flag.DurationVar(&c.jobTimeout, "job-timeout", 15*time.Minute, "scale mode: bound on each job; after it the job is reported unfinished, with its rate")
	flag.StringVar(&c.pprofAddr, "pprof-addr", "", "scale mode: host:port where the server (a throwaway -binary build; the bench strips CERTFLEET_* from its environment, so have it read e.g. BENCH_PPROF_ADDR) serves net/http/pprof; allocs are saved before and after CreateDeploymentJob, the heap halfway through the job and at its end")
	flag.StringVar(&c.profileDir, "profile-dir", ".", "scale mode: directory for the profiles of -pprof-addr")
	flag.Parse()
	for _, f := range strings.Split(sizes, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("-sizes: %q is not a positive number", f)
		}
		c.sizes = append(c.sizes, n)
	}
	c.engines = strings.Split(engines, ",")
	if c.resources < 1 || c.concurrency < 1 || c.scheduleJobs < 0 || c.scheduleJobs > c.resources {
		fatalf("need -resources ≥ 1, -concurrency ≥ 1 and 0 ≤ -schedule-jobs ≤ -resources")
	}
	if c.nodes < 1 || c.nodes > 1 && (slices.Contains(c.engines, "sqlite") || c.poolMax < 1 || c.nodes*(c.poolMax+2) >= 100) {
		fatalf("need -nodes ≥ 1; -nodes > 1 needs -engines postgres and nodes × (-pool-max-conns + 2) < 100 (max_connections)")
	}
	for _, e := range c.engines {
		if e != "sqlite" && e != "postgres" {
			fatalf("-engines: unknown engine %q (sqlite, postgres)", e)
		}
	}
	if u, err := url.Parse(c.postgres); err != nil || !isLoopback(u.Hostname()) {
		fatalf("-postgres must be a postgres:// URL on a loopback address")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// If the run does not wind down within a grace period after the
	// deadline (a call stuck in the SDK), clean up and exit anyway.
	go func() {
		<-ctx.Done()
		time.Sleep(30 * time.Second)
		fmt.Fprintln(os.Stderr, "jobs: still running 30s after the deadline; cleaning up and exiting")
		cleanups.run()
		os.Exit(2)
	}()

	err := run(ctx, c)
	cleanups.run()
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "jobs: "+format+"\n", args...)
	os.Exit(1)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cleanups undoes what the run created, newest first, once.
var cleanups cleanupStack

// keepLogs: a run failed, and its servers' logs stay for a look.
var keepLogs atomic.Bool

type cleanupStack struct {
	mu  sync.Mutex
	fns []func()
}

func (s *cleanupStack) add(fn func()) {
	s.mu.Lock()
	s.fns = append(s.fns, fn)
	s.mu.Unlock()
}

func (s *cleanupStack) run() {
	for {
		s.mu.Lock()
		if len(s.fns) == 0 {
			s.mu.Unlock()
			return
		}
		fn := s.fns[len(s.fns)-1]
		s.fns = s.fns[:len(s.fns)-1]
		s.mu.Unlock()
		fn()
	}
}

// result is what one engine's run measured.
type result struct {
	engine          string
	resources       int
	setup           time.Duration // creating the resources through the API
	jobWall         time.Duration // pending → success
	firstPOST       time.Duration // pending → first delivery at the receiver
	engineRate      float64       // workers per second over jobWall
	baselineRates   []float64     // POSTs per second, before and after the job
	scheduleDelays  []time.Duration
	scheduleJobIDs  []int64
	scheduleLate    int   // jobs set pending after their ScheduleTime (not scheduled, so not counted)
	peakRSS         int64 // the largest of the nodes' peaks
	peakRSSSum      int64 // the nodes' peaks added up (nodes > 1)
	nodes           int
	pool            int           // each node's pool_max_conns (nodes > 1)
	duplicates      int64         // deliveries beyond one per resource (at-least-once retries; nodes > 1)
	serverCPU       time.Duration // the server process's CPU during the job
	dbCPU           time.Duration // PostgreSQL backends' CPU during the job (0 for SQLite)
	cpuPressure     float64       // share of the job's wall time some task waited for a CPU (PSI); -1 if unknown
	describeBig     time.Duration // median DescribeDeploymentJob latency on the N-worker job
	describeSmall   time.Duration // … and on a one-worker job
	receiverCounted int64
	payload         []byte        // the body the baseline POSTs
	baselineCPU     time.Duration // per POST, client and receiver (this process), mean of the two baselines

	// River, same engine, same workload, same run (-river).
	riverRate  float64       // jobs per second from Start to the last completion
	riverWall  time.Duration //
	riverCPU   time.Duration // the River process's CPU over that window
	riverDBCPU time.Duration // PostgreSQL backends' CPU over that window
	riverOK    bool

	// PostgreSQL only: what the database did during the job window (from
	// pending to 1.2 s after success, so the backends' statistics are
	// flushed), and over a 2 s idle window before it, per second.
	window   time.Duration
	pgJob    pgStats
	pgIdle   pgStats
	idle     time.Duration
	wire     wireCount // statements and round trips during the window (-pg-proxy)
	wireIdle wireCount
	wireOK   bool
	polls    int     // DescribeDeploymentJob polls while the job ran
	describe float64 // statements per DescribeDeploymentJob on the N-worker job
}

func (r result) baselineRate() float64 {
	var sum float64
	for _, v := range r.baselineRates {
		sum += v
	}
	return sum / float64(len(r.baselineRates))
}

func run(ctx context.Context, c config) error {
	tmp, err := os.MkdirTemp("", "certfleet-bench-")
	if err != nil {
		return err
	}
	cleanups.add(func() {
		if keepLogs.Load() {
			fmt.Fprintf(os.Stderr, "kept the servers' logs for the failed run: %s\n", tmp)
			return
		}
		os.RemoveAll(tmp)
	})
	if c.binary == "" {
		fmt.Fprintln(os.Stderr, "building certfleet (cached by source)…")
		if c.binary, err = proc.Binary(); err != nil {
			return err
		}
	}
	bundle, err := newBundle()
	if err != nil {
		return err
	}
	rcv, err := startReceiver()
	if err != nil {
		return err
	}
	cleanups.add(rcv.close)

	if len(c.sizes) > 0 {
		return runScale(ctx, c, tmp, bundle, rcv)
	}
	var riverBin string
	if c.river {
		fmt.Fprintln(os.Stderr, "building bench/river (River v0.51.2, its own module)…")
		if riverBin, err = buildRiver(ctx, tmp); err != nil {
			return err
		}
	}
	var results []result
	for _, engine := range c.engines {
		fmt.Fprintf(os.Stderr, "== %s\n", engine)
		r, err := runEngine(ctx, c, engine, tmp, bundle, rcv)
		if err != nil {
			return fmt.Errorf("%s: %w", engine, err)
		}
		if riverBin != "" {
			fmt.Fprintf(os.Stderr, "== %s, River\n", engine)
			if err := runRiver(ctx, c, riverBin, engine, tmp, r.payload, rcv, &r); err != nil {
				return fmt.Errorf("%s, River: %w", engine, err)
			}
		}
		printResult(r, c)
		results = append(results, r)
	}
	printSummary(results, c)
	return nil
}

func runEngine(ctx context.Context, c config, engine, tmp string, bundle bundle, rcv *receiver) (result, error) {
	r := result{engine: engine, resources: c.resources}
	var database string
	if engine == "postgres" {
		u, drop, err := createDatabase(ctx, c.postgres)
		if err != nil {
			return r, err
		}
		defer drop()
		database = u
	}
	r.nodes = c.nodes
	var proxy *pgProxy
	nodeDBs := make([]string, c.nodes)
	for i := range nodeDBs {
		nodeDBs[i] = database
	}
	if database != "" {
		u, _ := url.Parse(database)
		if c.nodes > 1 {
			// Other clients of the same server (tests) hold connections
			// too: shrink the pools rather than fail on "too many clients".
			r.pool = c.poolMax
			if free, err := freeConnections(ctx, c.postgres); err == nil && c.nodes*(r.pool+2)+4 > free {
				r.pool = max(4, (free-4)/c.nodes-2)
				fmt.Fprintf(os.Stderr, "  %d connections free on the server: pool_max_conns %d per node instead of %d\n", free, r.pool, c.poolMax)
			}
			q := u.Query()
			q.Set("pool_max_conns", strconv.Itoa(r.pool))
			u.RawQuery = q.Encode()
		}
		if c.pgProxy {
			var err error
			if proxy, err = startPGProxy(u.Host, c.nodes); err != nil {
				return r, err
			}
			cleanups.add(proxy.close)
			defer proxy.close()
		}
		for i := range nodeDBs {
			if proxy != nil {
				u.Host = proxy.addrs[i]
			}
			nodeDBs[i] = u.String()
		}
	}
	srvs, err := startServers(ctx, c, engine, tmp, nodeDBs)
	if err != nil {
		return r, err
	}
	defer func() {
		for _, s := range srvs {
			s.stop()
		}
	}()
	fail := func(err error) (result, error) {
		keepLogs.Store(true)
		var b strings.Builder
		for _, s := range srvs {
			fmt.Fprintf(&b, "\nlast server log lines (%s):\n%s", s.logPath, s.tail(10))
		}
		return r, fmt.Errorf("%w%s", err, b.String())
	}
	cls := make([]*clients, len(srvs))
	for i, s := range srvs {
		if cls[i], err = newClients(s.addr, s.keyID, s.secret); err != nil {
			return r, err
		}
	}
	cl := cls[0] // the job is created and polled on node 1

	// Setup: one certificate, N webhook resources without a Domain (each
	// takes the job's only certificate).
	up, err := cl.cas.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String("bench"),
		Cert: tea.String(bundle.leafPEM + bundle.chainPEM), Key: tea.String(bundle.keyPEM)})
	if err != nil {
		return fail(fmt.Errorf("upload certificate: %w", err))
	}
	certID := tea.Int64Value(up.Body.CertId)
	contact, err := cl.callOwn("CreateContact", map[string]string{"Name": "ops", "Email": "ops@example.test"})
	if err != nil {
		return fail(fmt.Errorf("create contact: %w", err))
	}
	contactID, err := benchkit.IDOf(contact, "ContactId")
	if err != nil {
		return fail(err)
	}
	cl.contact = strconv.FormatInt(contactID, 10)
	start := time.Now()
	ids, err := createResources(ctx, cls, c.resources, c.setupClients, rcv.url)
	if err != nil {
		return fail(err)
	}
	r.setup = time.Since(start)
	fmt.Fprintf(os.Stderr, "  created %d resources in %.1fs (%.0f/s)\n", len(ids), r.setup.Seconds(), float64(len(ids))/r.setup.Seconds())

	// Baseline before the job.
	payload, err := bundle.payload(certID)
	r.payload = payload
	if err != nil {
		return r, err
	}
	rate, err := baseline(ctx, rcv, c.resources, c.concurrency, payload)
	r.baselineCPU = time.Duration(baselineCPU.Load())
	if err != nil {
		return fail(err)
	}
	r.baselineRates = append(r.baselineRates, rate)
	fmt.Fprintf(os.Stderr, "  baseline: %.0f POSTs/s\n", rate)

	// The job.
	job, err := cl.cas.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String("bench"), JobType: tea.String("user"),
		CertIds: tea.String(strconv.FormatInt(certID, 10)), ResourceIds: tea.String(benchkit.JoinIDs(ids)), ContactIds: tea.String(cl.contact)})
	if err != nil {
		return fail(fmt.Errorf("create job: %w", err))
	}
	jobID := tea.Int64Value(job.Body.JobId)
	var pgS1 pgStats
	var wire1 wireCount
	if database != "" {
		// Let the backends flush their statistics from the setup, then
		// measure the idle cluster for 2 s.
		if err := sleep(ctx, 1200*time.Millisecond); err != nil {
			return r, err
		}
		pgS0, wire0 := readPGStats(ctx, c.postgres, database), proxy.snapshot()
		t0 := time.Now()
		if err := sleep(ctx, 2*time.Second); err != nil {
			return r, err
		}
		pgS1, wire1 = readPGStats(ctx, c.postgres, database), proxy.snapshot()
		r.idle = time.Since(t0)
		r.pgIdle, r.wireIdle = pgS1.sub(pgS0), wire1.sub(wire0)
	}
	before := rcv.reset()
	cpu0, err := serversCPU(srvs)
	if err != nil {
		return r, err
	}
	stall0, psiOK := cpuStall()
	pg0 := backendCPU(ctx, c.postgres, database)
	start = time.Now()
	if _, err := cl.cas.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("pending")}); err != nil {
		return fail(fmt.Errorf("start job: %w", err))
	}
	d, polls, err := waitJobPolls(ctx, cl, jobID, c.poll)
	if err != nil {
		return fail(err)
	}
	polled := time.Since(start)
	r.polls = polls
	cpu1, err := serversCPU(srvs)
	if err != nil {
		return r, err
	}
	r.serverCPU = cpu1 - cpu0
	if database != "" {
		r.dbCPU = cpuSince(pg0, backendCPU(ctx, c.postgres, database))
	}
	if stall1, ok := cpuStall(); ok && psiOK {
		r.cpuPressure = float64(stall1-stall0) / float64(polled)
	} else {
		r.cpuPressure = -1
	}
	if st := tea.StringValue(d.Status); st != "success" {
		return fail(fmt.Errorf("job %d ended %s, not success", jobID, st))
	}
	// The job's EndTime (server clock, same machine) is sharper than the
	// 50 ms poll; fall back to the poll if it is missing.
	r.jobWall = polled
	if end, err := strconv.ParseInt(tea.StringValue(d.EndTime), 10, 64); err == nil && end > 0 {
		if w := time.UnixMilli(end).Sub(start); w > 0 && w <= polled {
			r.jobWall = w
		}
	}
	r.receiverCounted = rcv.count.Load() - before
	if c.nodes > 1 && r.receiverCounted > int64(c.resources) {
		r.duplicates = r.receiverCounted - int64(c.resources)
	} else if r.receiverCounted != int64(c.resources) {
		return fail(fmt.Errorf("the receiver got %d deliveries, want %d", r.receiverCounted, c.resources))
	}
	if first := rcv.first.Load(); first > 0 {
		r.firstPOST = time.Unix(0, first).Sub(start)
	}
	r.engineRate = float64(c.resources) / r.jobWall.Seconds()
	fmt.Fprintf(os.Stderr, "  job: %d workers in %.2fs (%.0f/s)\n", c.resources, r.jobWall.Seconds(), r.engineRate)
	if database != "" {
		if err := sleep(ctx, 1200*time.Millisecond-time.Since(start.Add(polled))); err != nil {
			return r, err
		}
		pgS2, wire2 := readPGStats(ctx, c.postgres, database), proxy.snapshot()
		r.window = time.Since(start)
		r.pgJob, r.wire, r.wireOK = pgS2.sub(pgS1), wire2.sub(wire1), proxy != nil
	}

	// Baseline after the job (the machine may be shared: two samples).
	rate, err = baseline(ctx, rcv, c.resources, c.concurrency, payload)
	r.baselineCPU = (r.baselineCPU + time.Duration(baselineCPU.Load())) / 2
	if err != nil {
		return fail(err)
	}
	r.baselineRates = append(r.baselineRates, rate)
	fmt.Fprintf(os.Stderr, "  baseline: %.0f POSTs/s\n", rate)

	if c.scheduleJobs > 0 {
		r.scheduleJobIDs, r.scheduleDelays, r.scheduleLate, err = scheduleDelay(ctx, cl, c, certID, ids[:c.scheduleJobs])
		if err != nil {
			return fail(err)
		}
	}
	// What a status poll costs on a big job, against a one-worker job.
	var small int64
	if c.scheduleJobs > 0 {
		small = r.scheduleJobIDs[0]
	}
	d0 := proxy.snapshot()
	if r.describeBig, err = describeLatency(cl, jobID); err != nil {
		return fail(err)
	}
	r.describe = float64(proxy.snapshot().sub(d0).statements) / 20
	if small != 0 {
		if r.describeSmall, err = describeLatency(cl, small); err != nil {
			return fail(err)
		}
	}
	for _, s := range srvs {
		rss, err := peakRSS(s.node.Pid())
		if err != nil {
			return r, err
		}
		r.peakRSS = max(r.peakRSS, rss)
		r.peakRSSSum += rss
	}
	return r, nil
}

// buildRiver builds bench/river (its own module, so River stays out of
// certfleet's go.mod) into tmp.
func buildRiver(ctx context.Context, tmp string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := filepath.Join(root, "bench", "river")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("bench/river not found under %s (run from the certfleet checkout, or pass -river=false)", root)
	}
	bin := filepath.Join(tmp, "riverbench")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build bench/river: %w\n%s", err, out)
	}
	return bin, nil
}

// runRiver runs the job's workload on River: the same number of jobs, each
// POSTing the baseline's body to the same receiver, with -concurrency
// workers, on a fresh database of the same engine.
func runRiver(ctx context.Context, c config, bin, engine, tmp string, payload []byte, rcv *receiver, r *result) error {
	bodyFile := filepath.Join(tmp, "river-body.json")
	if err := os.WriteFile(bodyFile, payload, 0o600); err != nil {
		return err
	}
	dsn, database := filepath.Join(tmp, "river-"+rand.Text()[:8]+".db"), ""
	if engine == "postgres" {
		u, drop, err := createDatabase(ctx, c.postgres)
		if err != nil {
			return err
		}
		defer drop()
		dsn, database = u, u
	}
	cmd := exec.CommandContext(ctx, bin, "-engine", engine, "-dsn", dsn, "-url", rcv.url, "-body", bodyFile,
		"-jobs", strconv.Itoa(c.resources), "-workers", strconv.Itoa(c.concurrency))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		stdin.Close()
		cmd.Wait()
		return fmt.Errorf("river bench did not get ready: %s", stderr.String())
	}
	before := rcv.reset()
	db0 := backendCPU(ctx, c.postgres, database)
	fmt.Fprintln(stdin, "go")
	// The result is the first JSON line (anything else River printed is skipped).
	for {
		if !lines.Scan() {
			stdin.Close()
			cmd.Wait()
			return fmt.Errorf("river bench: %s", stderr.String())
		}
		if bytes.HasPrefix(lines.Bytes(), []byte("{")) {
			break
		}
	}
	db1 := backendCPU(ctx, c.postgres, database)
	var out struct {
		Jobs   int   `json:"jobs"`
		WallNS int64 `json:"wall_ns"`
		CPUNS  int64 `json:"cpu_ns"`
	}
	if err := json.Unmarshal(lines.Bytes(), &out); err != nil {
		return fmt.Errorf("river bench printed %q: %w", lines.Text(), err)
	}
	stdin.Close()
	if got := rcv.count.Load() - before; got < int64(c.resources) {
		return fmt.Errorf("the receiver counted %d River POSTs, want %d", got, c.resources)
	}
	r.riverWall, r.riverCPU = time.Duration(out.WallNS), time.Duration(out.CPUNS)
	r.riverRate = float64(out.Jobs) / r.riverWall.Seconds()
	r.riverDBCPU = cpuSince(db0, db1)
	r.riverOK = true
	fmt.Fprintf(os.Stderr, "  River: %d jobs in %.2fs (%.0f/s)\n", out.Jobs, r.riverWall.Seconds(), r.riverRate)
	return nil
}

// clients are the official SDK's typed client and its generic client, for
// certfleet's own operations (CreateCloudResource), as in internal/e2e.
type clients struct {
	cas     *cas.Client
	generic *openapi.Client
	contact string // ContactIds of every job (a mandatory parameter)
}

func newClients(addr, keyID, secret string) (*clients, error) {
	cfg := func() *openapi.Config {
		return &openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(secret),
			Endpoint: tea.String(addr), Protocol: tea.String("http"), MaxIdleConns: tea.Int(64), ReadTimeout: tea.Int(60000)}
	}
	c, err := cas.NewClient(cfg())
	if err != nil {
		return nil, err
	}
	g, err := openapi.NewClient(cfg())
	if err != nil {
		return nil, err
	}
	return &clients{cas: c, generic: g}, nil
}

func (c *clients) callOwn(action string, query map[string]string) (map[string]any, error) {
	return benchkit.CallOwn(c.generic, action, query)
}

// createResources creates n webhook resources, resource i through node
// i mod len(cls).
func createResources(ctx context.Context, cls []*clients, n, workers int, receiverURL string) ([]int64, error) {
	cfg, _ := json.Marshal(map[string]any{"Url": receiverURL})
	ids := make([]int64, n)
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				body, err := cls[i%len(cls)].callOwn("CreateCloudResource", map[string]string{"CloudName": "webhook", "CloudProduct": "WEBHOOK",
					"Name": fmt.Sprintf("bench-%d", i), "Config": string(cfg)})
				if err == nil {
					ids[i], err = benchkit.IDOf(body, "Id")
				}
				if err != nil {
					errs <- fmt.Errorf("create resource %d: %w", i, err)
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return ids, ctx.Err()
}

// waitJob polls DescribeDeploymentJob every interval until the job is
// success or error.
func waitJob(ctx context.Context, cl *clients, jobID int64, interval time.Duration) (*cas.DescribeDeploymentJobResponseBody, error) {
	d, _, err := waitJobPolls(ctx, cl, jobID, interval)
	return d, err
}

// waitJobPolls is waitJob, and also returns how many polls it made.
func waitJobPolls(ctx context.Context, cl *clients, jobID int64, interval time.Duration) (*cas.DescribeDeploymentJobResponseBody, int, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for polls := 1; ; polls++ {
		d, err := cl.cas.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(jobID)})
		if err != nil {
			return nil, polls, fmt.Errorf("describe job %d: %w", jobID, err)
		}
		if st := tea.StringValue(d.Body.Status); st == "success" || st == "error" {
			return d.Body, polls, nil
		}
		select {
		case <-ctx.Done():
			return nil, polls, fmt.Errorf("job %d still %s: %w", jobID, tea.StringValue(d.Body.Status), ctx.Err())
		case <-t.C:
		}
	}
}

// scheduleDelay creates one single-resource job per resource, scheduled
// lead + i·step from now, sets them pending, waits for them to end, and
// returns StartTime − ScheduleTime of each, plus how many were set pending
// too late to count (their ScheduleTime had already passed).
func scheduleDelay(ctx context.Context, cl *clients, c config, certID int64, resources []int64) ([]int64, []time.Duration, int, error) {
	base := time.Now().Add(c.scheduleLead)
	jobs := make([]int64, len(resources))
	late := make([]bool, len(resources))
	err := parallel(ctx, 8, len(resources), func(i int) error {
		at := base.Add(time.Duration(i) * c.scheduleStep)
		j, err := cl.cas.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String(fmt.Sprintf("scheduled-%d", i)),
			JobType: tea.String("user"), CertIds: tea.String(strconv.FormatInt(certID, 10)),
			ResourceIds: tea.String(strconv.FormatInt(resources[i], 10)), ContactIds: tea.String(cl.contact),
			ScheduleTime: tea.Int64(at.UnixMilli())})
		if err != nil {
			return fmt.Errorf("create scheduled job %d: %w", i, err)
		}
		jobs[i] = tea.Int64Value(j.Body.JobId)
		if _, err := cl.cas.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobs[i]), Status: tea.String("pending")}); err != nil {
			return fmt.Errorf("set scheduled job %d pending: %w", i, err)
		}
		late[i] = !time.Now().Before(at)
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	last := base.Add(time.Duration(len(resources)) * c.scheduleStep)
	select {
	case <-time.After(time.Until(last)):
	case <-ctx.Done():
		return nil, nil, 0, ctx.Err()
	}
	var delays []time.Duration
	nLate := 0
	for i, id := range jobs {
		d, err := waitJob(ctx, cl, id, 50*time.Millisecond)
		if err != nil {
			return nil, nil, 0, err
		}
		if late[i] {
			nLate++
			continue
		}
		sched, err1 := strconv.ParseInt(tea.StringValue(d.ScheduleTime), 10, 64)
		started, err2 := strconv.ParseInt(tea.StringValue(d.StartTime), 10, 64)
		if err1 != nil || err2 != nil || started == 0 {
			return nil, nil, 0, fmt.Errorf("job %d: ScheduleTime %q, StartTime %q", id, tea.StringValue(d.ScheduleTime), tea.StringValue(d.StartTime))
		}
		delays = append(delays, time.Duration(started-sched)*time.Millisecond)
	}
	return jobs, delays, nLate, nil
}

// describeLatency is the median wall time of 20 DescribeDeploymentJob calls.
func describeLatency(cl *clients, jobID int64) (time.Duration, error) {
	var ds []time.Duration
	for range 20 {
		start := time.Now()
		if _, err := cl.cas.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(jobID)}); err != nil {
			return 0, fmt.Errorf("describe job %d: %w", jobID, err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// parallel runs fn(0…n-1) on k goroutines and returns the first error.
func parallel(ctx context.Context, k, n int, fn func(i int) error) error {
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// baseline POSTs body n times to the receiver with a plain net/http client,
// concurrency at a time, and returns POSTs per second. Its transport keeps
// as many idle connections as it has goroutines (as the webhook deployer's
// does); http.DefaultTransport keeps 2 and would reconnect on most POSTs.
func baseline(ctx context.Context, rcv *receiver, n, concurrency int, body []byte) (float64, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 2*concurrency, concurrency
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	before := rcv.reset()
	start, cpu0 := time.Now(), selfCPU()
	err := parallel(ctx, concurrency, n, func(i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, rcv.url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		h := req.Header
		h.Set("Content-Type", "application/json")
		h.Set("User-Agent", "certfleet-bench")
		h.Set("X-Certfleet-Event", "deploy")
		h.Set("X-Certfleet-Delivery", fmt.Sprintf("0-%d", i))
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("baseline POST: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("baseline POST: receiver answered %s", resp.Status)
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if got := rcv.count.Load() - before; got != int64(n) {
		return 0, fmt.Errorf("baseline: the receiver counted %d POSTs, want %d", got, n)
	}
	baselineCPU.Store(int64(selfCPU()-cpu0) / int64(n))
	return float64(n) / elapsed.Seconds(), nil
}

// baselineCPU is the CPU per POST of the last baseline: this process's, so
// the client and the receiver together (nanoseconds).
var baselineCPU atomic.Int64

// selfCPU is this process's CPU (user+system) so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// receiver is the webhook target: it reads each body and answers 200.
type receiver struct {
	url   string
	srv   *http.Server
	count atomic.Int64
	first atomic.Int64 // UnixNano of the first request since reset
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		r.first.CompareAndSwap(0, time.Now().UnixNano())
		r.count.Add(1)
		w.WriteHeader(http.StatusOK)
	})}
	go r.srv.Serve(ln)
	return r, nil
}

// reset clears the first-request time and returns the count so far.
func (r *receiver) reset() int64 {
	r.first.Store(0)
	return r.count.Load()
}

func (r *receiver) close() { r.srv.Close() }

// server is one `certfleet serve` subprocess.
type server struct {
	node    *proc.Node
	addr    string
	keyID   string
	secret  string
	logPath string
}

// startServers starts one node per database URL, all at once (their
// migrations race, as in a real cluster start), with the same root key and,
// when there are several, the same master key and distinct --node-id.
func startServers(ctx context.Context, c config, engine, tmp string, databases []string) ([]*server, error) {
	secret := rand.Text()
	if len(databases) == 1 {
		s, err := startServer(ctx, c, engine, filepath.Join(tmp, engine), databases[0], secret, nil, nil)
		return []*server{s}, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	env := []string{"CERTFLEET_MASTER_KEY=" + hex.EncodeToString(key)}
	srvs := make([]*server, len(databases))
	errs := make([]error, len(databases))
	var wg sync.WaitGroup
	for i, database := range databases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("node%d", i+1)
			srvs[i], errs[i] = startServer(ctx, c, engine, filepath.Join(tmp, engine+"-"+id), database, secret,
				[]string{"--node-id", id}, env)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range srvs {
			if s != nil {
				s.stop()
			}
		}
		return nil, err
	}
	return srvs, nil
}

// serversCPU is the nodes' CPU so far, added up.
func serversCPU(srvs []*server) (time.Duration, error) {
	var sum time.Duration
	for _, s := range srvs {
		d, err := processCPU(s.node.Pid())
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

func startServer(ctx context.Context, c config, engine, dataDir, database, secret string, args, env []string) (*server, error) {
	s := &server{keyID: "LTAIbench" + engine, secret: secret, logPath: dataDir + ".log"}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	n := strconv.Itoa(c.concurrency)
	node, err := benchkit.StartCertfleet(ctx, benchkit.Certfleet{Binary: c.binary, KeyID: s.keyID, Secret: s.secret, LogPath: s.logPath, Env: env,
		Args: append([]string{"--data-dir", dataDir, "--database", database, "--workers", n, "--per-host", n,
			"--rate-limit", "-1", "--log-format", "json", "--log-level", c.logLevel}, args...)})
	if err != nil {
		return nil, err
	}
	s.node, s.addr = node, node.Addr()
	cleanups.add(s.stop)
	return s, nil
}

// stop sends SIGTERM and, after 30 s, SIGKILL; it waits for the exit.
func (s *server) stop() { s.node.Stop(30 * time.Second) }

func (s *server) tail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// createDatabase creates a fresh database on the admin server and returns
// its URL and a function that drops it.
func createDatabase(ctx context.Context, admin string) (string, func(), error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	name := "certfleet_bench_" + strings.ToLower(rand.Text()[:12])
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return "", nil, fmt.Errorf("create database on %s: %w (is PostgreSQL running?)", admin, err)
	}
	var once sync.Once
	drop := func() {
		once.Do(func() {
			db, err := sql.Open("pgx", admin)
			if err != nil {
				return
			}
			defer db.Close()
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := db.ExecContext(dctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
				fmt.Fprintf(os.Stderr, "jobs: drop database %s: %v\n", name, err)
			}
		})
	}
	cleanups.add(drop)
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return u.String(), drop, nil
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}

// backendCPU maps the PostgreSQL backends serving database (pid) to the
// CPU each has used so far; nil when they cannot be read.
func backendCPU(ctx context.Context, admin, database string) map[int]time.Duration {
	if database == "" {
		return nil
	}
	u, err := url.Parse(database)
	if err != nil {
		return nil
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return nil
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			if d, err := processCPU(pid); err == nil {
				out[pid] = d
			}
		}
	}
	return out
}

// cpuSince sums the CPU backends used between two backendCPU snapshots
// (a backend born in between counts in full; one gone is lost).
func cpuSince(before, after map[int]time.Duration) time.Duration {
	var sum time.Duration
	for pid, d := range after {
		sum += d - before[pid]
	}
	return sum
}

// cpuStall is the machine's total time some task waited for a CPU
// (/proc/pressure/cpu "some total", Linux PSI): a loaded machine shows in it.
func cpuStall() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	for _, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0]) {
		if v, ok := strings.CutPrefix(f, "total="); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err == nil
		}
	}
	return 0, false
}

// processCPU is the user+system CPU time the process has used
// (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// bundle is the certificate deployed: an ECDSA P-256 leaf and its CA.
type bundle struct {
	leafPEM, chainPEM, keyPEM, sha256 string
}

func newBundle() (bundle, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return bundle{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certfleet bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return bundle{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return bundle{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return bundle{}, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "bench.example.test"}, DNSNames: []string{"bench.example.test", "www.bench.example.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(60 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &key.PublicKey, caKey)
	if err != nil {
		return bundle{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return bundle{}, err
	}
	sum := sha256.Sum256(leafDER)
	return bundle{
		leafPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})),
		chainPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		keyPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		sha256:   hex.EncodeToString(sum[:]),
	}, nil
}

// payload is a body the size of the webhook deployer's for this bundle.
func (b bundle) payload(certID int64) ([]byte, error) {
	return json.Marshal(webhook.Payload{Action: "deploy", JobID: 1, WorkerID: 10000, ResourceID: 10000, CertID: certID,
		CertName: "bench", Certificate: b.leafPEM, Chain: b.chainPEM, FullChain: b.leafPEM + b.chainPEM, PrivateKey: b.keyPEM,
		Sha256: b.sha256, Timestamp: time.Now().Unix()})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

func riverRow(r result) string {
	if !r.riverOK {
		return "not run"
	}
	return fmt.Sprintf("%.0f · %.2f (River CPU %.0f µs/job)", r.riverRate, r.engineRate/r.riverRate,
		float64(r.riverCPU.Microseconds())/float64(r.resources))
}

func psi(v float64) string {
	if v < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.0f%% (0%%: no task waited for a CPU)", 100*v)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func printResult(r result, c config) {
	delays := slices.Clone(r.scheduleDelays)
	slices.Sort(delays)
	rows := [][2]string{
		{"resources (webhook targets, one job)", strconv.Itoa(r.resources)},
		{"server --workers / --per-host", fmt.Sprintf("%d / %d", c.concurrency, c.concurrency)},
		{"job wall time, pending → success", fmt.Sprintf("%.2f s", r.jobWall.Seconds())},
		{"engine workers/s", fmt.Sprintf("%.0f", r.engineRate)},
		{"baseline POSTs/s (net/http, before · after)", fmt.Sprintf("%.0f (%.0f · %.0f)", r.baselineRate(), r.baselineRates[0], r.baselineRates[1])},
		{"efficiency (engine / baseline)", fmt.Sprintf("%.3f", r.engineRate/r.baselineRate())},
		{"River v0.51.2: jobs/s · certfleet ÷ River", riverRow(r)},
		{"baseline CPU per POST (client + receiver)", fmt.Sprintf("%.0f µs", float64(r.baselineCPU.Microseconds()))},
		{"pending → first delivery", fmt.Sprintf("%.0f ms", ms(r.firstPOST))},
		{"server CPU during the job", fmt.Sprintf("%.1f s (%.0f µs/worker)", r.serverCPU.Seconds(), float64(r.serverCPU.Microseconds())/float64(r.resources))},
		{fmt.Sprintf("schedule delay p50 / p99 / max (%d jobs)", len(delays)),
			fmt.Sprintf("%d / %d / %d ms", percentile(delays, 0.5).Milliseconds(), percentile(delays, 0.99).Milliseconds(), percentile(delays, 1).Milliseconds())},
		{"server peak RSS (VmHWM)", fmt.Sprintf("%.1f MiB", float64(r.peakRSS)/(1<<20))},
		{fmt.Sprintf("DescribeDeploymentJob, %d-worker job · 1-worker job", r.resources),
			fmt.Sprintf("%.1f ms · %.1f ms (median of 20)", ms(r.describeBig), ms(r.describeSmall))},
		{"machine CPU pressure during the job (PSI some)", psi(r.cpuPressure)},
		{"setup: resources created via the API", fmt.Sprintf("%.1f s (%.0f/s)", r.setup.Seconds(), float64(r.resources)/r.setup.Seconds())},
	}
	if r.engine == "postgres" {
		rows = slices.Insert(rows, 8, [2]string{"PostgreSQL backends' CPU during the job",
			fmt.Sprintf("%.1f s (%.0f µs/worker)", r.dbCPU.Seconds(), float64(r.dbCPU.Microseconds())/float64(r.resources))})
		rows = slices.Insert(rows, 9, pgRows(r)...)
	}
	if r.nodes > 1 {
		rows = slices.Insert(rows, 1, [2]string{"certfleet nodes on one database (job created on node 1)",
			fmt.Sprintf("%d (pool_max_conns %d each)", r.nodes, r.pool)})
		if r.duplicates > 0 {
			rows = append(rows, [2]string{"duplicate deliveries (a worker retried after delivering)", strconv.FormatInt(r.duplicates, 10)})
		}
		for i, row := range rows {
			switch row[0] {
			case "server --workers / --per-host":
				rows[i][0] = "each node's --workers / --per-host"
			case "server CPU during the job":
				rows[i][0] = "server CPU during the job (all nodes)"
			case "server peak RSS (VmHWM)":
				rows[i] = [2]string{"server peak RSS (VmHWM), largest node · all nodes",
					fmt.Sprintf("%.1f MiB · %.1f MiB", float64(r.peakRSS)/(1<<20), float64(r.peakRSSSum)/(1<<20))}
			}
		}
	}
	if r.scheduleLate > 0 {
		rows = append(rows, [2]string{"scheduled jobs set pending too late (not counted)", strconv.Itoa(r.scheduleLate)})
	}
	fmt.Printf("\n%s\n", r.label())
	w := 0
	for _, row := range rows {
		w = max(w, len([]rune(row[0])))
	}
	for _, row := range rows {
		fmt.Printf("  %-*s  %s\n", w, row[0], row[1])
	}
}

func printSummary(rs []result, c config) {
	fmt.Printf("\n%-9s %9s %10s %11s %10s %9s %20s %9s %8s\n", "engine", "resources", "workers/s", "baseline/s", "efficiency", "job wall", "sched p50/p99/max", "peak RSS", "CPU PSI")
	for _, r := range rs {
		d := slices.Clone(r.scheduleDelays)
		slices.Sort(d)
		pressure := "?"
		if r.cpuPressure >= 0 {
			pressure = fmt.Sprintf("%.0f%%", 100*r.cpuPressure)
		}
		fmt.Printf("%-9s %9d %10.0f %11.0f %10.3f %8.2fs %20s %6.1fMiB %8s\n", r.label(), r.resources, r.engineRate, r.baselineRate(),
			r.engineRate/r.baselineRate(), r.jobWall.Seconds(),
			fmt.Sprintf("%d/%d/%d ms", percentile(d, 0.5).Milliseconds(), percentile(d, 0.99).Milliseconds(), percentile(d, 1).Milliseconds()),
			float64(r.peakRSS)/(1<<20), pressure)
	}
	fmt.Printf("(concurrency %d; baseline = plain net/http client, same body size, same receiver)\n", c.concurrency)
	printVersusRiver(rs, c)
	if c.nodes > 1 {
		fmt.Printf("(%d nodes: --workers / --per-host %d each; peak RSS is the largest node's)\n", c.nodes, c.concurrency)
	}
	var pg []result
	for _, r := range rs {
		if r.engine == "postgres" && r.pgJob.ok {
			pg = append(pg, r)
		}
	}
	if len(pg) == 0 {
		return
	}
	fmt.Printf("\nper worker, during the job (pending → success + 1.2 s; includes the idle nodes' background and the status polls)\n")
	fmt.Printf("%-10s %5s %9s %9s %9s %9s %9s %11s %11s %11s\n", "engine", "nodes", "workers/s", "xacts", "stmts", "rtrips",
		"fetched", "server µs", "PG µs", "commits/fs")
	for _, r := range pg {
		n := float64(r.resources)
		stmts, rtrips := "?", "?"
		if r.wireOK {
			stmts, rtrips = fmt.Sprintf("%.2f", float64(r.wire.statements)/n), fmt.Sprintf("%.2f", float64(r.wire.roundTrips)/n)
		}
		fmt.Printf("%-10s %5d %9.0f %9.2f %9s %9s %9.1f %11.0f %11.0f %11s\n", r.engine, r.nodes, r.engineRate,
			float64(r.pgJob.xacts())/n, stmts, rtrips, float64(r.pgJob.fetched)/n,
			float64(r.serverCPU.Microseconds())/n, float64(r.dbCPU.Microseconds())/n, commitsPerFsync(r.pgJob))
	}
}

// printVersusRiver prints certfleet, River and the plain client side by
// side, with CPU per worker (per job, per POST).
func printVersusRiver(rs []result, c config) {
	var any bool
	for _, r := range rs {
		any = any || r.riverOK
	}
	if !any {
		return
	}
	fmt.Printf("\ncertfleet vs River v0.51.2 vs the plain client, same run (%d workers; CPU µs per worker/job/POST)\n", c.concurrency)
	fmt.Printf("%-9s %11s %9s %9s %8s %8s %10s %11s %9s %10s %9s %10s\n", "engine", "certfleet/s", "River/s", "plain/s",
		"cf/plain", "Rv/plain", "cf/River", "cf server", "cf PG", "River proc", "River PG", "plain c+r")
	for _, r := range rs {
		if !r.riverOK {
			continue
		}
		n := float64(r.resources)
		us := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d.Microseconds())/n) }
		pg, rpg := "-", "-"
		if r.engine == "postgres" {
			pg, rpg = us(r.dbCPU), us(r.riverDBCPU)
		}
		fmt.Printf("%-9s %11.0f %9.0f %9.0f %8.3f %8.3f %10.2f %11s %9s %10s %9s %10.0f\n", r.label(), r.engineRate, r.riverRate,
			r.baselineRate(), r.engineRate/r.baselineRate(), r.riverRate/r.baselineRate(), r.engineRate/r.riverRate,
			us(r.serverCPU), pg, us(r.riverCPU), rpg, float64(r.baselineCPU.Microseconds()))
	}
}

func (r result) label() string {
	if r.nodes > 1 {
		return fmt.Sprintf("%s×%d", r.engine, r.nodes)
	}
	return r.engine
}

func commitsPerFsync(s pgStats) string {
	if !s.walOK || s.walSync <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", float64(s.commits)/float64(s.walSync))
}

// pgRows are the database's figures for the job window, per worker.
func pgRows(r result) [][2]string {
	if !r.pgJob.ok {
		return [][2]string{{"PostgreSQL statistics", "unavailable (pg_stat_database not readable)"}}
	}
	n := float64(r.resources)
	idle := r.idle.Seconds()
	rows := [][2]string{
		{fmt.Sprintf("PostgreSQL transactions, %.1f s window (pending → success + 1.2 s)", r.window.Seconds()),
			fmt.Sprintf("%d (%.2f /worker; idle nodes %.0f/s)", r.pgJob.xacts(), float64(r.pgJob.xacts())/n, float64(r.pgIdle.xacts())/idle)},
		{"PostgreSQL rows fetched · inserted · updated · deleted",
			fmt.Sprintf("%.1f · %.2f · %.2f · %.2f /worker", float64(r.pgJob.fetched)/n, float64(r.pgJob.inserted)/n,
				float64(r.pgJob.updated)/n, float64(r.pgJob.deleted)/n)},
	}
	if r.wireOK {
		rows = append(rows,
			[2]string{"PostgreSQL statements · round trips (counted at a proxy)",
				fmt.Sprintf("%d · %d (%.2f · %.2f /worker; idle nodes %.0f · %.0f /s)", r.wire.statements, r.wire.roundTrips,
					float64(r.wire.statements)/n, float64(r.wire.roundTrips)/n,
					float64(r.wireIdle.statements)/idle, float64(r.wireIdle.roundTrips)/idle)},
			[2]string{"DescribeDeploymentJob polls during the job", fmt.Sprintf("%d (%.1f statements each)", r.polls, r.describe)})
		kinds := slices.Collect(maps.Keys(r.wire.byKind))
		slices.SortFunc(kinds, func(a, b string) int { return int(r.wire.byKind[b] - r.wire.byKind[a]) })
		for _, k := range kinds {
			if v := float64(r.wire.byKind[k]) / n; v >= 0.005 {
				rows = append(rows, [2]string{"  statements /worker: " + k, fmt.Sprintf("%.3f", v)})
			}
		}
		if r.nodes > 1 {
			var parts []string
			for _, v := range r.wire.byNode {
				parts = append(parts, strconv.FormatInt(v, 10))
			}
			rows = append(rows, [2]string{"PostgreSQL statements by node", strings.Join(parts, " · ")})
		}
	}
	if r.pgJob.walOK {
		rows = append(rows, [2]string{"WAL in the window (whole server, other databases too)",
			fmt.Sprintf("%.1f records, %.0f bytes, %.3f fsyncs /worker; %s commits per fsync", float64(r.pgJob.walRecords)/n,
				float64(r.pgJob.walBytes)/n, float64(r.pgJob.walSync)/n, commitsPerFsync(r.pgJob))})
	}
	return rows
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pgStats is the benchmark database's row of pg_stat_database and the
// server's pg_stat_wal (whole server: other databases' writes count too).
// Backends flush their counters about once a second, so a snapshot lags by
// up to that much.
type pgStats struct {
	ok                                            bool
	commits, rollbacks                            int64
	returned, fetched, inserted, updated, deleted int64
	walOK                                         bool
	walRecords, walBytes, walSync, walWrite       int64
}

func readPGStats(ctx context.Context, admin, database string) pgStats {
	u, err := url.Parse(database)
	if err != nil {
		return pgStats{}
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return pgStats{}
	}
	defer db.Close()
	var s pgStats
	err = db.QueryRowContext(ctx, `SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted
		FROM pg_stat_database WHERE datname = $1`, strings.TrimPrefix(u.Path, "/")).
		Scan(&s.commits, &s.rollbacks, &s.returned, &s.fetched, &s.inserted, &s.updated, &s.deleted)
	s.ok = err == nil
	var walBytes float64
	err = db.QueryRowContext(ctx, `SELECT wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal`).
		Scan(&s.walRecords, &walBytes, &s.walWrite, &s.walSync)
	s.walBytes, s.walOK = int64(walBytes), err == nil
	return s
}

func (a pgStats) sub(b pgStats) pgStats {
	return pgStats{ok: a.ok && b.ok, commits: a.commits - b.commits, rollbacks: a.rollbacks - b.rollbacks,
		returned: a.returned - b.returned, fetched: a.fetched - b.fetched, inserted: a.inserted - b.inserted,
		updated: a.updated - b.updated, deleted: a.deleted - b.deleted, walOK: a.walOK && b.walOK,
		walRecords: a.walRecords - b.walRecords, walBytes: a.walBytes - b.walBytes, walSync: a.walSync - b.walSync,
		walWrite: a.walWrite - b.walWrite}
}

func (a pgStats) xacts() int64 { return a.commits + a.rollbacks }

// wireCount is what the proxy saw the nodes send: statements executed
// (Execute and simple Query messages), round trips (Sync and simple Query
// messages: each waits for ReadyForQuery), statements by kind ("update
// workers"), and statements by node.
type wireCount struct {
	statements, roundTrips int64
	byKind                 map[string]int64
	byNode                 []int64
}

func (a wireCount) sub(b wireCount) wireCount {
	d := wireCount{statements: a.statements - b.statements, roundTrips: a.roundTrips - b.roundTrips, byKind: map[string]int64{}}
	for k, v := range a.byKind {
		if v -= b.byKind[k]; v != 0 {
			d.byKind[k] = v
		}
	}
	for i, v := range a.byNode {
		if i < len(b.byNode) {
			v -= b.byNode[i]
		}
		d.byNode = append(d.byNode, v)
	}
	return d
}

// pgProxy forwards loopback connections to PostgreSQL, one listener per
// node, and counts the frontend protocol messages it forwards (it parses
// only the client's side; the server's replies are copied as they are).
type pgProxy struct {
	target string
	lns    []net.Listener
	addrs  []string
	mu     sync.Mutex
	count  wireCount
	once   sync.Once
	open   map[net.Conn]struct{}
}

func startPGProxy(target string, nodes int) (*pgProxy, error) {
	p := &pgProxy{target: target, count: wireCount{byKind: map[string]int64{}, byNode: make([]int64, nodes)}, open: map[net.Conn]struct{}{}}
	for node := range nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.close()
			return nil, err
		}
		p.lns = append(p.lns, ln)
		p.addrs = append(p.addrs, ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go p.serve(c, node)
			}
		}()
	}
	return p, nil
}

func (p *pgProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		p.open[c] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *pgProxy) close() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		for _, ln := range p.lns {
			ln.Close()
		}
		p.mu.Lock()
		for c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
	})
}

// snapshot copies the counts so far (zero for a nil proxy).
func (p *pgProxy) snapshot() wireCount {
	if p == nil {
		return wireCount{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return wireCount{statements: p.count.statements, roundTrips: p.count.roundTrips,
		byKind: maps.Clone(p.count.byKind), byNode: slices.Clone(p.count.byNode)}
}

func (p *pgProxy) serve(client net.Conn, node int) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, server)
	defer func() {
		client.Close()
		server.Close()
		p.mu.Lock()
		delete(p.open, client)
		delete(p.open, server)
		p.mu.Unlock()
	}()
	go func() {
		io.Copy(client, server)
		client.Close()
	}()
	in := bufio.NewReaderSize(client, 64<<10)
	out := bufio.NewWriterSize(server, 64<<10)
	// Startup: untyped messages; SSLRequest and GSSENCRequest come before
	// the StartupMessage.
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:4]))
		if n < 8 || n > 1<<20 {
			return
		}
		body := make([]byte, n-8)
		if _, err := io.ReadFull(in, body); err != nil {
			return
		}
		out.Write(hdr[:])
		out.Write(body)
		if out.Flush() != nil {
			return
		}
		if code := binary.BigEndian.Uint32(hdr[4:]); code != 80877103 && code != 80877104 {
			break
		}
	}
	stmts := map[string]string{}   // prepared statement → kind
	portals := map[string]string{} // portal → kind
	var buf []byte
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[1:]))
		if n < 4 {
			return
		}
		buf = slices.Grow(buf[:0], n-4)[:n-4]
		if _, err := io.ReadFull(in, buf); err != nil {
			return
		}
		switch hdr[0] {
		case 'P': // Parse: name, query, …
			name, rest := cstring(buf)
			query, _ := cstring(rest)
			stmts[name] = sqlKind(query)
		case 'B': // Bind: portal, statement, …
			portal, rest := cstring(buf)
			stmt, _ := cstring(rest)
			portals[portal] = stmts[stmt]
		case 'E': // Execute: portal, …
			portal, _ := cstring(buf)
			p.add(node, portals[portal], 1, 0)
		case 'Q': // simple Query (may hold several statements; counted as one)
			query, _ := cstring(buf)
			p.add(node, sqlKind(query), 1, 1)
		case 'S': // Sync
			p.add(node, "", 0, 1)
		}
		out.Write(hdr[:])
		out.Write(buf)
		if in.Buffered() == 0 {
			if out.Flush() != nil {
				return
			}
		}
		if hdr[0] == 'X' {
			return
		}
	}
}

func (p *pgProxy) add(node int, kind string, statements, roundTrips int64) {
	p.mu.Lock()
	p.count.statements += statements
	p.count.roundTrips += roundTrips
	if statements > 0 {
		p.count.byKind[kind] += statements
		p.count.byNode[node] += statements
	}
	p.mu.Unlock()
}

func cstring(b []byte) (string, []byte) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return string(b), nil
	}
	return string(b[:i]), b[i+1:]
}

// sqlKind names a statement by its verb and the first table it names:
// "update workers", "select jobs", "begin".
func sqlKind(query string) string {
	var code []string
	for line := range strings.Lines(query) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			code = append(code, line)
		}
	}
	f := strings.Fields(strings.ToLower(strings.Join(code, " ")))
	if len(f) == 0 {
		return "(empty)"
	}
	verb := strings.TrimRight(f[0], ";")
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "from", "into", "update":
			if t := strings.Trim(f[i+1], `(),;"`); t != "" && t != "select" && !strings.HasPrefix(t, "$") {
				return verb + " " + t
			}
		}
	}
	return verb
}

// freeConnections is max_connections less the connections open now.
func freeConnections(ctx context.Context, admin string) (int, error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var free int
	err = db.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)`).Scan(&free)
	return free, err
}
