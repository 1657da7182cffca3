package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Maintenance is a scheduled maintenance window.
type Maintenance struct {
	ID           int64             `json:"id"`
	Title        string            `json:"title"`
	Body         string            `json:"body"`      // markdown
	BodyHTML     string            `json:"body_html"` // rendered and sanitised
	Status       MaintenanceStatus `json:"status"`
	Components   []string          `json:"components"`
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       time.Time         `json:"ends_at"`
	AutoStart    bool              `json:"auto_start"`
	AutoComplete bool              `json:"auto_complete"`
	CreatedBy    string            `json:"created_by"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// NewMaintenance is what a person schedules.
type NewMaintenance struct {
	Title        string
	Message      string // markdown
	Components   []string
	StartsAt     time.Time
	EndsAt       time.Time
	AutoStart    *bool // default true: in_progress at StartsAt
	AutoComplete *bool // default true: completed at EndsAt
	Actor        string
}

// ScheduleMaintenance schedules a maintenance window. While it is in
// progress its components show under_maintenance and automatic availability
// incidents on them are suppressed.
func (s *Store) ScheduleMaintenance(ctx context.Context, n NewMaintenance) (Maintenance, error) {
	var errs FieldErrors
	errs.add(checkActor(n.Actor))
	errs.add(checkText("title", n.Title, true, MaxTitle))
	errs.add(checkText("message", n.Message, false, MaxMessage))
	var comps []string
	for i, c := range n.Components {
		name, ok := s.component(c)
		if !ok {
			errs = append(errs, FieldError{Field: fmt.Sprintf("components[%d]", i), Msg: fmt.Sprintf("unknown component %q", c)})
			continue
		}
		comps = appendUnique(comps, name)
	}
	if len(n.Components) == 0 {
		errs = append(errs, FieldError{Field: "components", Msg: "name at least one component"})
	}
	switch {
	case n.StartsAt.IsZero():
		errs = append(errs, FieldError{Field: "starts_at", Msg: "is required"})
	case n.EndsAt.IsZero():
		errs = append(errs, FieldError{Field: "ends_at", Msg: "is required"})
	case !n.EndsAt.After(n.StartsAt):
		errs = append(errs, FieldError{Field: "ends_at", Msg: "must be after starts_at"})
	}
	if len(errs) > 0 {
		return Maintenance{}, errs
	}
	html, err := RenderMarkdown(n.Message)
	if err != nil {
		return Maintenance{}, err
	}
	autoStart, autoComplete := n.AutoStart == nil || *n.AutoStart, n.AutoComplete == nil || *n.AutoComplete
	var out Maintenance
	err = s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		var id int64
		err := tx.QueryRow(ctx, `
			insert into maintenances (title, body, body_html, status, components, starts_at, ends_at, auto_start, auto_complete, created_by, created_at, updated_at)
			values ($1, $2, $3, 'scheduled', $4, $5, $6, $7, $8, $9, $10, $10) returning id`,
			strings.TrimSpace(n.Title), n.Message, html, comps, n.StartsAt.UTC(), n.EndsAt.UTC(), autoStart, autoComplete, n.Actor, now).Scan(&id)
		if err != nil {
			return fmt.Errorf("schedule maintenance: %w", err)
		}
		if out, err = s.maintenance(ctx, tx, id, false); err != nil {
			return err
		}
		return s.maintenanceEvent(ctx, tx, out, Event{Kind: KindMaintenanceScheduled, At: now, Actor: n.Actor,
			Components: comps, To: string(MaintenanceScheduled)}, now)
	})
	return out, err
}

// UpdateMaintenance moves a maintenance to another status, with an optional
// message (markdown) that replaces its body.
func (s *Store) UpdateMaintenance(ctx context.Context, id int64, to MaintenanceStatus, message, actor string) (Maintenance, error) {
	var errs FieldErrors
	errs.add(checkActor(actor))
	errs.add(checkText("message", message, false, MaxMessage))
	if !to.Valid() {
		errs = append(errs, FieldError{Field: "status", Msg: fmt.Sprintf("unknown maintenance status %q (use scheduled, in_progress, verifying or completed)", to)})
	}
	if len(errs) > 0 {
		return Maintenance{}, errs
	}
	var out Maintenance
	err := s.transact(ctx, func(tx pgx.Tx) error {
		m, err := s.maintenance(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := ValidMaintenanceTransition(m.Status, to); err != nil {
			return FieldErrors{{Field: "status", Msg: err.Error()}}
		}
		out, err = s.moveMaintenance(ctx, tx, m, to, message, actor, "")
		return err
	})
	return out, err
}

func (s *Store) moveMaintenance(ctx context.Context, tx pgx.Tx, m Maintenance, to MaintenanceStatus, message, actor, reason string) (Maintenance, error) {
	now := s.now()
	body, html := m.Body, m.BodyHTML
	if message != "" {
		var err error
		if html, err = RenderMarkdown(message); err != nil {
			return m, err
		}
		body = message
	}
	if _, err := tx.Exec(ctx, `update maintenances set status = $2, body = $3, body_html = $4, updated_at = $5 where id = $1`, m.ID, to, body, html, now); err != nil {
		return m, fmt.Errorf("update maintenance %d: %w", m.ID, err)
	}
	from := m.Status
	m.Status, m.Body, m.BodyHTML, m.UpdatedAt = to, body, html, now
	if err := s.maintenanceEvent(ctx, tx, m, Event{Kind: KindMaintenanceChanged, At: now, Actor: actor, Components: m.Components,
		From: string(from), To: string(to), Reason: reason, Message: message}, now); err != nil {
		return m, err
	}
	return m, s.refreshComponents(ctx, tx, now)
}

// tickMaintenance starts and completes maintenance windows whose time has come.
func (s *Store) tickMaintenance(ctx context.Context) ([]Event, error) {
	var out []Event
	err := s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		rows, err := tx.Query(ctx, `select `+maintenanceColumns+` from maintenances
			where (status = 'scheduled' and auto_start and starts_at <= $1)
			   or (status in ('scheduled', 'in_progress', 'verifying') and auto_complete and ends_at <= $1)
			order by id for update skip locked`, now)
		if err != nil {
			return fmt.Errorf("tick maintenance: %w", err)
		}
		ms, err := pgx.CollectRows(rows, scanMaintenance)
		if err != nil {
			return fmt.Errorf("tick maintenance: %w", err)
		}
		for _, m := range ms {
			to, reason := MaintenanceInProgress, "the window started"
			if m.AutoComplete && !m.EndsAt.After(now) {
				to, reason = MaintenanceCompleted, "the window ended"
			}
			if _, err := s.moveMaintenance(ctx, tx, m, to, "", "system", reason); err != nil {
				return err
			}
			out = append(out, Event{Kind: KindMaintenanceChanged, At: now, Actor: "system", From: string(m.Status), To: string(to), Components: m.Components, Reason: reason})
		}
		return nil
	})
	return out, err
}

func (s *Store) maintenanceEvent(ctx context.Context, tx pgx.Tx, m Maintenance, e Event, now time.Time) error {
	e.At = e.At.UTC()
	e.Extra = map[string]any{"maintenance": m.ID, "title": m.Title}
	payload, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var eventID int64
	if err := tx.QueryRow(ctx, `insert into incident_events (maintenance_id, at, kind, actor, payload) values ($1, $2, $3, $4, $5) returning id`,
		m.ID, e.At, e.Kind, e.Actor, payload).Scan(&eventID); err != nil {
		return fmt.Errorf("maintenance event: %w", err)
	}
	body, err := json.Marshal(map[string]any{"event": eventJSON(e, eventID), "maintenance": m})
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `insert into outbox (created_at, ordering_key, kind, event_id, public, payload) values ($1, $2, $3, $4, true, $5)`,
		now, fmt.Sprintf("maintenance:%d", m.ID), e.Kind, eventID, body); err != nil {
		return fmt.Errorf("maintenance outbox: %w", err)
	}
	return notify(ctx, tx, map[string]any{"maintenance": m.ID})
}

const maintenanceColumns = `id, title, body, body_html, status, components, starts_at, ends_at, auto_start, auto_complete, created_by, created_at, updated_at`

func scanMaintenance(row pgx.CollectableRow) (Maintenance, error) {
	var m Maintenance
	err := row.Scan(&m.ID, &m.Title, &m.Body, &m.BodyHTML, &m.Status, &m.Components, &m.StartsAt, &m.EndsAt,
		&m.AutoStart, &m.AutoComplete, &m.CreatedBy, &m.CreatedAt, &m.UpdatedAt)
	m.StartsAt, m.EndsAt, m.CreatedAt, m.UpdatedAt = m.StartsAt.UTC(), m.EndsAt.UTC(), m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	return m, err
}

func (s *Store) maintenance(ctx context.Context, tx pgx.Tx, id int64, lock bool) (Maintenance, error) {
	q := `select ` + maintenanceColumns + ` from maintenances where id = $1`
	if lock {
		q += ` for update`
	}
	rows, err := tx.Query(ctx, q, id)
	if err != nil {
		return Maintenance{}, fmt.Errorf("maintenance %d: %w", id, err)
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMaintenance)
	if err == pgx.ErrNoRows {
		return Maintenance{}, fmt.Errorf("maintenance %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Maintenance{}, fmt.Errorf("maintenance %d: %w", id, err)
	}
	return m, nil
}

// Maintenances returns the maintenance windows not completed, and those
// completed since the given time, soonest first.
func (s *Store) Maintenances(ctx context.Context, completedSince time.Time) ([]Maintenance, error) {
	rows, err := s.pool.Query(ctx, `select `+maintenanceColumns+` from maintenances
		where status <> 'completed' or updated_at >= $1 order by starts_at, id`, completedSince.UTC())
	if err != nil {
		return nil, fmt.Errorf("maintenances: %w", err)
	}
	ms, err := pgx.CollectRows(rows, scanMaintenance)
	if err != nil {
		return nil, fmt.Errorf("maintenances: %w", err)
	}
	return ms, nil
}
