// Command sshnginx measures certfleet's ssh/NGINX deployer against what
// operators use today: one certificate to N nginx vhosts on one host, over
// SSH, copied, tested with `nginx -t` and reloaded once.
//
//	go run ./bench/sshnginx -vhosts 50 -runs 3
//
// In one run, on loopback only, it starts its own sshd (root login with a
// generated ed25519 key, host key pinned) and nginx (N TLS server blocks on
// one port, told apart by SNI, each with its own certificate and key file),
// then times three ways of replacing all 2·N files:
//
//   - certfleet: a `certfleet serve` process runs one deployment job of N
//     ssh/NGINX resources, from UpdateDeploymentJobStatus pending until
//     DescribeDeploymentJob says success (polled every 20 ms);
//   - ansible: `ansible-playbook` with a copy task looping over the files,
//     then `nginx -t` and a reload handler, Ansible's defaults as shipped
//     (run once: it takes minutes);
//   - floor: what an expert types by hand, `tar c` of all files piped into
//     one `ssh` that untars, tests and reloads.
//
// certfleet and the floor run -runs times, alternating; the table gives
// medians and ratios to the floor. Each attempt deploys a new certificate,
// so every one really changes the files, and is checked afterwards with one
// TLS handshake per vhost. For certfleet it also prints where the time went,
// from the server's JSON log, the files' modification times and the start
// time of nginx's new worker process.
//
// It is not a test: it asserts no timing. docs/benchmarks-ssh.md gives the
// numbers last measured. Everything it starts is stopped, and its temporary
// directory removed, at the end, on Ctrl-C, or when -timeout passes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/certfleet/certfleet/internal/testutil/proc"
)

type config struct {
	vhosts      int
	runs        int
	timeout     time.Duration
	skipAnsible bool
	keep        bool
	sftpLog     bool
	hosts       int
	perHost     int
	workers     int
}

func main() {
	var c config
	flag.IntVar(&c.vhosts, "vhosts", 50, "nginx vhosts (and certfleet resources) on the one host")
	flag.IntVar(&c.runs, "runs", 3, "timed runs of certfleet and of the floor (Ansible runs once)")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "bound on the whole benchmark, setup and cleanup included")
	flag.BoolVar(&c.skipAnsible, "skip-ansible", false, "do not run (or install) Ansible")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (logs, configs) for inspection")
	flag.BoolVar(&c.sftpLog, "sftp-log", false, "log every SFTP request in sshd.log (slower; to count certfleet's requests; needs -keep to read it)")
	flag.IntVar(&c.hosts, "hosts", 1, "ssh hosts (each its own sshd with its own host key) the vhosts are spread over, round robin; they share one nginx")
	flag.IntVar(&c.perHost, "per-host", 0, "certfleet serve --per-host (0: the server's default)")
	flag.IntVar(&c.workers, "workers", 0, "certfleet serve --workers (0: the server's default)")
	flag.Parse()
	if c.vhosts < 1 || c.vhosts > 999 || c.runs < 1 || c.hosts < 1 || c.hosts > c.vhosts {
		fmt.Fprintln(os.Stderr, "sshnginx: -vhosts must be 1..999, -runs at least 1, -hosts 1..vhosts")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	cancel()
	cleanups.run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sshnginx:", err)
		os.Exit(1)
	}
}

// cleanups runs, in reverse order, what undoes the setup.
var cleanups cleanupList

type cleanupList struct {
	mu  sync.Mutex
	fns []func()
}

func (l *cleanupList) add(fn func()) {
	l.mu.Lock()
	l.fns = append(l.fns, fn)
	l.mu.Unlock()
}

func (l *cleanupList) run() {
	l.mu.Lock()
	fns := l.fns
	l.fns = nil
	l.mu.Unlock()
	for _, fn := range slices.Backward(fns) {
		fn()
	}
}

// result is one method's timings.
type result struct {
	name  string
	times []time.Duration
	note  string
}

func (r result) median() time.Duration {
	s := slices.Clone(r.times)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func run(ctx context.Context, c config) error {
	for _, bin := range []string{"/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/sbin/nginx", "tar"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is missing: apt-get install -y openssh-server openssh-client nginx tar", bin)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root: sshd must accept a root login, and nginx is started as root")
	}
	ansibleOK := false
	if !c.skipAnsible && c.hosts == 1 { // Ansible runs against one host only
		if err := ensureAnsible(ctx); err != nil {
			return err
		}
		ansibleOK = true
	}

	tmp, err := os.MkdirTemp("", "certfleet-bench-ssh-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Fprintf(os.Stderr, "keeping %s\n", tmp)
	} else {
		cleanups.add(func() { os.RemoveAll(tmp) })
	}

	fmt.Fprintln(os.Stderr, "building certfleet (cached by source)…")
	binary, err := proc.Binary()
	if err != nil {
		return err
	}

	var hs []*sshHost
	for i := range c.hosts {
		dir := filepath.Join(tmp, "sshd")
		if i > 0 {
			dir += strconv.Itoa(i)
		}
		h, err := startSSHD(ctx, dir, c.sftpLog)
		if err != nil {
			return err
		}
		hs = append(hs, h)
	}
	h := hs[0]
	sites := make([]string, c.vhosts)
	for i := range sites {
		sites[i] = fmt.Sprintf("v%02d.example.test", i)
	}
	first, err := newCert("initial")
	if err != nil {
		return err
	}
	// One nginx per host (its own config, TLS directory and master), with
	// the host's share of the sites, round robin.
	var ns []*nginxHost
	for i := range hs {
		var share []string
		for j, site := range sites {
			if j%len(hs) == i {
				share = append(share, site)
			}
		}
		dir := filepath.Join(tmp, "nginx")
		if i > 0 {
			dir += strconv.Itoa(i)
		}
		n, err := startNginx(ctx, dir, share, first)
		if err != nil {
			return err
		}
		ns = append(ns, n)
	}
	n := ns[0]
	fmt.Fprintf(os.Stderr, "%d sshd (first on %s), %d nginx with %d vhosts in all (first on %s)\n", len(hs), h.addr, len(ns), len(sites), n.addr)
	verifyAll := func(ctx context.Context, c cert) error {
		for _, n := range ns {
			if err := n.verify(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}

	probe, err := probeSSH(ctx, h, n)
	if err != nil {
		return err
	}

	cf, err := setupCertfleet(ctx, binary, filepath.Join(tmp, "certfleet-data"), hs, ns, c)
	if err != nil {
		return err
	}

	certfleet := result{name: "certfleet"}
	floor := result{name: "floor (tar | one ssh)"}
	var breakdowns []breakdown
	for i := range c.runs {
		cert, err := newCert(fmt.Sprintf("certfleet-%d", i))
		if err != nil {
			return err
		}
		d, b, err := cf.deploy(ctx, cert, i)
		if err != nil {
			return fmt.Errorf("certfleet run %d: %w", i+1, err)
		}
		if err := verifyAll(ctx, cert); err != nil {
			return fmt.Errorf("certfleet run %d: %w", i+1, err)
		}
		certfleet.times = append(certfleet.times, d)
		breakdowns = append(breakdowns, b)
		fmt.Fprintf(os.Stderr, "run %d: certfleet %.3fs\n", i+1, d.Seconds())

		cert, err = newCert(fmt.Sprintf("floor-%d", i))
		if err != nil {
			return err
		}
		d, err = runFloors(ctx, hs, ns, filepath.Join(tmp, fmt.Sprintf("floor-%d", i)), cert)
		if err != nil {
			return fmt.Errorf("floor run %d: %w", i+1, err)
		}
		if err := verifyAll(ctx, cert); err != nil {
			return fmt.Errorf("floor run %d: %w", i+1, err)
		}
		floor.times = append(floor.times, d)
		fmt.Fprintf(os.Stderr, "run %d: floor %.3fs\n", i+1, d.Seconds())
	}

	results := []result{certfleet}
	if ansibleOK {
		cert, err := newCert("ansible")
		if err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "running ansible-playbook once (this takes minutes)…")
		d, version, err := runAnsible(ctx, h, n, filepath.Join(tmp, "ansible"), cert)
		if err != nil {
			return fmt.Errorf("ansible: %w", err)
		}
		if err := n.verify(ctx, cert); err != nil {
			return fmt.Errorf("ansible: %w", err)
		}
		fmt.Fprintf(os.Stderr, "ansible %.1fs\n", d.Seconds())
		results = append(results, result{name: "ansible-playbook", times: []time.Duration{d},
			note: version + ", defaults as shipped (forks 5, pipelining off, gather_facts on, ssh ControlPersist 60s)"})
	}
	results = append(results, floor)

	printReport(c, h, n, probe, results, floor, breakdowns)
	return nil
}

func printReport(c config, h *sshHost, n *nginxHost, probe probeResult, results []result, floor result, bds []breakdown) {
	fmt.Printf("\none certificate to %d nginx vhosts (%d files) over ssh to %d host(s) (first %s); runs: certfleet and floor %d each, alternating; ansible once\n",
		c.vhosts, 2*c.vhosts, c.hosts, h.addr, c.runs)
	fmt.Printf("certfleet serve --per-host %s --workers %s\n\n", orDefault(c.perHost), orDefault(c.workers))
	fmt.Printf("%-24s %4s %11s %9s  %s\n", "method", "runs", "median (s)", "× floor", "all runs (s)")
	fm := floor.median()
	for _, r := range results {
		var all string
		for i, t := range r.times {
			if i > 0 {
				all += " "
			}
			all += fmt.Sprintf("%.3f", t.Seconds())
		}
		fmt.Printf("%-24s %4d %11.3f %9.2f  %s\n", r.name, len(r.times), r.median().Seconds(), float64(r.median())/float64(fm), all)
	}
	for _, r := range results {
		if r.note != "" {
			fmt.Printf("  %s: %s\n", r.name, r.note)
		}
	}
	fmt.Printf("\ncertfleet / floor = %.2f (target ≤ 2)\n", float64(results[0].median())/float64(fm))
	for _, r := range results[1:] {
		if r.name == "ansible-playbook" {
			fmt.Printf("ansible / certfleet = %.1f\n", float64(r.median())/float64(results[0].median()))
		}
	}
	fmt.Printf("\nparts, median of 5 each: a new ssh connection running 'true' %.3fs, 'nginx -t' %.3fs, 'nginx -s reload' %.3fs;\n",
		probe.sshTrue.Seconds(), probe.nginxTest.Seconds(), probe.nginxReload.Seconds())
	fmt.Printf("  without ssh: nginx -t %.3fs, nginx -s reload %.3fs\n", probe.localTest.Seconds(), probe.localReload.Seconds())
	printBreakdowns(bds)
}

func orDefault(n int) string {
	if n <= 0 {
		return "(default)"
	}
	return strconv.Itoa(n)
}
