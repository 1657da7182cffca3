package site

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/pgtest"
)

// t0 is the tests' "now": the last of the 90 days shown.
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func testComponents() []incidents.Component {
	return []incidents.Component{
		{Name: "Login", Group: "Sign-in", Description: "Signing in with a password", Probes: []string{"login"}, Steps: []string{"login_page", "password"}},
		{Name: "Two-step authentication", Group: "Sign-in", Steps: []string{"login/totp"}},
		{Name: "API", Group: "Platform", Probes: []string{"api"}},
		{Name: "Dashboard"},
	}
}

var testPage = Page{ID: "example", Name: "Example Status", URL: "https://status.example.com"}

type fixture struct {
	store *incidents.Store
	pool  *pgxpool.Pool
	clk   *clock
	site  *Site
}

// newFixture gives a Store over a fresh database, with components synced,
// 90 days of rollups, and a Site over it (not yet built).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, pgtest.New(t))
}

func newFixtureOn(t *testing.T, pool *pgxpool.Pool) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: t0}
	st := incidents.NewStore(pool, incidents.Config{Components: testComponents()}, incidents.Options{Now: clk.Now})
	if err := st.SyncComponents(ctx); err != nil {
		t.Fatal(err)
	}
	// Uptime: the login probe fails a little on some days, api never.
	day := t0.Truncate(24 * time.Hour)
	for d := range 90 {
		at := day.AddDate(0, 0, -d)
		failed := 0
		switch d {
		case 3:
			failed = 40
		case 10:
			failed = 5
		}
		for _, p := range []string{"login", "api"} {
			f := failed
			if p == "api" {
				f = 0
			}
			if _, err := pool.Exec(ctx, `insert into probe_rollups_daily (probe, location, bucket, runs, ok, degraded, failed, with_signals, duration_ms_sum, duration_ms_max)
				values ($1, 'eu-west', $2, 1440, $3, 0, $4, 0, 1000, 10)`, p, at, 1440-f, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, err := New(Options{Store: st, Pool: pool, Page: testPage, Now: clk.Now, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: st, pool: pool, clk: clk, site: s}
}

func (f *fixture) rebuild(t *testing.T) {
	t.Helper()
	if err := f.site.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// incident opens an incident by hand at the fixture's clock.
func (f *fixture) incident(t *testing.T, n incidents.NewIncident) incidents.Incident {
	t.Helper()
	if n.Actor == "" {
		n.Actor = "person:ada@example.com"
	}
	in, err := f.store.CreateIncident(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (f *fixture) update(t *testing.T, id int64, u incidents.Update) {
	t.Helper()
	if u.Actor == "" {
		u.Actor = "person:ada@example.com"
	}
	if _, err := f.store.PostUpdate(context.Background(), id, u); err != nil {
		t.Fatal(err)
	}
}

// scenario is a history worth testing against: a resolved incident last
// week, an open major one now, an internal update, a scheduled and an
// active maintenance.
func (f *fixture) scenario(t *testing.T) (resolved, open incidents.Incident) {
	t.Helper()
	f.clk.Set(t0.AddDate(0, 0, -10))
	resolved = f.incident(t, incidents.NewIncident{Title: "Slow sign-in", Message: "Sign-in is **slow** for some customers.", Impact: incidents.ImpactMinor,
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.DegradedPerformance}}})
	f.clk.Set(t0.AddDate(0, 0, -10).Add(30 * time.Minute))
	f.update(t, resolved.ID, incidents.Update{Status: incidents.StatusIdentified, Message: "A database index was missing."})
	f.clk.Set(t0.AddDate(0, 0, -10).Add(time.Hour))
	f.update(t, resolved.ID, incidents.Update{Status: incidents.StatusResolved, Message: "Fixed.",
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.Operational}}})

	f.clk.Set(t0.Add(-40 * time.Minute))
	open = f.incident(t, incidents.NewIncident{Title: "Two-step codes rejected", Message: "Valid codes are rejected at the second step.",
		Impact: incidents.ImpactMajor, Components: []incidents.ComponentUpdate{{Component: "Two-step authentication", Status: incidents.PartialOutage}}})
	f.clk.Set(t0.Add(-20 * time.Minute))
	f.update(t, open.ID, incidents.Update{Message: "internal: the clock on totp-3 is off by 90 s", Visibility: incidents.Internal})
	f.clk.Set(t0.Add(-10 * time.Minute))
	f.update(t, open.ID, incidents.Update{Status: incidents.StatusIdentified, Message: "We found a clock problem on one server."})

	f.clk.Set(t0.Add(-time.Hour))
	if _, err := f.store.ScheduleMaintenance(context.Background(), incidents.NewMaintenance{Title: "Database upgrade", Message: "Read-only for 10 minutes.",
		Components: []string{"API"}, StartsAt: t0.Add(24 * time.Hour), EndsAt: t0.Add(25 * time.Hour), Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	f.clk.Set(t0)
	return resolved, open
}

// get fetches path from srv; gzip is requested and undone when asked.
func get(t *testing.T, srv *httptest.Server, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp, body
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
