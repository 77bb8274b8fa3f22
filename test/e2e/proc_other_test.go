//go:build !linux

package e2e

import "syscall"

// childProcAttr: only Linux can tie a child's life to its parent's; the
// reaper stops servers everywhere else.
func childProcAttr() *syscall.SysProcAttr { return nil }
