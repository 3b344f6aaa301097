// Package proc runs certfleet as a real process for tests and benchmarks:
// it builds the binary once (cached by the content of the source), starts
// `certfleet serve` on a port the kernel picks, learns the address from the
// line the node prints once it serves, and can kill it with SIGKILL and start
// it again on the same data and address.
//
// It is the one harness shared by the end-to-end tests (internal/e2e), the
// command-line tests (cmd/certfleet) and the bench commands (bench/...). It
// knows nothing of the API: callers add their own flags, environment and
// clients. It is not for production use.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ReadyPrefix starts the line `certfleet serve` prints on stderr once it
// accepts connections; the rest of the line is the bound address
// (cmd/certfleet/serve.go prints it).
const ReadyPrefix = "certfleet: listening on "

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of a certfleet binary built from the module's
// current source. It builds at most once per process, and not at all when a
// binary of the same source is already in the cache under os.TempDir (so the
// test processes of several packages share one build). Safe for concurrent
// use.
func Binary() (string, error) {
	buildOnce.Do(func() { buildPath, buildErr = build() })
	return buildPath, buildErr
}

func build() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("proc: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("proc: not inside the certfleet module")
	}
	root := filepath.Dir(gomod)
	sum, err := sourceHash(root)
	if err != nil {
		return "", err
	}
	cache := filepath.Join(os.TempDir(), "certfleet-proc")
	dir := filepath.Join(cache, sum)
	bin := filepath.Join(dir, "certfleet")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("proc: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "certfleet-build-")
	if err != nil {
		return "", fmt.Errorf("proc: %w", err)
	}
	tmp.Close()
	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/certfleet")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("proc: build certfleet: %w\n%s", err, out)
	}
	// Another process may have built the same source meanwhile: the rename
	// replaces an identical binary atomically.
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", fmt.Errorf("proc: %w", err)
	}
	removeStale(cache, sum)
	return bin, nil
}

// sourceHash digests what goes into the binary: every file of the module
// but tests, Markdown and dot-directories, and the Go toolchain's version.
func sourceHash(root string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), os.Getenv("GOFLAGS"), os.Getenv("CGO_ENABLED"))
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, ".md") || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("proc: hash the source: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// removeStale deletes cached builds of other sources not used for a day.
func removeStale(cache, keep string) {
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.Name() != keep && time.Since(info.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(cache, e.Name()))
		}
	}
}

// Options describe a `certfleet serve` process.
type Options struct {
	// Binary is the certfleet binary. Defaults to Binary().
	Binary string
	// Addr is the address to listen on. Defaults to 127.0.0.1:0 (a port the
	// kernel picks); a restart reuses the port first bound.
	Addr string
	// Args are the flags after `serve` (other than --addr).
	Args []string
	// Env is the whole environment of the process. Defaults to os.Environ().
	Env []string
	// Output, if set, receives a copy of everything the process prints.
	Output io.Writer
	// StartTimeout bounds the wait for the ready line. Defaults to 30s.
	StartTimeout time.Duration
}

// Node is a running `certfleet serve`. Its methods are safe for concurrent
// use.
type Node struct {
	opts Options

	mu       sync.Mutex
	addr     string
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	logs     bytes.Buffer  // everything printed, across restarts
	runStart int           // where the current process's output starts in logs
	changed  chan struct{} // closed and replaced on each line printed
	stopped  bool
}

// Start starts a node and returns once it serves (its ready line is out),
// or with an error carrying its output if it exits or does not get ready
// within StartTimeout or before ctx ends.
func Start(ctx context.Context, o Options) (*Node, error) {
	if o.Binary == "" {
		bin, err := Binary()
		if err != nil {
			return nil, err
		}
		o.Binary = bin
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	n := &Node{opts: o, addr: o.Addr, changed: make(chan struct{})}
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	n.mu.Lock()
	args := append([]string{"serve", "--addr", n.addr}, n.opts.Args...)
	cmd := exec.Command(n.opts.Binary, args...)
	cmd.Env = n.opts.Env
	// Should a child of the node (a reload command) keep its output open,
	// Wait still returns this long after the node exits.
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("proc: start certfleet: %w", err)
	}
	done := make(chan struct{})
	ready := make(chan string, 1)
	n.cmd, n.done, n.stopped = cmd, done, false
	n.runStart = n.logs.Len()
	n.mu.Unlock()

	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.logs.WriteString(line + "\n")
			close(n.changed)
			n.changed = make(chan struct{})
			n.mu.Unlock()
			if n.opts.Output != nil {
				io.WriteString(n.opts.Output, line+"\n")
			}
			if addr, ok := strings.CutPrefix(line, ReadyPrefix); ok {
				select {
				case ready <- strings.TrimSpace(addr):
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		<-scanned
		close(done)
	}()

	timeout := time.NewTimer(n.opts.StartTimeout)
	defer timeout.Stop()
	var err error
	select {
	case addr := <-ready:
		n.mu.Lock()
		n.addr = addr
		n.mu.Unlock()
		return nil
	case <-done:
		n.mu.Lock()
		n.stopped = true
		n.mu.Unlock()
		return fmt.Errorf("proc: certfleet exited during start (%v):\n%s", cmd.ProcessState, n.tail(40))
	case <-timeout.C:
		err = fmt.Errorf("proc: certfleet printed no ready line within %v:\n%s", n.opts.StartTimeout, n.tail(40))
	case <-ctx.Done():
		err = fmt.Errorf("proc: start certfleet: %w", ctx.Err())
	}
	cmd.Process.Kill()
	<-done
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	return err
}

// Addr is the address the node listens on (host:port).
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// Pid is the current process's ID.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Pid
}

// Done is closed when the current process has exited.
func (n *Node) Done() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

// Signal sends sig to the current process (SIGSTOP and SIGCONT freeze and
// thaw it).
func (n *Node) Signal(sig os.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Signal(sig)
}

// Logs returns everything the node printed, across restarts.
func (n *Node) Logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

// tail returns the current process's last lines.
func (n *Node) tail(lines int) string {
	n.mu.Lock()
	out := n.logs.String()[n.runStart:]
	n.mu.Unlock()
	l := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// WaitOutput waits until the current process has printed s (a line or part
// of one), or ctx ends, or the process exits.
func (n *Node) WaitOutput(ctx context.Context, s string) error {
	return n.WaitOutputN(ctx, s, 1)
}

// OutputCount returns how many times the current process has printed s.
func (n *Node) OutputCount(s string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Count(n.logs.String()[n.runStart:], s)
}

// WaitOutputN waits until the current process has printed s at least count
// times (a loop's log line: its passes), or ctx ends, or the process exits.
func (n *Node) WaitOutputN(ctx context.Context, s string, count int) error {
	for {
		n.mu.Lock()
		changed, done := n.changed, n.done
		n.mu.Unlock()
		if n.OutputCount(s) >= count {
			return nil
		}
		select {
		case <-changed:
		case <-done:
			if n.OutputCount(s) >= count {
				return nil
			}
			return fmt.Errorf("proc: certfleet exited having printed %q %d times, want %d", s, n.OutputCount(s), count)
		case <-ctx.Done():
			return fmt.Errorf("proc: waiting for %q ×%d (have %d): %w", s, count, n.OutputCount(s), ctx.Err())
		}
	}
}

// Kill sends SIGKILL (a crash: no lease handed back, nothing flushed) and
// waits for the process to die.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.stopped = true
	n.mu.Unlock()
	cmd.Process.Signal(syscall.SIGCONT) // a frozen process dies too, but let it be seen to
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop sends SIGTERM (and SIGCONT, should it be frozen) and waits up to
// timeout for a clean exit, then kills it. It returns the exit error, nil for
// a clean exit. Stopping a stopped node does nothing.
func (n *Node) Stop(timeout time.Duration) error {
	n.mu.Lock()
	cmd, done, stopped := n.cmd, n.done, n.stopped
	n.stopped = true
	n.mu.Unlock()
	if stopped {
		<-done
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Process.Signal(syscall.SIGCONT)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("proc: certfleet did not stop within %v after SIGTERM; killed", timeout)
	}
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("proc: certfleet exited: %v", cmd.ProcessState)
	}
	return nil
}

// Start starts the node again, with the same options, data and address,
// after Kill or Stop.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	stopped, done := n.stopped, n.done
	n.mu.Unlock()
	if !stopped {
		return errors.New("proc: the node is running")
	}
	<-done
	return n.start(ctx)
}

// Restart kills the node with SIGKILL and starts it again on the same data
// and address: a crash and a supervisor's restart.
func (n *Node) Restart(ctx context.Context) error {
	n.Kill()
	return n.start(ctx)
}
