package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/internal/pgtest"
)

func componentStatus(t *testing.T, s *Store, name string) ComponentStatus {
	t.Helper()
	cs, err := s.Components(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c.Status
		}
	}
	t.Fatalf("no component %q", name)
	return ""
}

func TestStoreComponentOverride(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})

	// Every change is announced on the channel the public site listens to.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "listen "+NotifyChannel); err != nil {
		t.Fatal(err)
	}

	// Bad input writes nothing.
	var fe FieldErrors
	if _, err := s.SetComponentStatus(ctx, "Billing", "down", ""); !errors.As(err, &fe) || len(fe) != 3 {
		t.Fatalf("bad override: %v", err)
	}
	if n := scalar[int](t, pool, `select count(*) from incident_events`); n != 0 {
		t.Fatalf("a refused override wrote %d events", n)
	}

	// A person's override is recorded with actor and time, changes the
	// status, and reaches the outbox and the change notices.
	clk.Set(t0.Add(time.Minute))
	ci, err := s.SetComponentStatus(ctx, "api", MajorOutage, "person:ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if ci.Name != "API" || ci.Status != MajorOutage {
		t.Errorf("after override: %+v", ci)
	}
	if got := scalar[string](t, pool, `select actor || ' ' || to_char(at at time zone 'UTC', 'HH24:MI') from incident_events where kind = 'component_overridden'`); got != "person:ada@example.com "+t0.Add(time.Minute).Format("15:04") {
		t.Errorf("override event %q", got)
	}
	var key, kind string
	var public bool
	var payload []byte
	if err := pool.QueryRow(ctx, `select ordering_key, kind, public, payload from outbox order by id desc limit 1`).Scan(&key, &kind, &public, &payload); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Event struct {
			Actor, From, To string
		}
	}
	_ = json.Unmarshal(payload, &body)
	if key != "component:api" || kind != "component_changed" || !public || body.Event.Actor != "person:ada@example.com" ||
		body.Event.From != "operational" || body.Event.To != "major_outage" {
		t.Errorf("outbox: %s %s %v %s", key, kind, public, payload)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	n, err := conn.Conn().WaitForNotification(wctx)
	cancel()
	if err != nil || n.Payload != `{"component":"api"}` {
		t.Errorf("notification %+v %v", n, err)
	}
	ovs, err := s.ComponentOverrides(ctx)
	if err != nil || len(ovs) != 1 || ovs[0].Component != "API" || ovs[0].Status != MajorOutage || ovs[0].Actor != "person:ada@example.com" || !ovs[0].At.Equal(t0.Add(time.Minute)) {
		t.Errorf("overrides %+v %v", ovs, err)
	}

	// Overriding to the status it has records the override but no change.
	outbox := scalar[int](t, pool, `select count(*) from outbox`)
	if _, err := s.SetComponentStatus(ctx, "API", MajorOutage, "person:bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := scalar[int](t, pool, `select count(*) from outbox`); got != outbox {
		t.Errorf("an override without a change wrote %d outbox rows", got-outbox)
	}

	// Clearing gives the status back: API is operational again, by the person.
	if ci, err := s.ClearComponentStatus(ctx, "API", "person:ada@example.com"); err != nil || ci.Status != Operational {
		t.Fatalf("clear: %+v %v", ci, err)
	}
	if got := scalar[string](t, pool, `select actor from incident_events where kind = 'component_changed' order by id desc limit 1`); got != "person:ada@example.com" {
		t.Errorf("clearing recorded by %q", got)
	}
	events := scalar[int](t, pool, `select count(*) from incident_events`)
	if _, err := s.ClearComponentStatus(ctx, "API", "person:ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := scalar[int](t, pool, `select count(*) from incident_events`); got != events {
		t.Errorf("clearing nothing wrote %d events", got-events)
	}

	// The override outranks an open incident's status for the component...
	inc, err := s.CreateIncident(ctx, NewIncident{Title: "Login failures", Message: "Looking into it.", Actor: "person:bob@example.com",
		Components: []ComponentUpdate{{"Login", PartialOutage}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := componentStatus(t, s, "Login"); got != PartialOutage {
		t.Fatalf("Login %s during the incident", got)
	}
	if _, err := s.SetComponentStatus(ctx, "Login", Operational, "person:ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := componentStatus(t, s, "Login"); got != Operational {
		t.Errorf("Login %s after the override", got)
	}
	// ...an update that does not name the component leaves it...
	if _, err := s.PostUpdate(ctx, inc.ID, Update{Message: "Still looking.", Actor: "person:bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	if got := componentStatus(t, s, "Login"); got != Operational {
		t.Errorf("Login %s after an update that does not name it", got)
	}
	// ...and an update that sets it supersedes it.
	if _, err := s.PostUpdate(ctx, inc.ID, Update{Message: "Worse.", Actor: "person:bob@example.com",
		Components: []ComponentUpdate{{"Login", MajorOutage}}}); err != nil {
		t.Fatal(err)
	}
	if got := componentStatus(t, s, "Login"); got != MajorOutage {
		t.Errorf("Login %s after an update that sets it", got)
	}
	if ovs, _ := s.ComponentOverrides(ctx); len(ovs) != 0 {
		t.Errorf("overrides after an incident changed the component: %+v", ovs)
	}

	// An incident that is not public supersedes nothing until it is.
	if _, err := s.SetComponentStatus(ctx, "API", MajorOutage, "person:ada@example.com"); err != nil {
		t.Fatal(err)
	}
	internal, err := s.CreateIncident(ctx, NewIncident{Title: "Suspected intrusion", Message: "Looking into it.", Actor: "person:bob@example.com",
		Visibility: Internal, Components: []ComponentUpdate{{"API", PartialOutage}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := componentStatus(t, s, "API"); got != MajorOutage {
		t.Errorf("API %s after an internal incident named it", got)
	}
	if _, err := s.PostUpdate(ctx, internal.ID, Update{Message: "We are investigating API errors.", Actor: "person:bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	if got := componentStatus(t, s, "API"); got != PartialOutage {
		t.Errorf("API %s once the incident that named it is public", got)
	}

	// A maintenance that starts on an overridden component supersedes it.
	if _, err := s.SetComponentStatus(ctx, "Dashboard", DegradedPerformance, "person:ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ScheduleMaintenance(ctx, NewMaintenance{Title: "Dashboard upgrade", Components: []string{"Dashboard"},
		StartsAt: t0.Add(2 * time.Minute), EndsAt: t0.Add(time.Hour), Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	if got := componentStatus(t, s, "Dashboard"); got != DegradedPerformance {
		t.Errorf("Dashboard %s once maintenance is only scheduled", got)
	}
	clk.Set(t0.Add(2 * time.Minute))
	if _, err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := componentStatus(t, s, "Dashboard"); got != UnderMaintenance {
		t.Errorf("Dashboard %s once maintenance started", got)
	}
}

func TestStoreCreateIncidentStoresAffectedComponents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newStore(t, Policy{}, Options{})
	inc, err := s.CreateIncident(ctx, NewIncident{Title: "Slow API", Message: "Investigating slow responses.", Actor: "person:bob",
		Components: []ComponentUpdate{{"api", DegradedPerformance}, {"Login", MajorOutage}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PostUpdate(ctx, inc.ID, Update{Message: "Login is back.", Actor: "person:bob",
		Components: []ComponentUpdate{{"Login", Operational}}}); err != nil {
		t.Fatal(err)
	}
	ups, err := s.Updates(ctx, inc.ID, false)
	if err != nil || len(ups) != 2 {
		t.Fatalf("updates %v %v", ups, err)
	}
	for i, want := range []string{
		`[{"component":"API","new_status":"degraded_performance","old_status":"operational"},{"component":"Login","new_status":"major_outage","old_status":"operational"}]`,
		`[{"component":"Login","new_status":"operational","old_status":"major_outage"}]`,
	} {
		var got []map[string]string
		if err := json.Unmarshal(ups[i].Components, &got); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(got)
		if string(b) != want {
			t.Errorf("update %d: affected components %s, want %s", i, b, want)
		}
	}
	// Without components, an empty list, as before.
	other, err := s.CreateIncident(ctx, NewIncident{Title: "Odd", Message: "Looking.", Actor: "person:bob"})
	if err != nil {
		t.Fatal(err)
	}
	if ups, _ := s.Updates(ctx, other.ID, false); len(ups) != 1 || string(ups[0].Components) != "[]" {
		t.Errorf("no components: %s", ups[0].Components)
	}
}

// BenchmarkComponentOverrides reads the overrides in force (as every
// component refresh does) over a timeline of a long-lived page: 100,000
// component changes without an incident, 100,000 incident events, and an
// override every 1,000 component changes.
func BenchmarkComponentOverrides(b *testing.B) {
	s, _ := longTimeline(b)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := s.ComponentOverrides(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// longTimeline is a Store over a timeline of a long-lived page.
func longTimeline(b *testing.B) (*Store, *pgxpool.Pool) {
	pool := pgtest.New(b)
	s := NewStore(pool, Config{Components: demoComponents()}, Options{Now: func() time.Time { return t0 }})
	ctx := context.Background()
	if err := s.SyncComponents(ctx); err != nil {
		b.Fatal(err)
	}
	inc, err := s.CreateIncident(ctx, NewIncident{Title: "Old", Message: "x", Actor: "person:a"})
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{`
		insert into incident_events (incident_id, at, kind, actor, payload)
		select null, $1, case when g % 1000 = 0 then 'component_overridden' else 'component_changed' end, 'system',
			jsonb_build_object('components', jsonb_build_array((array['Login','API','Dashboard'])[g % 3 + 1]), 'to', 'major_outage')
		from generate_series(1, 100000) g`, `
		insert into incident_events (incident_id, at, kind, actor, payload)
		select $2::bigint, $1, 'update_posted', 'system', '{"component_status":[{"component":"Two-step authentication","status":"major_outage"}]}'
		from generate_series(1, 100000) g`, `analyze incident_events`} {
		var args []any
		switch {
		case strings.Contains(q, "$2"):
			args = []any{t0, inc.ID}
		case strings.Contains(q, "$1"):
			args = []any{t0}
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	return s, pool
}
