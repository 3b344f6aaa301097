// Package moto runs moto_server, the AWS emulator, on a free loopback port
// for tests (internal/deploy/aws and the end-to-end tests). It is for tests
// only, and it is not a fake: moto is a real emulator of the AWS APIs.
package moto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testutil"
)

// Version is the moto version .ci/run installs.
const Version = "5.2.1"

// Server is one moto_server process.
type Server struct {
	URL string
	cmd *exec.Cmd
}

// Start starts a moto_server for t, stopped when t ends. It skips under
// -short, and when moto_server is missing (failing in CI).
func Start(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("runs moto_server; skipped under -short")
	}
	s, err := Launch()
	if errors.Is(err, exec.ErrNotFound) {
		testutil.Missing(t, "moto_server (the AWS emulator)", `pip install "moto[server]==`+Version+`" (.ci/run installs it)`)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

var addrRE = regexp.MustCompile(`Running on (http://127\.0\.0\.1:\d+)`)

// Launch starts a moto_server and waits for its address. The caller stops
// it with Stop. An error wrapping exec.ErrNotFound means it is not installed.
func Launch() (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	// Without the default AMIs moto's EC2 (the default subnets load
	// balancers need) starts in a fraction of the time.
	cmd.Env = append(os.Environ(), "MOTO_EC2_LOAD_DEFAULT_AMIS=false")
	cmd.Stdout = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	s := &Server{cmd: cmd}
	select {
	case u, ok := <-found:
		if !ok {
			s.Stop()
			return nil, fmt.Errorf("moto_server exited without printing its address")
		}
		s.URL = u
		return s, nil
	case <-time.After(2 * time.Minute):
		s.Stop()
		return nil, fmt.Errorf("moto_server printed no address within 2 minutes")
	}
}

// Stop kills the process (and its group) and waits for it.
func (s *Server) Stop() {
	if s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
}
