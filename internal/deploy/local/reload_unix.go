//go:build unix

package local

import (
	"os/exec"
	"syscall"
)

// killProcessGroup runs cmd in its own process group and, when its context
// ends, kills the whole group, so a shell's children die with it.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
