// Command notify benchmarks the outbox relay against a local Slack-compatible
// receiver (auth.test, chat.postMessage, chat.update over loopback HTTP,
// answering at once) on a private PostgreSQL cluster:
//
//  1. latency: updates posted one at a time through incidents.Store; for
//     each, the time from PostUpdate's return (the commit) to the receiver
//     getting its thread reply in the on-call channel, woken by
//     LISTEN/NOTIFY; p50, p95, p99 and max;
//  2. throughput: a backlog of incidents with updates committed while no
//     relay runs, then one relay started: deliveries per second until every
//     delivery is delivered (each a root post or update plus a thread reply,
//     with the idempotency bookkeeping in PostgreSQL);
//  3. webhooks: the same for signed, Statuspage-shaped webhook deliveries to
//     subscribers on a local receiver.
//
// Run it by hand (bench/notify/run.sh), not in CI.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/internal/pgcluster"
	"github.com/candorhq/candor/notify"
)

func main() {
	updates := flag.Int("updates", 300, "updates timed one by one for commit-to-Slack latency")
	gap := flag.Duration("gap", 20*time.Millisecond, "pause between timed updates")
	backlogIncidents := flag.Int("incidents", 200, "incidents in the throughput backlog")
	backlogUpdates := flag.Int("per", 10, "updates per incident in the backlog")
	workers := flag.Int("workers", 4, "relay workers")
	subscribers := flag.Int("subscribers", 4, "webhook subscribers for the webhook throughput")
	conns := flag.Int("conns", 16, "database pool size")
	fast := flag.Bool("fast", false, "PostgreSQL without fsync (as tests run it); default: durable, as serve runs it")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*updates, *gap, *backlogIncidents, *backlogUpdates, *workers, *subscribers, *conns, *fast); err != nil {
		log.Fatal(err)
	}
}

// receiver is a Slack-compatible endpoint that records when each reply arrives.
type receiver struct {
	seq   atomic.Int64
	posts atomic.Int64
	edits atomic.Int64
	mu    sync.Mutex
	seen  map[string]time.Time // reply text → arrival
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	switch strings.TrimPrefix(r.URL.Path, "/api/") {
	case "auth.test":
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user_id": "U1", "team_id": "T1"})
	case "chat.postMessage":
		now := time.Now()
		rc.posts.Add(1)
		if r.Form.Get("thread_ts") != "" {
			rc.mu.Lock()
			rc.seen[r.Form.Get("channel")+"\x00"+lastLine(r.Form.Get("text"))] = now
			rc.mu.Unlock()
		}
		ts := fmt.Sprintf("1700000000.%06d", rc.seq.Add(1))
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.Form.Get("channel"), "ts": ts})
	case "chat.update":
		rc.edits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.Form.Get("channel"), "ts": r.Form.Get("ts")})
	case "conversations.history", "conversations.replies":
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": []any{}})
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "unknown_method"})
	}
}

// loadavg is the machine's 1-minute load average (other work skews the figures).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (rc *receiver) arrived(key string) (time.Time, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	t, ok := rc.seen[key]
	return t, ok
}

func run(updates int, gap time.Duration, nInc, per, workers, subscribers, conns int, fast bool) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "candor-bench-notify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tmp, "pg"), Fast: fast})
	if err != nil {
		return err
	}
	defer cl.Stop(context.Background())
	pcfg, err := pgxpool.ParseConfig(cl.ConnString(pgcluster.Database))
	if err != nil {
		return err
	}
	pcfg.MaxConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrate.Up(ctx, pool); err != nil {
		return err
	}
	store := incidents.NewStore(pool, incidents.Config{Components: []incidents.Component{{Name: "Login"}}}, incidents.Options{})
	if err := store.SyncComponents(ctx); err != nil {
		return err
	}
	rc := &receiver{seen: map[string]time.Time{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cfg := notify.Config{Slack: notify.SlackConfig{Token: config.NewSecret("xoxb-bench"), PublicChannel: "CPUBLIC", OncallChannel: "CONCALL",
		APIURL: srv.URL + "/api/"}}
	newRelay := func() (*notify.Relay, error) {
		return notify.NewRelay(notify.Options{Pool: pool, Config: cfg, PageURL: "https://status.example.com",
			Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler), Workers: workers})
	}
	fmt.Printf("# %s, %d cores, GOMAXPROCS %d, PostgreSQL %s, relay workers %d, pool %d, load average %s\n",
		runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0), map[bool]string{true: "fast (no fsync)", false: "durable"}[fast], workers, conns, loadavg())
	defer func() { fmt.Printf("# load average at the end %s\n", loadavg()) }()

	// 1. Latency, one update at a time.
	relay, err := newRelay()
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	inc, err := store.CreateIncident(ctx, incidents.NewIncident{Title: "Latency", Message: "first", Actor: "person:bench@example.com"})
	if err != nil {
		return err
	}
	var lat []time.Duration
	for i := range updates {
		msg := fmt.Sprintf("latency update %d", i)
		if _, err := store.PostUpdate(ctx, inc.ID, incidents.Update{Message: msg, Actor: "person:bench@example.com"}); err != nil {
			return err
		}
		committed := time.Now()
		deadline := committed.Add(30 * time.Second)
		for {
			if at, ok := rc.arrived("CONCALL\x00" + msg); ok {
				lat = append(lat, at.Sub(committed))
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("update %d not delivered in 30 s", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		time.Sleep(gap)
	}
	stop()
	if err := <-done; err != nil {
		return err
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("commit → Slack reply (on-call), %d updates: p50 %s  p95 %s  p99 %s  max %s\n",
		len(lat), q(.50).Round(10*time.Microsecond), q(.95).Round(10*time.Microsecond), q(.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))

	// 2. Throughput over a backlog.
	t0 := time.Now()
	if err := writeBacklog(ctx, store, nInc, per); err != nil {
		return err
	}
	var rows int64
	if err := pool.QueryRow(ctx, `select count(*) from outbox`).Scan(&rows); err != nil {
		return err
	}
	fmt.Printf("backlog: %d incidents × %d updates written in %s (%d outbox rows in all)\n", nInc, per, time.Since(t0).Round(time.Millisecond), rows)
	posts0, edits0 := rc.posts.Load(), rc.edits.Load()
	relay, err = newRelay()
	if err != nil {
		return err
	}
	rctx, stop = context.WithCancel(ctx)
	defer stop()
	go func() { done <- relay.Run(rctx) }()
	start := time.Now()
	var delivered, pending int64
	for {
		if err := pool.QueryRow(ctx, `select count(*) filter (where state = 'delivered'), count(*) filter (where state <> 'delivered') from notify_deliveries`).Scan(&delivered, &pending); err != nil {
			return err
		}
		var missing int64
		if err := pool.QueryRow(ctx, `select count(*) from outbox o where o.incident_id is not null and not exists (select 1 from notify_deliveries d where d.outbox_id = o.id and d.channel = 'slack:oncall')`).Scan(&missing); err != nil {
			return err
		}
		if pending == 0 && missing == 0 {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("backlog not delivered in 10 minutes: %d pending", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	stop()
	if err := <-done; err != nil {
		return err
	}
	var backlog int64
	if err := pool.QueryRow(ctx, `select count(*) from notify_deliveries d join outbox o on o.id = d.outbox_id where o.created_at >= $1`, t0).Scan(&backlog); err != nil {
		return err
	}
	posts, edits := rc.posts.Load()-posts0, rc.edits.Load()-edits0
	fmt.Printf("throughput: %d deliveries (%d chat.postMessage, %d chat.update) in %s: %.0f deliveries/s, %.0f Slack calls/s\n",
		backlog, posts, edits, took.Round(time.Millisecond), float64(backlog)/took.Seconds(), float64(posts+edits)/took.Seconds())
	stop()

	// 3. Webhooks: subscribers on loopback, a new backlog, a relay for
	// webhooks alone.
	var hits atomic.Int64
	hooksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hits.Add(1)
	}))
	defer hooksSrv.Close()
	hcfg := notify.Config{Webhooks: notify.WebhookConfig{AllowPrivate: true}}
	hrelay, err := notify.NewRelay(notify.Options{Pool: pool, Config: hcfg, PageURL: "https://status.example.com", PageID: "bench",
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler), Workers: workers, Updates: store})
	if err != nil {
		return err
	}
	for i := range subscribers {
		if _, _, err := hrelay.AddWebhook(ctx, notify.NewWebhook{URL: fmt.Sprintf("%s/hook/%d", hooksSrv.URL, i), Actor: "person:bench@example.com"}); err != nil {
			return err
		}
	}
	var before int64
	if err := pool.QueryRow(ctx, `select coalesce(max(id), 0) from outbox`).Scan(&before); err != nil {
		return err
	}
	if err := writeBacklog(ctx, store, nInc/2, per); err != nil {
		return err
	}
	rctx, stop = context.WithCancel(ctx)
	defer stop()
	go func() { done <- hrelay.Run(rctx) }()
	start = time.Now()
	for {
		var pending, missing int64
		if err := pool.QueryRow(ctx, `select count(*) from notify_deliveries where channel like 'webhook:%' and state <> 'delivered'`).Scan(&pending); err != nil {
			return err
		}
		if err := pool.QueryRow(ctx, `select count(*) from outbox o, notify_webhooks w where o.id > $1 and o.public
			and o.kind in ('update_posted', 'status_changed', 'impact_changed', 'component_changed', 'note_published')
			and not exists (select 1 from notify_deliveries d where d.outbox_id = o.id and d.channel = 'webhook:' || w.id)`,
			before).Scan(&missing); err != nil {
			return err
		}
		if pending == 0 && missing == 0 {
			break
		}
		if time.Since(start) > 3*time.Minute {
			return fmt.Errorf("webhooks not delivered in 10 minutes: %d pending", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took = time.Since(start)
	stop()
	if err := <-done; err != nil {
		return err
	}
	fmt.Printf("webhooks: %d signed deliveries to %d subscribers on loopback in %s: %.0f deliveries/s\n",
		hits.Load(), subscribers, took.Round(time.Millisecond), float64(hits.Load())/took.Seconds())
	return nil
}

// writeBacklog commits incidents with updates, eight writers at a time.
func writeBacklog(ctx context.Context, store *incidents.Store, nInc, per int) error {
	var wg sync.WaitGroup
	errs := make(chan error, nInc)
	sem := make(chan struct{}, 8)
	for i := range nInc {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			inc, err := store.CreateIncident(ctx, incidents.NewIncident{Title: fmt.Sprintf("Backlog %d", i), Message: "u0", Actor: "person:bench@example.com"})
			if err != nil {
				errs <- err
				return
			}
			for u := 1; u < per; u++ {
				if _, err := store.PostUpdate(ctx, inc.ID, incidents.Update{Message: fmt.Sprintf("u%d", u), Actor: "person:bench@example.com"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
