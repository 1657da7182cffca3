package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event kinds that record a person's override of a component's status.
// They are timeline facts without an incident and without an outbox row:
// the status change they cause is recorded as a component_changed event by
// the same person, which reaches the outbox and the change notices as every
// other component change does.
const (
	KindComponentOverridden      EventKind = "component_overridden"       // a person set a component's status by hand
	KindComponentOverrideCleared EventKind = "component_override_cleared" // and gave it back to incidents, probes and maintenance
)

// ComponentOverride is a person's status for a component, in force.
type ComponentOverride struct {
	Component string          `json:"component"` // name
	Status    ComponentStatus `json:"status"`
	Actor     string          `json:"actor"`
	At        time.Time       `json:"at"`
}

// SetComponentStatus sets a component's status by hand, outside any
// incident: a person's override of what incidents, latency marks and
// maintenance say. It is recorded on the timeline with its actor and time,
// and the status change (if any) as a component_changed event by the same
// actor, with its outbox row and change notice.
//
// The override stands until the person clears it (ClearComponentStatus) or
// something newer says what the component's status is: a public incident
// that names the component (opened, extended, or an update that sets its
// status) or a maintenance on it that starts, changes or completes. From
// then on the status is derived again. An incident not yet public (an
// unpublished security incident) supersedes nothing until it is published,
// so it cannot show through the components. component is a name or an id.
func (s *Store) SetComponentStatus(ctx context.Context, component string, status ComponentStatus, actor string) (ComponentInfo, error) {
	var errs FieldErrors
	errs.add(checkActor(actor))
	name, ok := s.component(component)
	if !ok {
		errs = append(errs, FieldError{Field: "component", Msg: fmt.Sprintf("unknown component %q", clipText(component, 100))})
	}
	if !status.Valid() {
		errs = append(errs, FieldError{Field: "status", Msg: fmt.Sprintf("unknown component status %q (use operational, degraded_performance, partial_outage, major_outage or under_maintenance)", clipText(string(status), 100))})
	}
	if len(errs) > 0 {
		return ComponentInfo{}, errs
	}
	return s.override(ctx, name, actor, Event{Kind: KindComponentOverridden, Actor: actor, Components: []string{name},
		ComponentState: []ComponentChange{{Component: name, Status: status}}, To: string(status)}, "set by hand")
}

// ClearComponentStatus ends a person's override of a component's status:
// its status is derived again from incidents, latency marks and
// maintenance. Clearing a component without an override records nothing.
func (s *Store) ClearComponentStatus(ctx context.Context, component, actor string) (ComponentInfo, error) {
	var errs FieldErrors
	errs.add(checkActor(actor))
	name, ok := s.component(component)
	if !ok {
		errs = append(errs, FieldError{Field: "component", Msg: fmt.Sprintf("unknown component %q", clipText(component, 100))})
	}
	if len(errs) > 0 {
		return ComponentInfo{}, errs
	}
	return s.override(ctx, name, actor, Event{Kind: KindComponentOverrideCleared, Actor: actor, Components: []string{name}}, "override cleared")
}

// ComponentOverrides returns the overrides in force, in configuration order.
func (s *Store) ComponentOverrides(ctx context.Context) ([]ComponentOverride, error) {
	var out []ComponentOverride
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		out, err = activeOverrides(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(out))
	byName := map[string]ComponentOverride{}
	for i, o := range out {
		names[i] = o.Component
		byName[o.Component] = o
	}
	sorted := s.det.comps.sorted(names)
	for i, n := range sorted {
		out[i] = byName[n]
	}
	return out, nil
}

func (s *Store) override(ctx context.Context, name, actor string, e Event, reason string) (ComponentInfo, error) {
	var out ComponentInfo
	err := s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		if _, err := tx.Exec(ctx, `select pg_advisory_xact_lock($1)`, int64(componentsLockKey)); err != nil {
			return fmt.Errorf("override: lock: %w", err)
		}
		var active bool
		if err := tx.QueryRow(ctx, `select active from components where name = $1`, name).Scan(&active); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("component %q: %w", name, ErrNotFound)
			}
			return fmt.Errorf("override: %w", err)
		}
		if !active {
			return fmt.Errorf("component %q: %w", name, ErrNotFound)
		}
		if e.Kind == KindComponentOverrideCleared {
			overrides, err := activeOverrides(ctx, tx)
			if err != nil {
				return err
			}
			found := false
			for _, o := range overrides {
				found = found || o.Component == name
			}
			if !found {
				return nil
			}
		}
		e.At = now
		payload, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("override: %w", err)
		}
		if _, err := tx.Exec(ctx, `insert into incident_events (at, kind, actor, payload) values ($1, $2, $3, $4)`,
			now, e.Kind, actor, payload); err != nil {
			return fmt.Errorf("override: %w", err)
		}
		return s.refreshComponentsAs(ctx, tx, now, actor, reason)
	})
	if err != nil {
		return ComponentInfo{}, err
	}
	cs, err := s.Components(ctx)
	if err != nil {
		return ComponentInfo{}, err
	}
	for _, c := range cs {
		if c.Name == name {
			out = c
		}
	}
	return out, nil
}

// activeOverrides returns the overrides in force: for each component, the
// latest override event if it sets a status and nothing newer (an incident
// event naming the component, or a maintenance change on it) supersedes it.
// The check for newer events reads only the events after the override of
// the incidents and maintenances on the component, through the by-incident
// and by-maintenance indexes (ids, not clocks, order them: replicas' clocks
// may differ by a little).
func activeOverrides(ctx context.Context, tx pgx.Tx) ([]ComponentOverride, error) {
	rows, err := tx.Query(ctx, `
		select o.id, o.name, o.kind, coalesce(o.payload->>'to', ''), o.actor, o.at
		from (
			select distinct on (payload->'components'->>0) id, payload->'components'->>0 as name, kind, payload, actor, at
			from incident_events
			where incident_id is null and kind in ('component_overridden', 'component_override_cleared')
			order by payload->'components'->>0, id desc
		) o
		order by o.name`)
	if err != nil {
		return nil, fmt.Errorf("component overrides: %w", err)
	}
	type latest struct {
		ComponentOverride
		id   int64
		kind EventKind
	}
	last, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (latest, error) {
		var l latest
		err := row.Scan(&l.id, &l.Component, &l.kind, &l.Status, &l.Actor, &l.At)
		l.At = l.At.UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("component overrides: %w", err)
	}
	var out []ComponentOverride
	for _, l := range last {
		if l.kind != KindComponentOverridden {
			continue
		}
		// One query per override (they are few), walking from the incidents
		// and maintenances on the component to their events after the
		// override through the by-incident and by-maintenance indexes (the
		// lateral limit keeps the planner from scanning every later event).
		var superseded bool
		err := tx.QueryRow(ctx, `
			select exists (
				select 1 from incident_components ic
				cross join lateral (
					select 1 from incident_events n
					where n.incident_id = ic.incident_id and n.id > $2
					  and n.kind in ('detected', 'created', 'extended', 'update_posted', 'component_changed')
					  and (n.payload->'components' ? $1
					       or n.payload->'component_status' @> jsonb_build_array(jsonb_build_object('component', $1::text)))
					limit 1) x
				where ic.component = $1 and (select public from incidents where id = ic.incident_id))
			or exists (
				select 1 from maintenances m
				cross join lateral (
					select 1 from incident_events n
					where n.maintenance_id = m.id and n.id > $2 and n.kind = 'maintenance_changed'
					limit 1) x
				where $1 = any(m.components))`, l.Component, l.id).Scan(&superseded)
		if err != nil {
			return nil, fmt.Errorf("component overrides: %w", err)
		}
		if !superseded {
			out = append(out, l.ComponentOverride)
		}
	}
	return out, nil
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
