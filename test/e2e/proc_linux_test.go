//go:build linux

package e2e

import "syscall"

// childProcAttr makes the kernel kill a server when this test process dies
// (a crash, a timeout panic), so no server outlives the run.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
