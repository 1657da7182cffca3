package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

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
// first public update written for this kind of failure.
func (a advisor) Advise(q incidents.AdviceQuery) incidents.Advice {
	ms := runbooks.Match(a.set, runbooks.Query{
		Components:     q.Components,
		Probes:         q.Probes,
		Steps:          q.Steps,
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
	if _, tpl, ok := runbooks.BestTemplate(ms, "first_update", string(q.Classification)); ok {
		d := q.Data
		in := runbooks.Incident{
			ID: fmt.Sprint(q.Incident), Title: d.Title, Status: string(incidents.StatusInvestigating),
			Components: d.Components, Probe: d.Probe, Step: d.Step, ErrorClass: d.ErrorClass,
			Classification: d.Classification, Confirmed: d.Confirmed, StartedAt: d.StartedAt,
			DetectedAt: d.DetectedAt, Duration: d.DetectedAt.Sub(d.StartedAt), Locations: d.Locations,
			Cadence: d.Cadence,
		}
		if a.pageURL != "" && q.Incident > 0 {
			in.URL = strings.TrimSuffix(a.pageURL, "/") + fmt.Sprintf("/incidents/%d", q.Incident)
		}
		if text, err := tpl.Render(in); err == nil {
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
			locs[p.Name] = p.Locations
		}
	}
	st := incidents.NewStore(pool, cfg.Incidents, incidents.Options{
		Now:            now,
		ProbeLocations: locs,
		Advisor:        advisor{set: set, pageURL: cfg.Page.URL},
	})
	if err := st.SyncComponents(ctx); err != nil {
		return nil, fmt.Errorf("store the configured components: %w", err)
	}
	return st, nil
}

// observe hands each probe result to the incidents store.
func observe(st *incidents.Store, log *slog.Logger) func(context.Context, probes.Result) {
	return func(ctx context.Context, r probes.Result) {
		evs, err := st.Observe(ctx, r)
		if err != nil {
			log.Error("record a probe result in incidents", "probe", r.Probe, "location", r.Location, "err", err)
			return
		}
		logEvents(log, evs)
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
