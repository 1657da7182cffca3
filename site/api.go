package site

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/candorhq/candor/incidents"
)

// The JSON API follows Atlassian Statuspage's v2 formats field for field, so
// that widgets and tools written for Statuspage read Candor unchanged.
// Extra fields (classification, scheduled_for) are allowed by readers.

type apiPage struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	URL       string `json:"url"`
	TimeZone  string `json:"time_zone"`
	UpdatedAt utc    `json:"updated_at"`
}

type apiStatus struct {
	Indicator   string `json:"indicator"`
	Description string `json:"description"`
}

type apiComponent struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	Status             string   `json:"status"`
	CreatedAt          utc      `json:"created_at"`
	UpdatedAt          utc      `json:"updated_at"`
	Position           int      `json:"position"`
	Description        *string  `json:"description"`
	Showcase           bool     `json:"showcase"`
	StartDate          *string  `json:"start_date"`
	GroupID            *string  `json:"group_id"`
	PageID             string   `json:"page_id"`
	Group              bool     `json:"group"`
	OnlyShowIfDegraded bool     `json:"only_show_if_degraded"`
	Components         []string `json:"components,omitempty"` // a group's members
}

type apiIncident struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Status          string         `json:"status"`
	CreatedAt       utc            `json:"created_at"`
	UpdatedAt       utc            `json:"updated_at"`
	MonitoringAt    *utc           `json:"monitoring_at"`
	ResolvedAt      *utc           `json:"resolved_at"`
	Impact          string         `json:"impact"`
	Shortlink       string         `json:"shortlink"`
	StartedAt       utc            `json:"started_at"`
	PageID          string         `json:"page_id"`
	IncidentUpdates []apiUpdate    `json:"incident_updates"`
	Components      []apiComponent `json:"components"`
	// Candor's additions.
	Classification string `json:"classification,omitempty"`
	ScheduledFor   *utc   `json:"scheduled_for,omitempty"`
	ScheduledUntil *utc   `json:"scheduled_until,omitempty"`
}

type apiUpdate struct {
	ID                 string     `json:"id"`
	Status             string     `json:"status"`
	Body               string     `json:"body"`
	IncidentID         string     `json:"incident_id"`
	CreatedAt          utc        `json:"created_at"`
	UpdatedAt          utc        `json:"updated_at"`
	DisplayAt          utc        `json:"display_at"`
	AffectedComponents []affected `json:"affected_components"`
}

// utc marshals a time as RFC 3339 in UTC with Z, to the millisecond as
// Statuspage does.
type utc time.Time

func (t utc) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z") + `"`), nil
}

func utcp(t time.Time) *utc {
	if t.IsZero() {
		return nil
	}
	u := utc(t)
	return &u
}

func (m *model) apiPage() apiPage {
	return apiPage{ID: m.Page.ID, Name: m.Page.Name, URL: m.Page.URL, TimeZone: "Etc/UTC", UpdatedAt: utc(m.UpdatedAt)}
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (m *model) apiComponent(c *component) apiComponent {
	start := c.CreatedAt.UTC().Format(time.DateOnly)
	return apiComponent{
		ID: c.ID, Name: c.Name, Status: string(c.Status), CreatedAt: utc(c.CreatedAt), UpdatedAt: utc(c.UpdatedAt),
		Position: c.Position, Description: strp(c.Description), Showcase: true, StartDate: &start,
		GroupID: strp(c.GroupID), PageID: m.Page.ID,
	}
}

// apiComponents lists groups and components as Statuspage does: a group is a
// component with group true and the ids of its members.
func (m *model) apiComponents() []apiComponent {
	out := []apiComponent{}
	for gi := range m.Groups {
		g := &m.Groups[gi]
		if g.Name != "" {
			ids := make([]string, len(g.Components))
			for i, c := range g.Components {
				ids[i] = c.ID
			}
			out = append(out, apiComponent{ID: g.ID, Name: g.Name, Status: string(g.Status), CreatedAt: utc(g.CreatedAt),
				UpdatedAt: utc(latest(g.UpdatedAt, g.CreatedAt)), Position: g.Position, Showcase: false, PageID: m.Page.ID,
				Group: true, Components: ids})
		}
		for _, c := range g.Components {
			out = append(out, m.apiComponent(c))
		}
	}
	return out
}

func (m *model) apiIncident(in *incident) apiIncident {
	id := strconv.FormatInt(in.ID, 10)
	a := apiIncident{
		ID: id, Name: in.Title, Status: string(in.Status), CreatedAt: utc(in.DetectedAt),
		UpdatedAt: utc(latest(in.UpdatedAt, in.DetectedAt)), MonitoringAt: utcp(in.MonitoringAt), ResolvedAt: utcp(in.ResolvedAt),
		Impact: string(in.Impact), Shortlink: m.url(incidentPath(in.ID)), StartedAt: utc(in.StartedAt), PageID: m.Page.ID,
		IncidentUpdates: []apiUpdate{}, Components: []apiComponent{}, Classification: publicClass(in.Incident),
	}
	if a.Impact == "" {
		a.Impact = string(incidents.ImpactNone)
	}
	for _, u := range in.Updates {
		aff := u.Affected
		if aff == nil {
			aff = []affected{}
		}
		a.IncidentUpdates = append(a.IncidentUpdates, apiUpdate{
			ID: strconv.FormatInt(u.ID, 10), Status: string(u.Status), Body: u.Body, IncidentID: id,
			CreatedAt: utc(u.CreatedAt), UpdatedAt: utc(u.CreatedAt), DisplayAt: utc(u.CreatedAt), AffectedComponents: aff,
		})
	}
	for _, cid := range in.Comps {
		if c := m.componentByID(cid); c != nil {
			a.Components = append(a.Components, m.apiComponent(c))
		}
	}
	return a
}

// publicClass is the classification the public may read: only what a
// person confirmed (the publication policy: "not a security incident" is a
// person's claim, never the detector's); "undetermined" otherwise.
func publicClass(in incidents.Incident) string {
	if in.Confirmed && in.Classification.Valid() {
		return string(in.Classification)
	}
	return string(incidents.Undetermined)
}

// maintenanceID keeps maintenance ids apart from incident ids.
func maintenanceID(id int64) string { return "m" + strconv.FormatInt(id, 10) }

func (m *model) apiMaintenance(mt *maintenance) apiIncident {
	id := maintenanceID(mt.ID)
	a := apiIncident{
		ID: id, Name: mt.Title, Status: string(mt.Status), CreatedAt: utc(mt.CreatedAt), UpdatedAt: utc(mt.UpdatedAt),
		Impact: "maintenance", Shortlink: m.url("/#maintenance-" + strconv.FormatInt(mt.ID, 10)), StartedAt: utc(mt.StartsAt),
		PageID: m.Page.ID, ScheduledFor: utcp(mt.StartsAt), ScheduledUntil: utcp(mt.EndsAt),
		IncidentUpdates: []apiUpdate{}, Components: []apiComponent{},
	}
	if mt.Status == incidents.MaintenanceCompleted {
		a.ResolvedAt = utcp(mt.UpdatedAt)
	}
	if body := clean(mt.Body, 0); body != "" {
		a.IncidentUpdates = append(a.IncidentUpdates, apiUpdate{ID: id + "-1", Status: string(mt.Status), Body: body, IncidentID: id,
			CreatedAt: utc(mt.UpdatedAt), UpdatedAt: utc(mt.UpdatedAt), DisplayAt: utc(mt.UpdatedAt), AffectedComponents: []affected{}})
	}
	for _, cid := range mt.Comps {
		if c := m.componentByID(cid); c != nil {
			a.Components = append(a.Components, m.apiComponent(c))
		}
	}
	return a
}

func (m *model) apiIncidents(filter func(*incident) bool) []apiIncident {
	out := []apiIncident{}
	for i := range m.Incidents {
		if len(out) == apiLimit {
			break
		}
		if in := &m.Incidents[i]; filter == nil || filter(in) {
			out = append(out, m.apiIncident(in))
		}
	}
	return out
}

func (m *model) apiMaintenances(filter func(*maintenance) bool) []apiIncident {
	out := []apiIncident{}
	for i := range m.Maint {
		if len(out) == apiLimit {
			break
		}
		if mt := &m.Maint[i]; filter == nil || filter(mt) {
			out = append(out, m.apiMaintenance(mt))
		}
	}
	return out
}

func upcoming(mt *maintenance) bool { return mt.Status == incidents.MaintenanceScheduled }
func active(mt *maintenance) bool {
	return mt.Status == incidents.MaintenanceInProgress || mt.Status == incidents.MaintenanceVerifying
}
func unresolved(in *incident) bool { return in.Status.Open() }

// addAPI renders the /api/v2 endpoints.
func (b *builder) addAPI(m *model) error {
	page := m.apiPage()
	st := apiStatus{Indicator: m.Status.Indicator, Description: m.Status.Description}
	type obj = map[string]any
	docs := map[string]any{
		"/api/v2/summary.json": obj{"page": page, "status": st, "components": m.apiComponents(),
			"incidents": m.apiIncidents(unresolved), "scheduled_maintenances": m.apiMaintenances(func(mt *maintenance) bool { return upcoming(mt) || active(mt) })},
		"/api/v2/status.json":                          obj{"page": page, "status": st},
		"/api/v2/components.json":                      obj{"page": page, "components": m.apiComponents()},
		"/api/v2/incidents.json":                       obj{"page": page, "incidents": m.apiIncidents(nil)},
		"/api/v2/incidents/unresolved.json":            obj{"page": page, "incidents": m.apiIncidents(unresolved)},
		"/api/v2/scheduled-maintenances.json":          obj{"page": page, "scheduled_maintenances": m.apiMaintenances(nil)},
		"/api/v2/scheduled-maintenances/upcoming.json": obj{"page": page, "scheduled_maintenances": m.apiMaintenances(upcoming)},
		"/api/v2/scheduled-maintenances/active.json":   obj{"page": page, "scheduled_maintenances": m.apiMaintenances(active)},
	}
	for path, doc := range docs {
		// encoding/json escapes <, > and & as \u003c…, so even a reader that
		// puts the JSON in a page cannot be made to run a script.
		body, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		b.add(path, typeJSON, body)
	}
	return nil
}
