//go:build !linux

package kubetest

import "os/exec"

// dieWithParent: only Linux can tie a child's life to its parent's; there,
// Stop (from TestMain) is what ends the processes.
func dieWithParent(*exec.Cmd) {}
