// Package pgtest gives each test a fresh, migrated PostgreSQL database:
//
//	pool := pgtest.New(t) // t.Parallel() is fine
//
// The server: when DATABASE_URL is set, that server (its user needs
// CREATEDB). Otherwise a throwaway cluster of the machine's PostgreSQL,
// started on first use by each test binary in a temporary directory (in
// /dev/shm when it is a roomy tmpfs: see clusterParent) with fsync off
// (pgcluster.Options.Fast), and shared by that binary's tests.
//
// Cleaning up without a TestMain: the cluster's server gets SIGINT when the
// test binary exits, however it exits, even by kill -9 (pgcluster's
// parent-death signal). A small sh process started next to it holds the read
// end of a pipe whose write end only the test binary has; when the binary is
// gone the pipe closes, and that process waits for the server to remove its
// postmaster.pid (at most 30 s) and deletes the directory.
//
// Databases: once per test binary, the migrations are applied to a template
// database named after a hash of the embedded migrations,
// candor_template_<hash>, made under an advisory lock and renamed into place
// only when complete, so that test binaries sharing one DATABASE_URL server
// (go test ./... runs packages in parallel) take turns building it and then
// share it, and a schema change makes a new one. Each test then gets
// CREATE DATABASE test_<random> TEMPLATE candor_template_<hash>, dropped in
// t.Cleanup. On a DATABASE_URL server the templates of earlier schemas stay,
// and so do the databases of a test binary that was killed: drop
// "candor_template_*" and "test_*" there by hand when they pile up.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/internal/pgcluster"
)

// New returns a connection pool to a fresh, migrated database for this test,
// dropped at cleanup. pool.Config().ConnString() is its connection string.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	connString := ConnString(t)
	pool, err := pgxpool.New(context.Background(), connString)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the drop ConnString registered
	return pool
}

// ConnString creates a fresh, migrated database for this test, dropped at
// cleanup, and returns its connection string, for tests that open their own
// connections or hand the database to a child process. It is a postgres://
// URL, or keyword/value when DATABASE_URL is written that way.
func ConnString(t testing.TB) string {
	t.Helper()
	s := shared.get()
	if s.err != nil {
		t.Fatalf("pgtest: %v", s.err)
	}
	name := "test_" + strings.ToLower(rand.Text()[:16]) // 80 random bits
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "create database "+name+" template "+s.template); err != nil {
		t.Fatalf("pgtest: create the test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends the sessions a test left open (PostgreSQL 13+).
		if _, err := s.admin.Exec(ctx, "drop database if exists "+name+" with (force)"); err != nil {
			t.Errorf("pgtest: drop the test database %s: %v", name, err)
		}
	})
	return s.connString(name)
}

// shared is the server of this test binary, set up on first use.
var shared lazyServer

type lazyServer struct {
	once sync.Once
	srv  server
}

type server struct {
	err        error
	admin      *pgxpool.Pool // to a database that stays: creates and drops the others
	connString func(dbname string) string
	template   string
	cluster    *pgcluster.Cluster // nil with DATABASE_URL
	dir        string             // the cluster's directory
}

func (l *lazyServer) get() *server {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		l.srv.err = l.srv.setup(ctx)
	})
	return &l.srv
}

func (s *server) setup(ctx context.Context) error {
	var adminConn string
	if u := os.Getenv("DATABASE_URL"); u != "" {
		adminConn = u
		s.connString = func(db string) string { return withDatabase(u, db) }
	} else {
		c, err := s.startCluster(ctx)
		if err != nil {
			return err
		}
		adminConn = c.ConnString("postgres")
		s.connString = c.URL
	}
	admin, err := pgxpool.New(ctx, adminConn)
	if err != nil {
		return fmt.Errorf("connect to the test server: %w", err)
	}
	s.admin = admin
	if s.template, err = s.makeTemplate(ctx); err != nil {
		return fmt.Errorf("prepare the migrated template database: %w", err)
	}
	return nil
}

// reaperPipe is the write end of the pipe the cleanup process waits on. It
// stays open, and referenced, for the life of the test binary: only the
// binary's exit closes it.
var reaperPipe *os.File

// reaperScript waits for EOF on stdin (the test binary has exited), reading
// extra paths to delete, waits for the server to finish its shutdown, and
// deletes the cluster directory.
const reaperScript = `paths=$(cat)
i=0
while [ -e "$1/data/postmaster.pid" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
printf '%s\n' "$1" "$paths" | while IFS= read -r p; do [ -n "$p" ] && rm -rf -- "$p"; done
`

func (s *server) startCluster(ctx context.Context) (*pgcluster.Cluster, error) {
	dir, err := os.MkdirTemp(clusterParent(), "candor-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("make the test cluster's directory: %w", err)
	}
	s.dir = dir
	// Start the reaper first: it also cleans up after a failed or killed start.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	reaper := exec.Command("/bin/sh", "-c", reaperScript, "pgtest-reaper", dir)
	reaper.Stdin = r
	// Its own process group: a Ctrl-C in the terminal must not stop it
	// before it has cleaned up.
	reaper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := reaper.Start(); err != nil {
		r.Close()
		w.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the test cluster's cleanup process: %w", err)
	}
	r.Close()
	reaperPipe = w

	c, err := pgcluster.Start(ctx, pgcluster.Options{
		Dir:  dir,
		Fast: true,
		// Many parallel tests, each with a pool of a few connections.
		Settings: map[string]string{"max_connections": "300"},
	})
	if err != nil {
		return nil, fmt.Errorf("start a PostgreSQL cluster for tests (or set DATABASE_URL): %w", err)
	}
	if !strings.HasPrefix(c.SocketDir(), dir+"/") {
		fmt.Fprintln(reaperPipe, c.SocketDir())
	}
	s.cluster = c
	return c, nil
}

// templateLock serialises template building across test binaries on one
// server ("pgtest" in ASCII); it differs from migrate's lock.
const templateLock = 0x706774657374

// makeTemplate returns the name of a template database migrated to the
// embedded migrations, building it if no test binary has yet.
func (s *server) makeTemplate(ctx context.Context) (string, error) {
	ms, err := migrate.All()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%d %s %d\n%s\n", m.Version, m.Name, len(m.SQL), m.SQL)
	}
	name := "candor_template_" + hex.EncodeToString(h.Sum(nil))[:12]

	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `select pg_advisory_lock($1)`, templateLock); err != nil {
		return "", err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `select pg_advisory_unlock($1)`, templateLock)

	var exists bool
	if err := conn.QueryRow(ctx, `select exists (select from pg_database where datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Build under another name and rename when done: a binary killed halfway
	// leaves only a *_new that the next one drops.
	building := name + "_new"
	for _, q := range []string{
		"drop database if exists " + building + " with (force)",
		"create database " + building,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", err
		}
	}
	pool, err := pgxpool.New(ctx, s.connString(building))
	if err != nil {
		return "", err
	}
	err = migrate.Up(ctx, pool)
	pool.Close()
	if err != nil {
		return "", err
	}
	// CREATE DATABASE … TEMPLATE fails while anyone is connected to the
	// template: make sure no one connects by accident. (Not IS_TEMPLATE: the
	// owner may clone it anyway, and a template database refuses DROP.)
	for _, q := range []string{
		"alter database " + building + " rename to " + name,
		"alter database " + name + " allow_connections false",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", err
		}
	}
	return name, nil
}

// withDatabase returns connString pointing at database db instead.
func withDatabase(connString, db string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err == nil {
			u.Path, u.RawPath = "/"+db, ""
			if q := u.Query(); q.Has("dbname") {
				q.Del("dbname")
				u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
			}
			return u.String()
		}
	}
	// Keyword/value: a later setting wins over an earlier one.
	return connString + " dbname=" + db
}
