// Command detection measures how long Candor takes from a fault in the
// service it watches to people knowing about it. It runs the real candor
// binary (serve, with the demo's probes and its own embedded PostgreSQL in a
// temporary data directory) and the demo login target (candor demo-target),
// with a Slack-compatible receiver on loopback, and injects faults one after
// another through the target's /_fault. For each fault it records, from the
// moment the fault was injected:
//
//   - opened: the incident's detected_at (Candor's own record, read from its
//     database);
//   - page: the incident linked from the public home page "/";
//   - api: the incident in /api/v2/incidents/unresolved.json;
//   - slack public / slack on-call: the incident's root message posted in
//     each channel.
//
// Security incidents are not public until a person publishes them: for them
// only opened and the on-call post are measured, and the public page and
// the public channel are checked never to show them.
//
// Each fault is injected after a random delay of up to one probe interval,
// so that faults land at every point of the probes' schedule. Then the
// fault is cleared and the incident followed to resolved (the
// configuration recovers after one good run and resolves after a quiet
// period of one second, so that each fault opens a new incident) before the
// next fault. Run it by hand (bench/detection/run.sh), not in CI.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/internal/pgcluster"
)

func main() {
	bin := flag.String("candor", "", "the candor binary (go build ./cmd/candor)")
	faults := flag.Int("faults", 20, "faults injected one after another")
	modes := flag.String("modes", "events_down,error:totp,error:dashboard,skip_2sa,accept_any_code",
		"fault modes taken in turn (mode or mode:step)")
	interval := flag.Duration("interval", 15*time.Second, "probe interval (the demo's is 15s)")
	wait := flag.Duration("wait", 3*time.Minute, "longest wait for each phase of a fault")
	keep := flag.Bool("keep", false, "keep the temporary directory (configuration, logs, data)")
	flag.Parse()
	log.SetFlags(0)
	if *bin == "" {
		log.Fatal("-candor is required (bench/detection/run.sh builds it)")
	}
	if err := run(*bin, *faults, strings.Split(*modes, ","), *interval, *wait, *keep); err != nil {
		log.Fatal(err)
	}
}

// receiver answers the Slack Web API methods the relay uses and records
// when each root message (a post without thread_ts) arrives.
type receiver struct {
	mu    sync.Mutex
	seq   int
	roots []post
}

type post struct {
	at      time.Time
	channel string
	text    string // every form value, joined
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	switch strings.TrimPrefix(r.URL.Path, "/api/") {
	case "auth.test":
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "https://bench.slack.com/", "team": "bench", "user": "candor", "team_id": "T1", "user_id": "U1", "bot_id": "B1"})
	case "chat.postMessage":
		now := time.Now()
		rc.mu.Lock()
		rc.seq++
		ts := fmt.Sprintf("1700000000.%06d", rc.seq)
		if r.Form.Get("thread_ts") == "" {
			var all []string
			for _, vs := range r.Form {
				all = append(all, vs...)
			}
			rc.roots = append(rc.roots, post{at: now, channel: r.Form.Get("channel"), text: strings.Join(all, "\n")})
		}
		rc.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.Form.Get("channel"), "ts": ts})
	case "chat.update":
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.Form.Get("channel"), "ts": r.Form.Get("ts")})
	case "conversations.history", "conversations.replies":
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": []any{}, "has_more": false})
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "unknown_method"})
	}
}

// root is when the first root message linking incident id reached channel.
func (rc *receiver) root(channel string, id int64) (time.Time, bool) {
	link := regexp.MustCompile(`/incidents/` + strconv.FormatInt(id, 10) + `\b`)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, p := range rc.roots {
		if p.channel == channel && link.MatchString(p.text) {
			return p.at, true
		}
	}
	return time.Time{}, false
}

const (
	publicChannel = "CBENCHPUBLIC"
	oncallChannel = "CBENCHONCALL"
)

// sample is one fault's figures; a zero duration was not seen.
type sample struct {
	mode                     string
	id                       int64
	class                    string
	security                 bool
	opened, seen             time.Duration // detected_at − injection; when the poll saw the row
	page, api                time.Duration
	slackPublic, slackOncall time.Duration
	resolved                 time.Duration // from clearing the fault
	leaked                   bool          // a security incident showed publicly
	opens                    int           // incidents the fault opened (one is right)
	missing                  []string
	phase                    time.Duration // injection time past a multiple of the interval
}

func run(bin string, n int, modes []string, interval, wait time.Duration, keep bool) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "candor-bench-detection-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Printf("# directory kept: %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // the server runs as another user when we are root
		return err
	}
	listenAddr, demoAddr := freeAddr(), freeAddr()

	rc := &receiver{}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(sln, rc) }()

	// The demo configuration with this run's addresses, a Slack section and
	// a policy that resolves quickly once the fault is cleared.
	out, err := exec.Command(bin, "demo-config").Output()
	if err != nil {
		return fmt.Errorf("candor demo-config: %w", err)
	}
	cfg := string(out)
	cfg = strings.ReplaceAll(cfg, "http://127.0.0.1:8081", "http://"+demoAddr)
	cfg = strings.ReplaceAll(cfg, "url: http://127.0.0.1:8080", "url: http://"+listenAddr)
	for key, v := range map[string]string{"recover_after": "1", "quiet_period": "1s", "cooldown": "1s"} {
		re := regexp.MustCompile(`(?m)^(\s*` + key + `:\s*)\S+`)
		if !re.MatchString(cfg) {
			return fmt.Errorf("demo-config has no %s to set", key)
		}
		cfg = re.ReplaceAllString(cfg, "${1}"+v)
	}
	cfg += fmt.Sprintf(`
notify:
  slack:
    token: ${CANDOR_BENCH_SLACK_TOKEN}
    public_channel: %s
    oncall_channel: %s
    api_url: http://%s/api/
`, publicChannel, oncallChannel, sln.Addr())
	cfgPath := filepath.Join(tmp, "candor.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	env := append(withoutDatabaseURL(os.Environ()), "CANDOR_BENCH_SLACK_TOKEN=xoxb-bench-0000-not-a-token")
	check := exec.Command(bin, "check", "--config", cfgPath)
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		return fmt.Errorf("candor check: %v\n%s", err, out)
	}

	target, err := start(bin, env, filepath.Join(tmp, "demo-target.log"), "demo-target", "--listen", demoAddr)
	if err != nil {
		return err
	}
	defer stop(target)
	dataDir := filepath.Join(tmp, "data")
	serveLog := filepath.Join(tmp, "serve.log")
	serve, err := start(bin, env, serveLog, "serve", "--config", cfgPath, "--listen", listenAddr, "--data-dir", dataDir)
	if err != nil {
		return err
	}
	defer stop(serve)
	base := "http://" + listenAddr
	if err := poll(2*time.Minute, func() (bool, error) {
		if serve.exited() {
			return false, errors.New("candor serve exited")
		}
		_, code := get(base + "/readyz")
		return code == 200, nil
	}); err != nil {
		return fmt.Errorf("candor serve did not become ready (log: %s): %w", serveLog, err)
	}
	pool, err := pgxpool.New(ctx, pgcluster.ConnStringFor(filepath.Join(dataDir, "postgres"), "candor"))
	if err != nil {
		return err
	}
	defer pool.Close()

	// Warm up: every probe has run and nothing is open.
	if err := poll(wait, func() (bool, error) {
		var probes, open int
		if err := pool.QueryRow(ctx, `select count(distinct probe) from probe_results where outcome = 'ok'`).Scan(&probes); err != nil {
			return false, err
		}
		if err := pool.QueryRow(ctx, `select count(*) from incidents where resolved_at is null`).Scan(&open); err != nil {
			return false, err
		}
		return probes >= 3 && open == 0, nil
	}); err != nil {
		return fmt.Errorf("warm-up: %w (log: %s)", err, serveLog)
	}

	fmt.Printf("# %s, %d CPUs, load average %s at start; probes every %s, open_after 2, recover_after 1, quiet_period 1s\n",
		runtime.Version(), runtime.NumCPU(), loadavg(), interval)
	fmt.Printf("# seconds from injecting the fault\n")
	fmt.Printf("# phase: when the fault was injected, in seconds past a multiple of the interval (runs start about then)\n")
	fmt.Printf("%-3s %-16s %5s %-5s %-12s %7s %7s %7s %7s %8s %8s %9s\n", "#", "fault", "phase", "id", "class", "opened", "seen", "page", "api", "slack-pub", "slack-oc", "resolved*")
	var samples []sample
	var loads []string
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for i := range n {
		mode := modes[i%len(modes)]
		// A random phase against the probes' schedule: without it every
		// fault would land at the same point of a run, since the previous
		// one resolved at a fixed point of the schedule.
		time.Sleep(time.Duration(rnd.Int64N(int64(interval))))
		s, err := oneFault(ctx, pool, rc, base, "http://"+demoAddr, mode, interval, wait)
		if err != nil {
			return fmt.Errorf("fault %d (%s): %w (log: %s)", i+1, mode, err, serveLog)
		}
		samples = append(samples, s)
		loads = append(loads, strings.SplitN(loadavg(), "/", 2)[0])
		fmt.Printf("%-3d %-16s %5s %-5d %-12s %7s %7s %7s %7s %8s %8s %9s%s\n", i+1, mode, secs(s.phase), s.id, s.class,
			secs(s.opened), secs(s.seen), secs(s.page), secs(s.api), secs(s.slackPublic), secs(s.slackOncall), secs(s.resolved), notes(s))
	}
	fmt.Printf("# * resolved: from clearing the fault. Load average (1 min) after each fault: %s\n", strings.Join(loads, " "))

	aim := 2*interval + 2*time.Second
	fmt.Printf("\n## Distribution (aim: p95 under two probe intervals plus 2 s = %s)\n\n", aim)
	fmt.Printf("| from fault injected to | faults | p50 | p95 | max |\n|---|---:|---:|---:|---:|\n")
	pick := func(name string, keep func(sample) bool, f func(sample) time.Duration) {
		var ds []time.Duration
		missing := 0
		for _, s := range samples {
			if !keep(s) {
				continue
			}
			if d := f(s); d > 0 {
				ds = append(ds, d)
			} else {
				missing++
			}
		}
		if len(ds) == 0 {
			fmt.Printf("| %s | 0 | | | |\n", name)
			return
		}
		slices.Sort(ds)
		extra := ""
		if missing > 0 {
			extra = fmt.Sprintf(" (%d not seen)", missing)
		}
		fmt.Printf("| %s | %d%s | %s s | %s s | %s s |\n", name, len(ds), extra, secs(pct(ds, 50)), secs(pct(ds, 95)), secs(ds[len(ds)-1]))
	}
	all := func(sample) bool { return true }
	pub := func(s sample) bool { return !s.security }
	sec := func(s sample) bool { return s.security }
	pick("incident opened (detected_at), all faults", all, func(s sample) time.Duration { return s.opened })
	pick("incident opened, public incidents", pub, func(s sample) time.Duration { return s.opened })
	pick("incident opened, security incidents", sec, func(s sample) time.Duration { return s.opened })
	pick("on the public home page", pub, func(s sample) time.Duration { return s.page })
	pick("in unresolved.json", pub, func(s sample) time.Duration { return s.api })
	pick("Slack root post, public channel", pub, func(s sample) time.Duration { return s.slackPublic })
	pick("Slack root post, on-call channel, all faults", all, func(s sample) time.Duration { return s.slackOncall })
	pick("resolved, from clearing the fault", all, func(s sample) time.Duration { return s.resolved })
	leaks := 0
	for _, s := range samples {
		if s.leaked {
			leaks++
		}
	}
	fmt.Printf("\nsecurity incidents shown on the public page, in unresolved.json or the public channel: %d\n", leaks)
	split := 0
	for _, s := range samples {
		if s.opens > 1 {
			split++
		}
	}
	fmt.Printf("faults that opened more than one incident: %d of %d\n", split, len(samples))
	fmt.Printf("load average at end: %s\n", loadavg())
	return nil
}

var securityModes = map[string]bool{"skip_2sa": true, "accept_any_code": true}

// oneFault injects one fault, measures until everyone who should know does,
// clears it and waits for the incident to resolve.
func oneFault(ctx context.Context, pool *pgxpool.Pool, rc *receiver, base, target, mode string, interval, wait time.Duration) (sample, error) {
	s := sample{mode: mode, security: securityModes[strings.SplitN(mode, ":", 2)[0]]}
	var maxID int64
	if err := pool.QueryRow(ctx, `select coalesce(max(id), 0) from incidents`).Scan(&maxID); err != nil {
		return s, err
	}
	f := map[string]any{"mode": mode}
	if m, step, ok := strings.Cut(mode, ":"); ok {
		f = map[string]any{"mode": m, "step": step}
	}
	body, _ := json.Marshal(f)
	t0 := time.Now()
	s.phase = time.Duration(t0.UnixNano() % int64(interval))
	if err := do("POST", target+"/_fault", body); err != nil {
		return s, err
	}
	done := func() bool {
		if s.id == 0 || s.slackOncall == 0 {
			return false
		}
		return s.security || (s.page > 0 && s.api > 0 && s.slackPublic > 0)
	}
	deadline := time.Now().Add(wait)
	var apiRE, pageRE *regexp.Regexp
	for !done() && time.Now().Before(deadline) {
		now := time.Now()
		if s.id == 0 {
			var detected time.Time
			err := pool.QueryRow(ctx, `select id, classification, detected_at from incidents where id > $1 order by id limit 1`, maxID).Scan(&s.id, &s.class, &detected)
			if err == nil {
				s.opened, s.seen = detected.Sub(t0), now.Sub(t0)
				apiRE = regexp.MustCompile(`"id":\s*"?` + strconv.FormatInt(s.id, 10) + `"?[,}]`)
				pageRE = regexp.MustCompile(`/incidents/` + strconv.FormatInt(s.id, 10) + `"`)
			} else if !strings.Contains(err.Error(), "no rows") {
				return s, err
			}
		}
		if s.id != 0 {
			if s.page == 0 {
				if b, code := get(base + "/"); code == 200 && pageRE.Match(b) {
					s.page = time.Since(t0)
				}
			}
			if s.api == 0 {
				if b, code := get(base + "/api/v2/incidents/unresolved.json"); code == 200 && apiRE.Match(b) {
					s.api = time.Since(t0)
				}
			}
			if at, ok := rc.root(publicChannel, s.id); ok && s.slackPublic == 0 {
				s.slackPublic = at.Sub(t0)
			}
			if at, ok := rc.root(oncallChannel, s.id); ok && s.slackOncall == 0 {
				s.slackOncall = at.Sub(t0)
			}
			if s.security && (s.page > 0 || s.api > 0 || s.slackPublic > 0) {
				s.leaked = true
			}
		}
		time.Sleep(100 * time.Millisecond) // the poll period, not synchronisation
	}
	if s.id == 0 {
		s.missing = append(s.missing, "no incident")
	}
	// A security incident must not show publicly: look once more.
	if s.security && s.id != 0 {
		if b, _ := get(base + "/"); pageRE.Match(b) {
			s.leaked = true
		}
		if b, _ := get(base + "/api/v2/incidents/unresolved.json"); apiRE.Match(b) {
			s.leaked = true
		}
		if _, ok := rc.root(publicChannel, s.id); ok {
			s.leaked = true
		}
	}
	tc := time.Now()
	if err := do("DELETE", target+"/_fault", nil); err != nil {
		return s, err
	}
	if err := poll(wait, func() (bool, error) {
		var open int
		var resolved *time.Time
		if s.id != 0 {
			if err := pool.QueryRow(ctx, `select resolved_at from incidents where id = $1`, s.id).Scan(&resolved); err != nil {
				return false, err
			}
			if resolved != nil && s.resolved == 0 {
				s.resolved = resolved.Sub(tc)
			}
		}
		if err := pool.QueryRow(ctx, `select count(*) from incidents where resolved_at is null`).Scan(&open); err != nil {
			return false, err
		}
		return open == 0, nil
	}); err != nil {
		return s, fmt.Errorf("incidents still open after clearing the fault: %w", err)
	}
	if err := pool.QueryRow(ctx, `select count(*) from incidents where id > $1`, maxID).Scan(&s.opens); err != nil {
		return s, err
	}
	return s, nil
}

func notes(s sample) string {
	var n []string
	if s.security {
		n = append(n, "security: not public")
	}
	if s.leaked {
		n = append(n, "LEAKED")
	}
	if s.opens > 1 {
		n = append(n, fmt.Sprintf("%d incidents", s.opens))
	}
	n = append(n, s.missing...)
	if len(n) == 0 {
		return ""
	}
	return "  " + strings.Join(n, ", ")
}

func pct(ds []time.Duration, p int) time.Duration {
	i := (p*len(ds)+99)/100 - 1 // nearest rank
	return ds[max(0, min(i, len(ds)-1))]
}

func secs(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func withoutDatabaseURL(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(e string) bool {
		return strings.HasPrefix(e, "DATABASE_URL=") || strings.HasPrefix(e, "CANDOR_")
	})
}

// proc is a started process; done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func start(bin string, env []string, logPath string, args ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); lf.Close(); close(p.done) }()
	return p, nil
}

// stop asks a process to finish (candor stops its PostgreSQL) and kills it
// if it has not after 30 s.
func stop(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func get(u string) ([]byte, int) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

func do(method, u string, body []byte) error {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s %s", method, (&url.URL{Path: req.URL.Path}).String(), resp.Status, b)
	}
	return nil
}

// poll calls f every 100 ms until it says done, fails, or d has passed.
func poll(d time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loadavg is the machine's load average (1, 5 and 15 minutes).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], "/")
}
