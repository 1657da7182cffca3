// Command pagebuild measures how long site.Site.Rebuild takes with 1, 30
// and 90 days of history behind the page, each in its own database on a
// private PostgreSQL cluster: five components, three probes in three
// locations with hourly and daily rollups for every day, and an incident
// every three days with three updates (investigating, identified,
// resolved), plus one open incident. Rebuild must not grow with history.
//
// For each history it times, over -n rounds each:
//
//   - full: a new Site's first Rebuild (reads everything, renders and
//     compresses every page, feed and JSON document);
//   - unchanged: Rebuild again with nothing changed (reads, hashes, keeps the
//     snapshot);
//   - one update: an update committed to the open incident, then Rebuild
//     (renders again what the update touched); only Rebuild is timed.
//
// Run it by hand (bench/pagebuild/run.sh), not in CI.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/internal/pgcluster"
	"github.com/candorhq/candor/site"
)

func main() {
	rounds := flag.Int("n", 20, "rebuilds timed in each case")
	histories := flag.String("days", "1,30,90", "days of history, comma-separated")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the after-one-update rebuilds of the last history to this file")
	flag.IntVar(&every, "every", 3, "days between resolved incidents (a large value: rollups alone)")
	flag.BoolVar(&listChanged, "changed", false, "list the responses one update changes, with their sizes")
	flag.Parse()
	log.SetFlags(0)
	var days []int
	for _, f := range strings.Split(*histories, ",") {
		d, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || d < 1 {
			log.Fatalf("-days: %q is not a number of days", f)
		}
		days = append(days, d)
	}
	if err := run(days, *rounds); err != nil {
		log.Fatal(err)
	}
}

var (
	cpuProfile  string
	listChanged bool
	every       = 3
	probeNames  = []string{"login", "login-remembered", "api"}
	locations   = []string{"eu-west", "us-east", "ap-south"}
	comps       = []incidents.Component{
		{Name: "Login", Group: "Sign-in", Probes: []string{"login"}},
		{Name: "Two-step authentication", Group: "Sign-in", Steps: []string{"login/totp"}},
		{Name: "Remembered devices", Group: "Sign-in", Probes: []string{"login-remembered"}},
		{Name: "API", Group: "Platform", Probes: []string{"api"}},
		{Name: "Dashboard", Group: "Platform", Steps: []string{"login/dashboard"}},
	}
)

type result struct {
	days                      int
	incidents, updates        int
	rollupsDaily, rollupsHour int
	full, unchanged, changed  []time.Duration
	homeBytes, paths          int
}

func run(days []int, rounds int) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "candor-bench-pagebuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // the server runs as another user when we are root
		return err
	}
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tmp, "pg")})
	if err != nil {
		return err
	}
	defer cl.Stop(context.Background())
	admin, err := pgxpool.New(ctx, cl.ConnString(pgcluster.Database))
	if err != nil {
		return err
	}
	defer admin.Close()

	fmt.Printf("# %s, %d CPUs, PostgreSQL durable (as serve runs it), an incident every %d days, %d rebuilds per case, load average %s at start\n",
		runtime.Version(), runtime.NumCPU(), every, rounds, loadavg())
	var results []result
	for _, d := range days {
		name := fmt.Sprintf("history_%d", d)
		if _, err := admin.Exec(ctx, "create database "+name); err != nil {
			return err
		}
		pool, err := pgxpool.New(ctx, cl.ConnString(name))
		if err != nil {
			return err
		}
		r, err := measure(ctx, pool, d, rounds)
		pool.Close()
		if err != nil {
			return fmt.Errorf("%d days: %w", d, err)
		}
		results = append(results, r)
		fmt.Printf("# %d days done, load average %s\n", d, loadavg())
	}

	fmt.Printf("\n| history | incidents (updates) | daily / hourly rollup rows | responses | home page | full rebuild | unchanged | after one update |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Printf("| %d days | %d (%d) | %d / %d | %d | %d bytes | %s | %s | %s |\n", r.days, r.incidents, r.updates, r.rollupsDaily, r.rollupsHour, r.paths, r.homeBytes,
			summary(r.full), summary(r.unchanged), summary(r.changed))
	}
	fmt.Printf("\nmedian ms (p95 ms) of %d rebuilds each; load average at end %s\n", rounds, loadavg())
	return nil
}

func measure(ctx context.Context, pool *pgxpool.Pool, days, rounds int) (result, error) {
	r := result{days: days}
	if err := migrate.Up(ctx, pool); err != nil {
		return r, err
	}
	open, err := seed(ctx, pool, days, &r)
	if err != nil {
		return r, err
	}
	if _, err := pool.Exec(ctx, "vacuum analyze"); err != nil {
		return r, err
	}
	store := incidents.NewStore(pool, incidents.Config{Components: comps}, incidents.Options{})
	page := site.Page{ID: "bench", Name: "Example Status", URL: "https://status.example.com"}
	newSite := func() (*site.Site, error) {
		return site.New(site.Options{Store: store, Pool: pool, Page: page})
	}
	// One untimed round warms the caches of both sides.
	s, err := newSite()
	if err != nil {
		return r, err
	}
	if err := s.Rebuild(ctx); err != nil {
		return r, err
	}
	home, ok := s.Snapshot().Body("/")
	if !ok {
		return r, fmt.Errorf("no home page in the snapshot")
	}
	r.homeBytes = len(home)
	r.paths = len(s.Snapshot().Paths())
	for range rounds {
		s, err := newSite()
		if err != nil {
			return r, err
		}
		t := time.Now()
		if err := s.Rebuild(ctx); err != nil {
			return r, err
		}
		r.full = append(r.full, time.Since(t))
	}
	for range rounds {
		t := time.Now()
		if err := s.Rebuild(ctx); err != nil {
			return r, err
		}
		r.unchanged = append(r.unchanged, time.Since(t))
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return r, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return r, err
		}
		defer pprof.StopCPUProfile()
	}
	for i := range rounds {
		before := s.Snapshot()
		if _, err := store.PostUpdate(ctx, open, incidents.Update{Status: incidents.StatusIdentified,
			Message: fmt.Sprintf("Still working on it (update %d).", i+1), Actor: "person:bench@example.com"}); err != nil {
			return r, err
		}
		t := time.Now()
		if err := s.Rebuild(ctx); err != nil {
			return r, err
		}
		r.changed = append(r.changed, time.Since(t))
		if listChanged && i == 0 {
			after, total := s.Snapshot(), 0
			for _, p := range after.Paths() {
				a, _ := after.Body(p)
				if b, ok := before.Body(p); !ok || string(a) != string(b) {
					fmt.Printf("%d days: %s changed, %d bytes\n", days, p, len(a))
					total += len(a)
				}
			}
			fmt.Printf("%d days: %d bytes changed by one update\n", days, total)
		}
	}
	return r, nil
}

// seed writes days of rollups and an incident every three days, and opens
// one incident now; it returns the open incident's id.
func seed(ctx context.Context, pool *pgxpool.Pool, days int, r *result) (int64, error) {
	now := time.Now().UTC()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	nowf := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	st := incidents.NewStore(pool, incidents.Config{Components: comps}, incidents.Options{Now: nowf})
	if err := st.SyncComponents(ctx); err != nil {
		return 0, err
	}
	// Rollups: a run every 15 s (240 an hour, 5,760 a day) per probe and
	// location, a bad hour now and then: hourly rows for the last days × 24
	// hours, daily rows for the last days UTC days (today included).
	hour := now.Truncate(time.Hour)
	day := now.Truncate(24 * time.Hour)
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	for pi, p := range probeNames {
		for li, loc := range locations {
			failedOn := map[time.Time]int{}
			for h := range days * 24 {
				bucket := hour.Add(-time.Duration(h) * time.Hour)
				failed := 0
				if (h+pi*7+li*3)%97 == 0 {
					failed = 20 + h%60
				}
				failedOn[bucket.Truncate(24*time.Hour)] += failed
				if _, err := tx.Exec(ctx, `insert into probe_rollups_hourly (probe, location, bucket, runs, ok, degraded, failed, with_signals, duration_ms_sum, duration_ms_max)
					values ($1, $2, $3, 240, $4, 0, $5, 0, 96000, 900)`, p, loc, bucket, 240-failed, failed); err != nil {
					return 0, err
				}
				r.rollupsHour++
			}
			for d := range days {
				bucket := day.AddDate(0, 0, -d)
				failed := failedOn[bucket]
				if _, err := tx.Exec(ctx, `insert into probe_rollups_daily (probe, location, bucket, runs, ok, degraded, failed, with_signals, duration_ms_sum, duration_ms_max)
					values ($1, $2, $3, 5760, $4, 0, $5, 0, 2304000, 900)`, p, loc, bucket, 5760-failed, failed); err != nil {
					return 0, err
				}
				r.rollupsDaily++
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	actor := "person:bench@example.com"
	for i := 0; i*every < days; i++ {
		at := now.AddDate(0, 0, -days+1+every*i).Add(-2 * time.Hour)
		clock.Store(at.UnixNano())
		c := comps[i%len(comps)].Name
		in, err := st.CreateIncident(ctx, incidents.NewIncident{Title: fmt.Sprintf("%s errors for some customers", c), Message: "We are investigating errors.",
			Impact: incidents.ImpactMinor, Components: []incidents.ComponentUpdate{{Component: c, Status: incidents.PartialOutage}}, Actor: actor})
		if err != nil {
			return 0, err
		}
		clock.Store(at.Add(20 * time.Minute).UnixNano())
		if _, err := st.PostUpdate(ctx, in.ID, incidents.Update{Status: incidents.StatusIdentified, Message: "We found the cause and are fixing it.", Actor: actor}); err != nil {
			return 0, err
		}
		clock.Store(at.Add(50 * time.Minute).UnixNano())
		if _, err := st.PostUpdate(ctx, in.ID, incidents.Update{Status: incidents.StatusResolved, Message: "Resolved. Sign-in works for everyone again.", Actor: actor,
			Components: []incidents.ComponentUpdate{{Component: c, Status: incidents.Operational}}}); err != nil {
			return 0, err
		}
		r.incidents++
		r.updates += 3
	}
	clock.Store(now.Add(-30 * time.Minute).UnixNano())
	in, err := st.CreateIncident(ctx, incidents.NewIncident{Title: "Two-step codes rejected", Message: "Valid codes are rejected at the second step.",
		Impact: incidents.ImpactMajor, Components: []incidents.ComponentUpdate{{Component: "Two-step authentication", Status: incidents.PartialOutage}}, Actor: actor})
	if err != nil {
		return 0, err
	}
	r.incidents++
	r.updates++
	return in.ID, nil
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) }
	i := (95*len(s)+99)/100 - 1
	return fmt.Sprintf("%s ms (%s)", ms(s[len(s)/2]), ms(s[max(0, min(i, len(s)-1))]))
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
