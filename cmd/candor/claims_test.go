package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/candorhq/candor/internal/pgcluster"
)

// probeRun runs `candor probe run NAME` as a process of its own, as on-call
// would, and returns its exit status and output.
func probeRun(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	cmd, out := startCandor(t, append([]string{"probe", "run", name}, args...)...)
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("probe run %s: %v\n%s", name, err, out.String())
	}
	return code, out.String()
}

// claimsIn reads the one-time-code claims of the embedded cluster in dataDir
// (running or not) as "holder role" strings, oldest window first.
func claimsIn(t *testing.T, dataDir string) []string {
	t.Helper()
	ctx := t.Context()
	dir := filepath.Join(dataDir, "postgres")
	connString := pgcluster.ConnStringFor(dir, "candor")
	if cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir}); err == nil {
		defer func() { _ = cl.Stop(context.Background()) }() // before candor serve starts on it
		connString = cl.ConnString("candor")
	}
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `select claimed_by from totp_claims order by window_start`)
	if err != nil {
		t.Fatal(err)
	}
	holders, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return holders
}

// TestProbeRunBesideServeOnOneAccount runs `candor probe run login` twice
// back to back against one demo target, which accepts each code once per
// account as real targets do, and then several runs while `candor serve`
// probes the same accounts every 15 s: every run by hand passes, because
// each claims its code window in the data directory's database first.
func TestProbeRunBesideServeOnOneAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes and PostgreSQL, up to two minutes")
	}
	dataDir := t.TempDir()

	// Back to back, without serve: one demo target outlives both runs, so
	// the second run's code would be the first's, refused as used.
	targetAddr := freeAddr(t)
	target, targetOut := startCandor(t, "demo-target", "--listen", targetAddr)
	waitFor(t, "http://"+targetAddr+"/login", 200, 30*time.Second)
	for i := range 2 {
		code, out := probeRun(t, "login", "--demo-listen", targetAddr, "--data-dir", dataDir)
		if code != 0 || !strings.Contains(out, "OK in") {
			t.Fatalf("back-to-back run %d: exit %d\n%s", i+1, code, out)
		}
		if strings.Contains(out, "no database reachable") {
			t.Fatalf("back-to-back run %d ran without claims:\n%s", i+1, out)
		}
	}
	_ = target.Process.Kill()
	_ = target.Wait()
	if holders := claimsIn(t, dataDir); len(holders) != 2 || !strings.HasSuffix(holders[0], "/probe-run") || !strings.HasSuffix(holders[1], "/probe-run") {
		t.Fatalf("claims after two runs by hand: got %q, want two windows claimed by probe-run\n%s", holders, targetOut.String())
	}

	// Beside serve: it runs the demo target and its three probes every 15 s,
	// each on its own account; runs by hand attach to its cluster.
	addr, demoAddr := freeAddr(t), freeAddr(t)
	serve, serveOut := startCandor(t, "serve", "--listen", addr, "--demo-listen", demoAddr, "--data-dir", dataDir)
	waitFor(t, "http://"+addr+"/readyz", 200, 60*time.Second)
	for i, name := range []string{"login", "login-security", "login", "login-security"} {
		code, out := probeRun(t, name, "--demo-listen", demoAddr, "--data-dir", dataDir)
		if code != 0 || !strings.Contains(out, "OK in") || strings.Contains(out, "no database reachable") {
			t.Errorf("run %d (%s) beside serve: exit %d\n%s", i+1, name, code, out)
		}
	}
	var byServe, byHand int
	for _, h := range claimsIn(t, dataDir) {
		switch {
		case strings.HasSuffix(h, "/serve"):
			byServe++
		case strings.HasSuffix(h, "/probe-run"):
			byHand++
		}
	}
	if byServe == 0 || byHand != 6 {
		t.Errorf("claims: %d by serve, %d by hand; want some by serve and 6 by hand\n%s", byServe, byHand, serveOut.String())
	}
	_ = serve.Process.Kill()
	_ = serve.Wait()
}
