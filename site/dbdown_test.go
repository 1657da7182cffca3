package site

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/internal/pgcluster"
)

// TestDatabaseDownKeepsServing stops a real PostgreSQL server under a
// running site: every public endpoint keeps answering 200 with the last
// snapshot. When the server is back, Run reconnects its LISTEN and a change
// made then is shown.
func TestDatabaseDownKeepsServing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "candor-site-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Stop(context.Background()) })
	pcfg, err := pgxpool.ParseConfig(cl.ConnString(pgcluster.Database))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrate.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	f := newFixtureOn(t, pool)
	_, open := f.scenario(t)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.site.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	srv := httptest.NewServer(f.site.Handler())
	defer srv.Close()
	waitFor(t, "the first snapshot", 30*time.Second, func() bool { return f.site.Snapshot() != nil })

	paths := []string{"/", "/history", "/incidents/" + itoa(open.ID), "/components/login", "/history.rss", "/history.atom",
		"/badge.svg", "/badge.json", "/api/v2/summary.json", "/api/v2/status.json", "/api/v2/components.json", "/api/v2/incidents.json",
		"/api/v2/incidents/unresolved.json", "/api/v2/scheduled-maintenances.json", "/api/v2/scheduled-maintenances/upcoming.json",
		"/api/v2/scheduled-maintenances/active.json"}
	before := map[string]string{}
	for _, p := range paths {
		_, body := get(t, srv, p, "Accept-Encoding", "gzip")
		before[p] = string(body)
	}

	if err := cl.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-cl.Done()
	// The database is gone: a rebuild fails and the snapshot stays.
	if err := f.site.Rebuild(ctx); err == nil {
		t.Fatal("a rebuild with the database down succeeded")
	}
	f.site.Changed() // Run tries too, and fails, and retries
	for round := range 3 {
		for _, p := range paths {
			resp, body := get(t, srv, p, "Accept-Encoding", "gzip")
			if resp.StatusCode != 200 || string(body) != before[p] {
				t.Errorf("round %d, database down: %s: %d, same body %v", round, p, resp.StatusCode, string(body) == before[p])
			}
		}
	}

	// Back up: the same directory, a new server.
	cl2, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl2.Stop(context.Background()) })
	waitFor(t, "the pool reconnects", 30*time.Second, func() bool { return pool.Ping(ctx) == nil })
	f.update(t, open.ID, incidents.Update{Status: incidents.StatusMonitoring, Message: "A fix is in place; we are watching."})
	waitFor(t, "the change after the restart is shown", 60*time.Second, func() bool {
		_, body := get(t, srv, "/api/v2/incidents/unresolved.json")
		return strings.Contains(string(body), "we are watching")
	})
}
