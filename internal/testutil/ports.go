package testutil

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports for helper servers that must be told their port before they start
// (pebble, nginx, sshd, etcd, --acme-http-addr) come from below the kernel's
// ephemeral range. A port the kernel handed out and took back (listen on :0,
// close) is free only until any process on the machine opens an outgoing
// connection: the kernel picks those source ports from the same range, and
// with a dozen test binaries and databases busy, one landed on a port a test
// was about to give its server ("bind: address already in use"). Below the
// range nothing is assigned automatically, so a port that binds now stays
// free until another test picks it at random, and a process never gets the
// same port twice.
var ports struct {
	sync.Mutex
	given map[int]bool
}

// PickPort returns a loopback TCP port below the ephemeral range that
// nothing listens on now and that this process has not returned before.
func PickPort() (int, error) {
	lo := ephemeralLow()
	const first = 10000
	if lo <= first+1000 {
		return kernelPort() // an unusual range: fall back on the kernel's pick
	}
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for range 200 {
		p := first + rand.IntN(lo-first)
		if ports.given[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // taken
		}
		l.Close()
		ports.given[p] = true
		return p, nil
	}
	return 0, errors.New("testutil: no free loopback port below the ephemeral range after 200 tries")
}

// FreePort is PickPort for a test: it fails the test when no port is free.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FreeAddr is FreePort as a 127.0.0.1:port address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// elsewhere the IANA range's 49152).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 49152
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 49152
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 49152
	}
	return lo
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testutil: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
