// Package pgcluster runs a private PostgreSQL server from the server binaries
// installed on this machine, in a directory of its own, reachable only through
// a Unix socket inside that directory (no TCP).
//
// Layout of Options.Dir:
//
//	data/              the data directory (PGDATA), made by initdb on first Start
//	log/postgres.log   the server's log; Start quotes its tail when the server fails
//	run/               the socket directory, unless Dir is too long (see Options.Dir)
//	lock               flock(2)ed by the process that started the server
//
// The server runs as a child of this process with these protections:
//
//   - As root, initdb, pg_ctl and postgres run as the postgres OS user (or
//     nobody when there is no postgres user); the cluster directory is given to
//     that user and any parent directory it cannot traverse gets o+x.
//   - On Linux the server gets SIGINT (fast shutdown) when this process dies,
//     even by kill -9 (PR_SET_PDEATHSIG, from an OS thread that lives as long
//     as the server), so it does not outlive Candor.
//   - It runs in its own process group, so a Ctrl-C in the terminal reaches
//     Candor alone, which then shuts the server down after its own work.
//   - Start takes the lock file first: while a live process holds it, a second
//     Start on the same Dir fails instead of stopping the other's server. A
//     server left running without a holder is an orphan of a killed process
//     (or one still shutting down from its parent-death signal): Start stops it
//     with "pg_ctl stop -m fast" and starts its own. A postmaster.pid left by a
//     dead server, or naming a live process that is not this directory's
//     server (PIDs are reused, in containers especially), is removed.
//
// Measured on a 2-core VM with PostgreSQL 15 on ext4, as root (go test -v
// -run TestStartConnectRestart, serve's settings): the first Start, initdb
// included, 0.7 to 1.0 s (initdb alone about 0.5 s, the same with -N: its
// fsyncs cost nothing measurable on this disk); Stop 45 ms; a restart 50 ms.
// After kill -9 of the owner, the server was gone 30 ms later (parent-death
// signal) and the next Start took 50 ms; stopping a live orphan first, 150 ms.
package pgcluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Role and Database are the superuser initdb creates and the database Start
// creates for the application.
const (
	Role     = "candor"
	Database = "candor"
)

// port only names the socket file (.s.PGSQL.5432): there is no TCP listener
// and the socket directory is private to the cluster.
const port = 5432

// maxSocketPath is the longest path a Unix socket can have on Linux
// (sun_path is 108 bytes with the terminating NUL).
const maxSocketPath = 107

// logRotateSize is the size beyond which Start moves postgres.log to
// postgres.log.1, so the log of a long-lived cluster stays bounded.
const logRotateSize = 10 << 20

// Options configure Start.
type Options struct {
	// Dir is the cluster directory, created if missing. The socket lives in
	// Dir/run, unless that would make the socket path longer than the 107
	// bytes Unix allows: then it lives in /tmp/candor-pg-<hash of Dir>, a 0700
	// directory owned by the server's user.
	Dir string
	// Fast trades durability for speed, for tests: initdb -N, fsync=off,
	// full_page_writes=off, synchronous_commit=off. Never for serve: an OS
	// crash could corrupt the cluster.
	Fast bool
	// Logger receives what Start and Stop do; nil discards it.
	Logger *slog.Logger
	// BinDir holds pg_ctl, initdb and postgres; empty means look them up
	// (FindBinaries, or the version that made an existing data directory).
	BinDir string
	// Settings are extra server settings, passed as -c name=value.
	Settings map[string]string
}

// Cluster is a PostgreSQL server running from a data directory on this machine.
type Cluster struct {
	dir, dataDir, sockDir, logPath string
	binDir                         string
	version                        int
	as                             account
	log                            *slog.Logger

	lock    *os.File // flock held while this Cluster owns Dir
	logFile *os.File // the server's stdout and stderr
	proc    *os.Process
	exited  chan struct{} // closed when the server process has exited
	waitErr error         // its exit status; read after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// Start starts the cluster in opts.Dir, running initdb first if there is no
// data directory yet, and returns once the server accepts connections and the
// candor database exists. ctx bounds the start only, not the server's life:
// Stop ends that.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("pgcluster: Options.Dir is empty")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cluster directory %s: %w", opts.Dir, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "log", "postgres.log"),
		log:     log,
		exited:  make(chan struct{}),
	}
	if c.as, err = serverAccount(); err != nil {
		return nil, err
	}
	if err := c.prepareDirs(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.release()
		}
	}()
	if err := c.findBinaries(opts.BinDir); err != nil {
		return nil, err
	}
	initStart := time.Now()
	initialised, err := c.initdb(ctx, opts.Fast)
	if err != nil {
		return nil, err
	}
	if initialised {
		log.Info("created a PostgreSQL cluster", "dir", c.dataDir, "version", c.version, "took", time.Since(initStart).Round(time.Millisecond))
	}
	if err := c.removeStalePidFile(ctx); err != nil {
		return nil, err
	}
	startAt := time.Now()
	if err := c.startServer(ctx, opts); err != nil {
		return nil, err
	}
	if err := c.createDatabase(ctx); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	log.Info("PostgreSQL is up", "dir", c.dataDir, "socket_dir", c.sockDir, "pid", c.proc.Pid, "user", c.as.name, "took", time.Since(startAt).Round(time.Millisecond))
	ok = true
	return c, nil
}

// ConnString returns a keyword/value connection string for dbname as the
// candor superuser, e.g. "host=/srv/candor/postgres/run port=5432 user=candor
// dbname=candor sslmode=disable".
func (c *Cluster) ConnString(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		quoteConnValue(c.sockDir), port, Role, quoteConnValue(dbname))
}

// URL returns the same connection as ConnString in postgres:// form, for
// places that want a URL (DATABASE_URL of a child process).
func (c *Cluster) URL(dbname string) string {
	q := url.Values{"host": {c.sockDir}, "port": {strconv.Itoa(port)}, "user": {Role}, "sslmode": {"disable"}}
	// libpq (and pgx) URIs take %20 for a space, not the + of HTML forms;
	// Encode has written any real + as %2B.
	raw := strings.ReplaceAll(q.Encode(), "+", "%20")
	return (&url.URL{Scheme: "postgres", Path: "/" + dbname, RawQuery: raw}).String()
}

// SocketDir returns the directory holding the server's Unix socket.
func (c *Cluster) SocketDir() string { return c.sockDir }

// ErrInUse is returned (wrapped) by Start when another live process owns the
// cluster directory; connect to its server with ConnStringFor instead.
var ErrInUse = errors.New("cluster in use")

// ConnStringFor returns the connection string of the cluster in dir that
// another process started, for commands that run beside it (candor user add
// while candor serve runs).
func ConnStringFor(dir, dbname string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		quoteConnValue(socketDir(abs)), port, Role, quoteConnValue(dbname))
}

// socketDir is where the server of the cluster in dir puts its socket:
// dir/run, unless that path is too long for a Unix socket.
func socketDir(dir string) string {
	d := filepath.Join(dir, "run")
	if len(d)+len("/.s.PGSQL.5432") > maxSocketPath {
		sum := sha256.Sum256([]byte(dir))
		d = "/tmp/candor-pg-" + hex.EncodeToString(sum[:6])
	}
	return d
}

// LogPath returns the server's log file.
func (c *Cluster) LogPath() string { return c.logPath }

// Version returns the server's major version.
func (c *Cluster) Version() int { return c.version }

// Done is closed when the server process exits, whether through Stop or not:
// a server that dies under a running Candor shows up here.
func (c *Cluster) Done() <-chan struct{} { return c.exited }

// Stop shuts the server down (fast shutdown: sessions are ended, open
// transactions rolled back, a checkpoint written) and waits for it to exit. If
// ctx ends first, it falls back to an immediate shutdown, then to SIGKILL.
// Calls after the first return the first one's result.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		c.stopErr = c.stop(ctx)
		c.release()
	})
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	select {
	case <-c.exited:
		return fmt.Errorf("the PostgreSQL server had already exited (%v)%s", c.waitErr, c.logTail(0))
	default:
	}
	start := time.Now()
	if err := c.proc.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop the PostgreSQL server: %w", err)
	}
	select {
	case <-c.exited:
		c.log.Info("PostgreSQL stopped", "dir", c.dataDir, "took", time.Since(start).Round(time.Millisecond))
		return nil
	case <-ctx.Done():
	}
	c.log.Warn("PostgreSQL did not stop in time; immediate shutdown", "dir", c.dataDir)
	_ = c.proc.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		_ = c.proc.Kill()
		<-c.exited
	}
	return fmt.Errorf("stop the PostgreSQL server: no fast shutdown in time (%w); shut down immediately, the next start will recover", ctx.Err())
}

// release closes what this Cluster holds open; the lock goes last.
func (c *Cluster) release() {
	if c.logFile != nil {
		c.logFile.Close()
	}
	if c.lock != nil {
		c.lock.Close() // releases the flock
	}
}

// account is the OS user the server runs as.
type account struct {
	name     string
	uid, gid uint32
	cred     *syscall.Credential // nil: run as this process's user
}

// serverAccount picks the user to run the server as: PostgreSQL refuses to
// run as root, so root hands it to postgres (or nobody).
func serverAccount() (account, error) {
	if os.Geteuid() != 0 {
		name := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		return account{name: name, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		// Groups is nil: the child drops root's supplementary groups.
		cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		return account{name: name, uid: uint32(uid), gid: uint32(gid), cred: cred}, nil
	}
	return account{}, errors.New("running as root, PostgreSQL needs an unprivileged user, and neither postgres nor nobody exists: create one (useradd --system postgres)")
}

// prepareDirs creates Dir, log/ and the socket directory, gives them to the
// server's user, makes Dir reachable by that user, and takes the lock.
func (c *Cluster) prepareDirs() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("cannot create the cluster directory %s: %w", c.dir, pathErr(err))
	}
	probe, err := os.CreateTemp(c.dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("the cluster directory %s is not writable: %w", c.dir, pathErr(err))
	}
	probe.Close()
	os.Remove(probe.Name())

	// Lock before touching anything else in Dir: another live Candor may own it.
	lock, err := os.OpenFile(filepath.Join(c.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the cluster lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("the PostgreSQL cluster in %s is in use by another running process: %w", c.dir, ErrInUse)
		}
		return fmt.Errorf("lock the cluster directory %s: %w", c.dir, err)
	}
	c.lock = lock
	// Record who holds it, for a person looking at a busy directory.
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)

	if err := c.giveToServer(c.dir, 0o700); err != nil {
		return err
	}
	if c.as.cred != nil {
		if err := c.makeTraversable(c.dir); err != nil {
			return err
		}
	}
	if err := c.mkdirForServer(filepath.Dir(c.logPath)); err != nil {
		return err
	}
	c.sockDir = socketDir(c.dir)
	if c.sockDir != filepath.Join(c.dir, "run") {
		c.log.Info("cluster directory too long for a Unix socket path; the socket lives elsewhere", "dir", c.dir, "socket_dir", c.sockDir)
	}
	return c.mkdirForServer(c.sockDir)
}

// mkdirForServer creates dir (0700) or checks an existing one, and gives it
// to the server's user. An existing directory must be a real directory that
// belongs to us or that user: the socket directory may sit in /tmp, where
// anyone could have made it first.
func (c *Cluster) mkdirForServer(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cannot create %s: %w", dir, pathErr(err))
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, pathErr(err))
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || st == nil || (st.Uid != c.as.uid && int(st.Uid) != os.Geteuid()) {
		return fmt.Errorf("%s exists but is not a directory owned by %s: remove it", dir, c.as.name)
	}
	return c.giveToServer(dir, 0o700)
}

// giveToServer chowns path to the server's user (as root) and sets its mode.
func (c *Cluster) giveToServer(path string, mode fs.FileMode) error {
	if c.as.cred != nil {
		if err := os.Lchown(path, int(c.as.uid), int(c.as.gid)); err != nil {
			return fmt.Errorf("cannot give %s to the %s user: %w", path, c.as.name, pathErr(err))
		}
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == mode {
		return nil // nothing to change: chmod would fail on a directory we do not own
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("cannot set the permissions of %s: %w", path, pathErr(err))
	}
	return nil
}

// makeTraversable adds o+x to each parent of dir that the server's user could
// not pass through otherwise, e.g. /root (0700) or the 0700 directories of
// t.TempDir and os.MkdirTemp. It grants passage only, not listing.
func (c *Cluster) makeTraversable(dir string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("cannot reach the cluster directory %s: %w", dir, pathErr(err))
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		var can bool
		switch {
		case st.Uid == c.as.uid:
			can = mode&0o100 != 0
		case st.Gid == c.as.gid:
			can = mode&0o010 != 0
		default:
			can = mode&0o001 != 0
		}
		if !can {
			if err := os.Chmod(p, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)|0o001); err != nil {
				return fmt.Errorf("the %s user cannot reach %s, and adding o+x to %s failed: %w", c.as.name, dir, p, pathErr(err))
			}
			c.log.Info("made a parent of the cluster directory traversable by the server's user", "path", p, "user", c.as.name)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (c *Cluster) findBinaries(binDir string) error {
	want, err := dataVersion(c.dataDir)
	if err != nil {
		return fmt.Errorf("read the data directory's version: %w", err)
	}
	if binDir != "" {
		v, err := serverVersion(binDir)
		if err != nil {
			return fmt.Errorf("PostgreSQL binaries in %s: %w", binDir, err)
		}
		if want != 0 && v != want {
			return fmt.Errorf("the data directory %s was created by PostgreSQL %d, but %s holds PostgreSQL %d", c.dataDir, want, binDir, v)
		}
		c.binDir, c.version = binDir, v
		return nil
	}
	c.binDir, c.version, err = findBinaries(os.Getenv("PATH"), libGlob, want)
	return err
}

// initdb creates the data directory if it does not exist yet. It runs initdb
// into data.initdb and renames it to data on success, so that an initdb cut
// short (kill -9) leaves nothing that looks like a cluster.
func (c *Cluster) initdb(ctx context.Context, fast bool) (bool, error) {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		return false, c.fixOwnership()
	}
	if entries, err := os.ReadDir(c.dataDir); err == nil && len(entries) > 0 {
		return false, fmt.Errorf("%s is not empty but holds no PostgreSQL cluster (no PG_VERSION): move it away", c.dataDir)
	}
	tmp := c.dataDir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return false, fmt.Errorf("remove an interrupted initdb: %w", err)
	}
	args := []string{
		"-D", tmp,
		"-U", Role,
		"--auth-local=trust", // the socket directory is 0700: only the server's user (and root) reach it
		"--auth-host=reject", // there is no TCP listener either
		"-E", "UTF8",
		"--locale=C",
	}
	if fast {
		args = append(args, "-N") // no fsync: 0.5 s either way here, but tests create many clusters
	}
	cmd := c.command(ctx, "initdb", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("initdb in %s failed (%v): %s", tmp, err, lastLines(out.Bytes(), 15))
	}
	if err := os.Rename(tmp, c.dataDir); err != nil {
		return false, fmt.Errorf("move the new cluster into place: %w", err)
	}
	if !fast {
		if d, err := os.Open(c.dir); err == nil {
			_ = d.Sync() // make the rename durable
			d.Close()
		}
	}
	return true, nil
}

// fixOwnership gives an existing data directory to the server's user if it
// belongs to someone else, e.g. after switching between running Candor as root
// and as an ordinary user; PostgreSQL refuses a data directory it does not own.
func (c *Cluster) fixOwnership() error {
	if c.as.cred == nil {
		return nil
	}
	fi, err := os.Stat(c.dataDir)
	if err != nil {
		return err
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid == c.as.uid {
		return nil
	}
	c.log.Warn("giving the data directory to the server's user", "dir", c.dataDir, "user", c.as.name)
	return filepath.WalkDir(c.dataDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(c.as.uid), int(c.as.gid))
	})
}

// removeStalePidFile deals with a postmaster.pid left by an earlier process.
// The lock is ours, so no live Candor owns this cluster: a server still
// running on it is an orphan and is stopped; a pid file naming a dead process,
// or a live process that is not this directory's server, is removed.
func (c *Cluster) removeStalePidFile(ctx context.Context) error {
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	pid, err := readPid(pidFile)
	if err != nil {
		return err
	}
	if pid == 0 {
		return nil
	}
	switch serverState(pid, c.dataDir) {
	case stateGone:
		c.log.Info("removing a stale postmaster.pid: its server is gone", "pid", pid)
		return removeIfExists(pidFile)
	case stateOther:
		c.log.Info("removing a stale postmaster.pid: its PID now belongs to another process", "pid", pid)
		return removeIfExists(pidFile)
	}
	c.log.Warn("stopping a PostgreSQL server left running by an earlier process", "pid", pid, "dir", c.dataDir)
	out, err := c.command(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "fast", "-w", "-t", "60").CombinedOutput()
	if err != nil {
		c.log.Warn("fast shutdown of the orphaned server failed; immediate shutdown", "err", err, "output", strings.TrimSpace(string(out)))
		out, err = c.command(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "immediate", "-w", "-t", "30").CombinedOutput()
		if err != nil && serverState(pid, c.dataDir) == stateRunning {
			return fmt.Errorf("cannot stop the PostgreSQL server (pid %d) left running on %s: %s", pid, c.dataDir, lastLines(out, 5))
		}
	}
	return nil
}

// readPid returns the PID on the first line of postmaster.pid, 0 if there is
// no such file.
func readPid(pidFile string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", pidFile, err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, nil // an empty or torn file: the server died while writing it
	}
	return pid, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// startServer starts postgres directly (not through pg_ctl, which would
// detach it) so that it can carry the parent-death signal, then waits until
// it reports itself ready in postmaster.pid.
func (c *Cluster) startServer(ctx context.Context, opts Options) error {
	if fi, err := os.Stat(c.logPath); err == nil && fi.Size() > logRotateSize {
		_ = os.Rename(c.logPath, c.logPath+".1")
	}
	lf, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the server log: %w", err)
	}
	c.logFile = lf
	if err := c.giveToServer(c.logPath, 0o600); err != nil {
		return err
	}
	logStart, _ := lf.Seek(0, io.SeekEnd)

	settings := map[string]string{
		"listen_addresses":        "",
		"unix_socket_directories": c.sockDir,
		"unix_socket_permissions": "0700",
	}
	if opts.Fast {
		settings["fsync"] = "off"
		settings["full_page_writes"] = "off"
		settings["synchronous_commit"] = "off"
	}
	maps.Copy(settings, opts.Settings)
	args := []string{"-D", c.dataDir, "-p", strconv.Itoa(port)}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		args = append(args, "-c", k+"="+settings[k])
	}
	// Not CommandContext: ctx bounds the start, not the server's life.
	cmd := c.command(context.Background(), "postgres", args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr.Setpgid = true
	setParentDeathSignal(cmd.SysProcAttr, syscall.SIGINT)

	// The parent-death signal fires when the thread that forked the child
	// exits, not the process. Fork from a locked thread that stays blocked in
	// Wait for as long as the server runs; returning while locked then ends
	// that thread rather than handing it back to the scheduler.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		c.proc = cmd.Process
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}

	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(pidFile, c.proc.Pid) {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("the PostgreSQL server failed to start (%v)%s", c.waitErr, c.logTail(logStart))
		case <-ctx.Done():
			_ = c.proc.Signal(syscall.SIGQUIT)
			<-c.exited
			return fmt.Errorf("the PostgreSQL server did not become ready: %w%s", ctx.Err(), c.logTail(logStart))
		case <-tick.C:
		}
	}
}

// ready reports whether postmaster.pid is pid's and says "ready": its 8th
// line is the postmaster's status since PostgreSQL 10, which is what pg_ctl -w
// waits for too.
func ready(pidFile string, pid int) bool {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(pid) && strings.TrimSpace(lines[7]) == "ready"
}

// createDatabase creates the application's database on first start.
func (c *Cluster) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the new PostgreSQL server: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `select exists (select from pg_database where datname = $1)`, Database).Scan(&exists); err != nil {
		return fmt.Errorf("look for the %s database: %w", Database, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "create database "+pgx.Identifier{Database}.Sanitize()); err != nil {
		return fmt.Errorf("create the %s database: %w", Database, err)
	}
	return nil
}

// command prepares one of the server binaries to run as the server's user,
// in the cluster directory (root's working directory may be closed to it),
// without the caller's PG* variables (PGDATA, PGPORT… would change defaults).
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = c.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.as.cred}
	return cmd
}

// logTail returns the end of what the server logged since offset, as lines
// to append to an error.
func (c *Cluster) logTail(offset int64) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 4096
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > max {
		offset = fi.Size() - max
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, max))
	tail := lastLines(b, 15)
	if tail == "" {
		return ""
	}
	return "; end of " + c.logPath + ":\n" + tail
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// quoteConnValue quotes a keyword/value connection string value if needed.
func quoteConnValue(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// pathErr drops the path from an *fs.PathError: our messages name it already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
