package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/internal/pgcluster"
	"github.com/candorhq/candor/internal/pgtest"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/probes/demo"
	"github.com/candorhq/candor/runbooks"
)

// fakeClock is the one clock of a scenario: the demo target's TOTP codes,
// the runner's and the incidents store's time all read it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// scenario is the demo configuration's probes walking the demo login target
// and feeding the incidents store, as `candor serve` wires them, with an
// injected clock.
type scenario struct {
	t        *testing.T
	clk      *fakeClock
	target   *demo.Target
	cfg      *appConfig
	plans    []*probes.Plan
	runner   *probes.Runner
	store    *incidents.Store
	results  *probes.Store
	interval time.Duration
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	return newScenarioOn(t, pgtest.New(t))
}

// newScenarioOn is newScenario on a database of the test's choosing.
func newScenarioOn(t *testing.T, pool *pgxpool.Pool) *scenario {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC)}
	target := demo.New(demo.Options{Now: clk.Now})
	t.Cleanup(target.Close)
	srv := httptest.NewServer(target)
	t.Cleanup(srv.Close)
	cfg, err := parseConfig("demo", []byte(demoConfig(strings.TrimPrefix(srv.URL, "http://"))), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plans, err := compilePlans(cfg.Probes)
	if err != nil {
		t.Fatal(err)
	}
	runner := probes.NewRunner(probes.RunnerOptions{Location: cfg.Location, Now: clk.Now,
		Sleep: func(ctx context.Context, d time.Duration) error { clk.Advance(d); return nil }})
	t.Cleanup(runner.Close)
	set, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	store, err := newIncidentStore(t.Context(), pool, cfg, set, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &scenario{t: t, clk: clk, target: target, cfg: cfg, plans: plans, runner: runner, store: store,
		results: probes.NewStore(pool), interval: 15 * time.Second}
}

// run runs every probe once and moves the clock one interval on, recording nothing.
func (s *scenario) run() []probes.Result {
	var rs []probes.Result
	for _, p := range s.plans {
		rs = append(rs, s.runner.Run(s.t.Context(), p))
		s.clk.Advance(time.Second)
	}
	s.clk.Advance(s.interval - time.Duration(len(s.plans))*time.Second)
	return rs
}

// round runs every probe once, records the results as serve does, and moves
// the clock one interval on. It returns the results.
func (s *scenario) round() []probes.Result {
	s.t.Helper()
	ctx := s.t.Context()
	var rs []probes.Result
	for _, p := range s.plans {
		r := s.runner.Run(ctx, p)
		rs = append(rs, r)
		if err := s.results.Insert(ctx, []probes.Result{r}); err != nil {
			s.t.Fatal(err)
		}
		if _, err := s.store.Observe(ctx, r); err != nil {
			s.t.Fatalf("observe %s: %v", r.Probe, err)
		}
		s.clk.Advance(time.Second)
	}
	s.clk.Advance(s.interval - time.Duration(len(s.plans))*time.Second)
	return rs
}

func (s *scenario) open() []incidents.Incident {
	s.t.Helper()
	incs, err := s.store.List(s.t.Context(), incidents.ListFilter{OpenOnly: true})
	if err != nil {
		s.t.Fatal(err)
	}
	return incs
}

func TestDemoEventsDownOpensOneNonSecurityIncidentWithItsRunbookAndResolves(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	ctx := t.Context()
	for _, r := range s.round() {
		if r.Failed() {
			t.Fatalf("healthy demo: probe %s failed at %s: %s", r.Probe, r.FailedStep, r.Message)
		}
	}
	if err := s.target.SetFault(demo.Fault{Mode: demo.FaultEventsDown}); err != nil {
		t.Fatal(err)
	}
	var firstFailure time.Time
	for i := 0; i < 2; i++ {
		for _, r := range s.round() {
			if r.Failed() && firstFailure.IsZero() {
				firstFailure = r.Start
			}
		}
	}
	open := s.open()
	if len(open) != 1 {
		t.Fatalf("after two failing intervals: %d open incidents, want exactly 1: %+v", len(open), open)
	}
	inc := open[0]
	if inc.Classification != incidents.NonSecurity || !inc.Public {
		t.Errorf("classification %s, public %v; want non_security and public", inc.Classification, inc.Public)
	}
	if !inc.StartedAt.Equal(firstFailure) {
		t.Errorf("incident starts %s, want the first failed run %s", inc.StartedAt, firstFailure)
	}
	if !slicesContain(inc.Components, "Login") {
		t.Errorf("components %v lack Login", inc.Components)
	}
	tl, err := s.store.Timeline(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var runbookIDs []string
	for _, e := range tl {
		if e.Kind == incidents.KindRunbookAttached && e.Event().Runbook != nil {
			runbookIDs = append(runbookIDs, e.Event().Runbook.ID)
		}
	}
	if len(runbookIDs) == 0 || runbookIDs[0] != "login-events-down" {
		t.Errorf("attached runbooks %v; want login-events-down first", runbookIDs)
	}
	ups, err := s.store.Updates(ctx, inc.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	// The first public update is the events runbook's non-security
	// template, rendered with this incident's start time.
	set, _ := runbooks.Load("")
	rb, _ := set.ByID("login-events-down")
	want, err := rb.Render("first_update", runbooks.Incident{Components: inc.Components, StartedAt: firstFailure,
		Classification: "non_security", Cadence: s.store.Policy().Cadence.D})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 || !ups[0].Automatic || ups[0].Body != want {
		t.Errorf("first public update:\n%+v\nwant the runbook's template:\n%s", ups, want)
	}

	s.target.ClearFault()
	for i := 0; i < 3; i++ {
		s.round()
	}
	got, err := s.store.Get(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != incidents.StatusMonitoring {
		t.Fatalf("after three good rounds: status %s, want monitoring", got.Status)
	}
	s.clk.Advance(s.store.Policy().QuietPeriod.D + time.Second)
	if _, err := s.store.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.store.Get(ctx, inc.ID); got.Status != incidents.StatusResolved {
		t.Fatalf("after the quiet period: status %s, want resolved", got.Status)
	}
	note, err := s.store.DraftNote(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	start := firstFailure.UTC().Format("2006-01-02 15:04")
	if !strings.Contains(note, start) {
		t.Errorf("note draft lacks the start %s UTC:\n%s", start, note)
	}
}

func TestDemoSecurityFaultsOpenSecurityIncidentsThatAreNotPublic(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{demo.FaultAcceptAnyCode, demo.FaultSkip2SA} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t)
			s.round()
			if err := s.target.SetFault(demo.Fault{Mode: mode}); err != nil {
				t.Fatal(err)
			}
			s.round()
			s.round()
			open := s.open()
			if len(open) != 1 {
				t.Fatalf("%d open incidents, want 1: %+v", len(open), open)
			}
			inc := open[0]
			if inc.Classification != incidents.Security || inc.Public {
				t.Errorf("classification %s public %v; want security and not public", inc.Classification, inc.Public)
			}
			ev, err := s.store.Evidence(t.Context(), inc.ID)
			if err != nil || len(ev) == 0 {
				t.Errorf("no evidence behind the classification (%v)", err)
			}
			ups, err := s.store.Updates(t.Context(), inc.ID, true)
			if err != nil || len(ups) != 0 {
				t.Errorf("a security incident got public updates: %+v %v", ups, err)
			}
		})
	}
}

func slicesContain(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestProbeResultsTakenDuringADatabaseOutageAreRecordedWhenItReturns(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, startDB := stoppableCluster(t)
	cl := startDB()
	t.Cleanup(func() { _ = cl.Stop(context.Background()) })
	pool, err := connect(ctx, cl.ConnString("candor"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := migrate.Apply(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s := newScenarioOn(t, pool)
	obs := newObserver(s.store, slog.New(slog.DiscardHandler))
	obs.retry = 20 * time.Millisecond
	obsCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { obs.Run(obsCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	for _, r := range s.run() {
		obs.Add(ctx, r)
	}
	eventually(t, "the healthy round to be recorded", func() bool { return obs.Pending() == 0 })

	// PostgreSQL goes away; the login breaks meanwhile.
	if err := cl.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.target.SetFault(demo.Fault{Mode: demo.FaultEventsDown}); err != nil {
		t.Fatal(err)
	}
	var firstFailure time.Time
	for i := 0; i < 2; i++ {
		for _, r := range s.run() {
			if r.Failed() && firstFailure.IsZero() {
				firstFailure = r.Start
			}
			obs.Add(ctx, r)
		}
	}
	if n := obs.Pending(); n != 2*len(s.plans) {
		t.Fatalf("%d results pending while the database is down, want %d", n, 2*len(s.plans))
	}

	cl = startDB()
	eventually(t, "the kept results to be recorded", func() bool { return obs.Pending() == 0 })
	open := s.open()
	if len(open) != 1 || !open[0].StartedAt.Equal(firstFailure) {
		t.Fatalf("open incidents %+v; want one starting at the first failed run %s", open, firstFailure)
	}
}

// stoppableCluster makes a directory for a PostgreSQL cluster of the test's
// own, which the test may stop and start again, and a function that starts it.
func stoppableCluster(t *testing.T) (dir string, start func() *pgcluster.Cluster) {
	t.Helper()
	dir, err := os.MkdirTemp("", "candor-outage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, func() *pgcluster.Cluster {
		t.Helper()
		cl, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: dir, Fast: true})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClockJumpsMakeNoNegativeDurationsNorDuplicateIncidents(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	ctx := t.Context()
	s.round()
	if err := s.target.SetFault(demo.Fault{Mode: demo.FaultEventsDown}); err != nil {
		t.Fatal(err)
	}
	s.round()
	s.clk.Advance(-time.Hour) // the host's clock is stepped back mid-outage
	s.round()
	s.round()
	s.clk.Advance(3 * time.Hour) // and then far forward
	s.round()
	s.target.ClearFault()
	for i := 0; i < 3; i++ {
		s.round()
	}
	s.clk.Advance(s.store.Policy().QuietPeriod.D + time.Second)
	if _, err := s.store.Tick(ctx); err != nil {
		t.Fatal(err)
	}

	all, err := s.store.List(ctx, incidents.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d incidents for one outage, want 1: %+v", len(all), all)
	}
	inc := all[0]
	if inc.Status != incidents.StatusResolved {
		t.Fatalf("status %s, want resolved", inc.Status)
	}
	for name, at := range map[string]time.Time{"detected": inc.DetectedAt, "monitoring": inc.MonitoringAt, "resolved": inc.ResolvedAt} {
		if at.Before(inc.StartedAt) {
			t.Errorf("%s at %s, before the start %s: a negative duration", name, at, inc.StartedAt)
		}
	}
	note, err := s.store.DraftNote(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if negative := regexp.MustCompile(`(^|[\s|(])-\d+(h|m|s)`); negative.MatchString(note) {
		t.Errorf("the note shows a negative duration:\n%s", note)
	}
}
