package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
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
rate, ETA), a per-product summary, and the workers waiting for a retry
(their attempt, when the next try is, the last error), redrawn in place on
a terminal, or one plain line per change (at most one a second) when output
is not a terminal. Rollbacks are followed until they end too. At the end,
the failed workers are listed with their errors; after a rollback the
summary says how many workers were restored.

Exit status: 0 when the job succeeded (or its rollback did), 3 when it
ended in error (a cancelled job included) or a rollback failed, 1 when it
could not be watched.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, c, err := dialJob(conn, args[0])
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
	cancelled              bool
	total, success, failed int64
	// rollback counts the workers asked to roll back; restored and
	// rollbackFailed those whose rollback ended.
	rollback, restored, rollbackFailed int64
	products                           []productProgress
	retrying                           []worker // waiting for their next attempt (at most retryShown)
}

// retryShown is how many retrying workers `job watch` lists.
const retryShown = 5

func (p progress) done() int64 { return p.success + p.failed }

func (p progress) rollingBack() bool { return p.restored+p.rollbackFailed < p.rollback }

func (p progress) final() bool {
	return (p.status == store.JobSuccess || p.status == store.JobError) && !p.rollingBack()
}

// jobProgress reads a job's status, its counts, and each product's counts.
func (c *client) jobProgress(id int64) (progress, error) {
	var d struct {
		Status    string
		Cancelled int32 // certfleet's own
	}
	if err := c.call("DescribeDeploymentJob", map[string]string{"JobId": i64(id)}, &d); err != nil {
		return progress{}, err
	}
	s, err := c.cas.DescribeDeploymentJobStatus(&cas.DescribeDeploymentJobStatusRequest{JobId: tea.Int64(id)})
	if err != nil {
		return progress{}, err
	}
	p := progress{status: store.JobStatus(d.Status), cancelled: d.Cancelled == 1, total: int64(tea.Int32Value(s.Body.WorkerCount)),
		success: int64(tea.Int32Value(s.Body.SuccessCount)), failed: int64(tea.Int32Value(s.Body.FailedCount)),
		rollback: int64(tea.Int32Value(s.Body.RollbackCount)), restored: int64(tea.Int32Value(s.Body.RollbackSuccessCount)),
		rollbackFailed: int64(tea.Int32Value(s.Body.RollbackFailedCount))}
	if p.status == store.JobProcessing || p.rollingBack() {
		if p.retrying, err = c.retrying(id); err != nil {
			return p, err
		}
	}
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

// retrying lists the first workers of job id that wait for a retry
// (deployment or rollback), by their next try.
func (c *client) retrying(id int64) ([]worker, error) {
	var out []worker
	for _, st := range []store.WorkerStatus{store.WorkerProcessing, store.WorkerRollback} {
		var r struct{ Data []worker }
		if err := c.call("ListWorkerResource", map[string]string{"JobId": i64(id), "Status": string(st), "ShowSize": "100"}, &r); err != nil {
			return nil, err
		}
		for _, w := range r.Data {
			if w.NextRunAt > 0 && !w.Running {
				out = append(out, w)
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].NextRunAt < out[b].NextRunAt })
	if len(out) > retryShown {
		out = out[:retryShown]
	}
	return out, nil
}

// retryLine describes a worker waiting for its next attempt; now = zero
// gives the absolute time (for plain output, whose lines must not change
// every poll).
func retryLine(w worker, now time.Time) string {
	when := time.UnixMilli(w.NextRunAt)
	at := "at " + when.Local().Format("15:04:05")
	if !now.IsZero() {
		at = "in " + max(when.Sub(now), 0).Round(time.Second).String()
	}
	verb := "retrying"
	if w.Status == string(store.WorkerRollback) {
		verb = "retrying rollback of"
	}
	return fmt.Sprintf("%s worker %d (%s): attempt %d %s; last error: %s", verb, w.Id, w.ResourceDomain, w.Attempts+1, at, w.ErrorMessage)
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
	return r.summary(c, id, p)
}

// summary prints how job id ended and returns its exit status.
func (r *renderer) summary(c *client, id int64, p progress) error {
	w := r.w
	if p.rollback > 0 {
		fmt.Fprintf(w, "Job %d %s.\n", id, rollbackSummary(p.rollback, p.restored, p.rollbackFailed))
		if p.rollbackFailed == 0 {
			return nil
		}
		_, failed, err := c.workers(id, store.WorkerRollbackError)
		if err != nil {
			return err
		}
		if err := failedTable(w, "\nWorkers whose rollback failed:", failed); err != nil {
			return err
		}
		return &exitError{code: exitJobError, err: fmt.Errorf("job %d: %d of %d rollbacks failed", id, p.rollbackFailed, p.rollback)}
	}
	if p.status == store.JobSuccess {
		fmt.Fprintf(w, "Job %d succeeded: %d of %d workers deployed.\n", id, p.success, p.total)
		return nil
	}
	_, failed, err := c.workers(id, store.WorkerError)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		title := fmt.Sprintf("\nFailed workers of job %d (run them again with: certfleet job retry %d):", id, id)
		if err := failedTable(w, title, failed); err != nil {
			return err
		}
	}
	if p.cancelled {
		return &exitError{code: exitJobError, err: fmt.Errorf("job %d was cancelled: %d of %d workers deployed, %d stopped or failed", id, p.success, p.total, p.failed)}
	}
	return &exitError{code: exitJobError, err: fmt.Errorf("job %d ended in error: %d of %d workers failed", id, p.failed, p.total)}
}

func failedTable(w io.Writer, title string, ws []worker) error {
	fmt.Fprintln(w, title)
	rows := [][]string{}
	for _, f := range ws {
		rows = append(rows, []string{i64(f.Id), i64(f.ResourceId), f.ResourceDomain, f.ErrorMessage})
	}
	return printTable(w, []string{"WORKER", "RESOURCE", "DOMAIN", "ERROR"}, rows)
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
		lines := []string{fmt.Sprintf("job %d %s%s %s %d/%d done, %d failed  %s  %s",
			id, p.status, p.tags(), bar(p.done(), p.total, 24), p.done(), p.total, p.failed, rate, eta)}
		for _, pp := range p.products {
			lines = append(lines, fmt.Sprintf("  %-12s %s %d/%d done  %d failed", pp.name, bar(pp.success+pp.failed, pp.total, 20),
				pp.success+pp.failed, pp.total, pp.failed))
		}
		if p.rollback > 0 {
			lines = append(lines, "  "+rollbackSummary(p.rollback, p.restored, p.rollbackFailed))
		}
		for _, rw := range p.retrying {
			lines = append(lines, "  "+retryLine(rw, now))
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
	if p.rollback > 0 {
		prods = append(prods, rollbackSummary(p.rollback, p.restored, p.rollbackFailed))
	}
	for _, rw := range p.retrying {
		prods = append(prods, retryLine(rw, time.Time{}))
	}
	key := fmt.Sprintf("job %d %s%s: %d/%d done, %d failed; %s", id, p.status, p.tags(), p.done(), p.total, p.failed, strings.Join(prods, ", "))
	if key == r.last || (!p.final() && now.Sub(r.lastAt) < time.Second) {
		return
	}
	r.last, r.lastAt = key, now
	fmt.Fprintf(r.w, "%s, %s, %s\n", strings.TrimSuffix(key, "; "), rate, eta)
}

// tags marks a cancelled job in progress lines.
func (p progress) tags() string {
	if p.cancelled {
		return " (cancelled)"
	}
	return ""
}
