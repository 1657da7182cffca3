//go:build !linux

package pgcluster

import "syscall"

// setParentDeathSignal does nothing here: only Linux has PR_SET_PDEATHSIG.
// A server that outlives Candor is stopped by the next Start.
func setParentDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) {}

// serverState cannot look inside another process here: any live PID counts
// as the server, and pg_ctl stop sorts it out.
func serverState(pid int, dataDir string) procState {
	return killState(pid)
}
