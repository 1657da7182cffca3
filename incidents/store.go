package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/probes"
)

// NotifyChannel is the PostgreSQL LISTEN/NOTIFY channel on which every
// committed change is announced, with a small JSON payload such as
// {"incident":42,"kind":"update_posted"} or {"component":"login"}.
const NotifyChannel = "candor_changes"

// openLockKey serialises the opening of incidents across replicas
// ("incopen" in ASCII); the partial unique index is the backstop.
const openLockKey = 0x696e636f70656e

// componentsLockKey serialises the recomputation of component statuses.
const componentsLockKey = 0x696e63636f6d70

// Advisor suggests runbooks for an incident. The runbooks package provides
// one through a small adapter in cmd/candor; incidents does not import it.
type Advisor interface {
	Advise(q AdviceQuery) Advice
}

// AdviceQuery is what runbook matching needs to know about an incident.
type AdviceQuery struct {
	Incident       int64
	Components     []string
	Probes         []string
	Steps          []string // step names, without the probe
	Roles          []string // the failing steps' roles (probes.Role)
	ErrorClasses   []string
	Classification Classification
	Messages       []string // the failing runs' redacted messages
	Data           TemplateData
}

// Advice is what the Advisor found: runbooks to attach and, optionally, the
// text of the first public update from the best runbook's non-security
// template (used instead of the policy's template when it makes no claim a
// person must confirm).
type Advice struct {
	Runbooks    []RunbookRef
	FirstUpdate string
}

// RunbookRef is a runbook attached to an incident, with why it matched.
type RunbookRef struct {
	ID      string   `json:"runbook"`
	Title   string   `json:"title"`
	Score   int      `json:"score,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
}

// Options are a Store's optional dependencies.
type Options struct {
	// Now is the clock (time.Now when nil). Everything stored is in UTC.
	Now func() time.Time
	// ProbeLocations maps a probe to the locations configured to run it;
	// a probe not listed counts every location that reports.
	ProbeLocations map[string][]string
	// Advisor attaches runbooks when incidents open or change.
	Advisor Advisor
}

// Store keeps incidents in PostgreSQL and is the only way to change them.
type Store struct {
	pool    *pgxpool.Pool
	det     *Detector
	comps   []Component
	now     func() time.Time
	locs    map[string][]string
	advisor Advisor
}

// NewStore returns a Store over pool for the configured components and policy.
func NewStore(pool *pgxpool.Pool, cfg Config, opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{pool: pool, det: NewDetector(cfg.Components, cfg.Policy), comps: slices.Clone(cfg.Components),
		now: func() time.Time { return now().UTC() }, locs: opts.ProbeLocations, advisor: opts.Advisor}
}

// Policy returns the incident policy in force, defaults filled in.
func (s *Store) Policy() Policy { return s.det.Policy() }

func (s *Store) transact(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// SyncComponents writes the configured components (names, groups,
// descriptions, order) and marks the others inactive; statuses are kept.
func (s *Store) SyncComponents(ctx context.Context) error {
	return s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		ids := make([]string, 0, len(s.comps))
		for i, c := range s.comps {
			ids = append(ids, c.ID())
			_, err := tx.Exec(ctx, `
				insert into components (id, name, group_name, description, position, active, created_at, updated_at)
				values ($1, $2, $3, $4, $5, true, $6, $6)
				on conflict (id) do update set name = excluded.name, group_name = excluded.group_name,
					description = excluded.description, position = excluded.position, active = true,
					updated_at = case when components.active and components.name = excluded.name
						and components.group_name = excluded.group_name and components.description = excluded.description
						and components.position = excluded.position then components.updated_at else excluded.updated_at end`,
				c.ID(), c.Name, c.Group, c.Description, i, now)
			if err != nil {
				return fmt.Errorf("sync component %s: %w", c.Name, err)
			}
		}
		if _, err := tx.Exec(ctx, `update components set active = false, updated_at = $2 where active and not (id = any($1))`, ids, now); err != nil {
			return fmt.Errorf("sync components: %w", err)
		}
		return notify(ctx, tx, map[string]any{"components": true})
	})
}

// Observe runs the detector on one probe result inside a transaction and
// records what it produced: incidents opened, extended, moved to monitoring
// or reopened, their timeline events, evidence, first public update, runbooks
// and outbox rows, and the components' statuses. The probe's state row is
// locked, so replicas observing the same probe take turns. It returns the
// events recorded.
func (s *Store) Observe(ctx context.Context, r probes.Result) ([]Event, error) {
	if r.Probe == "" || r.Location == "" {
		return nil, errors.New("observe: the result has no probe or location")
	}
	var out []Event
	err := s.transact(ctx, func(tx pgx.Tx) error {
		out = nil
		now := s.now()
		st, err := lockProbeState(ctx, tx, r.Probe)
		if err != nil {
			return err
		}
		now = appliedAt(r, st, now)
		locked := map[int64]bool{}
		openLocked := false
		var w World
		var next ProbeState
		var evs []Event
		for attempt := 0; ; attempt++ {
			w, err = s.world(ctx, tx, r.Probe, now)
			if err != nil {
				return err
			}
			next, evs = s.det.Observe(st, w, r, now)
			need, opening := touched(evs, next, r)
			var missing []int64
			for _, id := range need {
				if !locked[id] {
					missing = append(missing, id)
				}
			}
			if len(missing) == 0 && (!opening || openLocked) {
				break
			}
			if attempt == 3 {
				return fmt.Errorf("observe %s: %w", r.Probe, ErrConflict)
			}
			if opening && !openLocked {
				if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock($1)`, int64(openLockKey)); err != nil {
					return fmt.Errorf("observe: lock: %w", err)
				}
				openLocked = true
			}
			if len(missing) > 0 {
				slices.Sort(missing)
				if _, err := tx.Exec(ctx, `select id from incidents where id = any($1) order by id for update`, missing); err != nil {
					return fmt.Errorf("observe: lock incidents: %w", err)
				}
				for _, id := range missing {
					locked[id] = true
				}
			}
		}
		incs := map[int64]Incident{}
		for _, inc := range w.Incidents {
			if locked[inc.ID] {
				incs[inc.ID] = inc
			}
		}
		evs = s.advise(ctx, tx, evs, incs)
		if err := withPublicPage(ctx, tx, evs); err != nil {
			return err
		}
		newID, err := s.record(ctx, tx, incs, evs, now)
		if err != nil {
			return err
		}
		if next.Incident == NewIncidentID {
			next.Incident = newID
		}
		if inc, ok := incs[next.Incident]; ok && r.Failed() && inc.Status.Open() && r.Start.After(inc.LastFailureAt) {
			if _, err := tx.Exec(ctx, `update incidents set last_failure_at = $2 where id = $1`, inc.ID, r.Start.UTC()); err != nil {
				return fmt.Errorf("observe: last failure: %w", err)
			}
		}
		if err := saveProbeState(ctx, tx, next, now); err != nil {
			return err
		}
		if len(evs) > 0 {
			if err := s.refreshComponents(ctx, tx, now); err != nil {
				return err
			}
		}
		for i := range evs {
			if evs[i].Incident == NewIncidentID {
				evs[i].Incident = newID
			}
		}
		out = evs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// withPublicPage adds to each alert about a public incident that gained a
// security signal what its public page says now (its last public update),
// so that on-call reads what customers read.
func withPublicPage(ctx context.Context, tx pgx.Tx, evs []Event) error {
	for i := range evs {
		e := &evs[i]
		if e.Kind != KindReminderDue || e.Extra["alert"] != AlertPublicNowSecurity || e.Incident <= 0 {
			continue
		}
		var body string
		err := tx.QueryRow(ctx, `select body from incident_updates where incident_id = $1 and visibility = 'public'
			order by created_at desc, id desc limit 1`, e.Incident).Scan(&body)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("observe: public page of incident %d: %w", e.Incident, err)
		}
		e.Extra["public_page"] = body
		if body != "" {
			// Every channel shows the reason: on-call reads what customers read.
			e.Reason += "; it says: \"" + excerpt(body, 400) + "\""
		}
	}
	return nil
}

// excerpt returns text on one line, cut to at most n bytes at a rune
// boundary with an ellipsis.
func excerpt(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) <= n {
		return text
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "…"
}

// lateResult is how long after its run a result counts as late: one kept
// while the database was unreachable, not one just taken.
const lateResult = 2 * time.Second

// appliedAt is the time a result's consequences are recorded at: now, or
// for a late result the end of its run, so that the timeline says when the
// probes saw what happened (a login that recovered during a database outage
// recovered then, not when the database came back). Never earlier than what
// is already recorded for the probe, so the probe's history stays in order.
func appliedAt(r probes.Result, st ProbeState, now time.Time) time.Time {
	end := r.Start.Add(r.Duration).UTC()
	if now.Sub(end) <= lateResult {
		return now
	}
	for _, l := range st.Locations {
		if !end.After(l.LastAt) {
			return now
		}
	}
	return end
}

// touched returns the existing incidents a batch of events (and a failed
// run's last-failure mark) writes to, and whether it opens one.
func touched(evs []Event, st ProbeState, r probes.Result) (ids []int64, opening bool) {
	for _, e := range evs {
		switch {
		case e.Incident == NewIncidentID:
			opening = true
		case e.Incident > 0 && !slices.Contains(ids, e.Incident):
			ids = append(ids, e.Incident)
		}
		if e.Kind == KindStatusChanged && e.From == string(StatusResolved) {
			opening = true // a reopen must not race an open for the same signature
		}
	}
	if r.Failed() && st.Incident > 0 && !slices.Contains(ids, st.Incident) {
		ids = append(ids, st.Incident)
	}
	return ids, opening
}

// Tick does what time alone decides: maintenance that starts or completes,
// monitoring incidents whose quiet period has passed, and reminders when an
// open incident's public has heard nothing for a cadence. Run it every few
// seconds to a minute on every replica; concurrent ticks do each thing once.
func (s *Store) Tick(ctx context.Context) ([]Event, error) {
	var all []Event
	evs, err := s.tickMaintenance(ctx)
	if err != nil {
		return nil, err
	}
	all = append(all, evs...)
	rows, err := s.pool.Query(ctx, `select id from incidents where status in ('investigating', 'identified', 'monitoring') order by id`)
	if err != nil {
		return nil, fmt.Errorf("tick: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("tick: %w", err)
	}
	for _, id := range ids {
		err := s.transact(ctx, func(tx pgx.Tx) error {
			now := s.now()
			incs, err := s.loadIncidents(ctx, tx, `i.id = $1 and i.status in ('investigating', 'identified', 'monitoring')`, []any{id}, true)
			if err != nil || len(incs) == 0 {
				return err
			}
			evs := s.det.Tick(incs[0], now)
			if len(evs) == 0 {
				return nil
			}
			m := map[int64]Incident{id: incs[0]}
			if _, err := s.record(ctx, tx, m, evs, now); err != nil {
				return err
			}
			if err := s.refreshComponents(ctx, tx, now); err != nil {
				return err
			}
			all = append(all, evs...)
			return nil
		})
		if err != nil {
			return all, fmt.Errorf("tick incident %d: %w", id, err)
		}
	}
	return all, nil
}

// world loads what the detector needs besides the probe's own state.
func (s *Store) world(ctx context.Context, tx pgx.Tx, probe string, now time.Time) (World, error) {
	w := World{Locations: s.locs[probe]}
	incs, err := s.loadIncidents(ctx, tx,
		`i.status in ('investigating', 'identified', 'monitoring') or (i.status = 'resolved' and i.resolved_at >= $1)`,
		[]any{now.Add(-s.det.policy.Cooldown.D)}, false)
	if err != nil {
		return w, err
	}
	w.Incidents = incs
	w.Maintenance, err = s.maintenanceComponents(ctx, tx, now)
	return w, err
}

// maintenanceComponents names the components under maintenance at now:
// in progress or verifying, or scheduled to auto-start and inside the window.
func (s *Store) maintenanceComponents(ctx context.Context, tx pgx.Tx, now time.Time) ([]string, error) {
	rows, err := tx.Query(ctx, `
		select distinct unnest(components) from maintenances
		where status in ('in_progress', 'verifying')
		   or (status = 'scheduled' and auto_start and starts_at <= $1 and ends_at > $1)`, now)
	if err != nil {
		return nil, fmt.Errorf("maintenance components: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

const incidentColumns = `i.id, coalesce(i.signature, ''), i.title, i.status, i.impact, i.classification, i.confirmed, i.public,
	i.probes, i.failing_probes, i.steps, i.locations, i.signals, i.started_at, i.detected_at,
	i.monitoring_at, i.resolved_at, i.first_public_at, i.last_public_at, i.last_reminder_at, i.last_failure_at, i.updated_at`

// loadIncidents reads the incidents matching where (over alias i), with
// their components, optionally locking them.
func (s *Store) loadIncidents(ctx context.Context, q pgx.Tx, where string, args []any, lock bool) ([]Incident, error) {
	sql := `select ` + incidentColumns + ` from incidents i where ` + where + ` order by i.id`
	if lock {
		sql += ` for update`
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("load incidents: %w", err)
	}
	incs, err := pgx.CollectRows(rows, scanIncident)
	if err != nil {
		return nil, fmt.Errorf("load incidents: %w", err)
	}
	return s.withComponents(ctx, q, incs)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) withComponents(ctx context.Context, q querier, incs []Incident) ([]Incident, error) {
	if len(incs) == 0 {
		return incs, nil
	}
	ids := make([]int64, len(incs))
	byID := map[int64]int{}
	for i, inc := range incs {
		ids[i] = inc.ID
		byID[inc.ID] = i
	}
	rows, err := q.Query(ctx, `select incident_id, component, status from incident_components where incident_id = any($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("load incident components: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var comp, status string
		if err := rows.Scan(&id, &comp, &status); err != nil {
			return nil, fmt.Errorf("load incident components: %w", err)
		}
		inc := &incs[byID[id]]
		inc.Components = append(inc.Components, comp)
		inc.ComponentState[comp] = ComponentStatus(status)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load incident components: %w", err)
	}
	for i := range incs {
		incs[i].Components = s.det.comps.sorted(incs[i].Components)
	}
	return incs, nil
}

func scanIncident(row pgx.CollectableRow) (Incident, error) {
	var inc Incident
	var signals []string
	var mon, res, fp, lp, lr, lf *time.Time
	err := row.Scan(&inc.ID, &inc.Signature, &inc.Title, &inc.Status, &inc.Impact, &inc.Classification, &inc.Confirmed, &inc.Public,
		&inc.Probes, &inc.FailingProbes, &inc.Steps, &inc.Locations, &signals, &inc.StartedAt, &inc.DetectedAt,
		&mon, &res, &fp, &lp, &lr, &lf, &inc.UpdatedAt)
	for _, sg := range signals {
		inc.Signals = append(inc.Signals, probes.Signal(sg))
	}
	inc.StartedAt, inc.DetectedAt, inc.UpdatedAt = inc.StartedAt.UTC(), inc.DetectedAt.UTC(), inc.UpdatedAt.UTC()
	inc.MonitoringAt, inc.ResolvedAt, inc.FirstPublicAt = utcOrZero(mon), utcOrZero(res), utcOrZero(fp)
	inc.LastPublicAt, inc.LastReminderAt, inc.LastFailureAt = utcOrZero(lp), utcOrZero(lr), utcOrZero(lf)
	inc.ComponentState = map[string]ComponentStatus{}
	return inc, err
}

func utcOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func signalStrings(ss []probes.Signal) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// insertIncident writes a new incident and returns its id. A second open
// incident for one signature is ErrConflict.
func insertIncident(ctx context.Context, tx pgx.Tx, inc Incident, now time.Time) (int64, error) {
	if inc.Title == "" {
		inc.Title = "Incident"
	}
	var id int64
	err := tx.QueryRow(ctx, `
		insert into incidents (signature, title, status, impact, classification, confirmed, public, probes, failing_probes,
			steps, locations, signals, started_at, detected_at, last_failure_at, created_at, updated_at)
		values ($1, $2, $3, $4, $5, $6, false, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
		returning id`,
		nullString(inc.Signature), inc.Title, inc.Status, inc.Impact, inc.Classification, inc.Confirmed,
		nonNil(inc.Probes), nonNil(inc.FailingProbes), nonNil(inc.Steps), nonNil(inc.Locations), signalStrings(inc.Signals),
		inc.StartedAt.UTC(), inc.DetectedAt.UTC(), nullTime(inc.LastFailureAt), now).Scan(&id)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return 0, fmt.Errorf("open incident for %s: %w", inc.Signature, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("insert incident: %w", err)
	}
	return id, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// saveIncident writes an incident's row and its components' statuses.
func saveIncident(ctx context.Context, tx pgx.Tx, inc Incident, now time.Time) error {
	_, err := tx.Exec(ctx, `
		update incidents set title = $2, status = $3, impact = $4, classification = $5, confirmed = $6, public = $7,
			probes = $8, failing_probes = $9, steps = $10, locations = $11, signals = $12, started_at = $13,
			monitoring_at = $14, resolved_at = $15, first_public_at = $16, last_public_at = $17,
			last_reminder_at = $18, last_failure_at = greatest(last_failure_at, $19), updated_at = $20
		where id = $1`,
		inc.ID, inc.Title, inc.Status, inc.Impact, inc.Classification, inc.Confirmed, inc.Public,
		nonNil(inc.Probes), nonNil(inc.FailingProbes), nonNil(inc.Steps), nonNil(inc.Locations), signalStrings(inc.Signals),
		inc.StartedAt.UTC(), nullTime(inc.MonitoringAt), nullTime(inc.ResolvedAt), nullTime(inc.FirstPublicAt),
		nullTime(inc.LastPublicAt), nullTime(inc.LastReminderAt), nullTime(inc.LastFailureAt), now)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return fmt.Errorf("reopen incident %d: %w", inc.ID, ErrConflict)
		}
		return fmt.Errorf("save incident %d: %w", inc.ID, err)
	}
	for comp, st := range inc.ComponentState {
		_, err := tx.Exec(ctx, `
			insert into incident_components (incident_id, component, status) values ($1, $2, $3)
			on conflict (incident_id, component) do update set status = excluded.status`, inc.ID, comp, st)
		if err != nil {
			return fmt.Errorf("save incident %d components: %w", inc.ID, err)
		}
	}
	return nil
}

// record writes a batch of events: the incident they open (at most one, the
// first event with NewIncidentID), each event on the timeline, its evidence,
// the update it posts, its outbox row, and the incidents' new rows. incs
// holds the locked incidents the events refer to and is updated in place.
// It returns the id of the incident opened, or 0.
func (s *Store) record(ctx context.Context, tx pgx.Tx, incs map[int64]Incident, evs []Event, now time.Time) (int64, error) {
	var newID int64
	changed := map[int64]bool{}
	for i := range evs {
		e := &evs[i]
		e.At = e.At.UTC()
		if e.Incident == NewIncidentID {
			if newID == 0 {
				if e.Kind != KindDetected && e.Kind != KindCreated {
					return 0, fmt.Errorf("record: %s event for an incident not yet opened", e.Kind)
				}
				inc := Apply(Incident{}, *e)
				id, err := insertIncident(ctx, tx, inc, now)
				if err != nil {
					return 0, err
				}
				inc.ID = id
				incs[id] = inc
				changed[id] = true
				newID = id
				e.Incident = id
				if err := s.writeEvent(ctx, tx, e, incs, now); err != nil {
					return 0, err
				}
				continue
			}
			e.Incident = newID
		}
		if e.Incident > 0 {
			inc, ok := incs[e.Incident]
			if !ok {
				return 0, fmt.Errorf("record: incident %d was not loaded", e.Incident)
			}
			incs[e.Incident] = Apply(inc, *e)
			changed[e.Incident] = true
		}
		if err := s.writeEvent(ctx, tx, e, incs, now); err != nil {
			return 0, err
		}
	}
	ids := make([]int64, 0, len(changed))
	for id := range changed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := saveIncident(ctx, tx, incs[id], now); err != nil {
			return 0, err
		}
		if err := notify(ctx, tx, map[string]any{"incident": id}); err != nil {
			return 0, err
		}
	}
	return newID, nil
}

// writeEvent appends one event to the timeline with its evidence, update
// and outbox row.
func (s *Store) writeEvent(ctx context.Context, tx pgx.Tx, e *Event, incs map[int64]Incident, now time.Time) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("record %s: %w", e.Kind, err)
	}
	var incID *int64
	if e.Incident > 0 {
		incID = &e.Incident
	}
	var eventID int64
	err = tx.QueryRow(ctx, `insert into incident_events (incident_id, at, kind, actor, payload) values ($1, $2, $3, $4, $5) returning id`,
		incID, e.At, e.Kind, e.Actor, payload).Scan(&eventID)
	if err != nil {
		return fmt.Errorf("record %s: %w", e.Kind, err)
	}
	if incID != nil {
		// One run is one piece of evidence, however many events cite it
		// (the failure that joins an incident and the classification it raises).
		for _, ev := range e.Evidence {
			_, err := tx.Exec(ctx, `
				insert into incident_evidence (incident_id, event_id, run_at, probe, location, step, role, error_class, outcome, signals, message, verdict, why, cert_not_after)
				select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
				where not exists (select 1 from incident_evidence where incident_id = $1 and run_at = $3 and probe = $4 and location = $5)`,
				*incID, eventID, ev.At.UTC(), ev.Probe, ev.Location, ev.Step, ev.Role, ev.Class, ev.Outcome, signalStrings(ev.Signals), ev.Message, ev.Verdict, ev.Why, ev.CertNotAfter)
			if err != nil {
				return fmt.Errorf("record evidence: %w", err)
			}
		}
	}
	public := false
	var inc Incident
	if incID != nil {
		inc = incs[*incID]
	}
	switch e.Kind {
	case KindUpdatePosted:
		if err := s.writeUpdate(ctx, tx, e, inc, eventID); err != nil {
			return err
		}
		public = e.Extra["visibility"] == string(Public)
	case KindStatusChanged, KindComponentChanged, KindNotePublished, KindImpactChanged:
		public = incID == nil || inc.Public
	}
	body := map[string]any{"event": eventJSON(*e, eventID)}
	if incID != nil {
		body["incident"] = inc
	}
	out, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("outbox %s: %w", e.Kind, err)
	}
	key := "system"
	switch {
	case incID != nil:
		key = fmt.Sprintf("incident:%d", *incID)
	case len(e.Components) > 0:
		key = "component:" + ComponentID(e.Components[0])
	}
	_, err = tx.Exec(ctx, `insert into outbox (created_at, ordering_key, kind, incident_id, event_id, public, payload) values ($1, $2, $3, $4, $5, $6, $7)`,
		now, key, e.Kind, incID, eventID, public, out)
	if err != nil {
		return fmt.Errorf("outbox %s: %w", e.Kind, err)
	}
	return nil
}

// eventJSON is an event as the timeline and the outbox show it.
func eventJSON(e Event, id int64) map[string]any {
	var m map[string]any
	b, _ := json.Marshal(e)
	_ = json.Unmarshal(b, &m)
	if m == nil {
		m = map[string]any{}
	}
	m["id"], m["kind"], m["at"], m["actor"] = id, e.Kind, e.At.UTC().Format(time.RFC3339Nano), e.Actor
	if e.Incident > 0 {
		m["incident"] = e.Incident
	}
	return m
}

// writeUpdate stores the update an update_posted event carries.
func (s *Store) writeUpdate(ctx context.Context, tx pgx.Tx, e *Event, inc Incident, eventID int64) error {
	msg, _ := e.Extra["message"].(string)
	html, err := RenderMarkdown(msg)
	if err != nil {
		return err
	}
	vis, _ := e.Extra["visibility"].(string)
	if vis == "" {
		vis = string(Public)
	}
	auto, _ := e.Extra["automatic"].(bool)
	var impact *string
	if im, ok := e.Extra["impact"].(string); ok && im != "" {
		impact = &im
	}
	comps := e.Extra["components"]
	if comps == nil {
		comps = []any{}
	}
	cj, err := json.Marshal(comps)
	if err != nil {
		return fmt.Errorf("update components: %w", err)
	}
	status := inc.Status
	if e.To != "" {
		status = Status(e.To)
	}
	var id int64
	err = tx.QueryRow(ctx, `
		insert into incident_updates (incident_id, event_id, status, body, body_html, visibility, impact, components, author, automatic, created_at)
		values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id`,
		inc.ID, eventID, status, msg, html, vis, impact, cj, e.Actor, auto, e.At).Scan(&id)
	if err != nil {
		return fmt.Errorf("insert update: %w", err)
	}
	e.Extra["update_id"] = id
	return nil
}

// notify announces a change to every replica when the transaction commits.
// PostgreSQL folds identical notifications of one transaction into one.
func notify(ctx context.Context, tx pgx.Tx, payload map[string]any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `select pg_notify($1, $2)`, NotifyChannel, string(b)); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

func lockProbeState(ctx context.Context, tx pgx.Tx, probe string) (ProbeState, error) {
	if _, err := tx.Exec(ctx, `insert into incident_probe_state (probe, state, updated_at) values ($1, '{}', now()) on conflict do nothing`, probe); err != nil {
		return ProbeState{}, fmt.Errorf("probe state %s: %w", probe, err)
	}
	var raw []byte
	if err := tx.QueryRow(ctx, `select state from incident_probe_state where probe = $1 for update`, probe).Scan(&raw); err != nil {
		return ProbeState{}, fmt.Errorf("probe state %s: %w", probe, err)
	}
	var st ProbeState
	if err := json.Unmarshal(raw, &st); err != nil {
		return ProbeState{}, fmt.Errorf("probe state %s: %w", probe, err)
	}
	st.Probe = probe
	return st, nil
}

func saveProbeState(ctx context.Context, tx pgx.Tx, st ProbeState, now time.Time) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("probe state %s: %w", st.Probe, err)
	}
	if _, err := tx.Exec(ctx, `update incident_probe_state set state = $2, updated_at = $3 where probe = $1`, st.Probe, b, now); err != nil {
		return fmt.Errorf("probe state %s: %w", st.Probe, err)
	}
	return nil
}

// refreshComponents recomputes every component's status from the open
// public incidents (an unpublished security incident must not show through
// the components either), the probes' latency marks and maintenance in progress, and
// records each change (timeline, outbox, notice). A person's override
// (SetComponentStatus) replaces what these say until it is cleared or
// superseded.
func (s *Store) refreshComponents(ctx context.Context, tx pgx.Tx, now time.Time) error {
	return s.refreshComponentsAs(ctx, tx, now, "system", "")
}

// refreshComponentsAs is refreshComponents with the changes it records
// attributed to actor, with reason on the timeline.
func (s *Store) refreshComponentsAs(ctx context.Context, tx pgx.Tx, now time.Time, actor, reason string) error {
	if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock($1)`, int64(componentsLockKey)); err != nil {
		return fmt.Errorf("components: lock: %w", err)
	}
	want := map[string]ComponentStatus{}
	cur := map[string]ComponentStatus{}
	names := map[string]string{}
	rows, err := tx.Query(ctx, `select id, name, status from components where active`)
	if err != nil {
		return fmt.Errorf("components: %w", err)
	}
	for rows.Next() {
		var id, name, st string
		if err := rows.Scan(&id, &name, &st); err != nil {
			rows.Close()
			return fmt.Errorf("components: %w", err)
		}
		want[name], cur[name], names[name] = Operational, ComponentStatus(st), id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("components: %w", err)
	}
	raise := func(q string, args ...any) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("components: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, st string
			if err := rows.Scan(&name, &st); err != nil {
				return fmt.Errorf("components: %w", err)
			}
			if _, ok := want[name]; ok {
				want[name] = worse(want[name], ComponentStatus(st))
			}
		}
		return rows.Err()
	}
	if err := raise(`select ic.component, ic.status from incident_components ic join incidents i on i.id = ic.incident_id
		where i.status in ('investigating', 'identified', 'monitoring') and i.public`); err != nil {
		return err
	}
	if err := raise(`select jsonb_array_elements_text(state->'slow_components'), 'degraded_performance' from incident_probe_state
		where jsonb_typeof(state->'slow_components') = 'array'`); err != nil {
		return err
	}
	if err := raise(`select unnest(components), 'under_maintenance' from maintenances where status in ('in_progress', 'verifying')`); err != nil {
		return err
	}
	overrides, err := activeOverrides(ctx, tx)
	if err != nil {
		return err
	}
	for _, o := range overrides {
		if _, ok := want[o.Component]; ok {
			want[o.Component] = o.Status
		}
	}
	order := make([]string, 0, len(want))
	for name := range want {
		order = append(order, name)
	}
	order = s.det.comps.sorted(order)
	for _, name := range order {
		if want[name] == cur[name] {
			continue
		}
		if _, err := tx.Exec(ctx, `update components set status = $2, updated_at = $3 where name = $1`, name, want[name], now); err != nil {
			return fmt.Errorf("components: %w", err)
		}
		e := Event{Kind: KindComponentChanged, At: now, Actor: actor, Components: []string{name},
			ComponentState: []ComponentChange{{Component: name, Status: want[name]}}, From: string(cur[name]), To: string(want[name]), Reason: reason}
		if err := s.writeEvent(ctx, tx, &e, nil, now); err != nil {
			return err
		}
		if err := notify(ctx, tx, map[string]any{"component": names[name]}); err != nil {
			return err
		}
	}
	return nil
}

// advise asks the Advisor for runbooks for every incident these events open
// or change where it matters (failing steps, components, classification),
// and appends runbook_attached events for those not attached yet. For an
// incident being opened, the best runbook's first update replaces the
// policy's template when it makes no claim a person must confirm.
func (s *Store) advise(ctx context.Context, tx pgx.Tx, evs []Event, incs map[int64]Incident) []Event {
	if s.advisor == nil {
		return evs
	}
	var order []int64
	for _, e := range evs {
		switch e.Kind {
		case KindDetected, KindExtended, KindStepFailing, KindClassificationChanged:
			if e.Incident != 0 && !slices.Contains(order, e.Incident) {
				order = append(order, e.Incident)
			}
		}
	}
	out := evs
	for _, id := range order {
		inc := incs[id]
		var classes, messages, roles []string
		opened := false
		for _, e := range evs {
			if e.Incident != id {
				continue
			}
			inc = Apply(inc, e)
			opened = opened || e.Kind == KindDetected
			if e.Class != "" {
				classes = appendUnique(classes, e.Class)
			}
			if e.Role != "" {
				roles = appendUnique(roles, e.Role)
			}
			if e.Message != "" {
				messages = appendUnique(messages, e.Message)
			}
		}
		var steps []string
		for _, ps := range inc.Steps {
			_, step, _ := cut(ps)
			steps = appendUnique(steps, step)
		}
		data := s.det.templateData(inc)
		if len(roles) > 0 {
			data.Role = roles[0]
		}
		if len(classes) > 0 {
			data.ErrorClass, data.What = classes[0], describeClass(classes[0])
		}
		data.Step = first(steps)
		data = data.withWords()
		advice := s.advisor.Advise(AdviceQuery{Incident: id, Components: inc.Components, Probes: inc.Probes, Steps: steps,
			Roles: roles, ErrorClasses: classes, Classification: inc.Classification, Messages: messages, Data: data})
		attached := map[string]bool{}
		if id > 0 {
			rows, err := tx.Query(ctx, `select payload->'runbook'->>'runbook' from incident_events where incident_id = $1 and kind = 'runbook_attached'`, id)
			if err == nil {
				ids, _ := pgx.CollectRows(rows, pgx.RowTo[*string])
				for _, r := range ids {
					if r != nil {
						attached[*r] = true
					}
				}
			}
		}
		at := evs[0].At
		for _, rb := range advice.Runbooks {
			if attached[rb.ID] {
				continue
			}
			attached[rb.ID] = true
			rb := rb
			out = append(out, Event{Kind: KindRunbookAttached, At: at, Actor: "system", Incident: id, Runbook: &rb,
				Reason: strings.Join(rb.Reasons, "; ")})
		}
		if opened && advice.FirstUpdate != "" && CheckClaims(advice.FirstUpdate, inc.Classification, false) == nil &&
			checkText("message", advice.FirstUpdate, true, MaxMessage) == nil && Placeholder(advice.FirstUpdate) == "" {
			for i := range out {
				if out[i].Incident == id && out[i].Kind == KindUpdatePosted && out[i].Extra["automatic"] == true {
					out[i].Extra["message"] = advice.FirstUpdate
					out[i].Extra["template"] = "runbook"
				}
			}
		}
	}
	return out
}

func cut(ps string) (probe, step string, ok bool) {
	for i := 0; i < len(ps); i++ {
		if ps[i] == '/' {
			return ps[:i], ps[i+1:], true
		}
	}
	return "", ps, false
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
