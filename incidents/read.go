package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TimelineEvent is one stored fact of an incident's timeline.
type TimelineEvent struct {
	ID       int64           `json:"id"`
	Incident int64           `json:"incident_id,omitempty"`
	At       time.Time       `json:"at"`
	Kind     EventKind       `json:"kind"`
	Actor    string          `json:"actor"`
	Payload  json.RawMessage `json:"payload"`
}

// Event decodes the payload back into an Event.
func (t TimelineEvent) Event() Event {
	var e Event
	_ = json.Unmarshal(t.Payload, &e)
	e.Kind, e.At, e.Actor, e.Incident = t.Kind, t.At, t.Actor, t.Incident
	return e
}

// PostedUpdate is an update as stored.
type PostedUpdate struct {
	ID         int64           `json:"id"`
	Incident   int64           `json:"incident_id"`
	Status     Status          `json:"status"`
	Body       string          `json:"body"`
	BodyHTML   string          `json:"body_html"`
	Visibility Visibility      `json:"visibility"`
	Impact     *Impact         `json:"impact,omitempty"`
	Components json.RawMessage `json:"affected_components"`
	Author     string          `json:"author"`
	Automatic  bool            `json:"automatic"`
	CreatedAt  time.Time       `json:"created_at"`
}

// ComponentInfo is a component as stored, with its current status.
type ComponentInfo struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Group       string          `json:"group"`
	Description string          `json:"description"`
	Position    int             `json:"position"`
	Status      ComponentStatus `json:"status"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// Get returns one incident.
func (s *Store) Get(ctx context.Context, id int64) (Incident, error) {
	var out Incident
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		incs, err := s.loadIncidents(ctx, tx, `i.id = $1`, []any{id}, false)
		if err != nil {
			return err
		}
		if len(incs) == 0 {
			return fmt.Errorf("incident %d: %w", id, ErrNotFound)
		}
		out = incs[0]
		return nil
	})
	return out, err
}

// ListFilter selects incidents.
type ListFilter struct {
	OpenOnly   bool // investigating, identified or monitoring
	PublicOnly bool // with at least one public update
	Limit      int  // default 50, at most 1000
}

// List returns incidents, open ones first, then the most recently started.
func (s *Store) List(ctx context.Context, f ListFilter) ([]Incident, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 1000)
	var out []Incident
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select `+incidentColumns+` from incidents i
			where (not $1 or i.status in ('investigating', 'identified', 'monitoring')) and (not $2 or i.public)
			order by (i.status in ('investigating', 'identified', 'monitoring')) desc, i.started_at desc, i.id desc
			limit $3`, f.OpenOnly, f.PublicOnly, f.Limit)
		if err != nil {
			return fmt.Errorf("list incidents: %w", err)
		}
		incs, err := pgx.CollectRows(rows, scanIncident)
		if err != nil {
			return fmt.Errorf("list incidents: %w", err)
		}
		out, err = s.withComponents(ctx, tx, incs)
		return err
	})
	return out, err
}

// Timeline returns an incident's events in the order they happened.
func (s *Store) Timeline(ctx context.Context, id int64) ([]TimelineEvent, error) {
	rows, err := s.pool.Query(ctx, `select id, coalesce(incident_id, 0), at, kind, actor, payload from incident_events where incident_id = $1 order by at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("timeline %d: %w", id, err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (TimelineEvent, error) {
		var t TimelineEvent
		err := row.Scan(&t.ID, &t.Incident, &t.At, &t.Kind, &t.Actor, &t.Payload)
		t.At = t.At.UTC()
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("timeline %d: %w", id, err)
	}
	return evs, nil
}

// Updates returns an incident's updates, oldest first; publicOnly leaves out
// internal ones.
func (s *Store) Updates(ctx context.Context, id int64, publicOnly bool) ([]PostedUpdate, error) {
	rows, err := s.pool.Query(ctx, `select id, incident_id, status, body, body_html, visibility, impact, components, author, automatic, created_at
		from incident_updates where incident_id = $1 and (not $2 or visibility = 'public') order by created_at, id`, id, publicOnly)
	if err != nil {
		return nil, fmt.Errorf("updates %d: %w", id, err)
	}
	us, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PostedUpdate, error) {
		var u PostedUpdate
		err := row.Scan(&u.ID, &u.Incident, &u.Status, &u.Body, &u.BodyHTML, &u.Visibility, &u.Impact, &u.Components, &u.Author, &u.Automatic, &u.CreatedAt)
		u.CreatedAt = u.CreatedAt.UTC()
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("updates %d: %w", id, err)
	}
	return us, nil
}

// Evidence returns the runs behind an incident's classification, oldest first.
func (s *Store) Evidence(ctx context.Context, id int64) ([]Evidence, error) {
	rows, err := s.pool.Query(ctx, `select run_at, probe, location, step, role, error_class, outcome, signals, message, verdict, why, cert_not_after
		from incident_evidence where incident_id = $1 order by id`, id)
	if err != nil {
		return nil, fmt.Errorf("evidence %d: %w", id, err)
	}
	ev, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Evidence, error) {
		var e Evidence
		var signals []string
		err := row.Scan(&e.At, &e.Probe, &e.Location, &e.Step, &e.Role, &e.Class, &e.Outcome, &signals, &e.Message, &e.Verdict, &e.Why, &e.CertNotAfter)
		e.At = e.At.UTC()
		if e.CertNotAfter != nil {
			t := e.CertNotAfter.UTC()
			e.CertNotAfter = &t
		}
		for _, sg := range signals {
			e.Signals = append(e.Signals, signalOf(sg))
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("evidence %d: %w", id, err)
	}
	return ev, nil
}

// Components returns the configured components with their current status,
// in configuration order.
func (s *Store) Components(ctx context.Context) ([]ComponentInfo, error) {
	rows, err := s.pool.Query(ctx, `select id, name, group_name, description, position, status, created_at, updated_at
		from components where active order by position, id`)
	if err != nil {
		return nil, fmt.Errorf("components: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ComponentInfo, error) {
		var c ComponentInfo
		err := row.Scan(&c.ID, &c.Name, &c.Group, &c.Description, &c.Position, &c.Status, &c.CreatedAt, &c.UpdatedAt)
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("components: %w", err)
	}
	return cs, nil
}
