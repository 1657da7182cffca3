package incidents

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/internal/pgtest"
	"github.com/candorhq/candor/probes"
)

// clock is an injected clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newStore(t *testing.T, pol Policy, opts Options) (*Store, *pgxpool.Pool, *clock) {
	t.Helper()
	pool := pgtest.New(t)
	clk := &clock{t: t0}
	opts.Now = clk.Now
	s := NewStore(pool, Config{Components: demoComponents(), Policy: pol}, opts)
	if err := s.SyncComponents(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, pool, clk
}

// run drives rounds of the three demo probes in two locations through the
// Store, the clock following the results.
func run(t *testing.T, s *Store, clk *clock, from, to int, fault func(p, l string, at time.Time) probes.Result) []Event {
	t.Helper()
	var all []Event
	for n := from; n < to; n++ {
		for pi, p := range demoProbes {
			for li, l := range twoLocs {
				at := t0.Add(time.Duration(n)*interval + time.Duration(pi*3+li)*time.Second)
				var r probes.Result
				if fault != nil {
					r = fault(p, l, at)
				}
				if r.Probe == "" {
					r = ok(p, l, at)
				}
				clk.Set(at.Add(time.Second))
				// What probes.Store writes for each run, for the note's measured impact.
				if _, err := s.pool.Exec(context.Background(), `insert into probe_results (probe, location, started_at, duration_ms, outcome, failed_step, error_class)
					values ($1, $2, $3, $4, $5, $6, $7)`, r.Probe, r.Location, r.Start, r.Duration.Milliseconds(), r.Outcome, r.FailedStep, r.Class); err != nil {
					t.Fatal(err)
				}
				evs, err := s.Observe(context.Background(), r)
				if err != nil {
					t.Fatalf("observe %s@%s round %d: %v", p, l, n, err)
				}
				all = append(all, evs...)
			}
		}
	}
	return all
}

func scalar[T any](t *testing.T, pool *pgxpool.Pool, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestStoreEventsDownOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	run(t, s, clk, 0, 2, nil)
	faultAt := t0.Add(2 * interval)
	run(t, s, clk, 2, 4, eventsDown)

	open, err := s.List(ctx, ListFilter{OpenOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 {
		t.Fatalf("got %d open incidents, want exactly 1", len(open))
	}
	inc := open[0]
	if !inc.StartedAt.Equal(faultAt) || inc.DetectedAt.Sub(faultAt) > 2*interval {
		t.Errorf("started %v detected %v; want started at the first failed run %v and detected within two intervals", inc.StartedAt, inc.DetectedAt, faultAt)
	}
	if inc.Classification != NonSecurity || !inc.Public || inc.Impact != ImpactMajor {
		t.Errorf("classification %s public %v impact %s", inc.Classification, inc.Public, inc.Impact)
	}
	tl, err := s.Timeline(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tl[0].Kind != KindDetected {
		t.Errorf("timeline starts with %s, want detected", tl[0].Kind)
	}
	if got := tl[0].Event().StartedAt; got == nil || !got.Equal(faultAt) {
		t.Errorf("detected event says started %v, want %v", got, faultAt)
	}
	ups, err := s.Updates(ctx, inc.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 || !ups[0].Automatic || !strings.Contains(ups[0].BodyHTML, "<strong>Login</strong>") ||
		!strings.Contains(ups[0].Body, "We have no indication that this is a security incident") {
		t.Fatalf("first public update: %+v", ups)
	}
	ev, err := s.Evidence(ctx, inc.ID)
	if err != nil || len(ev) == 0 || ev[0].Verdict != NonSecurity || ev[0].Role != string(probes.RolePassword) {
		t.Fatalf("evidence %+v %v, want non_security at the password role", ev, err)
	}
	comps, _ := s.Components(ctx)
	if comps[0].Name != "Login" || comps[0].Status != MajorOutage || comps[1].Status != Operational {
		t.Errorf("components %+v", comps)
	}
	// Outbox rows were written with the changes: one per timeline event.
	if got, want := scalar[int](t, pool, `select count(*) from outbox where incident_id = $1`, inc.ID), len(tl); got != want {
		t.Errorf("outbox rows %d, timeline events %d", got, want)
	}
	if got := scalar[int](t, pool, `select count(*) from outbox where incident_id = $1 and kind = 'update_posted' and public`, inc.ID); got != 1 {
		t.Errorf("public update outbox rows %d", got)
	}

	// The outage goes on, then clears: monitoring, then resolved after the quiet period.
	run(t, s, clk, 4, 10, eventsDown)
	run(t, s, clk, 10, 13, nil)
	if inc, _ = s.Get(ctx, inc.ID); inc.Status != StatusMonitoring {
		t.Fatalf("status %s after the fault cleared, want monitoring", inc.Status)
	}
	if comps, _ := s.Components(ctx); comps[0].Status != Operational {
		t.Errorf("Login %s while monitoring", comps[0].Status)
	}
	clk.Set(inc.MonitoringAt.Add(10 * time.Minute))
	if _, err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if inc, _ = s.Get(ctx, inc.ID); inc.Status != StatusResolved || !inc.ResolvedAt.Equal(inc.MonitoringAt.Add(10*time.Minute)) {
		t.Fatalf("status %s resolved %v", inc.Status, inc.ResolvedAt)
	}
	if got := scalar[int](t, pool, `select count(*) from incidents`); got != 1 {
		t.Errorf("%d incidents in all, want 1", got)
	}
	// Customers heard at every automatic move, in UTC, with the duration.
	ups, err = s.Updates(ctx, inc.ID, true)
	if err != nil || len(ups) != 3 || ups[1].Status != StatusMonitoring || ups[2].Status != StatusResolved {
		t.Fatalf("public updates %+v %v, want the first, monitoring and resolved", ups, err)
	}
	for _, want := range []string{"Signing in works again since 2025-03-04 08:03 UTC",
		"Between 2025-03-04 08:00 UTC and 2025-03-04 08:03 UTC (2m), signing in failed after the password was entered"} {
		if !strings.Contains(ups[2].Body, want) {
			t.Errorf("resolution lacks %q:\n%s", want, ups[2].Body)
		}
	}
	if got := scalar[int](t, pool, `select count(*) from outbox where incident_id = $1 and kind = 'update_posted' and public`, inc.ID); got != 3 {
		t.Errorf("public update outbox rows %d, want 3", got)
	}

	// The note draft carries the right UTC times and durations.
	draft, err := s.DraftNote(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	resolved := inc.ResolvedAt.Format("2006-01-02 15:04:05 UTC")
	for _, want := range []string{
		"# Post-incident note: Login: sign-in failing",
		"| Started (first failed run) | 2025-03-04 08:00:30 UTC | |",
		"| Detected (incident opened) | 2025-03-04 08:00:47 UTC | 17s |",
		"| First public update | 2025-03-04 08:00:47 UTC | 17s |",
		"| Probes passing again (monitoring) | 2025-03-04 08:03:08 UTC | 2m |",
		"| Resolved | " + resolved + " | 12m |",
		"- Time from detection to the first public update: 0s",
		"- Total duration: 12m",
		"- Step `login/password`",
		"- 48 of 66 probe runs failed (72.7%)",
		"Longest continuous failure: 2m at eu-west, from 2025-03-04 08:00:30 UTC to 2025-03-04 08:02:30 UTC",
		"We have no indication that this was a security incident",
		"| detected | probe:login@us-east |",
		"## Root cause", "## Remediation", "## Follow-ups",
	} {
		if !strings.Contains(draft, want) {
			t.Errorf("draft lacks %q:\n%s", want, draft)
		}
	}
	v1, err := s.SaveNote(ctx, inc.ID, draft, "person:exec")
	if err != nil || v1.Version != 1 {
		t.Fatalf("save note: %+v %v", v1, err)
	}
	v2, err := s.SaveNote(ctx, inc.ID, draft+"\nRoot cause: disk full.\n", "person:exec")
	if err != nil || v2.Version != 2 {
		t.Fatalf("save note: %+v %v", v2, err)
	}
	var fe FieldErrors
	if _, err := s.PublishNote(ctx, inc.ID, 7, "person:exec"); !errors.As(err, &fe) {
		t.Errorf("publishing a missing version: %v", err)
	}
	got, err := s.PublishNote(ctx, inc.ID, 2, "person:exec")
	if err != nil || got.Status != StatusPostmortem {
		t.Fatalf("publish: %+v %v", got, err)
	}
	notes, _ := s.Notes(ctx, inc.ID)
	if len(notes) != 2 || !notes[0].PublishedAt.IsZero() || notes[1].PublishedAt.IsZero() {
		t.Errorf("notes %+v", notes)
	}
	tl, _ = s.Timeline(ctx, inc.ID)
	if tl[len(tl)-1].Kind != KindNotePublished {
		t.Errorf("last event %s, want note_published", tl[len(tl)-1].Kind)
	}
	if _, err := s.PostUpdate(ctx, inc.ID, Update{Status: StatusInvestigating, Message: "x", Actor: "a"}); !errors.As(err, &fe) {
		t.Errorf("reopening a postmortem: %v", err)
	}
}

func TestStoreSecurityIncidentIsNotPublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	skip := func(p, l string, at time.Time) probes.Result {
		if p == "login-remembered" {
			return fail(p, l, at, "password", probes.ClassAssertion)
		}
		return fail(p, l, at, "password", probes.ClassSecurityCheck, probes.SignalSecondStepSkipped)
	}
	run(t, s, clk, 0, 3, skip)
	open, _ := s.List(ctx, ListFilter{OpenOnly: true})
	if len(open) != 1 || open[0].Classification != Security || open[0].Public {
		t.Fatalf("open incidents %+v, want one unpublished security incident", open)
	}
	if got := scalar[int](t, pool, `select count(*) from outbox where public`); got != 0 {
		t.Errorf("%d public outbox rows for a security incident", got)
	}
	if got := scalar[int](t, pool, `select count(*) from incident_updates`); got != 0 {
		t.Errorf("%d updates posted automatically", got)
	}
	// A reminder reaches on-call after a cadence of silence.
	clk.Set(open[0].DetectedAt.Add(30 * time.Minute))
	evs, err := s.Tick(ctx)
	if err != nil || count(evs, KindReminderDue) != 1 {
		t.Fatalf("tick: %v %v", kinds(evs), err)
	}
	if got := scalar[bool](t, pool, `select public from outbox where kind = 'reminder_due'`); got {
		t.Errorf("the reminder is marked public")
	}
}

func TestStoreHumanActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	run(t, s, clk, 0, 2, eventsDown)
	inc, err := s.List(ctx, ListFilter{OpenOnly: true})
	if err != nil || len(inc) != 1 {
		t.Fatalf("%v %v", inc, err)
	}
	id := inc[0].ID
	before := scalar[int](t, pool, `select count(*) from incident_events`)
	for _, tc := range []struct {
		name  string
		u     Update
		field string
	}{
		{"unknown status", Update{Status: "fixed", Message: "x", Actor: "person:ada"}, "status"},
		{"no message", Update{Status: StatusIdentified, Actor: "person:ada"}, "message"},
		{"huge message", Update{Message: strings.Repeat("a", 1<<20), Actor: "person:ada"}, "message"},
		{"no actor", Update{Message: "x"}, "actor"},
		{"unknown component", Update{Message: "x", Actor: "a", Components: []ComponentUpdate{{"Billing", MajorOutage}}}, "components[0].component"},
		{"bad component status", Update{Message: "x", Actor: "a", Components: []ComponentUpdate{{"Login", "down"}}}, "components[0].status"},
		{"claim without confirmation", Update{Message: "This is not a security incident and no data was compromised.", Actor: "a"}, "message"},
		{"reclassify without reason", Update{Message: "x", Actor: "a", Reclassify: &Reclassification{Classification: NonSecurity}}, "reason"},
		{"postmortem by hand", Update{Status: StatusPostmortem, Message: "x", Actor: "a"}, "status"},
	} {
		_, err := s.PostUpdate(ctx, id, tc.u)
		var fe FieldErrors
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want FieldErrors", tc.name, err)
			continue
		}
		if _, ok := fe.Field(tc.field); !ok {
			t.Errorf("%s: got %v, want an error on %s", tc.name, fe, tc.field)
		}
	}
	if after := scalar[int](t, pool, `select count(*) from incident_events`); after != before {
		t.Fatalf("rejected updates wrote %d events", after-before)
	}

	// A person confirms, then may say the stronger sentence; markdown is sanitised.
	got, err := s.PostUpdate(ctx, id, Update{Status: StatusIdentified, Actor: "person:ada",
		Message:    "We found the cause. This is not a security incident and no data was compromised. <script>alert(1)</script> [x](javascript:alert(1))",
		Reclassify: &Reclassification{Classification: NonSecurity, Reason: "the events store ran out of disk"},
		Components: []ComponentUpdate{{"two-step-authentication", PartialOutage}}, Impact: ImpactCritical})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusIdentified || !got.Confirmed || got.Impact != ImpactCritical || got.ComponentState["Two-step authentication"] != PartialOutage {
		t.Errorf("after update: %+v", got)
	}
	ups, _ := s.Updates(ctx, id, false)
	last := ups[len(ups)-1]
	if strings.Contains(last.BodyHTML, "<script") || strings.Contains(last.BodyHTML, "javascript:") {
		t.Errorf("unsafe HTML kept: %s", last.BodyHTML)
	}
	if comps, _ := s.Components(ctx); comps[1].Status != PartialOutage {
		t.Errorf("2SA component %s", comps[1].Status)
	}

	// Resolving twice is refused.
	if _, err := s.PostUpdate(ctx, id, Update{Status: StatusResolved, Message: "Fixed.", Actor: "person:ada"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.PostUpdate(ctx, id, Update{Status: StatusResolved, Message: "Fixed again.", Actor: "person:ada"})
	var fe FieldErrors
	if !errors.As(err, &fe) || !strings.Contains(fe.Error(), "already resolved") {
		t.Errorf("resolving a resolved incident: %v", err)
	}
	if _, err := s.Reclassify(ctx, id, Security, "", "person:ada"); !errors.As(err, &fe) {
		t.Errorf("reclassify without a reason: %v", err)
	}
	if _, err := s.PostUpdate(ctx, 9999, Update{Message: "x", Actor: "a"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown incident: %v", err)
	}

	// A manual incident.
	m, err := s.CreateIncident(ctx, NewIncident{Title: "Slow API", Message: "Investigating slow responses.", Actor: "person:bob",
		Components: []ComponentUpdate{{"API", DegradedPerformance}}, Impact: ImpactMinor})
	if err != nil {
		t.Fatal(err)
	}
	if m.Signature != "" || m.Classification != Undetermined || m.Confirmed || !m.Public || m.Status != StatusInvestigating {
		t.Errorf("manual incident %+v", m)
	}
	if _, err := s.CreateIncident(ctx, NewIncident{Title: "", Message: "", Actor: ""}); !errors.As(err, &fe) || len(fe) != 3 {
		t.Errorf("empty incident: %v", err)
	}
}

func TestStoreMaintenance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	_, err := s.ScheduleMaintenance(ctx, NewMaintenance{Title: "DB upgrade", Components: []string{"Login"},
		StartsAt: t0.Add(time.Minute), EndsAt: t0.Add(time.Hour), Actor: "person:ada"})
	if err != nil {
		t.Fatal(err)
	}
	var fe FieldErrors
	if _, err := s.ScheduleMaintenance(ctx, NewMaintenance{Title: "x", Components: []string{"Nope"}, StartsAt: t0, EndsAt: t0, Actor: "a"}); !errors.As(err, &fe) || len(fe) != 2 {
		t.Errorf("bad maintenance: %v", err)
	}
	clk.Set(t0.Add(time.Minute))
	if _, err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if comps, _ := s.Components(ctx); comps[0].Status != UnderMaintenance {
		t.Errorf("Login %s during maintenance", comps[0].Status)
	}
	run(t, s, clk, 4, 8, eventsDown)
	if got := scalar[int](t, pool, `select count(*) from incidents`); got != 0 {
		t.Errorf("%d incidents opened during maintenance", got)
	}
	clk.Set(t0.Add(time.Hour))
	if _, err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	ms, _ := s.Maintenances(ctx, t0)
	if len(ms) != 1 || ms[0].Status != MaintenanceCompleted {
		t.Errorf("maintenances %+v", ms)
	}
	if _, err := s.UpdateMaintenance(ctx, ms[0].ID, MaintenanceInProgress, "", "person:ada"); !errors.As(err, &fe) {
		t.Errorf("restarting a completed maintenance: %v", err)
	}
}

func TestStoreDatabaseGuards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	run(t, s, clk, 0, 2, eventsDown)
	// The partial unique index refuses a second open incident for a signature.
	_, err := pool.Exec(ctx, `insert into incidents (signature, title, status, classification, started_at, detected_at, created_at, updated_at)
		values ('failure:password:http_status:login', 'dup', 'investigating', 'non_security', now(), now(), now(), now())`)
	if err == nil || !strings.Contains(err.Error(), "incidents_one_open_per_signature") {
		t.Errorf("second open incident for one signature: %v", err)
	}
	// The timeline is append-only.
	if _, err := pool.Exec(ctx, `update incident_events set actor = 'me'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("update of the timeline: %v", err)
	}
	if _, err := pool.Exec(ctx, `delete from incident_events`); err == nil {
		t.Errorf("delete from the timeline succeeded")
	}
}

// Replicas observing different probes of one outage at the same moment open one incident.
func TestStoreConcurrentReplicasOpenOneIncident(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	clk.Set(t0.Add(2 * interval))
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for _, p := range demoProbes {
			for _, l := range twoLocs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.Observe(ctx, eventsDown(p, l, t0.Add(time.Duration(round)*interval)))
					errs <- err
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := scalar[int](t, pool, `select count(*) from incidents`); got != 1 {
		t.Fatalf("%d incidents, want 1", got)
	}
	if got := scalar[[]string](t, pool, `select probes from incidents`); len(got) != 3 {
		t.Errorf("probes %v, want all three", got)
	}
}

type fakeAdvisor struct{}

func (fakeAdvisor) Advise(q AdviceQuery) Advice {
	if !strings.Contains(strings.Join(q.Steps, ","), "password") {
		return Advice{}
	}
	return Advice{
		Runbooks:    []RunbookRef{{ID: "login-events-down", Title: "Login events store down", Score: 7, Reasons: []string{"step password failing", "error class http_status"}}},
		FirstUpdate: "Sign-in fails after the password step since " + q.Data.StartedAt.Format("15:04 UTC") + ". We have no indication that this is a security incident.",
	}
}

func TestStoreRunbookHook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, clk := newStore(t, Policy{}, Options{Advisor: fakeAdvisor{}})
	run(t, s, clk, 0, 4, eventsDown)
	open, _ := s.List(ctx, ListFilter{OpenOnly: true})
	tl, _ := s.Timeline(ctx, open[0].ID)
	n := 0
	for _, e := range tl {
		if e.Kind == KindRunbookAttached {
			n++
			if rb := e.Event().Runbook; rb == nil || rb.ID != "login-events-down" || len(rb.Reasons) != 2 {
				t.Errorf("runbook event %s", e.Payload)
			}
		}
	}
	if n != 1 {
		t.Errorf("runbook attached %d times, want once", n)
	}
	ups, _ := s.Updates(ctx, open[0].ID, true)
	if len(ups) != 1 || !strings.HasPrefix(ups[0].Body, "Sign-in fails after the password step since 08:00 UTC") {
		t.Errorf("first update did not come from the runbook: %+v", ups)
	}
	if err := s.AttachRunbook(ctx, open[0].ID, RunbookRef{ID: "long-outage-communication", Title: "Long outage"}, "system"); err != nil {
		t.Fatal(err)
	}
}
