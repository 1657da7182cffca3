// Command site benchmarks the public status site under a thundering herd:
// wrk (64 connections, gzip requested) against Candor's home page and
// /api/v2/summary.json, side by side with (a) nginx serving the same bytes
// precompressed from files (gzip_static, from site.Export) and (b) a bare
// Go net/http handler writing the same precompressed bytes from memory.
// Then Candor again while the snapshot is rebuilt from PostgreSQL every
// 100 ms, and the time from a committed update to it being visible on
// every public endpoint. Run it by hand (bench/site/run.sh), not in CI.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/internal/pgcluster"
	"github.com/candorhq/candor/site"
)

func main() {
	dur := flag.Duration("d", 10*time.Second, "wrk duration of each run")
	conns := flag.Int("c", 64, "wrk connections")
	threads := flag.Int("t", 2, "wrk threads")
	rounds := flag.Int("updates", 20, "updates timed for update-visible latency")
	flag.IntVar(&repeat, "rounds", 3, "wrk runs of each server and path (the median is reported)")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*dur, *conns, *threads, *rounds); err != nil {
		log.Fatal(err)
	}
}

func run(dur time.Duration, conns, threads, rounds int) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "candor-bench-site-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tmp, "pg")})
	if err != nil {
		return err
	}
	defer cl.Stop(context.Background())
	pool, err := pgxpool.New(ctx, cl.ConnString(pgcluster.Database))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrate.Up(ctx, pool); err != nil {
		return err
	}
	store, err := seed(ctx, pool)
	if err != nil {
		return err
	}
	s, err := site.New(site.Options{Store: store, Pool: pool, Page: site.Page{ID: "bench", Name: "Example Status", URL: "https://status.example.com"}})
	if err != nil {
		return err
	}
	if err := s.Rebuild(ctx); err != nil {
		return err
	}
	export := filepath.Join(tmp, "www")
	if err := site.Export(s.Snapshot(), export); err != nil {
		return err
	}
	_ = filepath.Walk(export, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})

	candor, err := listen(s.Handler())
	if err != nil {
		return err
	}
	bare, err := listen(bareHandler(export))
	if err != nil {
		return err
	}
	nginx, stopNginx, err := startNginx(tmp, export)
	if err != nil {
		return err
	}
	defer stopNginx()

	fmt.Printf("# %s, %d CPUs, wrk -t%d -c%d -d%s --latency -H 'Accept-Encoding: gzip'\n", runtime.Version(), runtime.NumCPU(), threads, conns, dur)
	for _, p := range []string{"/", "/api/v2/summary.json"} {
		id, _ := s.Snapshot().Body(p)
		gz := mustGet(candor + p)
		targets := []struct{ name, base string }{{"nginx gzip_static", nginx}, {"bare Go", bare}, {"Candor", candor}}
		for _, t := range targets {
			if !same(mustGet(t.base+p), gz) {
				return fmt.Errorf("%s serves other bytes at %s", t.name, p)
			}
		}
		// Rounds of the three in turn, so that noise from the machine
		// spreads over all of them; the medians are reported.
		all := map[string][]wrkResult{}
		for range repeat {
			for _, t := range targets {
				r, err := wrk(t.base+p, dur, conns, threads)
				if err != nil {
					return err
				}
				all[t.name] = append(all[t.name], r)
			}
		}
		res := map[string]wrkResult{}
		for name, rs := range all {
			res[name] = median(rs)
		}
		fmt.Printf("\n## %s (%d bytes, %d gzipped), median of %d rounds\n\n", p, len(id), len(gz), repeat)
		fmt.Printf("| server | requests/s | p50 | p99 | requests/s vs bare Go | vs nginx | p99 vs bare Go | server CPU per request | CPU vs bare Go |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, t := range targets {
			r := res[t.name]
			fmt.Printf("| %s | %.0f | %s | %s | %.2f | %.2f | %.2f | %.1f µs | %.2f |\n", t.name, r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond),
				r.rps/res["bare Go"].rps, r.rps/res["nginx gzip_static"].rps, float64(r.p99)/float64(res["bare Go"].p99),
				float64(r.cpuPerReq())/1e3, float64(r.cpuPerReq())/float64(res["bare Go"].cpuPerReq()))
		}
		for _, t := range targets {
			fmt.Printf("\n%s rounds (requests/s):", t.name)
			for _, r := range all[t.name] {
				fmt.Printf(" %.0f", r.rps)
			}
		}
		fmt.Println()
	}

	// Throughput while the snapshot is rebuilt from PostgreSQL every 100 ms,
	// in rounds alternating with Candor not rebuilding.
	var quiet time.Duration
	for range 20 {
		t := time.Now()
		if err := s.Rebuild(ctx); err != nil {
			return err
		}
		quiet += time.Since(t)
	}
	fmt.Printf("\n## Rebuilding every 100 ms, median of %d rounds, the three cases in turn\n\n", repeat)
	fmt.Printf("One rebuild with nothing changed: %.1f ms (mean of 20, before the load).\n\n", float64(quiet)/20/1e6)
	open, err := store.List(ctx, incidents.ListFilter{OpenOnly: true, PublicOnly: true})
	if err != nil || len(open) == 0 {
		return fmt.Errorf("no open incident: %v", err)
	}
	id := open[0].ID
	// mode: 0 idle, 1 rebuild every 100 ms, 2 commit an update then rebuild
	// every 100 ms (so that every rebuild has something to render).
	var mode atomic.Int32
	stop := make(chan struct{})
	defer close(stop)
	var builds, failed [3]atomic.Int64
	var buildTime [3]atomic.Int64
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tk.C:
				md := mode.Load()
				if md == 0 {
					continue
				}
				if md == 2 {
					if _, err := store.PostUpdate(ctx, id, incidents.Update{Message: fmt.Sprintf("Still investigating (%d).", n), Actor: "person:bench@example.com"}); err != nil {
						failed[md].Add(1)
					}
				}
				t := time.Now()
				if err := s.Rebuild(ctx); err != nil {
					failed[md].Add(1)
				}
				buildTime[md].Add(int64(time.Since(t)))
				builds[md].Add(1)
			}
		}
	}()
	fmt.Printf("| path | requests/s not rebuilding | rebuilding, nothing changed | ratio | rebuilding, a change each time | ratio | p99 not / unchanged / changed | CPU per request not / unchanged / changed |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range []string{"/", "/api/v2/summary.json"} {
		var rs [3][]wrkResult
		for range repeat {
			for md := range int32(3) {
				mode.Store(md)
				r, err := wrk(candor+p, dur, conns, threads)
				if err != nil {
					return err
				}
				rs[md] = append(rs[md], r)
			}
		}
		mode.Store(0)
		i, u, c := median(rs[0]), median(rs[1]), median(rs[2])
		fmt.Printf("| %s | %.0f | %.0f | %.2f | %.0f | %.2f | %s / %s / %s | %.1f / %.1f / %.1f µs |\n", p, i.rps, u.rps, u.rps/i.rps, c.rps, c.rps/i.rps,
			i.p99.Round(10*time.Microsecond), u.p99.Round(10*time.Microsecond), c.p99.Round(10*time.Microsecond),
			float64(i.cpuPerReq())/1e3, float64(u.cpuPerReq())/1e3, float64(c.cpuPerReq())/1e3)
	}
	for md, what := range []string{"", "nothing changed", "a change each time"} {
		if n := builds[md].Load(); n > 0 {
			fmt.Printf("\nRebuilds under load, %s: %d (%d failed), %.1f ms each on average (wall)", what, n, failed[md].Load(), float64(buildTime[md].Load())/float64(n)/1e6)
		}
	}
	fmt.Println()

	// Update-visible latency: commit an update, poll every public endpoint
	// that shows it until all do.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = s.Run(runCtx) }()
	// Every endpoint that shows an update's text.
	paths := []string{"/", "/incidents/" + strconv.FormatInt(id, 10), "/history.rss", "/history.atom",
		"/components/two-step-authentication.rss", "/components/two-step-authentication.atom",
		"/api/v2/summary.json", "/api/v2/incidents.json", "/api/v2/incidents/unresolved.json"}
	var lat []time.Duration
	for i := range rounds {
		marker := fmt.Sprintf("update-marker-%d-%d", time.Now().UnixNano(), i)
		if _, err := store.PostUpdate(ctx, id, incidents.Update{Message: "Still investigating " + marker, Actor: "person:bench@example.com"}); err != nil {
			return err
		}
		committed := time.Now()
		for _, p := range paths {
			for !strings.Contains(string(mustGetPlain(candor+p)), marker) {
				if time.Since(committed) > 10*time.Second {
					return fmt.Errorf("%s never showed the update", p)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		lat = append(lat, time.Since(committed))
	}
	slices.Sort(lat)
	fmt.Printf("\n## Update visible on all %d endpoints after commit (%d updates)\n\nmedian %s, max %s\n", len(paths), len(lat),
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	return nil
}

// seed makes a realistic page: the demo's components, 90 days of rollups,
// thirty resolved incidents over the period and one open.
func seed(ctx context.Context, pool *pgxpool.Pool) (*incidents.Store, error) {
	now := time.Now().UTC()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	nowf := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	comps := []incidents.Component{
		{Name: "Login", Group: "Sign-in", Probes: []string{"login"}},
		{Name: "Two-step authentication", Group: "Sign-in", Steps: []string{"login/totp"}},
		{Name: "Remembered devices", Group: "Sign-in", Probes: []string{"login-remembered"}},
		{Name: "API", Group: "Platform", Probes: []string{"api"}},
		{Name: "Dashboard", Group: "Platform", Probes: []string{"dashboard"}},
	}
	st := incidents.NewStore(pool, incidents.Config{Components: comps}, incidents.Options{Now: nowf})
	if err := st.SyncComponents(ctx); err != nil {
		return nil, err
	}
	day := now.Truncate(24 * time.Hour)
	for d := range 90 {
		for i, p := range []string{"login", "login-remembered", "api", "dashboard"} {
			failed := 0
			if (d+i)%17 == 0 {
				failed = 12 + d%30
			}
			if _, err := pool.Exec(ctx, `insert into probe_rollups_daily (probe, location, bucket, runs, ok, degraded, failed, with_signals, duration_ms_sum, duration_ms_max)
				values ($1, 'eu-west', $2, 1440, $3, 0, $4, 0, 400000, 900)`, p, day.AddDate(0, 0, -d), 1440-failed, failed); err != nil {
				return nil, err
			}
		}
	}
	actor := "person:bench@example.com"
	for i := range 30 {
		at := now.AddDate(0, 0, -87+3*i)
		clock.Store(at.UnixNano())
		c := comps[i%len(comps)].Name
		in, err := st.CreateIncident(ctx, incidents.NewIncident{Title: fmt.Sprintf("%s errors for some customers", c), Message: "We are investigating errors.",
			Impact: incidents.ImpactMinor, Components: []incidents.ComponentUpdate{{Component: c, Status: incidents.PartialOutage}}, Actor: actor})
		if err != nil {
			return nil, err
		}
		clock.Store(at.Add(20 * time.Minute).UnixNano())
		if _, err := st.PostUpdate(ctx, in.ID, incidents.Update{Status: incidents.StatusIdentified, Message: "We found the cause and are fixing it.", Actor: actor}); err != nil {
			return nil, err
		}
		clock.Store(at.Add(50 * time.Minute).UnixNano())
		if _, err := st.PostUpdate(ctx, in.ID, incidents.Update{Status: incidents.StatusResolved, Message: "Resolved. Sign-in works for everyone again.", Actor: actor,
			Components: []incidents.ComponentUpdate{{Component: c, Status: incidents.Operational}}}); err != nil {
			return nil, err
		}
	}
	clock.Store(now.Add(-30 * time.Minute).UnixNano())
	if _, err := st.CreateIncident(ctx, incidents.NewIncident{Title: "Two-step codes rejected", Message: "Valid codes are rejected at the second step.",
		Impact: incidents.ImpactMajor, Components: []incidents.ComponentUpdate{{Component: "Two-step authentication", Status: incidents.PartialOutage}}, Actor: actor}); err != nil {
		return nil, err
	}
	// From here on the Store runs on the real clock.
	return incidents.NewStore(pool, incidents.Config{Components: comps}, incidents.Options{}), nil
}

// bareHandler writes the exported gzip bytes of "/" and summary.json from
// memory with the fewest headers a browser needs.
func bareHandler(dir string) http.Handler {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			log.Fatal(err)
		}
		return b
	}
	home, summary := read("index.html.gz"), read("api/v2/summary.json.gz")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ctype := home, "text/html; charset=utf-8"
		if r.URL.Path == "/api/v2/summary.json" {
			body, ctype = summary, "application/json; charset=utf-8"
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Encoding", "gzip")
		_, _ = w.Write(body)
	})
}

func listen(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

func startNginx(tmp, root string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(tmp, "nginx.conf")
	err = os.WriteFile(conf, fmt.Appendf(nil, `worker_processes %d;
daemon off;
pid %s/nginx.pid;
error_log %s/nginx.err;
events { worker_connections 4096; }
http {
	access_log off;
	include /etc/nginx/mime.types;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	server {
		listen %s;
		root %s;
		index index.html;
		gzip_static on;
		location / { try_files $uri $uri/index.html =404; }
	}
}
`, runtime.NumCPU(), tmp, tmp, addr, root), 0o644)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("nginx", "-c", conf, "-e", filepath.Join(tmp, "nginx.err"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	base := "http://" + addr
	nginxBase, nginxPID = base, cmd.Process.Pid
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			_ = cmd.Process.Kill()
			return "", nil, fmt.Errorf("nginx did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return base, func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }, nil
}

var repeat = 3

// nginxBase and nginxPID say which server a URL reaches, for its CPU time.
var (
	nginxBase string
	nginxPID  int
)

func cpuOf(url string) func() time.Duration {
	if nginxBase != "" && strings.HasPrefix(url, nginxBase) {
		return func() time.Duration { return procCPU(nginxPID) }
	}
	return selfCPU
}

func median(rs []wrkResult) wrkResult {
	rps := make([]float64, len(rs))
	p50 := make([]time.Duration, len(rs))
	p99 := make([]time.Duration, len(rs))
	for i, r := range rs {
		rps[i], p50[i], p99[i] = r.rps, r.p50, r.p99
	}
	slices.Sort(rps)
	slices.Sort(p50)
	slices.Sort(p99)
	// CPU per request: the total over all rounds.
	var cpu time.Duration
	var reqs int64
	for _, r := range rs {
		cpu += r.cpu
		reqs += r.reqs
	}
	return wrkResult{rps: rps[len(rs)/2], p50: p50[len(rs)/2], p99: p99[len(rs)/2], cpu: cpu, reqs: reqs}
}

type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	reqs     int64
	cpu      time.Duration // the server's CPU time during the run
}

// cpuPerReq is the server's CPU time per request served.
func (r wrkResult) cpuPerReq() time.Duration {
	if r.reqs == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.reqs)
}

// selfCPU is this process's CPU time (the Go servers run in it).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time of a process and its children (nginx's
// workers), from /proc, in clock ticks of 10 ms.
func procCPU(pid int) time.Duration {
	var total time.Duration
	pids := []int{pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		st := string(b)
		fs := strings.Fields(st[strings.LastIndexByte(st, ')')+2:])
		ut, _ := strconv.ParseInt(fs[11], 10, 64)
		stt, _ := strconv.ParseInt(fs[12], 10, 64)
		total += time.Duration(ut+stt) * 10 * time.Millisecond
	}
	return total
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reqRe = regexp.MustCompile(`(\d+) requests in`)
	pctRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func wrk(url string, dur time.Duration, conns, threads int) (wrkResult, error) {
	cpu := cpuOf(url)
	before := cpu()
	out, err := exec.Command("wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", dur.String(), "--latency",
		"-H", "Accept-Encoding: gzip", url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %v\n%s", url, err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		return wrkResult{}, fmt.Errorf("wrk %s: errors\n%s", url, out)
	}
	var r wrkResult
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk %s: no Requests/sec\n%s", url, out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	r.cpu = cpu() - before
	if m := reqRe.FindSubmatch(out); m != nil {
		r.reqs, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	for _, m := range pctRe.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(m[3])]
		d := time.Duration(v * float64(unit))
		if string(m[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	return r, nil
}

var client = &http.Client{Transport: &http.Transport{DisableCompression: true}}

func fetch(url string, gzip bool) []byte {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		log.Fatalf("%s: %d", url, resp.StatusCode)
	}
	return b
}

func mustGet(url string) []byte      { return fetch(url, true) }
func mustGetPlain(url string) []byte { return fetch(url, false) }
func same(a, b []byte) bool          { return string(a) == string(b) }
