package testutil

import (
	"testing"
	"time"
)

// WaitFor checks cond every 50 ms until it holds, and fails the test if it
// does not within timeout or returns an error. It is for state that only a
// real process outside the test can change and that announces nothing (a file
// on disk, a row another process writes); prefer waiting for an event.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}
