package incidents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Update is what a person posts on an incident.
type Update struct {
	Status     Status            // "" keeps the current status
	Message    string            // markdown; required
	Visibility Visibility        // public (default) or internal
	Impact     Impact            // "" keeps the current impact
	Components []ComponentUpdate // affected components and their status in this incident
	Reclassify *Reclassification // optional: reclassify in the same step
	Actor      string            // who, e.g. "person:ada@example.com"; required
}

// ComponentUpdate sets a component's status within an incident.
type ComponentUpdate struct {
	Component string          `json:"component"` // name or id
	Status    ComponentStatus `json:"status"`
}

// Reclassification is a person's classification with the reason for the timeline.
type Reclassification struct {
	Classification Classification
	Reason         string
}

// NewIncident is what a person opens an incident with.
type NewIncident struct {
	Title          string
	Status         Status // investigating (default), identified or monitoring
	Message        string // the first update, markdown; required
	Visibility     Visibility
	Impact         Impact
	Components     []ComponentUpdate
	Classification Classification // "" is undetermined; a person's choice counts as confirmed
	StartedAt      time.Time      // when it began; zero is now
	Actor          string
}

func checkActor(actor string) *FieldError {
	if strings.TrimSpace(actor) == "" {
		return &FieldError{Field: "actor", Msg: "is required: who makes this change"}
	}
	if len(actor) > 200 {
		return &FieldError{Field: "actor", Msg: "is longer than 200 bytes"}
	}
	return nil
}

// component resolves a component name or id to its configured name.
func (s *Store) component(nameOrID string) (string, bool) {
	id := ComponentID(nameOrID)
	for _, c := range s.comps {
		if c.ID() == id {
			return c.Name, true
		}
	}
	return "", false
}

func (s *Store) checkComponents(cs []ComponentUpdate) ([]ComponentChange, FieldErrors) {
	var errs FieldErrors
	var out []ComponentChange
	for i, c := range cs {
		field := fmt.Sprintf("components[%d]", i)
		name, ok := s.component(c.Component)
		if !ok {
			errs = append(errs, FieldError{Field: field + ".component", Msg: fmt.Sprintf("unknown component %q", c.Component)})
			continue
		}
		if !c.Status.Valid() {
			errs = append(errs, FieldError{Field: field + ".status", Msg: fmt.Sprintf("unknown component status %q (use operational, degraded_performance, partial_outage, major_outage or under_maintenance)", c.Status)})
			continue
		}
		out = append(out, ComponentChange{Component: name, Status: c.Status})
	}
	return out, errs
}

func (e *FieldErrors) add(fe *FieldError) {
	if fe != nil {
		*e = append(*e, *fe)
	}
}

// PostUpdate posts a person's update on an incident: status, message,
// visibility, impact, components, and optionally a reclassification. Every
// problem is returned as FieldErrors and nothing is written.
func (s *Store) PostUpdate(ctx context.Context, id int64, u Update) (Incident, error) {
	var errs FieldErrors
	errs.add(checkActor(u.Actor))
	if fe := checkText("message", u.Message, true, MaxMessage); fe != nil {
		errs.add(fe)
	} else {
		errs.add(checkPlaceholders("message", u.Message))
	}
	if u.Status != "" && !u.Status.Valid() {
		errs = append(errs, FieldError{Field: "status", Msg: fmt.Sprintf("unknown status %q (use investigating, identified, monitoring or resolved)", u.Status)})
	}
	if u.Status == StatusPostmortem {
		errs = append(errs, FieldError{Field: "status", Msg: "postmortem is set by publishing the post-incident note"})
	}
	if u.Visibility == "" {
		u.Visibility = Public
	}
	if u.Visibility != Public && u.Visibility != Internal {
		errs = append(errs, FieldError{Field: "visibility", Msg: fmt.Sprintf("unknown visibility %q (use public or internal)", u.Visibility)})
	}
	if u.Impact != "" && !u.Impact.Valid() {
		errs = append(errs, FieldError{Field: "impact", Msg: fmt.Sprintf("unknown impact %q (use none, minor, major or critical)", u.Impact)})
	}
	comps, cerrs := s.checkComponents(u.Components)
	errs = append(errs, cerrs...)
	if u.Reclassify != nil {
		var fe FieldErrors
		if errors.As(CheckReclassification(u.Reclassify.Classification, u.Reclassify.Reason), &fe) {
			errs = append(errs, fe...)
		}
	}
	if len(errs) > 0 {
		return Incident{}, errs
	}
	var out Incident
	err := s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		inc, err := s.lockIncident(ctx, tx, id)
		if err != nil {
			return err
		}
		// An update without a status keeps it (a resolved incident may get
		// a follow-up); a status change must make sense.
		to := u.Status
		switch {
		case inc.Status == StatusPostmortem:
			return FieldErrors{{Field: "status", Msg: "the incident is closed: its post-incident note is published"}}
		case to == "":
			to = inc.Status
		default:
			if err := ValidTransition(inc.Status, to); err != nil {
				return FieldErrors{{Field: "status", Msg: err.Error()}}
			}
		}
		class, confirmed := inc.Classification, inc.Confirmed
		if u.Reclassify != nil {
			class, confirmed = u.Reclassify.Classification, true
		}
		if err := CheckClaims(u.Message, class, confirmed); err != nil {
			return FieldErrors{{Field: "message", Msg: err.Error()}}
		}
		var evs []Event
		if u.Reclassify != nil {
			evs = append(evs, Event{Kind: KindClassificationChanged, At: now, Actor: u.Actor, Incident: id,
				From: string(inc.Classification), To: string(class), Classification: class, Confirmed: true,
				Reason: strings.TrimSpace(u.Reclassify.Reason)})
		}
		if u.Impact != "" && u.Impact != inc.Impact {
			evs = append(evs, Event{Kind: KindImpactChanged, At: now, Actor: u.Actor, Incident: id, From: string(inc.Impact), To: string(u.Impact)})
		}
		var changes []map[string]any
		for _, c := range comps {
			old := inc.ComponentState[c.Component]
			if old == "" {
				old = Operational
			}
			changes = append(changes, map[string]any{"component": c.Component, "old_status": old, "new_status": c.Status})
		}
		evs = append(evs, Event{Kind: KindUpdatePosted, At: now, Actor: u.Actor, Incident: id,
			From: string(inc.Status), To: string(to), ComponentState: comps,
			Extra: map[string]any{"visibility": string(u.Visibility), "message": u.Message, "impact": string(u.Impact), "components": changes}})
		incs := map[int64]Incident{id: inc}
		if _, err := s.record(ctx, tx, incs, evs, now); err != nil {
			return err
		}
		if err := s.refreshComponents(ctx, tx, now); err != nil {
			return err
		}
		out = incs[id]
		return nil
	})
	return out, err
}

// Reclassify sets an incident's classification as a person's decision
// (confirmed), with a required reason that goes on the timeline.
// Reclassifying to the same classification confirms it.
func (s *Store) Reclassify(ctx context.Context, id int64, to Classification, reason, actor string) (Incident, error) {
	var errs FieldErrors
	errs.add(checkActor(actor))
	var fe FieldErrors
	if errors.As(CheckReclassification(to, reason), &fe) {
		errs = append(errs, fe...)
	}
	if len(errs) > 0 {
		return Incident{}, errs
	}
	var out Incident
	err := s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		inc, err := s.lockIncident(ctx, tx, id)
		if err != nil {
			return err
		}
		if inc.Status == StatusPostmortem {
			return FieldErrors{{Field: "classification", Msg: "the incident is closed: its post-incident note is published"}}
		}
		incs := map[int64]Incident{id: inc}
		_, err = s.record(ctx, tx, incs, []Event{{Kind: KindClassificationChanged, At: now, Actor: actor, Incident: id,
			From: string(inc.Classification), To: string(to), Classification: to, Confirmed: true, Reason: strings.TrimSpace(reason)}}, now)
		out = incs[id]
		return err
	})
	return out, err
}

// CreateIncident opens an incident by hand, with its first update.
func (s *Store) CreateIncident(ctx context.Context, n NewIncident) (Incident, error) {
	var errs FieldErrors
	errs.add(checkActor(n.Actor))
	if fe := checkText("title", n.Title, true, MaxTitle); fe != nil {
		errs.add(fe)
	} else {
		errs.add(checkPlaceholders("title", n.Title))
	}
	if fe := checkText("message", n.Message, true, MaxMessage); fe != nil {
		errs.add(fe)
	} else {
		errs.add(checkPlaceholders("message", n.Message))
	}
	if n.Status == "" {
		n.Status = StatusInvestigating
	}
	if !n.Status.Open() {
		errs = append(errs, FieldError{Field: "status", Msg: fmt.Sprintf("a new incident's status must be investigating, identified or monitoring, not %q", n.Status)})
	}
	if n.Visibility == "" {
		n.Visibility = Public
	}
	if n.Visibility != Public && n.Visibility != Internal {
		errs = append(errs, FieldError{Field: "visibility", Msg: fmt.Sprintf("unknown visibility %q (use public or internal)", n.Visibility)})
	}
	if n.Impact == "" {
		n.Impact = ImpactNone
	}
	if !n.Impact.Valid() {
		errs = append(errs, FieldError{Field: "impact", Msg: fmt.Sprintf("unknown impact %q (use none, minor, major or critical)", n.Impact)})
	}
	confirmed := n.Classification != ""
	if n.Classification == "" {
		n.Classification = Undetermined
	}
	if !n.Classification.Valid() {
		errs = append(errs, FieldError{Field: "classification", Msg: fmt.Sprintf("unknown classification %q (use security, non_security or undetermined)", n.Classification)})
	}
	now := s.now()
	if n.StartedAt.IsZero() {
		n.StartedAt = now
	}
	if n.StartedAt.After(now) {
		errs = append(errs, FieldError{Field: "started_at", Msg: "is in the future"})
	}
	comps, cerrs := s.checkComponents(n.Components)
	errs = append(errs, cerrs...)
	if len(errs) == 0 {
		if err := CheckClaims(n.Message, n.Classification, confirmed); err != nil {
			errs = append(errs, FieldError{Field: "message", Msg: err.Error()})
		}
	}
	if len(errs) > 0 {
		return Incident{}, errs
	}
	var out Incident
	err := s.transact(ctx, func(tx pgx.Tx) error {
		started := n.StartedAt.UTC()
		// As PostUpdate: each component's status in this incident before
		// (none yet, so operational) and after.
		changes := []map[string]any{}
		for _, c := range comps {
			changes = append(changes, map[string]any{"component": c.Component, "old_status": Operational, "new_status": c.Status})
		}
		evs := []Event{
			{Kind: KindCreated, At: now, Actor: n.Actor, Incident: NewIncidentID, Title: strings.TrimSpace(n.Title), To: string(n.Status),
				Classification: n.Classification, Confirmed: confirmed, ComponentState: comps, StartedAt: &started,
				Extra: map[string]any{"impact": string(n.Impact)}},
			{Kind: KindUpdatePosted, At: now, Actor: n.Actor, Incident: NewIncidentID, To: string(n.Status), ComponentState: comps,
				Extra: map[string]any{"visibility": string(n.Visibility), "message": n.Message, "impact": string(n.Impact), "components": changes}},
		}
		incs := map[int64]Incident{}
		id, err := s.record(ctx, tx, incs, evs, now)
		if err != nil {
			return err
		}
		if err := s.refreshComponents(ctx, tx, now); err != nil {
			return err
		}
		out = incs[id]
		return nil
	})
	return out, err
}

// AttachRunbook records that a runbook applies to an incident (a
// runbook_attached event), unless it is attached already.
func (s *Store) AttachRunbook(ctx context.Context, id int64, rb RunbookRef, actor string) error {
	var errs FieldErrors
	errs.add(checkActor(actor))
	if strings.TrimSpace(rb.ID) == "" {
		errs = append(errs, FieldError{Field: "runbook", Msg: "is required"})
	}
	if len(errs) > 0 {
		return errs
	}
	return s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		inc, err := s.lockIncident(ctx, tx, id)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `select count(*) from incident_events where incident_id = $1 and kind = 'runbook_attached' and payload->'runbook'->>'runbook' = $2`, id, rb.ID).Scan(&n); err != nil {
			return fmt.Errorf("attach runbook: %w", err)
		}
		if n > 0 {
			return nil
		}
		_, err = s.record(ctx, tx, map[int64]Incident{id: inc}, []Event{{Kind: KindRunbookAttached, At: now, Actor: actor, Incident: id,
			Runbook: &rb, Reason: strings.Join(rb.Reasons, "; ")}}, now)
		return err
	})
}

// Notified records on the timeline that a channel delivered something about
// an incident (for notify). It writes no outbox row.
func (s *Store) Notified(ctx context.Context, id int64, channel, detail string) error {
	payload := map[string]any{"channel": channel, "detail": detail}
	tag, err := s.pool.Exec(ctx, `insert into incident_events (incident_id, at, kind, actor, payload)
		select id, $2, 'notified', $3, $4 from incidents where id = $1`, id, s.now(), "system:notify", payload)
	if err != nil {
		return fmt.Errorf("notified: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("incident %d: %w", id, ErrNotFound)
	}
	return nil
}

func (s *Store) lockIncident(ctx context.Context, tx pgx.Tx, id int64) (Incident, error) {
	incs, err := s.loadIncidents(ctx, tx, `i.id = $1`, []any{id}, true)
	if err != nil {
		return Incident{}, err
	}
	if len(incs) == 0 {
		return Incident{}, fmt.Errorf("incident %d: %w", id, ErrNotFound)
	}
	return incs[0], nil
}
