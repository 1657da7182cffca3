package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/runbooks"
)

// maxAttached is how many matched runbooks an incident gets at a time.
const maxAttached = 3

// advisor matches runbooks to incidents for the incidents package.
type advisor struct {
	set     runbooks.Set
	pageURL string
}

// Advise returns the best matching runbooks and, when one has it, the
// first public update written for this kind of failure: matched on the
// failing steps' roles (what they mean, whatever they are called), and
// written from the role and the components customers see. A probe problem
// (rate_limited, code_window_taken) gets no public words, and neither does a
// template that still leaves a placeholder for a person to fill in.
func (a advisor) Advise(q incidents.AdviceQuery) incidents.Advice {
	roles := q.Roles
	if len(roles) == 0 && q.Data.Role != "" {
		roles = []string{q.Data.Role}
	}
	ms := runbooks.Match(a.set, runbooks.Query{
		Components:     q.Components,
		Probes:         q.Probes,
		Steps:          q.Steps,
		Roles:          roles,
		ErrorClasses:   q.ErrorClasses,
		Classification: string(q.Classification),
		Messages:       q.Messages,
	})
	var adv incidents.Advice
	for i, m := range ms {
		if i == maxAttached {
			break
		}
		adv.Runbooks = append(adv.Runbooks, incidents.RunbookRef{ID: m.ID, Title: m.Title, Score: m.Score, Reasons: m.Reasons})
	}
	if q.Classification != incidents.NonSecurity {
		return adv // only non-security first updates are ever published automatically
	}
	if len(q.ErrorClasses) > 0 && !slices.ContainsFunc(q.ErrorClasses, func(c string) bool { return !probes.ErrorClass(c).ProbeProblem() }) {
		return adv // the probe's problem, not the customers': they are not told
	}
	if _, tpl, ok := runbooks.BestTemplate(ms, runbooks.FirstUpdate, string(q.Classification)); ok {
		d := q.Data
		in := runbooks.Incident{
			ID: fmt.Sprint(q.Incident), Title: d.Title, Status: string(incidents.StatusInvestigating),
			Components: d.Components, Probe: d.Probe, Step: d.Step, Role: d.Role, RecoveryCodes: d.RecoveryCodes,
			ErrorClass: d.ErrorClass, Classification: d.Classification, Confirmed: d.Confirmed, StartedAt: d.StartedAt,
			DetectedAt: d.DetectedAt, Duration: d.DetectedAt.Sub(d.StartedAt), Locations: d.Locations,
			Cadence: d.Cadence,
		}
		if a.pageURL != "" && q.Incident > 0 {
			in.URL = strings.TrimSuffix(a.pageURL, "/") + fmt.Sprintf("/incidents/%d", q.Incident)
		}
		if text, err := tpl.Render(in); err == nil && len(runbooks.Placeholders(text)) == 0 {
			adv.FirstUpdate = text
		}
	}
	return adv
}

// newIncidentStore builds the incidents store for cfg, with the runbooks in
// set advising it.
func newIncidentStore(ctx context.Context, pool *pgxpool.Pool, cfg *appConfig, set runbooks.Set, now func() time.Time) (*incidents.Store, error) {
	locs := map[string][]string{}
	for _, p := range cfg.Probes {
		if len(p.Locations) > 0 {
			locs[p.Name] = p.LocationNames()
		}
	}
	// Automatic texts may advise recovery codes only when the target offers
	// them: a probe signs in with one, unless the configuration says.
	icfg := cfg.Incidents
	if icfg.Policy.RecoveryCodes == nil {
		offered := false
		for _, p := range cfg.Probes {
			for _, s := range p.Steps {
				offered = offered || s.Role == probes.RoleRecoveryCode
			}
		}
		icfg.Policy.RecoveryCodes = &offered
	}
	st := incidents.NewStore(pool, icfg, incidents.Options{
		Now:            now,
		ProbeLocations: locs,
		Advisor:        advisor{set: set, pageURL: cfg.Page.URL},
	})
	if err := st.SyncComponents(ctx); err != nil {
		return nil, fmt.Errorf("store the configured components: %w", err)
	}
	return st, nil
}

// observer hands probe results to the incidents store in the order they
// arrive. While the database is unreachable it keeps them (up to max, the
// oldest dropped first) and retries, so that an outage of Candor's own
// database does not erase what the probes saw meanwhile.
type observer struct {
	st    *incidents.Store
	log   *slog.Logger
	max   int
	retry time.Duration

	mu      sync.Mutex
	queue   []probes.Result
	dropped int
	wake    chan struct{}
}

func newObserver(st *incidents.Store, log *slog.Logger) *observer {
	return &observer{st: st, log: log, max: 10_000, retry: time.Second, wake: make(chan struct{}, 1)}
}

// Add queues r; it never blocks (it is the scheduler's OnResult).
func (o *observer) Add(_ context.Context, r probes.Result) {
	o.mu.Lock()
	o.queue = append(o.queue, r)
	if len(o.queue) > o.max {
		o.queue = o.queue[1:]
		o.dropped++
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Pending is how many results wait for the database.
func (o *observer) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue)
}

// Run records queued results until ctx ends.
func (o *observer) Run(ctx context.Context) {
	t := time.NewTimer(o.retry)
	defer t.Stop()
	for {
		if !o.drain(ctx) {
			t.Reset(o.retry) // the database is away: try again later
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-t.C:
		}
	}
}

// drain records queued results in order; it returns false when the
// database could not be reached and results remain.
func (o *observer) drain(ctx context.Context) bool {
	for {
		o.mu.Lock()
		if len(o.queue) == 0 {
			o.mu.Unlock()
			return true
		}
		r, dropped := o.queue[0], o.dropped
		o.dropped = 0
		o.mu.Unlock()
		if dropped > 0 {
			o.log.Warn("probe results dropped while the database was unreachable", "count", dropped)
		}
		evs, err := o.st.Observe(ctx, r)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			logEvents(o.log, evs)
		case ctx.Err() != nil:
			return false
		case errors.As(err, &pgErr) && !transientSQLState(pgErr.Code):
			// The server answered and refused: retrying will not help.
			o.log.Error("record a probe result in incidents", "probe", r.Probe, "location", r.Location, "err", err)
		default:
			o.log.Warn("database unreachable; probe results kept for later", "pending", o.Pending(), "err", err)
			return false
		}
		o.mu.Lock()
		if len(o.queue) > 0 && o.queue[0].Start.Equal(r.Start) && o.queue[0].Probe == r.Probe {
			o.queue = o.queue[1:]
		}
		o.mu.Unlock()
	}
}

// tickIncidents runs the time-driven rules (monitoring → resolved,
// reminders, maintenance starts and ends) every period until ctx ends.
func tickIncidents(ctx context.Context, st *incidents.Store, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			evs, err := st.Tick(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("incidents tick", "err", err)
				continue
			}
			logEvents(log, evs)
		}
	}
}

func logEvents(log *slog.Logger, evs []incidents.Event) {
	for _, e := range evs {
		switch e.Kind {
		case incidents.KindDetected, incidents.KindStatusChanged, incidents.KindClassificationChanged, incidents.KindReminderDue:
			log.Info("incident "+string(e.Kind), "incident", e.Incident, "to", e.To, "classification", e.Classification)
		}
	}
}

// transientSQLState reports whether a PostgreSQL error means the server is
// going away or not ready (connection exceptions, shutdown, start-up, lack
// of resources) rather than that it refused this statement.
func transientSQLState(code string) bool {
	switch code[:min(2, len(code))] {
	case "08", "53", "57", "58":
		return true
	}
	return false
}
