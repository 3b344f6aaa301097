package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/certfleet/certfleet/internal/store"
)

// pollInterval is how often `job watch` asks for the job's status.
const pollInterval = 500 * time.Millisecond

func newJobWatchCmd(conn *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a job until it ends; exit 3 if it ends in error",
		Long: `Follow a job until it ends: a progress bar (done and failed of all workers,
rate, ETA) and a per-product summary, redrawn in place on a terminal, or one
plain line per change (at most one a second) when output is not a terminal.
At the end, the failed workers are listed with their errors.

Exit status: 0 when the job succeeded, 3 when it ended in error, 1 when it
could not be watched.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("job ID", args[0])
			if err != nil {
				return err
			}
			c, err := conn.dial()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			r := &renderer{w: cmd.OutOrStdout(), width: 80}
			if f, ok := r.w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				r.tty = true
				if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
					r.width = w
				}
			}
			return watchJob(ctx, c, id, r)
		},
	}
}

// productProgress is one product's share of a job.
type productProgress struct {
	name                   string
	total, success, failed int64
}

// progress is a job's state at one poll.
type progress struct {
	status                 store.JobStatus
	total, success, failed int64
	products               []productProgress
}

func (p progress) done() int64 { return p.success + p.failed }

func (p progress) final() bool { return p.status == store.JobSuccess || p.status == store.JobError }

// jobProgress reads a job's status, its counts, and each product's counts.
func (c *client) jobProgress(id int64) (progress, error) {
	d, err := c.cas.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(id)})
	if err != nil {
		return progress{}, err
	}
	s, err := c.cas.DescribeDeploymentJobStatus(&cas.DescribeDeploymentJobStatusRequest{JobId: tea.Int64(id)})
	if err != nil {
		return progress{}, err
	}
	p := progress{status: store.JobStatus(tea.StringValue(d.Body.Status)), total: int64(tea.Int32Value(s.Body.WorkerCount)),
		success: int64(tea.Int32Value(s.Body.SuccessCount)), failed: int64(tea.Int32Value(s.Body.FailedCount))}
	for _, pc := range s.Body.ProductWorkerCount {
		pp := productProgress{name: tea.StringValue(pc.ProductName), total: int64(tea.Int32Value(pc.Count))}
		if len(s.Body.ProductWorkerCount) == 1 {
			pp.success, pp.failed = p.success, p.failed
		} else {
			if pp.success, err = c.workerCount(id, store.WorkerSuccess, pp.name); err != nil {
				return p, err
			}
			if pp.failed, err = c.workerCount(id, store.WorkerError, pp.name); err != nil {
				return p, err
			}
		}
		p.products = append(p.products, pp)
	}
	return p, nil
}

// watchJob polls job id until it ends, drawing its progress with r.
func watchJob(ctx context.Context, c *client, id int64, r *renderer) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var p progress
	for first := true; ; first = false {
		var err error
		if p, err = c.jobProgress(id); err != nil {
			return err
		}
		if p.status == store.JobEditing {
			return fmt.Errorf("job %d is editing: nothing runs until it is started (certfleet job start %d)", id, id)
		}
		if first {
			r.start, r.done0 = time.Now(), p.done()
		}
		r.draw(id, p, time.Now())
		if p.final() {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped watching job %d; it goes on (certfleet job watch %d)", id, id)
		case <-t.C:
		}
	}
	w := r.w
	if p.status == store.JobSuccess {
		fmt.Fprintf(w, "Job %d succeeded: %d of %d workers deployed.\n", id, p.success, p.total)
		return nil
	}
	_, failed, err := c.workers(id, store.WorkerError)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nFailed workers of job %d (roll one back with: certfleet job rollback %d WORKERID):\n", id, id)
		rows := [][]string{}
		for _, f := range failed {
			rows = append(rows, []string{i64(f.Id), i64(f.ResourceId), f.ResourceDomain, f.ErrorMessage})
		}
		if err := printTable(w, []string{"WORKER", "RESOURCE", "DOMAIN", "ERROR"}, rows); err != nil {
			return err
		}
	}
	return &exitError{code: exitJobError, err: fmt.Errorf("job %d ended in error: %d of %d workers failed", id, p.failed, p.total)}
}

// renderer draws progress: redrawn in place on a terminal (ANSI cursor-up
// and erase-line, no progress-bar dependency), else plain lines.
type renderer struct {
	w     io.Writer
	tty   bool
	width int

	start  time.Time
	done0  int64
	drawn  int // lines drawn last time (terminal)
	last   string
	lastAt time.Time
}

// rateETA is the rate of finished workers since watching began and the time left.
func (r *renderer) rateETA(p progress, now time.Time) (string, string) {
	el := now.Sub(r.start)
	delta := p.done() - r.done0
	rate := "-/s"
	if el >= time.Second && delta > 0 {
		rate = fmt.Sprintf("%.1f/s", float64(delta)/el.Seconds())
	}
	switch {
	case p.final():
		return rate, "took " + el.Round(time.Second).String()
	case rate == "-/s":
		return rate, "ETA -"
	}
	left := time.Duration(float64(p.total-p.done()) * el.Seconds() / float64(delta) * float64(time.Second))
	return rate, "ETA " + left.Round(time.Second).String()
}

func bar(done, total int64, width int) string {
	fill := width
	if total > 0 {
		fill = int(done * int64(width) / total)
	}
	s := strings.Repeat("=", fill)
	if fill < width {
		s += ">" + strings.Repeat(" ", width-fill-1)
	}
	return "[" + s + "]"
}

func (r *renderer) draw(id int64, p progress, now time.Time) {
	rate, eta := r.rateETA(p, now)
	if r.tty {
		lines := []string{fmt.Sprintf("job %d %s %s %d/%d done, %d failed  %s  %s",
			id, p.status, bar(p.done(), p.total, 24), p.done(), p.total, p.failed, rate, eta)}
		for _, pp := range p.products {
			lines = append(lines, fmt.Sprintf("  %-12s %s %d/%d done  %d failed", pp.name, bar(pp.success+pp.failed, pp.total, 20),
				pp.success+pp.failed, pp.total, pp.failed))
		}
		var b strings.Builder
		if r.drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", r.drawn)
		}
		for _, l := range lines {
			b.WriteString("\r\x1b[2K" + truncate(l, r.width-1) + "\n")
		}
		for i := len(lines); i < r.drawn; i++ { // fewer lines than before: clear the rest
			b.WriteString("\r\x1b[2K\n")
		}
		r.drawn = max(len(lines), r.drawn)
		io.WriteString(r.w, b.String())
		return
	}
	var prods []string
	for _, pp := range p.products {
		prods = append(prods, fmt.Sprintf("%s %d/%d (%d failed)", pp.name, pp.success+pp.failed, pp.total, pp.failed))
	}
	key := fmt.Sprintf("job %d %s: %d/%d done, %d failed; %s", id, p.status, p.done(), p.total, p.failed, strings.Join(prods, ", "))
	if key == r.last || (!p.final() && now.Sub(r.lastAt) < time.Second) {
		return
	}
	r.last, r.lastAt = key, now
	fmt.Fprintf(r.w, "%s, %s, %s\n", strings.TrimSuffix(key, "; "), rate, eta)
}
