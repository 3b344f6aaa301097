//go:build !unix

package local

import "os/exec"

// killProcessGroup is a no-op where process groups are not available; the
// command alone is killed when its context ends.
func killProcessGroup(*exec.Cmd) {}
