package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Timings seen on the 2-core VM this was written on (PostgreSQL 15, ext4, as
// root, go test -v): TestStartConnectRestart logs a first Start with initdb of
// 0.7 to 1.0 s, Stop 45 ms, restart 50 ms; TestOrphanAfterKill9 a server gone
// 30 ms after its parent's kill -9 and a next Start of 50 ms;
// TestOrphanStillRunning 150 ms to stop a live orphan and start.

func start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tWriter{t}, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func connect(t *testing.T, c *Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.ConnString(Database))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func stop(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestStartConnectRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()

	t0 := time.Now()
	c := start(t, Options{Dir: dir}) // not Fast: the settings serve uses
	first := time.Since(t0)

	conn := connect(t, c)
	var who, db string
	if err := conn.QueryRow(ctx, `select current_user, current_database()`).Scan(&who, &db); err != nil {
		t.Fatal(err)
	}
	if who != Role || db != Database {
		t.Errorf("connected as %s to %s, want %s to %s", who, db, Role, Database)
	}
	if _, err := conn.Exec(ctx, `create table kept (v text); insert into kept values ('across restarts')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	t0 = time.Now()
	stop(t, c)
	stopTook := time.Since(t0)
	select {
	case <-c.Done():
	default:
		t.Error("Done is still open after Stop")
	}

	t0 = time.Now()
	c = start(t, Options{Dir: dir})
	restart := time.Since(t0)
	var v string
	if err := connect(t, c).QueryRow(ctx, `select v from kept`).Scan(&v); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if v != "across restarts" {
		t.Errorf("after restart got %q", v)
	}
	t.Logf("PostgreSQL %d: first start (initdb included) %v, stop %v, restart %v",
		c.Version(), first.Round(time.Millisecond), stopTook.Round(time.Millisecond), restart.Round(time.Millisecond))
}

func TestConnStringAndURL(t *testing.T) {
	t.Parallel()
	c := start(t, Options{Dir: filepath.Join(t.TempDir(), "with space"), Fast: true})
	for _, s := range []string{c.ConnString("candor"), c.URL("candor")} {
		conn, err := pgx.Connect(context.Background(), s)
		if err != nil {
			t.Errorf("connect with %q: %v", s, err)
			continue
		}
		conn.Close(context.Background())
	}
	if !strings.HasPrefix(c.ConnString("x"), "host='"+c.SocketDir()+"' port=5432 user=candor dbname=x") {
		t.Errorf("ConnString = %q", c.ConnString("x"))
	}
}

func TestRunsAsPostgresWhenRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	t.Parallel()
	top := t.TempDir() // 0700, owned by root: the server's user cannot pass
	c := start(t, Options{Dir: filepath.Join(top, "a", "cluster"), Fast: true})

	want := serverUser(t)
	if uid := procUID(t, c.proc.Pid); uid != want {
		t.Errorf("postgres runs as uid %d, want %d", uid, want)
	}
	fi, err := os.Stat(top)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o001 == 0 {
		t.Errorf("%s is %v: want o+x so the server's user can reach the cluster", top, fi.Mode())
	}
	if st := statOf(t, c.dataDir); st.Uid != uint32(want) {
		t.Errorf("data directory owned by %d, want %d", st.Uid, want)
	}
}

func TestLongDirPutsSocketInTmp(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	c := start(t, Options{Dir: dir, Fast: true})
	t.Cleanup(func() { os.RemoveAll(c.SocketDir()) })
	if !strings.HasPrefix(c.SocketDir(), "/tmp/candor-pg-") {
		t.Errorf("socket dir %s, want one under /tmp", c.SocketDir())
	}
	connect(t, c)
	stop(t, c)
	// The same Dir gets the same socket directory.
	c2 := start(t, Options{Dir: dir, Fast: true})
	if c2.SocketDir() != c.SocketDir() {
		t.Errorf("socket dir changed from %s to %s", c.SocketDir(), c2.SocketDir())
	}
}

func TestStalePidFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := start(t, Options{Dir: dir, Fast: true})
	stop(t, c)
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")

	// A live process that is not the server (a reused PID after a reboot or
	// container restart): the server itself would refuse to start.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	// A dead one.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}

	for name, pid := range map[string]int{"live other process": sleeper.Process.Pid, "dead process": dead.Process.Pid} {
		content := fmt.Sprintf("%d\n%s\n1700000000\n5432\n%s\n\n  5432001    123\nready   \n", pid, c.dataDir, c.sockDir)
		if err := os.WriteFile(pidFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		c := start(t, Options{Dir: dir, Fast: true})
		connect(t, c)
		stop(t, c)
		t.Logf("%s: started", name)
	}
}

func TestSecondStartOnSameDirFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start(t, Options{Dir: dir, Fast: true})
	_, err := Start(context.Background(), Options{Dir: dir, Fast: true})
	if err == nil || !strings.Contains(err.Error(), "in use by another running process") {
		t.Fatalf("second Start: got %v, want an in-use error", err)
	}
}

// TestOrphanAfterKill9 kills -9 a process that started a cluster, then starts
// it again: the first server either died with its parent (parent-death
// signal) or is stopped as an orphan.
func TestOrphanAfterKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	helper.Env = append(os.Environ(), "PGCLUSTER_HELPER=hold", "PGCLUSTER_DIR="+dir)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = tWriter{t}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper: %v", err)
	}
	oldPid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()

	// The parent-death signal shuts the server down by itself.
	t0 := time.Now()
	for serverState(oldPid, filepath.Join(dir, "data")) == stateRunning {
		if time.Since(t0) > 10*time.Second {
			t.Errorf("the server (pid %d) outlived its parent by 10 s", oldPid)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the server exited %v after its parent was killed", time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	c := start(t, Options{Dir: dir, Fast: true})
	t.Logf("started %v after kill -9 of the previous owner", time.Since(t0).Round(time.Millisecond))
	var v string
	if err := connect(t, c).QueryRow(context.Background(), `select v from kept`).Scan(&v); err != nil || v != "before kill" {
		t.Errorf("data written before kill -9: %q, %v", v, err)
	}
	if s := serverState(oldPid, c.dataDir); s == stateRunning {
		t.Errorf("the old server (pid %d) still runs", oldPid)
	}
}

// TestOrphanStillRunning leaves a server running with no owner (as if the
// parent-death signal had not reached it) and starts the cluster again.
func TestOrphanStillRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := start(t, Options{Dir: dir, Fast: true})
	stop(t, c)

	// pg_ctl start detaches the server, like an orphan.
	out, err := c.command(context.Background(), "pg_ctl", "start", "-D", c.dataDir, "-w", "-l", c.logPath,
		"-o", fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off", c.sockDir)).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	orphan, err := readPid(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil || orphan == 0 {
		t.Fatalf("orphan pid: %d, %v", orphan, err)
	}
	if s := serverState(orphan, c.dataDir); s != stateRunning {
		t.Fatalf("orphan state %v, want running", s)
	}

	t0 := time.Now()
	c2 := start(t, Options{Dir: dir, Fast: true})
	t.Logf("stopped the orphan and started in %v", time.Since(t0).Round(time.Millisecond))
	if c2.proc.Pid == orphan {
		t.Fatal("Start reused the orphan instead of starting its own server")
	}
	if s := serverState(orphan, c.dataDir); s == stateRunning {
		t.Errorf("orphan (pid %d) still runs", orphan)
	}
	connect(t, c2)
}

func TestFailedStartQuotesTheLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Start(context.Background(), Options{Dir: dir, Fast: true, Settings: map[string]string{"shared_buffers": "lots"}})
	if err == nil {
		t.Fatal("Start with a bad setting succeeded")
	}
	t.Log(err)
	for _, want := range []string{"failed to start", "postgres.log", `invalid value for parameter "shared_buffers"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// The failure released the directory.
	start(t, Options{Dir: dir, Fast: true})
}

func TestFindBinaries(t *testing.T) {
	dir, v, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %d in %s", v, dir)
	if v < minVersion {
		t.Errorf("version %d < %d", v, minVersion)
	}

	_, _, err = findBinaries("", "/nonexistent/*/bin", 0)
	want := "no PostgreSQL server binaries found (looked in PATH and /nonexistent/*/bin): install the Debian package postgresql (apt-get install postgresql)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, _, err = findBinaries(os.Getenv("PATH"), libGlob, 9)
	if err == nil || !strings.Contains(err.Error(), "no PostgreSQL 9 server binaries found") {
		t.Errorf("want 9: got %v", err)
	}
}

func TestDirNotUsable(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Dir: filepath.Join(file, "cluster")})
	if err == nil || err.Error() != "cannot create the cluster directory "+file+"/cluster: not a directory" {
		t.Errorf("got %v", err)
	}
}

// TestNotRoot runs the helper as the postgres user: the server runs as the
// current user, and an unwritable directory is reported as such.
func TestNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to become another user")
	}
	t.Parallel()
	uid := serverUser(t)
	gid := int(statOf(t, "/").Gid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		gid, _ = strconv.Atoi(u.Gid)
	}
	top := t.TempDir()
	os.Chmod(filepath.Dir(top), 0o755) // both made 0700 by t.TempDir
	os.Chmod(top, 0o755)
	// The test binary lives in a 0700 directory of root's: copy it out.
	bin := filepath.Join(top, "pgcluster.test")
	copyFile(t, os.Args[0], bin)
	own := filepath.Join(top, "own")
	if err := os.Mkdir(own, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(own, uid, gid)
	readOnly := filepath.Join(top, "roots")
	os.Mkdir(readOnly, 0o755)

	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Dir = top
	cmd.Env = append(os.Environ(), "PGCLUSTER_HELPER=notroot", "PGCLUSTER_DIR="+filepath.Join(own, "cluster"), "PGCLUSTER_RODIR="+readOnly)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", uid, err, out)
	}
	t.Logf("helper as uid %d:\n%s", uid, out)
}

// TestHelperProcess is the child process of other tests (kill -9, another
// user); run any other way it does nothing (the os/exec idiom).
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("PGCLUSTER_HELPER")
	if mode == "" {
		return
	}
	ctx := context.Background()
	dir := os.Getenv("PGCLUSTER_DIR")
	switch mode {
	case "hold":
		c, err := Start(ctx, Options{Dir: dir, Fast: true})
		if err != nil {
			t.Fatal(err)
		}
		conn := connect(t, c)
		if _, err := conn.Exec(ctx, `create table kept (v text); insert into kept values ('before kill')`); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ready %d\n", c.proc.Pid)
		time.Sleep(time.Minute) // until kill -9
		t.Fatal("not killed")
	case "notroot":
		c := start(t, Options{Dir: dir, Fast: true})
		if uid := procUID(t, c.proc.Pid); uid != os.Geteuid() {
			t.Errorf("server runs as uid %d, want %d", uid, os.Geteuid())
		}
		connect(t, c)
		stop(t, c)
		_, err := Start(ctx, Options{Dir: os.Getenv("PGCLUSTER_RODIR")})
		want := "the cluster directory " + os.Getenv("PGCLUSTER_RODIR") + " is not writable: permission denied"
		if err == nil || err.Error() != want {
			t.Errorf("read-only dir: got %v, want %s", err, want)
		}
	}
}

func serverUser(t *testing.T) int {
	t.Helper()
	a, err := serverAccount()
	if err != nil {
		t.Fatal(err)
	}
	return int(a.uid)
}

func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, _ := strconv.Atoi(f[1])
			return uid
		}
	}
	t.Fatal("no Uid in /proc/pid/status")
	return -1
}

func statOf(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Fatal(err)
	}
}
