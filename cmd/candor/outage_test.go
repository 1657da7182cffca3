package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/candorhq/candor/probes/demo"
)

// TestDatabaseOutageDuringAnIncidentLosesNothing stops candor's PostgreSQL
// for 40 s while probes run and an incident is open, and the login recovers
// meanwhile: the public site keeps answering 200 with the incident, /readyz
// says 503; when the database returns, the probe results taken during the
// outage are written, the incident moves to monitoring from them, at the
// time the probes saw the recovery, and that change reaches Slack.
func TestDatabaseOutageDuringAnIncidentLosesNothing(t *testing.T) {
	slack := newRecordingSlack(t)
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-outage")
	target := demo.New(demo.Options{})
	demoSrv := httptest.NewServer(target)
	t.Cleanup(demoSrv.Close)
	cfgPath := configWithSlack(t, demoSrv.URL, slack)
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Two good rounds (the demo's probes run every 15 s) move an incident
	// to monitoring, so that the outage's 40 s hold enough of them.
	fast := strings.ReplaceAll(string(cfg), "recover_after: 3", "recover_after: 2")
	if fast == string(cfg) {
		t.Fatal("the demo configuration has no recover_after: 3 to change")
	}
	if err := os.WriteFile(cfgPath, []byte(fast), 0o600); err != nil {
		t.Fatal(err)
	}
	_, startDB := stoppableCluster(t)
	cl := startDB()
	t.Cleanup(func() { _ = cl.Stop(context.Background()) })
	dbURL := cl.URL("candor")
	t.Setenv("DATABASE_URL", dbURL)
	addr := freeAddr(t)
	base := "http://" + addr
	if code, out, errOut := runCmd(t, t.Context(), "check", "--config", cfgPath); code != 0 {
		t.Fatalf("check: %d %s %s", code, out, errOut)
	}
	stop := serveInBackground(t, "--config", cfgPath, "--listen", addr, "--data-dir", t.TempDir())
	waitFor(t, base+"/readyz", 200, 60*time.Second)

	// The login breaks; an incident opens and is announced.
	if err := target.SetFault(demo.Fault{Mode: demo.FaultEventsDown}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the incident to open and reach Slack", func() bool {
		return strings.Contains(get(t, base+"/api/v2/incidents/unresolved.json"), `"status":"investigating"`) &&
			slack.count("/chat.postMessage", "channel=CPUBLIC") >= 1
	})
	public := []string{"/", "/history", "/history.rss", "/history.atom", "/api/v2/summary.json", "/api/v2/incidents/unresolved.json", "/badge.svg"}

	// PostgreSQL goes away for 40 s; the login recovers meanwhile.
	if err := cl.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	down := time.Now().UTC()
	target.ClearFault()
	waitFor(t, base+"/readyz", 503, 30*time.Second)
	for time.Since(down) < 40*time.Second {
		for _, p := range public {
			body, _ := waitFor(t, base+p, 200, time.Second)
			if p == "/api/v2/incidents/unresolved.json" && !strings.Contains(body, `"status":"investigating"`) {
				t.Fatalf("during the outage unresolved.json lost the incident: %s", body)
			}
		}
		time.Sleep(time.Second) // the pace of a customer pressing reload, not synchronisation
	}
	cl = startDB()
	up := time.Now().UTC()
	waitFor(t, base+"/readyz", 200, 60*time.Second)

	// What the probes saw during the outage is written, and acted on.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(get(t, base+"/api/v2/incidents/unresolved.json"), `"status":"monitoring"`) {
		if time.Now().After(deadline) {
			_, log := stop()
			t.Fatalf("the incident did not move to monitoring from the results kept during the outage: %s\n%s", get(t, base+"/api/v2/incidents/unresolved.json"), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var during, failedDuring int
	if err := conn.QueryRow(t.Context(), `select count(*), count(*) filter (where outcome = 'failed') from probe_results where started_at > $1 and started_at < $2`,
		down.Add(time.Second), up).Scan(&during, &failedDuring); err != nil {
		t.Fatal(err)
	}
	// Three probes in one location every 15 s for 40 s: two or three rounds.
	if during < 6 {
		t.Errorf("%d probe results from the outage's 40 s were written, want the runs taken then (6 to 9)", during)
	}
	var monitoringAt time.Time
	if err := conn.QueryRow(t.Context(), `select at from incident_events where kind = 'status_changed' and payload->>'to' = 'monitoring' order by at limit 1`).Scan(&monitoringAt); err != nil {
		t.Fatalf("no status_changed → monitoring event: %v", err)
	}
	// The timeline says when the probes saw the login recover: during the
	// outage, not when the database came back.
	if monitoringAt.Before(down) || !monitoringAt.Before(up) {
		t.Errorf("monitoring recorded at %s; want during the outage, %s to %s", monitoringAt, down, up)
	}
	// The change reaches Slack, and nothing is left undelivered.
	eventually(t, "the monitoring status to reach Slack", func() bool {
		return slack.count("/chat.update", "channel=CPUBLIC", "Monitoring") >= 1
	})
	eventually(t, "every delivery to settle", func() bool {
		var pending int
		if err := conn.QueryRow(t.Context(), `select count(*) from notify_deliveries where state <> 'delivered'`).Scan(&pending); err != nil {
			return false
		}
		return pending == 0
	})
	if code, log := stop(); code != 0 {
		t.Errorf("serve exited %d:\n%s", code, log)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
