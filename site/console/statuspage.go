package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/candorhq/candor/incidents"
)

// The Statuspage-compatible management API, under
// /api/v1/pages/{page_id}/: the request and response shapes of Atlassian
// Statuspage's REST API, so that scripts and integrations written for it
// can point at Candor. Candor's own fields (classification and its reason,
// visibility) are extra keys.

// spComponent is a component as Statuspage's API shows it.
type spComponent struct {
	ID                 string    `json:"id"`
	PageID             string    `json:"page_id"`
	GroupID            *string   `json:"group_id"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	Group              bool      `json:"group"`
	Name               string    `json:"name"`
	Description        *string   `json:"description"`
	Position           int       `json:"position"`
	Status             string    `json:"status"`
	Showcase           bool      `json:"showcase"`
	OnlyShowIfDegraded bool      `json:"only_show_if_degraded"`
	AutomationEmail    string    `json:"automation_email"`
	StartDate          *string   `json:"start_date"`
}

type spAffected struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	OldStatus string `json:"old_status"`
	NewStatus string `json:"new_status"`
}

type spUpdate struct {
	ID                   string       `json:"id"`
	Status               string       `json:"status"`
	Body                 string       `json:"body"`
	IncidentID           string       `json:"incident_id"`
	CreatedAt            time.Time    `json:"created_at"`
	UpdatedAt            time.Time    `json:"updated_at"`
	DisplayAt            time.Time    `json:"display_at"`
	AffectedComponents   []spAffected `json:"affected_components"`
	DeliverNotifications bool         `json:"deliver_notifications"`
	Visibility           string       `json:"visibility"` // Candor: public or internal
}

type spIncident struct {
	ID              string        `json:"id"`
	Name            string        `json:"name"`
	Status          string        `json:"status"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
	MonitoringAt    *time.Time    `json:"monitoring_at"`
	ResolvedAt      *time.Time    `json:"resolved_at"`
	Impact          string        `json:"impact"`
	ImpactOverride  *string       `json:"impact_override"`
	Shortlink       string        `json:"shortlink"`
	StartedAt       time.Time     `json:"started_at"`
	PageID          string        `json:"page_id"`
	IncidentUpdates []spUpdate    `json:"incident_updates"`
	Components      []spComponent `json:"components"`
	// Candor's own fields.
	Classification          string `json:"classification"`
	ClassificationConfirmed bool   `json:"classification_confirmed"`
	Public                  bool   `json:"public"`
}

// spIncidentIn is the "incident" object of a create or update request.
type spIncidentIn struct {
	Name                 *string           `json:"name"`
	Status               string            `json:"status"`
	ImpactOverride       string            `json:"impact_override"`
	Body                 string            `json:"body"`
	ComponentIDs         []string          `json:"component_ids"`
	Components           map[string]string `json:"components"`
	DeliverNotifications *bool             `json:"deliver_notifications"`
	// Candor's own fields.
	Classification       string `json:"classification"`
	ClassificationReason string `json:"classification_reason"`
	Visibility           string `json:"visibility"`
}

func ptrTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (c *Console) spComponent(ci incidents.ComponentInfo) spComponent {
	sc := spComponent{ID: ci.ID, PageID: c.o.PageID, CreatedAt: ci.CreatedAt.UTC(), UpdatedAt: ci.UpdatedAt.UTC(),
		Name: ci.Name, Position: ci.Position, Status: string(ci.Status), Showcase: true}
	if ci.Description != "" {
		d := ci.Description
		sc.Description = &d
	}
	return sc
}

// checkPage answers 404 for a page id that is not this page's.
func (c *Console) checkPage(r *http.Request) error {
	if r.PathValue("page_id") != c.o.PageID || c.o.PageID == "" {
		return &httpError{status: http.StatusNotFound, msg: "no such page",
			fields: incidents.FieldErrors{{Field: "page_id", Msg: "not this Candor's page id (see /api/v2/summary.json)"}}}
	}
	return nil
}

func (c *Console) spIncident(r *http.Request, inc incidents.Incident, comps []incidents.ComponentInfo) (spIncident, error) {
	byName := map[string]incidents.ComponentInfo{}
	for _, ci := range comps {
		byName[ci.Name] = ci
	}
	id := strconv.FormatInt(inc.ID, 10)
	out := spIncident{
		ID: id, Name: inc.Title, Status: string(inc.Status), CreatedAt: inc.DetectedAt.UTC(), UpdatedAt: inc.UpdatedAt.UTC(),
		MonitoringAt: ptrTime(inc.MonitoringAt), ResolvedAt: ptrTime(inc.ResolvedAt), Impact: string(inc.Impact),
		Shortlink: c.o.BaseURL + "/incidents/" + id, StartedAt: inc.StartedAt.UTC(), PageID: c.o.PageID,
		IncidentUpdates: []spUpdate{}, Components: []spComponent{},
		Classification: string(inc.Classification), ClassificationConfirmed: inc.Confirmed, Public: inc.Public,
	}
	if out.UpdatedAt.IsZero() {
		out.UpdatedAt = out.CreatedAt
	}
	for _, name := range inc.Components {
		if ci, ok := byName[name]; ok {
			out.Components = append(out.Components, c.spComponent(ci))
		}
	}
	ups, err := c.o.Incidents.Updates(r.Context(), inc.ID, false)
	if err != nil {
		return out, err
	}
	// Newest first, as Statuspage lists them.
	for i := len(ups) - 1; i >= 0; i-- {
		u := ups[i]
		su := spUpdate{ID: strconv.FormatInt(u.ID, 10), Status: string(u.Status), Body: u.Body, IncidentID: id,
			CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.CreatedAt.UTC(), DisplayAt: u.CreatedAt.UTC(),
			AffectedComponents: []spAffected{}, DeliverNotifications: u.Visibility == incidents.Public, Visibility: string(u.Visibility)}
		var changes []struct {
			Component string `json:"component"`
			Old       string `json:"old_status"`
			New       string `json:"new_status"`
		}
		_ = json.Unmarshal(u.Components, &changes) // written by incidents; an odd row shows no components
		for _, ch := range changes {
			su.AffectedComponents = append(su.AffectedComponents, spAffected{Code: byName[ch.Component].ID, Name: ch.Component, OldStatus: ch.Old, NewStatus: ch.New})
		}
		out.IncidentUpdates = append(out.IncidentUpdates, su)
	}
	return out, nil
}

// spFieldNames maps incidents' field names to the request's.
func spFields(err error) error {
	var fe incidents.FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	out := make(incidents.FieldErrors, len(fe))
	for i, f := range fe {
		name := f.Field
		switch {
		case name == "title":
			name = "name"
		case name == "message":
			name = "body"
		case name == "impact":
			name = "impact_override"
		case name == "reason":
			name = "classification_reason"
		case strings.HasPrefix(name, "components"):
			name = "components"
		}
		out[i] = incidents.FieldError{Field: "incident." + name, Msg: f.Msg}
	}
	return out
}

// componentUpdatesSP turns Statuspage's component_ids and components into
// incidents' component updates: a listed id without a status keeps the
// component's current status.
func componentUpdatesSP(in spIncidentIn, comps []incidents.ComponentInfo) ([]incidents.ComponentUpdate, error) {
	byID := map[string]incidents.ComponentInfo{}
	for _, ci := range comps {
		byID[ci.ID] = ci
	}
	var out []incidents.ComponentUpdate
	var errs incidents.FieldErrors
	seen := map[string]bool{}
	add := func(id, status string) {
		ci, ok := byID[id]
		if !ok {
			errs = append(errs, incidents.FieldError{Field: "incident.components", Msg: "no component has id " + strconv.Quote(clip(id, 100))})
			return
		}
		if seen[id] {
			return
		}
		seen[id] = true
		if status == "" {
			status = string(ci.Status)
		}
		out = append(out, incidents.ComponentUpdate{Component: ci.Name, Status: incidents.ComponentStatus(status)})
	}
	for _, ci := range comps { // configuration order, for a stable result
		if st, ok := in.Components[ci.ID]; ok {
			add(ci.ID, st)
		}
	}
	for id := range in.Components {
		if _, ok := byID[id]; !ok {
			add(id, "")
		}
	}
	for _, id := range in.ComponentIDs {
		add(id, in.Components[id])
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func (c *Console) spListIncidents(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if err := c.checkPage(r); err != nil {
		return err
	}
	list, err := c.o.Incidents.List(r.Context(), incidents.ListFilter{Limit: 100})
	if err != nil {
		return err
	}
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	out := []spIncident{}
	for _, inc := range list {
		si, err := c.spIncident(r, inc, comps)
		if err != nil {
			return err
		}
		out = append(out, si)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (c *Console) spGetIncident(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if err := c.checkPage(r); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	return c.spWriteIncident(w, r, id, http.StatusOK)
}

func (c *Console) spWriteIncident(w http.ResponseWriter, r *http.Request, id int64, status int) error {
	inc, err := c.o.Incidents.Get(r.Context(), id)
	if err != nil {
		return err
	}
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	si, err := c.spIncident(r, inc, comps)
	if err != nil {
		return err
	}
	writeJSON(w, status, si)
	return nil
}

func (c *Console) spCreateIncident(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := c.checkPage(r); err != nil {
		return err
	}
	var req struct {
		Incident *spIncidentIn `json:"incident"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Incident == nil {
		return spMissing()
	}
	in := *req.Incident
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	cu, err := componentUpdatesSP(in, comps)
	if err != nil {
		return err
	}
	name := ""
	if in.Name != nil {
		name = *in.Name
	}
	inc, err := c.o.Incidents.CreateIncident(r.Context(), incidents.NewIncident{
		Title: name, Status: incidents.Status(in.Status), Message: in.Body, Visibility: incidents.Visibility(in.Visibility),
		Impact: incidents.Impact(in.ImpactOverride), Components: cu, Classification: incidents.Classification(in.Classification), Actor: p.actor(),
	})
	if err != nil {
		return spFields(err)
	}
	c.auditReq(r, p.actor(), "incident.created", incidentTarget(inc.ID), nil)
	return c.spWriteIncident(w, r, inc.ID, http.StatusCreated)
}

func spMissing() error {
	return &httpError{status: http.StatusBadRequest, msg: "an incident object is required",
		fields: incidents.FieldErrors{{Field: "incident", Msg: `required: {"incident": {...}}`}}}
}

// spUpdateIncident is PATCH incidents/{id}: every change is posted as an
// update with a message, so body is required; renaming is not supported.
func (c *Console) spUpdateIncident(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := c.checkPage(r); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req struct {
		Incident *spIncidentIn `json:"incident"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Incident == nil {
		return spMissing()
	}
	in := *req.Incident
	inc, err := c.o.Incidents.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if in.Name != nil && *in.Name != inc.Title {
		return incidents.FieldErrors{{Field: "incident.name", Msg: "Candor does not rename incidents; post an update instead"}}
	}
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	cu, err := componentUpdatesSP(in, comps)
	if err != nil {
		return err
	}
	u := incidents.Update{Status: incidents.Status(in.Status), Message: in.Body, Visibility: incidents.Visibility(in.Visibility),
		Impact: incidents.Impact(in.ImpactOverride), Components: cu, Actor: p.actor()}
	if in.Classification != "" {
		u.Reclassify = &incidents.Reclassification{Classification: incidents.Classification(in.Classification), Reason: in.ClassificationReason}
	}
	if _, err := c.o.Incidents.PostUpdate(r.Context(), id, u); err != nil {
		return spFields(err)
	}
	c.auditReq(r, p.actor(), "incident.update_posted", incidentTarget(id), map[string]any{"status": in.Status})
	return c.spWriteIncident(w, r, id, http.StatusOK)
}

func (c *Console) spListComponents(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if err := c.checkPage(r); err != nil {
		return err
	}
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	out := []spComponent{}
	for _, ci := range comps {
		out = append(out, c.spComponent(ci))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// spComponentIn is the "component" object of PATCH components/{id}.
// Candor changes only the status: a person's override that stands until it
// is cleared or an incident or maintenance changes the component. Candor's
// extra key automatic (true) clears the override instead.
type spComponentIn struct {
	Status      *string `json:"status"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Automatic   bool    `json:"automatic"`
}

// spUpdateComponent is PATCH components/{id}.
func (c *Console) spUpdateComponent(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := c.checkPage(r); err != nil {
		return err
	}
	var req struct {
		Component *spComponentIn `json:"component"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Component == nil {
		return &httpError{status: http.StatusBadRequest, msg: "a component object is required",
			fields: incidents.FieldErrors{{Field: "component", Msg: `required: {"component": {"status": "..."}}`}}}
	}
	in := *req.Component
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	var cur *incidents.ComponentInfo
	for i := range comps {
		if comps[i].ID == r.PathValue("id") {
			cur = &comps[i]
		}
	}
	if cur == nil {
		return &httpError{status: http.StatusNotFound, msg: "not found",
			fields: incidents.FieldErrors{{Field: "id", Msg: "no component has this id"}}}
	}
	var errs incidents.FieldErrors
	if in.Name != nil && *in.Name != cur.Name {
		errs = append(errs, incidents.FieldError{Field: "component.name", Msg: "components are named in Candor's configuration"})
	}
	if in.Description != nil && *in.Description != cur.Description {
		errs = append(errs, incidents.FieldError{Field: "component.description", Msg: "components are described in Candor's configuration"})
	}
	switch {
	case in.Automatic && in.Status != nil:
		errs = append(errs, incidents.FieldError{Field: "component.automatic", Msg: "give either a status or automatic, not both"})
	case !in.Automatic && in.Status == nil:
		errs = append(errs, incidents.FieldError{Field: "component.status", Msg: "is required (operational, degraded_performance, partial_outage, major_outage or under_maintenance), or automatic: true to clear a status set by hand"})
	}
	if len(errs) > 0 {
		return errs
	}
	var ci incidents.ComponentInfo
	if in.Automatic {
		ci, err = c.o.Incidents.ClearComponentStatus(r.Context(), cur.ID, p.actor())
	} else {
		ci, err = c.o.Incidents.SetComponentStatus(r.Context(), cur.ID, incidents.ComponentStatus(*in.Status), p.actor())
	}
	if err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			out := make(incidents.FieldErrors, len(fe))
			for i, f := range fe {
				out[i] = incidents.FieldError{Field: "component." + f.Field, Msg: f.Msg}
			}
			return out
		}
		return err
	}
	detail := map[string]any{"from": cur.Status, "to": ci.Status}
	action := "component.status_set"
	if in.Automatic {
		action = "component.status_cleared"
	}
	c.auditReq(r, p.actor(), action, "component:"+ci.ID, detail)
	writeJSON(w, http.StatusOK, c.spComponent(ci))
	return nil
}
