package main

// Scale mode (-sizes): issue #14 item 5. For each engine and each job size,
// a fresh server (and, on PostgreSQL, a fresh database) gets N webhook
// resources, one job holding all of them is created (timed) and started,
// and while it runs the server's resident memory and the latency of
// DescribeDeploymentJob and ListWorkerResource are sampled every
// -probe-interval. No baseline, River or scheduled jobs in this mode.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/bench/internal/benchkit"
)

// scaleResult is one engine × size.
type scaleResult struct {
	engine      string
	size        int
	setup       time.Duration // creating the resources through the API
	create      time.Duration // CreateDeploymentJob with all of them
	jobWall     time.Duration // pending → success (or → the job deadline)
	done        int64         // deliveries counted by the receiver
	finished    bool
	rssStart    int64 // VmRSS just before the job starts
	rssMax      int64 // largest VmRSS sample during the job
	rssEnd      int64 // VmRSS when the job ended
	peak        int64 // VmHWM at the end (whole life: setup, create, job)
	describe    []time.Duration
	list        []time.Duration // every ListWorkerResource call (pages 1, 2 and the last)
	listLate    []time.Duration // only the last page
	rssSamples  []int64
	probeErrors int
}

func runScale(ctx context.Context, c config, tmp string, bundle bundle, rcv *receiver) error {
	var rs []scaleResult
	for _, engine := range c.engines {
		for _, size := range c.sizes {
			fmt.Fprintf(os.Stderr, "== %s, %d resources\n", engine, size)
			r, err := scaleOne(ctx, c, engine, size, filepath.Join(tmp, fmt.Sprintf("%s-%d", engine, size)), bundle, rcv)
			if err != nil {
				return fmt.Errorf("%s, %d resources: %w", engine, size, err)
			}
			printScaleRow(os.Stderr, r, true)
			rs = append(rs, r)
		}
	}
	fmt.Println()
	printScaleHeader()
	for _, r := range rs {
		printScaleRow(os.Stdout, r, false)
	}
	return nil
}

func scaleOne(ctx context.Context, c config, engine string, size int, tmp string, bundle bundle, rcv *receiver) (scaleResult, error) {
	r := scaleResult{engine: engine, size: size}
	var database string
	if engine == "postgres" {
		u, drop, err := createDatabase(ctx, c.postgres)
		if err != nil {
			return r, err
		}
		defer drop()
		database = u
	}
	srvs, err := startServers(ctx, c, engine, tmp, []string{database})
	if err != nil {
		return r, err
	}
	srv := srvs[0]
	defer srv.stop()
	fail := func(err error) (scaleResult, error) {
		return r, fmt.Errorf("%w\nlast server log lines (%s):\n%s", err, srv.logPath, srv.tail(10))
	}
	cl, err := newClients(srv.addr, srv.keyID, srv.secret)
	if err != nil {
		return r, err
	}
	up, err := cl.cas.UploadUserCertificate(&client.UploadUserCertificateRequest{Name: tea.String("bench"),
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
	start := time.Now()
	ids, err := createResources(ctx, []*clients{cl}, size, c.setupClients, rcv.url)
	if err != nil {
		return fail(err)
	}
	r.setup = time.Since(start)
	fmt.Fprintf(os.Stderr, "  created %d resources in %.1fs (%.0f/s, %d API calls at a time)\n", size, r.setup.Seconds(), float64(size)/r.setup.Seconds(), c.setupClients)

	profile(c, engine, size, "allocs-before-create", "allocs")
	start = time.Now()
	job, err := cl.cas.CreateDeploymentJob(&client.CreateDeploymentJobRequest{Name: tea.String("bench"), JobType: tea.String("user"),
		CertIds: tea.String(strconv.FormatInt(certID, 10)), ResourceIds: tea.String(benchkit.JoinIDs(ids)), ContactIds: tea.String(strconv.FormatInt(contactID, 10))})
	if err != nil {
		return fail(fmt.Errorf("create job: %w", err))
	}
	r.create = time.Since(start)
	jobID := tea.Int64Value(job.Body.JobId)
	profile(c, engine, size, "allocs-after-create", "allocs")
	profile(c, engine, size, "heap-after-create", "heap?gc=1")
	fmt.Fprintf(os.Stderr, "  CreateDeploymentJob with %d resources: %.2fs\n", size, r.create.Seconds())

	pid := srv.node.Pid()
	if r.rssStart, err = procStatus(pid, "VmRSS:"); err != nil {
		return r, err
	}
	before := rcv.reset()
	start = time.Now()
	if _, err := cl.cas.UpdateDeploymentJobStatus(&client.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("pending")}); err != nil {
		return fail(fmt.Errorf("start job: %w", err))
	}
	deadline := start.Add(c.jobTimeout)
	lastPage := (size + 49) / 50
	tick := time.NewTicker(c.probeInterval)
	defer tick.Stop()
	halfway := false
	for {
		if !halfway && rcv.count.Load()-before >= int64(size/2) {
			halfway = true
			profile(c, engine, size, "heap-halfway", "heap?gc=1")
		}
		if rss, err := procStatus(pid, "VmRSS:"); err == nil {
			r.rssSamples = append(r.rssSamples, rss)
			r.rssMax = max(r.rssMax, rss)
		}
		t := time.Now()
		d, err := cl.cas.DescribeDeploymentJob(&client.DescribeDeploymentJobRequest{JobId: tea.Int64(jobID)})
		if err != nil {
			return fail(fmt.Errorf("describe job %d: %w", jobID, err))
		}
		r.describe = append(r.describe, time.Since(t))
		st := tea.StringValue(d.Body.Status)
		if st == "success" || st == "error" {
			r.jobWall = time.Since(start)
			if end, err := strconv.ParseInt(tea.StringValue(d.Body.EndTime), 10, 64); err == nil && end > 0 {
				if w := time.UnixMilli(end).Sub(start); w > 0 && w <= r.jobWall {
					r.jobWall = w
				}
			}
			if st != "success" {
				return fail(fmt.Errorf("job %d ended %s, not success", jobID, st))
			}
			r.finished = true
			break
		}
		for _, page := range []int{1, 2, lastPage} {
			t := time.Now()
			_, err := cl.callOwn("ListWorkerResource", map[string]string{"JobId": strconv.FormatInt(jobID, 10),
				"CurrentPage": strconv.Itoa(page), "ShowSize": "50"})
			if err != nil {
				r.probeErrors++
				fmt.Fprintf(os.Stderr, "  ListWorkerResource page %d: %v\n", page, err)
				continue
			}
			r.list = append(r.list, time.Since(t))
			if page == lastPage {
				r.listLate = append(r.listLate, time.Since(t))
			}
		}
		if time.Now().After(deadline) {
			r.jobWall = time.Since(start)
			fmt.Fprintf(os.Stderr, "  job still %s after -job-timeout %s\n", st, c.jobTimeout)
			break
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
	}
	r.done = rcv.count.Load() - before
	if r.finished && r.done != int64(size) {
		return fail(fmt.Errorf("the receiver got %d deliveries, want %d", r.done, size))
	}
	profile(c, engine, size, "heap-end", "heap?gc=1")
	if r.rssEnd, err = procStatus(pid, "VmRSS:"); err != nil {
		return r, err
	}
	r.rssMax = max(r.rssMax, r.rssEnd)
	if r.peak, err = procStatus(pid, "VmHWM:"); err != nil {
		return r, err
	}
	return r, nil
}

// profile saves /debug/pprof/<what> of -pprof-addr, if set, as
// <engine>-<size>-<name>.pb.gz in -profile-dir.
func profile(c config, engine string, size int, name, what string) {
	if c.pprofAddr == "" {
		return
	}
	resp, err := http.Get("http://" + c.pprofAddr + "/debug/pprof/" + what)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "  profile %s: %v\n", name, err)
		return
	}
	defer resp.Body.Close()
	path := filepath.Join(c.profileDir, fmt.Sprintf("%s-%d-%s.pb.gz", engine, size, name))
	f, err := os.Create(path)
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "  profile %s: %v\n", name, err)
		return
	}
	fmt.Fprintf(os.Stderr, "  profile: %s\n", path)
}

// procStatus reads one "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func pcts(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%.1f / %.1f / %.1f", ms(percentile(s, 0.5)), ms(percentile(s, 0.95)), ms(percentile(s, 1)))
}

func printScaleHeader() {
	fmt.Println("| engine | resources | create resources (API, /s) | CreateDeploymentJob | job wall | workers/s | RSS before job → max during → end | peak RSS (VmHWM) | Describe p50 / p95 / max ms | ListWorkerResource p50 / p95 / max ms | last page p50 / p95 ms | probes |")
	fmt.Println("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
}

func printScaleRow(w *os.File, r scaleResult, verbose bool) {
	wall := fmt.Sprintf("%.1f s", r.jobWall.Seconds())
	if !r.finished {
		wall = fmt.Sprintf("unfinished: %d of %d in %.0f s", r.done, r.size, r.jobWall.Seconds())
	}
	late := "–"
	if len(r.listLate) > 0 {
		s := slices.Clone(r.listLate)
		slices.Sort(s)
		late = fmt.Sprintf("%.1f / %.1f", ms(percentile(s, 0.5)), ms(percentile(s, 0.95)))
	}
	probes := strconv.Itoa(len(r.describe))
	if r.probeErrors > 0 {
		probes += fmt.Sprintf(" (%d list errors)", r.probeErrors)
	}
	fmt.Fprintf(w, "| %s | %d | %.1f s (%.0f/s) | %.2f s | %s | %.0f | %.1f → %.1f → %.1f MiB | **%.1f MiB** | %s | %s | %s | %s |\n",
		r.engine, r.size, r.setup.Seconds(), float64(r.size)/r.setup.Seconds(), r.create.Seconds(), wall,
		float64(r.done)/r.jobWall.Seconds(), mib(r.rssStart), mib(r.rssMax), mib(r.rssEnd), mib(r.peak),
		pcts(r.describe), pcts(r.list), late, probes)
	if verbose {
		var b strings.Builder
		for _, s := range r.rssSamples {
			fmt.Fprintf(&b, " %.0f", mib(s))
		}
		fmt.Fprintf(w, "  VmRSS samples (MiB, one per probe):%s\n", b.String())
	}
}
