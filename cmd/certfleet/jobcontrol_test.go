package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testutil"
)

// holdTarget is a webhook target that holds the deployment of one domain
// until released and answers 503 to the others until told to accept.
type holdTarget struct {
	*httptest.Server
	arrived, release chan struct{}

	mu     sync.Mutex
	accept bool
	once   sync.Once
	let    sync.Once
}

func newHoldTarget(t *testing.T, held string) *holdTarget {
	h := &holdTarget{arrived: make(chan struct{}), release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p struct{ Domain, Action string }
		json.Unmarshal(body, &p)
		if p.Domain == held && p.Action != "rollback" {
			h.once.Do(func() { close(h.arrived) })
			<-h.release
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.accept {
			http.Error(w, "try later", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(func() { h.free(); h.Close() })
	return h
}

func (h *holdTarget) free() { h.let.Do(func() { close(h.release) }) }

// TestCLIJobControl: `job watch` (piped) shows workers waiting for a retry;
// `job cancel` stops them while the held one finishes; `job retry` runs
// them again; `job preview` tells what would change; `job rollback JOB`
// rolls every worker back and `job watch` / `job show` say so.
func TestCLIJobControl(t *testing.T) {
	n := setupWith(t, "--retry-attempts", "5", "--retry-base", "1h")
	n.configure()
	hold := newHoldTarget(t, "a.ctl.test")
	certID, _ := n.upload("ctl", "*.ctl.test")
	var ids []string
	for _, d := range []string{"a", "b", "c"} {
		var r struct{ Id int64 }
		n.okJSON(&r, "resource", "add", "webhook", "--domain", d+".ctl.test", "--url", hold.URL)
		ids = append(ids, fmt.Sprint(r.Id))
	}
	contact := n.contact()
	var created struct{ JobId int64 }
	n.okJSON(&created, "job", "create", "--name", "ctl", "--cert", fmt.Sprint(certID), "--resource", strings.Join(ids, ","),
		"--contact", fmt.Sprint(contact), "--start")
	job := fmt.Sprint(created.JobId)

	select {
	case <-hold.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the held deployment never arrived")
	}
	testutil.WaitFor(t, 30*time.Second, "two workers waiting for a retry", func() (bool, error) {
		var show struct{ Workers []worker }
		n.okJSON(&show, "job", "show", job)
		waiting := 0
		for _, w := range show.Workers {
			if w.NextRunAt > 0 {
				waiting++
			}
		}
		return waiting == 2, nil
	})

	// Piped watch: a plain line names the retrying workers.
	watch := exec.Command(binary, "job", "watch", job)
	watch.Env = cleanEnv(n.home)
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var seen strings.Builder
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "retrying worker") {
			break
		}
	}
	first := seen.String()
	if !strings.Contains(first, "attempt 2 at ") || !strings.Contains(first, "503") || strings.ContainsAny(first, "\r\x1b") {
		t.Errorf("job watch (piped) before the cancel:\n%q", first)
	}

	if out := n.ok("job", "cancel", job); !strings.Contains(out, "Cancelled job "+job+"; its running workers finish first") {
		t.Errorf("job cancel: %q", out)
	}
	hold.free()
	rest, _ := io.ReadAll(stdout)
	err = watch.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitJobError {
		t.Errorf("job watch of a cancelled job: %v, want exit %d", err, exitJobError)
	}
	if s := string(rest); !strings.Contains(s, "(cancelled)") || !strings.Contains(s, "certfleet job retry "+job) {
		t.Errorf("job watch after the cancel:\n%s", s)
	}
	if out := n.ok("job", "show", job); !strings.Contains(out, "error (cancelled)") {
		t.Errorf("job show of a cancelled job:\n%s", out)
	}

	// Retry: the stopped workers run again.
	hold.mu.Lock()
	hold.accept = true
	hold.mu.Unlock()
	if out := n.ok("job", "retry", job); !strings.Contains(out, "Retrying 2 worker(s) of job "+job) {
		t.Errorf("job retry: %q", out)
	}
	if r := n.run(nil, "", "job", "watch", job); r.code != 0 || !strings.Contains(r.stdout, "succeeded: 3 of 3 workers deployed") {
		t.Errorf("job watch after the retry: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := n.run(nil, "", "job", "retry", job); r.code == 0 || !strings.Contains(r.stderr, "no error worker") {
		t.Errorf("job retry with nothing failed: exit %d, %q", r.code, r.stderr)
	}

	// Preview: every resource serves the job's certificate already.
	if out := n.ok("job", "preview", job); !strings.Contains(out, "CHANGES") || !strings.Contains(out, "0 of 3 workers would change") {
		t.Errorf("job preview:\n%s", out)
	}
	var preview []map[string]any
	n.okJSON(&preview, "job", "preview", job)
	if len(preview) != 3 {
		t.Errorf("job preview -o json: %v", preview)
	}

	// Roll the whole job back.
	if out := n.ok("job", "rollback", job); !strings.Contains(out, "Rolling back 3 worker(s) of job "+job) {
		t.Errorf("job rollback: %q", out)
	}
	if r := n.run(nil, "", "job", "watch", job); r.code != 0 || !strings.Contains(r.stdout, "rolled back: 3 of 3 workers restored") ||
		strings.Contains(r.stdout, "succeeded") {
		t.Errorf("job watch after the rollback: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if out := n.ok("job", "show", job); !strings.Contains(out, "rolled back: 3 of 3 workers restored") {
		t.Errorf("job show after the rollback:\n%s", out)
	}
	if r := n.run(nil, "", "job", "cancel", job); r.code == 0 || !strings.Contains(r.stderr, "only a pending, scheduling or processing job") {
		t.Errorf("job cancel of an ended job: exit %d, %q", r.code, r.stderr)
	}
}

// TestCLIWatchTerminalRetrying runs `job watch` on a pseudo-terminal (tmux)
// while workers wait for a retry: the screen lists them with their attempt,
// the time left before the next try and the last error; after `job cancel`
// the watch ends with exit 3.
func TestCLIWatchTerminalRetrying(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		testutil.Missing(t, "tmux", "apt-get install tmux")
	}
	n := setupWith(t, "--retry-attempts", "5", "--retry-base", "1h")
	n.configure()
	hold := newHoldTarget(t, "a.tty-retry.test")
	certID, _ := n.upload("ttyr", "*.tty-retry.test")
	var ids []string
	for _, d := range []string{"a", "b"} {
		var r struct{ Id int64 }
		n.okJSON(&r, "resource", "add", "webhook", "--domain", d+".tty-retry.test", "--url", hold.URL)
		ids = append(ids, fmt.Sprint(r.Id))
	}
	var created struct{ JobId int64 }
	n.okJSON(&created, "job", "create", "--name", "ttyr", "--cert", fmt.Sprint(certID), "--resource", strings.Join(ids, ","),
		"--contact", fmt.Sprint(n.contact()), "--start")
	job := fmt.Sprint(created.JobId)

	sock := fmt.Sprintf("certfleet-test-retry-%d", os.Getpid())
	script := fmt.Sprintf("CERTFLEET_CONFIG=%s %s job watch %s; echo EXIT=$?; sleep 60",
		shellQuote(filepath.Join(n.home, "config.json")), shellQuote(binary), job)
	start := exec.Command(tmux, "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "30", script)
	start.Env = cleanEnv(n.home)
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(tmux, "-L", sock, "kill-server").Run() })
	var screen string
	look := func(what string, cond func(string) bool) {
		t.Helper()
		testutil.WaitFor(t, 30*time.Second, what, func() (bool, error) {
			out, err := exec.Command(tmux, "-L", sock, "capture-pane", "-p").Output()
			screen = string(out)
			return cond(screen), err
		})
	}
	look("a retrying worker on the screen", func(s string) bool { return strings.Contains(s, "retrying worker") })
	if !strings.Contains(screen, "attempt 2 in ") || !strings.Contains(screen, "503") || !strings.Contains(screen, "b.tty-retry.test") {
		t.Errorf("retry line on the terminal:\n%s", screen)
	}
	n.ok("job", "cancel", job)
	hold.free()
	look("EXIT= on the screen", func(s string) bool { return strings.Contains(s, "EXIT=") })
	if !strings.Contains(screen, fmt.Sprintf("EXIT=%d", exitJobError)) || !strings.Contains(screen, "cancelled") {
		t.Errorf("screen after the cancel:\n%s", screen)
	}
}
