package pgcluster

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// setParentDeathSignal has the kernel send sig to the child when the thread
// that started it exits. Go applies it after the credential change, which
// would otherwise clear it.
func setParentDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) {
	attr.Pdeathsig = sig
}

// serverState tells whether pid is a live postmaster serving dataDir: the
// postmaster's working directory is its data directory, which tells it apart
// from an unrelated process that got the same PID after a restart.
func serverState(pid int, dataDir string) procState {
	proc := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(proc + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		return stateGone
	}
	if err != nil {
		return killState(pid)
	}
	// "pid (comm) S ...": the state follows the last ')' (comm may hold one).
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		if s := stat[i+2]; s == 'Z' || s == 'X' {
			return stateGone // a zombie nobody reaped holds nothing of the cluster
		}
	}
	cwd, err := os.Readlink(proc + "/cwd")
	if errors.Is(err, fs.ErrNotExist) {
		return stateGone
	}
	if err != nil {
		// Another user's process: our server runs as our user, or as root we
		// could have read it.
		return stateOther
	}
	if want, err := filepath.EvalSymlinks(dataDir); (err == nil && cwd == want) || cwd == dataDir {
		return stateRunning
	}
	return stateOther
}
