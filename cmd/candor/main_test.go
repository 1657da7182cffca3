package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCmd runs candor with args and returns its exit status and output.
func runCmd(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckListsEveryProblemWithItsPosition(t *testing.T) {
	path := writeFile(t, "broken.yaml", `page:
  name: Example
  url: ftp://example.com
  colour: blue
location: "bad location"
components:
  - name: Login
  - name: login
  - group: Platform
probes:
  - name: a
    targt: x
    steps: [{url: "https://x.example/"}]
  - name: b
    steps:
      - url: /login
`)
	code, stdout, stderr := runCmd(t, t.Context(), "check", "--config", path)
	if code != 2 {
		t.Errorf("exit status = %d, want 2 (stdout %q)", code, stdout)
	}
	for _, want := range []string{
		path + ":4:3: unknown key \"colour\"",
		path + ":5:11: location \"bad location\" must be",
		path + ":8:11: component \"login\" has the same id",
		path + ":9:5: component needs a name",
		// One unreadable item does not hide the problems of the others.
		path + ":12:5: unknown key \"targt\"",
		path + ":16:14: url \"/login\" is relative",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestCheckSyntaxErrorAndUnknownSection(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"syntax":  {"page:\n  name: [oops\n", ":2:"},
		"unknown": {"page:\n  name: x\nprobs: []\n", ":3:1: unknown key \"probs\""},
		"type":    {"components: 3\n", ":1:13: expected a list, found a whole number"},
		"empty":   {"", "the configuration is empty"},
		"key":     {"console:\n  secret_key: tooshort\n", ":2:15: the key is 6 bytes, want 32"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", tc.body)
			code, _, stderr := runCmd(t, t.Context(), "check", "--config", path)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

func TestDemoConfigIsValidAndRoundTrips(t *testing.T) {
	code, stdout, stderr := runCmd(t, t.Context(), "check")
	if code != 0 || !strings.Contains(stdout, "demo configuration is valid") {
		t.Fatalf("check of the demo: exit %d, %q %q", code, stdout, stderr)
	}
	code, yaml, _ := runCmd(t, t.Context(), "demo-config", "--demo-listen", "127.0.0.1:9999")
	if code != 0 || !strings.Contains(yaml, "# ") {
		t.Fatalf("demo-config: exit %d, output %q", code, yaml)
	}
	path := writeFile(t, "candor.yaml", yaml)
	if code, stdout, stderr := runCmd(t, t.Context(), "check", "--config", path); code != 0 {
		t.Errorf("printed demo config does not check: %d %q %q", code, stdout, stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, stderr := runCmd(t, t.Context(), "frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestServeRefusesAPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, stderr := runCmd(t, t.Context(), "serve", "--listen", ln.Addr().String(), "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "already in use") {
		t.Errorf("exit %d, stderr %q; want 1 and a sentence about the address in use", code, stderr)
	}
}

func TestServeRefusesABadConfigBeforeTouchingTheDatabase(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	path := writeFile(t, "bad.yaml", "components: [{name: A}, {name: a}]\n")
	code, _, stderr := runCmd(t, t.Context(), "serve", "--config", path, "--data-dir", dataDir, "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "has the same id") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir was created (%v); a bad config must touch nothing", err)
	}
}

func TestServeReportsAnUnreachableDatabaseWithoutItsPassword(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://candor:s3cretpw@127.0.0.1:1/candor?connect_timeout=2")
	code, _, stderr := runCmd(t, t.Context(), "serve", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "cannot reach the database at DATABASE_URL") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, "s3cretpw") {
		t.Errorf("the password leaked: %q", stderr)
	}
}

func TestServeRefusesAnUnwritableDataDir(t *testing.T) {
	// A path under a regular file is unwritable even for root.
	file := writeFile(t, "not-a-dir", "x")
	code, _, stderr := runCmd(t, t.Context(), "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(file, "data"))
	if code != 1 || !strings.Contains(stderr, "cannot create the data directory") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveInBackground starts `candor serve` and returns a function that stops
// it (as SIGTERM would) and returns its exit status and log.
func serveInBackground(t *testing.T, args ...string) (stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), &out, &errOut) }()
	return func() (int, string) {
		cancel()
		select {
		case code := <-done:
			return code, errOut.String()
		case <-time.After(60 * time.Second):
			t.Fatal("serve did not stop within 60 s of its context ending")
			return -1, ""
		}
	}
}

// waitFor polls url until it answers want, or fails the test at the deadline.
func waitFor(t *testing.T, url string, want int, deadline time.Duration) (body string, took time.Duration) {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < deadline {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return string(b), time.Since(start)
			}
			last = resp.Status + " " + string(b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within %s; last: %s", url, want, deadline, last)
	return "", 0
}

func TestServeWithTheEmbeddedClusterSurvivesARestart(t *testing.T) {
	dataDir := t.TempDir()
	addr, demoAddr := freeAddr(t), freeAddr(t)
	base := "http://" + addr
	stop := serveInBackground(t, "--listen", addr, "--demo-listen", demoAddr, "--data-dir", dataDir)
	_, took := waitFor(t, base+"/readyz", 200, 60*time.Second)
	t.Logf("first start (cluster created): ready after %s", took)

	home, _ := waitFor(t, base+"/", 200, time.Second)
	for _, c := range []string{"Login", "Two-step authentication", "API", "Dashboard"} {
		if !strings.Contains(home, c) {
			t.Errorf("home page lacks component %q", c)
		}
	}
	if body, _ := waitFor(t, base+"/healthz", 200, time.Second); !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %q", body)
	}
	if body, _ := waitFor(t, base+"/metrics", 200, time.Second); !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_cpu_seconds_total") {
		t.Errorf("/metrics lacks the Go and process collectors")
	}
	waitFor(t, base+"/no-such-page", 404, time.Second)
	code, log := stop()
	if code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, log)
	}
	if !strings.Contains(log, "applied migration") {
		t.Errorf("first start applied no migration:\n%s", log)
	}

	stop = serveInBackground(t, "--listen", addr, "--demo-listen", demoAddr, "--data-dir", dataDir)
	_, took = waitFor(t, base+"/readyz", 200, 30*time.Second)
	t.Logf("restart: ready after %s", took)
	code, log = stop()
	if code != 0 {
		t.Fatalf("second serve exited %d:\n%s", code, log)
	}
	if strings.Contains(log, "applied migration") {
		t.Errorf("the restart applied migrations again, so the data did not survive:\n%s", log)
	}
}

func TestProbeRunWalksTheDemoFlows(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // cmdProbe starts the demo target here
	// Where probe run finds (or starts) the database of its code claims.
	dataDir := t.TempDir()
	for _, name := range []string{"login", "login-remembered", "login-security"} {
		code, stdout, stderr := runCmd(t, t.Context(), "probe", "run", name, "--demo-listen", addr, "--data-dir", dataDir)
		if code != 0 || !strings.Contains(stdout, "totp") {
			t.Errorf("probe run %s: exit %d\n%s%s", name, code, stdout, stderr)
		}
	}
	code, stdout, _ := runCmd(t, t.Context(), "probe", "run", "nope", "--demo-listen", addr)
	if code != 1 || !strings.Contains(stdout, `no probe named "nope"`) {
		t.Errorf("unknown probe: exit %d, %q", code, stdout)
	}
}

func TestServeKeepsThePublicSiteUpWhileItsDatabaseIsDown(t *testing.T) {
	_, startDB := stoppableCluster(t)
	cl := startDB()
	t.Cleanup(func() { _ = cl.Stop(context.Background()) })
	t.Setenv("DATABASE_URL", cl.URL("candor"))
	addr, demoAddr := freeAddr(t), freeAddr(t)
	base := "http://" + addr
	stop := serveInBackground(t, "--listen", addr, "--demo-listen", demoAddr, "--data-dir", t.TempDir())
	waitFor(t, base+"/readyz", 200, 60*time.Second)
	public := []string{"/", "/history", "/history.rss", "/history.atom", "/api/v2/summary.json", "/api/v2/incidents.json", "/badge.svg"}
	before := map[string]string{}
	for _, p := range public {
		before[p], _ = waitFor(t, base+p, 200, time.Second)
	}

	if err := cl.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, base+"/readyz", 503, 30*time.Second)
	for _, p := range public {
		if body, _ := waitFor(t, base+p, 200, time.Second); body != before[p] {
			t.Errorf("%s changed while the database was down", p)
		}
	}
	waitFor(t, base+"/healthz", 200, time.Second)

	cl = startDB()
	waitFor(t, base+"/readyz", 200, 60*time.Second)
	if code, log := stop(); code != 0 {
		t.Errorf("serve exited %d after the database came back:\n%s", code, log)
	}
}
