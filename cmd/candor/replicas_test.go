package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/candorhq/candor/internal/pgcluster"
	"github.com/candorhq/candor/probes/demo"
)

// TestTwoReplicasOneKilled runs two candor replicas on one database and one
// location, breaks the demo login, kills one replica with SIGKILL, and checks
// that each probe ran at most once per interval, that Slack got one root
// message per incident and channel and every update once, and that the
// survivor's public pages stay current.
func TestTwoReplicasOneKilled(t *testing.T) {
	_, startDB := stoppableCluster(t)
	cl := startDB()
	t.Cleanup(func() { _ = cl.Stop(context.Background()) })
	t.Setenv("DATABASE_URL", cl.URL("candor"))

	slack := newRecordingSlack(t)
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-replicas")
	demoSrv := httptest.NewServer(demo.New(demo.Options{}))
	t.Cleanup(demoSrv.Close)
	cfgPath := configWithSlack(t, demoSrv.URL, slack)
	addrA, addrB := freeAddr(t), freeAddr(t)
	a, _ := startCandor(t, "serve", "--config", cfgPath, "--listen", addrA, "--data-dir", t.TempDir())
	waitFor(t, "http://"+addrA+"/readyz", 200, 60*time.Second)
	b, outB := startCandor(t, "serve", "--config", cfgPath, "--listen", addrB, "--data-dir", t.TempDir())
	waitFor(t, "http://"+addrB+"/readyz", 200, 60*time.Second)

	resp, err := http.Post(demoSrv.URL+"/_fault", "application/json", strings.NewReader(`{"mode":"events_down"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, "the incident's root message in both channels", func() bool {
		return slack.count("/chat.postMessage", "channel=CPUBLIC") > 0 && slack.count("/chat.postMessage", "channel=CONCALL") > 0
	})

	// One replica dies hard; the other carries on alone.
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	code, token, stderr := runCmd(t, t.Context(), "token", "create", "--role", "responder", "--name", "t", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("token create: %s", stderr)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addrB+"/api/v1/incidents/1/updates",
		strings.NewReader(`{"status":"identified","message":"Survivor says: the events store is down."}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("post an update to the survivor: %v %v", resp, err)
	}
	eventually(t, "the survivor's page to show the update", func() bool {
		body, _ := waitFor(t, "http://"+addrB+"/", 200, time.Second)
		return strings.Contains(body, "Survivor says")
	})
	eventually(t, "the update in Slack", func() bool { return slack.count("/chat.postMessage", "Survivor says") >= 1 })
	conn, err := pgx.Connect(t.Context(), cl.ConnString("candor"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The survivor goes on probing alone: runs of the login probe in two
	// more intervals after the kill.
	killedAt := time.Now()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		var n int
		_ = conn.QueryRow(t.Context(), `select count(*) from probe_results where probe = 'login' and started_at > $1`, killedAt).Scan(&n)
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the survivor stored %d runs of the login probe in the 90 s after the kill, want 2 or more:\n%s", n, outB.String())
		}
	}

	for _, ch := range []string{"CPUBLIC", "CONCALL"} {
		if n := slack.count("/chat.postMessage", "Survivor says", "channel="+ch); n != 1 {
			t.Errorf("the update was posted %d times to %s, want once", n, ch)
		}
	}
	for _, ch := range []string{"CPUBLIC", "CONCALL"} {
		roots := 0
		slack.mu.Lock()
		for _, body := range slack.bodies {
			if strings.HasPrefix(body, "/chat.postMessage ") && strings.Contains(body, "channel="+ch) && !strings.Contains(body, "thread_ts=") {
				roots++
			}
		}
		slack.mu.Unlock()
		if roots != 1 {
			t.Errorf("%d root messages in %s for one incident, want 1", roots, ch)
		}
	}
	var doubled, runs int
	if err := conn.QueryRow(t.Context(), `select count(*) filter (where n > 1), coalesce(sum(n), 0) from (
		select count(*) n from probe_results group by probe, location, floor(extract(epoch from started_at) / 15)) t`).Scan(&doubled, &runs); err != nil {
		t.Fatal(err)
	}
	if runs == 0 || doubled != 0 {
		t.Errorf("%d probe runs stored, %d intervals with a probe run twice; want some and none", runs, doubled)
	}
	if err := b.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(); err != nil {
		t.Errorf("the survivor exited with %v:\n%s", err, outB.String())
	}
}

// TestKilledWhilePublishingDeliversTheRestOnce kills candor with SIGKILL
// while it is posting an incident's updates to a slow Slack, restarts it,
// and checks that every update reaches each channel exactly once.
func TestKilledWhilePublishingDeliversTheRestOnce(t *testing.T) {
	slack := newRecordingSlack(t)
	slack.delay = 50 * time.Millisecond
	// Slack takes update 3 only after candor is dead: the post whose answer
	// was lost, the case a naive relay posts twice.
	slack.holdText, slack.held, slack.release = "Update 3 of the outage.", make(chan struct{}), make(chan struct{})
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-killed")
	demoSrv := httptest.NewServer(demo.New(demo.Options{}))
	t.Cleanup(demoSrv.Close)
	cfgPath := configWithSlack(t, demoSrv.URL, slack)
	dataDir, addr := t.TempDir(), freeAddr(t)
	base := "http://" + addr
	args := []string{"serve", "--config", cfgPath, "--listen", addr, "--data-dir", dataDir}
	first, _ := startCandor(t, args...)
	waitFor(t, base+"/readyz", 200, 60*time.Second)
	code, token, stderr := runCmd(t, t.Context(), "token", "create", "--role", "responder", "--name", "t", "--config", cfgPath, "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("token create: %s", stderr)
	}
	token = strings.TrimSpace(token)
	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	post("/api/v1/incidents", `{"title":"Login failures","status":"investigating","message":"Update 0 of the outage.","impact":"major","components":[{"component":"Login","status":"major_outage"}]}`)
	const updates = 6
	for i := 1; i < updates; i++ {
		post("/api/v1/incidents/1/updates", fmt.Sprintf(`{"status":"identified","message":"Update %d of the outage."}`, i))
	}
	<-slack.held
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	close(slack.release)
	eventually(t, "Slack to take the held post", func() bool { return slack.count("/chat.postMessage", "Update 3 of the outage.") == 1 })
	if n := slack.count("/chat.postMessage", "of the outage"); n >= 2*updates {
		t.Fatalf("all %d posts were made before the kill; the test proves nothing", n)
	}
	second, out := startCandor(t, args...)
	waitFor(t, base+"/readyz", 200, 60*time.Second)
	for i := 0; i < updates; i++ {
		text := fmt.Sprintf("Update %d of the outage.", i)
		for _, ch := range []string{"CPUBLIC", "CONCALL"} {
			eventually(t, fmt.Sprintf("%q in %s", text, ch), func() bool { return slack.count("/chat.postMessage", text, "channel="+ch) >= 1 })
		}
	}
	// Wait until the restarted relay has nothing left to deliver.
	eventually(t, "every delivery settled", func() bool {
		var pending int
		_ = queryRow(t, dataDir, `select count(*) from notify_deliveries where state <> 'delivered'`, &pending)
		return pending == 0
	})
	for i := 0; i < updates; i++ {
		text := fmt.Sprintf("Update %d of the outage.", i)
		for _, ch := range []string{"CPUBLIC", "CONCALL"} {
			if n := slack.count("/chat.postMessage", text, "channel="+ch); n != 1 {
				t.Errorf("%q was posted %d times to %s, want once", text, n, ch)
			}
		}
	}
	_ = second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Errorf("candor exited with %v:\n%s", err, out.String())
	}
}

// queryRow runs one query against the embedded cluster of a running candor.
func queryRow(t *testing.T, dataDir, sql string, dest ...any) error {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pgcluster.ConnStringFor(filepath.Join(dataDir, "postgres"), "candor"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(t.Context(), sql).Scan(dest...)
}
