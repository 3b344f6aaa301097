package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/certfleet/certfleet/bench/internal/benchkit"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"
)

// certfleetRun is a running `certfleet serve` with the ssh access, the N
// resources and a contact created, ready for jobs.
type certfleetRun struct {
	addr, logPath string
	cas           *cas.Client
	generic       *openapi.Client
	resources     []int64
	contact       int64
	ns            []*nginxHost // one per host
	reloadLog     string       // ReloadCommand appends a line here: reloads per run
}

func setupCertfleet(ctx context.Context, binary, dataDir string, hs []*sshHost, ns []*nginxHost, c config) (*certfleetRun, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	keyID, secret := "LTAIbenchssh", rand.Text()
	r := &certfleetRun{logPath: dataDir + ".log", ns: ns, reloadLog: dataDir + ".reloads"}
	args := []string{"--data-dir", dataDir, "--rate-limit", "-1", "--log-format", "json"}
	if c.perHost > 0 {
		args = append(args, "--per-host", strconv.Itoa(c.perHost))
	}
	if c.workers > 0 {
		args = append(args, "--workers", strconv.Itoa(c.workers))
	}
	node, err := benchkit.StartCertfleet(ctx, benchkit.Certfleet{Binary: binary, KeyID: keyID, Secret: secret, LogPath: r.logPath, Args: args})
	if err != nil {
		return nil, err
	}
	cleanups.add(func() { node.Stop(30 * time.Second) })
	addr := node.Addr()
	r.addr = addr

	cfg := &openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(secret),
		Endpoint: tea.String(addr), Protocol: tea.String("http")}
	if r.cas, err = cas.NewClient(cfg); err != nil {
		return nil, err
	}
	if r.generic, err = openapi.NewClient(cfg); err != nil {
		return nil, err
	}
	var accesses []int64
	for _, h := range hs {
		body, err := r.callOwn("CreateCloudAccess", map[string]string{"CloudName": "ssh", "Name": "root@" + h.addr,
			"SecretId": "root", "SecretKey": h.clientKey})
		if err != nil {
			return nil, fmt.Errorf("create ssh access: %w", err)
		}
		access, err := benchkit.IDOf(body, "AccessId")
		if err != nil {
			return nil, err
		}
		accesses = append(accesses, access)
	}
	var body map[string]any
	if body, err = r.callOwn("CreateContact", map[string]string{"Name": "ops", "Email": "ops@example.test"}); err != nil {
		return nil, fmt.Errorf("create contact: %w", err)
	}
	if r.contact, err = benchkit.IDOf(body, "ContactId"); err != nil {
		return nil, err
	}
	total := 0
	for _, n := range ns {
		total += len(n.sites)
	}
	sites := make([]string, total) // in the order the bench named them: site j is on host j%len(ns)
	for j := range sites {
		sites[j] = ns[j%len(ns)].sites[j/len(ns)]
	}
	for i, site := range sites {
		h, access, n := hs[i%len(hs)], accesses[i%len(hs)], ns[i%len(hs)]
		config, _ := json.Marshal(map[string]any{"Host": "127.0.0.1", "Port": h.port, "HostKey": h.hostKey,
			"CertPath": n.certPath(site), "KeyPath": n.keyPath(site),
			"TestCommand": n.testCommand(), "ReloadCommand": "echo >>" + r.reloadLog + " && " + n.reloadCommand()})
		body, err := r.callOwn("CreateCloudResource", map[string]string{"CloudName": "ssh", "CloudProduct": "NGINX",
			"Domain": site, "Name": site, "CloudAccessId": strconv.FormatInt(access, 10), "Config": string(config)})
		if err != nil {
			return nil, fmt.Errorf("create resource %s: %w", site, err)
		}
		id, err := benchkit.IDOf(body, "Id")
		if err != nil {
			return nil, err
		}
		r.resources = append(r.resources, id)
	}
	return r, nil
}

// callOwn calls one of certfleet's own operations through the SDK's generic
// client (the CAS SDK has no method for them).
func (r *certfleetRun) callOwn(action string, query map[string]string) (map[string]any, error) {
	return benchkit.CallOwn(r.generic, action, query)
}

// deploy uploads c, creates a job of every resource and times it from
// pending until DescribeDeploymentJob says success.
func (r *certfleetRun) deploy(ctx context.Context, c cert, run int) (time.Duration, breakdown, error) {
	var b breakdown
	up, err := r.cas.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(fmt.Sprintf("bench-%d", run)),
		Cert: tea.String(c.certPEM), Key: tea.String(c.keyPEM)})
	if err != nil {
		return 0, b, fmt.Errorf("upload certificate: %w", err)
	}
	job, err := r.cas.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String(fmt.Sprintf("bench-%d", run)),
		JobType: tea.String("user"), CertIds: tea.String(strconv.FormatInt(tea.Int64Value(up.Body.CertId), 10)),
		ResourceIds: tea.String(benchkit.JoinIDs(r.resources)), ContactIds: tea.String(strconv.FormatInt(r.contact, 10))})
	if err != nil {
		return 0, b, fmt.Errorf("create job: %w", err)
	}
	jobID := tea.Int64Value(job.Body.JobId)
	reloadsBefore := countLines(r.reloadLog)
	start := time.Now()
	if _, err := r.cas.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("pending")}); err != nil {
		return 0, b, fmt.Errorf("start job %d: %w", jobID, err)
	}
	acked := time.Since(start)
	var status string
	for {
		d, err := r.cas.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(jobID)})
		if err != nil {
			return 0, b, fmt.Errorf("describe job %d: %w", jobID, err)
		}
		if status = tea.StringValue(d.Body.Status); status == "success" || status == "error" {
			break
		}
		select {
		case <-ctx.Done():
			return 0, b, fmt.Errorf("job %d still %s: %w", jobID, status, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	wall := time.Since(start)
	if status != "success" {
		return 0, b, fmt.Errorf("job %d ended %s (server log: %s)", jobID, status, r.logPath)
	}
	b, err = r.breakdown(jobID, start, acked, wall)
	b.reloads = countLines(r.reloadLog) - reloadsBefore
	return wall, b, err
}

// countLines counts the lines of file (0 when it does not exist).
func countLines(file string) int {
	b, _ := os.ReadFile(file)
	return bytes.Count(b, []byte("\n"))
}

// breakdown is where one certfleet run's time went, each an offset from
// the UpdateDeploymentJobStatus call.
type breakdown struct {
	reloads        int           // ReloadCommand runs (reload rounds)
	acked          time.Duration // the pending call returned
	jobStarted     time.Duration // log "job started"
	firstWrite     time.Duration // earliest mtime of the 2·N files
	lastWrite      time.Duration // latest mtime
	newWorker      time.Duration // nginx's new worker process started (reload took effect), 10 ms ticks
	firstFinished  time.Duration // first log "worker finished"
	lastFinished   time.Duration // last one
	jobFinished    time.Duration // log "job finished"
	observed       time.Duration // the poll saw success
	workerFinished int
}

func (r *certfleetRun) breakdown(jobID int64, start time.Time, acked, wall time.Duration) (breakdown, error) {
	b := breakdown{acked: acked, observed: wall, firstWrite: -1, firstFinished: -1}
	f, err := os.Open(r.logPath)
	if err != nil {
		return b, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Time  time.Time `json:"time"`
			Msg   string    `json:"msg"`
			JobID int64     `json:"job_id"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.JobID != jobID {
			continue
		}
		at := l.Time.Sub(start)
		switch l.Msg {
		case "job started":
			b.jobStarted = at
		case "worker finished":
			b.workerFinished++
			if b.firstFinished < 0 {
				b.firstFinished = at
			}
			b.lastFinished = at
		case "job finished":
			b.jobFinished = at
		}
	}
	for _, n := range r.ns {
		for _, site := range n.sites {
			for _, p := range []string{n.certPath(site), n.keyPath(site)} {
				fi, err := os.Stat(p)
				if err != nil {
					return b, err
				}
				at := fi.ModTime().Sub(start)
				if b.firstWrite < 0 || at < b.firstWrite {
					b.firstWrite = at
				}
				b.lastWrite = max(b.lastWrite, at)
			}
		}
	}
	// nginx -s reload only signals the master, which then re-reads its
	// configuration: the new worker may start after the job says success.
	for _, n := range r.ns { // the last host's reload
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if t, err := n.newestWorkerStart(); err == nil && t.After(start) {
				b.newWorker = max(b.newWorker, t.Sub(start))
				break
			}
		}
	}
	return b, nil
}

func printBreakdowns(bds []breakdown) {
	if len(bds) == 0 {
		return
	}
	fmt.Printf("\nwhere certfleet's time goes (seconds after the pending call; server JSON log, file mtimes, nginx worker start):\n")
	rows := []struct {
		name string
		get  func(breakdown) time.Duration
	}{
		{"pending call returned", func(b breakdown) time.Duration { return b.acked }},
		{"log: job started", func(b breakdown) time.Duration { return b.jobStarted }},
		{"first file written", func(b breakdown) time.Duration { return b.firstWrite }},
		{"last file written", func(b breakdown) time.Duration { return b.lastWrite }},
		{"nginx new worker (reloaded)", func(b breakdown) time.Duration { return b.newWorker }},
		{"log: first worker finished", func(b breakdown) time.Duration { return b.firstFinished }},
		{"log: last worker finished", func(b breakdown) time.Duration { return b.lastFinished }},
		{"log: job finished", func(b breakdown) time.Duration { return b.jobFinished }},
		{"poll saw success", func(b breakdown) time.Duration { return b.observed }},
	}
	fmt.Printf("  %-30s", "")
	for i := range bds {
		fmt.Printf(" %8s", fmt.Sprintf("run %d", i+1))
	}
	fmt.Println()
	for _, row := range rows {
		fmt.Printf("  %-30s", row.name)
		for _, b := range bds {
			fmt.Printf(" %8.3f", row.get(b).Seconds())
		}
		fmt.Println()
	}
	fmt.Printf("  %-30s", "reloads (ReloadCommand runs)")
	for _, b := range bds {
		fmt.Printf(" %8d", b.reloads)
	}
	fmt.Println()
	fmt.Printf("  %-30s", "workers finished (log)")
	for _, b := range bds {
		fmt.Printf(" %8d", b.workerFinished)
	}
	fmt.Println()
}
