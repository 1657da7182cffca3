package pgcluster

import (
	"errors"
	"syscall"
)

// procState is what a PID in postmaster.pid turned out to be.
type procState int

const (
	stateGone    procState = iota // no such process
	stateOther                    // a live process, but not this cluster's server
	stateRunning                  // this cluster's server
)

// killState probes pid with signal 0: EPERM means it exists under another user.
func killState(pid int) procState {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return stateGone
	}
	return stateRunning
}
