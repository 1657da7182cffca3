package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/candorhq/candor/internal/migrate"
)

func TestParallelTestsGetIsolatedDatabases(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
	)
	t.Run("group", func(t *testing.T) {
		for _, who := range []string{"a", "b", "c"} {
			t.Run(who, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				t0 := time.Now()
				pool := New(t)
				t.Logf("New took %v", time.Since(t0).Round(time.Millisecond))

				var db string
				if err := pool.QueryRow(ctx, `select current_database()`).Scan(&db); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				names = append(names, db)
				mu.Unlock()

				if v, err := migrate.Version(ctx, pool); err != nil || v != migrate.Latest() {
					t.Errorf("schema version %d (%v), want %d", v, err, migrate.Latest())
				}
				// In a shared database the second create would fail, or the
				// count would see the other test's row.
				if _, err := pool.Exec(ctx, `create table pgtest_probe (who text)`); err != nil {
					t.Fatal(err)
				}
				if _, err := pool.Exec(ctx, `insert into pgtest_probe values ($1)`, who); err != nil {
					t.Fatal(err)
				}
				var n int
				var got string
				if err := pool.QueryRow(ctx, `select count(*), min(who) from pgtest_probe`).Scan(&n, &got); err != nil {
					t.Fatal(err)
				}
				if n != 1 || got != who {
					t.Errorf("saw %d rows, first %q: want only this test's row %q", n, got, who)
				}
			})
		}
	})

	slices.Sort(names)
	if len(slices.Compact(slices.Clone(names))) != 3 {
		t.Fatalf("databases %v: want 3 different ones", names)
	}
	var left []string
	rows, err := shared.srv.admin.Query(context.Background(), `select datname from pg_database where datname = any($1)`, names)
	if err != nil {
		t.Fatal(err)
	}
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("databases %v survived their tests", left)
	}
}

func TestConnString(t *testing.T) {
	t.Parallel()
	s := ConnString(t)
	if os.Getenv("DATABASE_URL") == "" && !strings.HasPrefix(s, "postgres://") {
		t.Errorf("ConnString = %q, want a postgres:// URL", s)
	}
	conn, err := pgx.Connect(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `select count(*) from schema_migrations`).Scan(&n); err != nil || n != len(must(migrate.All())) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, len(must(migrate.All())))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:p@db.example:5432/candor?sslmode=disable", "postgres://u:p@db.example:5432/test_x?sslmode=disable"},
		{"postgresql:///candor?host=/run/postgresql", "postgresql:///test_x?host=/run/postgresql"},
		{"postgres://h/a?dbname=b&sslmode=require", "postgres://h/test_x?sslmode=require"},
		{"host=/run/postgresql dbname=candor", "host=/run/postgresql dbname=candor dbname=test_x"},
	} {
		if got := withDatabase(tc.in, "test_x"); got != tc.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
		}
		cfg, err := pgx.ParseConfig(withDatabase(tc.in, "test_x"))
		if err != nil || cfg.Database != "test_x" {
			t.Errorf("%q parses to database %q (%v)", withDatabase(tc.in, "test_x"), cfg.Database, err)
		}
	}
}

// TestClusterRemovedAfterKill9 kills -9 a test binary that started a
// cluster: its server stops and its directory goes.
func TestClusterRemovedAfterKill9(t *testing.T) {
	t.Parallel()
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			helper.Env = append(helper.Env, kv)
		}
	}
	helper.Env = append(helper.Env, "PGTEST_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	dir, ok := strings.CutPrefix(strings.TrimSpace(line), "dir ")
	if err != nil || !ok {
		t.Fatalf("helper said %q (%v)", line, err)
	}
	t0 := time.Now()
	for {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			break
		}
		if time.Since(t0) > 40*time.Second {
			t.Fatalf("%s still exists 40 s after its test binary was killed", dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s removed %v after kill -9", dir, time.Since(t0).Round(time.Millisecond))
}

// TestHelperProcess is the child that TestClusterRemovedAfterKill9 starts
// and kills; run any other way it does nothing (the os/exec idiom).
func TestHelperProcess(t *testing.T) {
	if os.Getenv("PGTEST_HELPER") == "" {
		return
	}
	New(t)
	fmt.Printf("dir %s\n", shared.srv.dir)
	time.Sleep(time.Minute) // until kill -9
}
