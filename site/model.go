package site

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"

	"github.com/candorhq/candor/incidents"
)

// Limits of what a snapshot holds. A rebuild reads at most historyLimit
// incidents; the JSON API lists the last apiLimit, as Statuspage does.
const (
	historyLimit = 250
	apiLimit     = 50
	maxTitle     = 200 // runes of a title shown anywhere
	uptimeDays   = incidents.DefaultUptimeDays
)

// model is everything one snapshot is rendered from, read from the Store in
// one go so that every output of a snapshot tells the same story.
type model struct {
	Page       Page
	Built      time.Time // when the snapshot was built, UTC
	UpdatedAt  time.Time // the latest change in the data, UTC
	Groups     []group
	Components []component
	Incidents  []incident // public incidents, open first, then newest
	Maint      []maintenance
	Status     status
}

type group struct {
	ID         string
	Name       string // "" for components without a group
	Status     incidents.ComponentStatus
	Components []*component
	Position   int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

type component struct {
	incidents.ComponentInfo
	GroupID   string
	Days      []day
	Uptime    float64 // over the days with data; -1 when none
	Incidents []*incident
}

type day struct {
	Day       time.Time
	Runs      int
	Failed    int
	Uptime    float64 // -1: no data
	Incidents []*incident
}

type incident struct {
	incidents.Incident
	Title   string   // cleaned
	Updates []update // newest first
	Comps   []string // ids of the affected components
}

type update struct {
	incidents.PostedUpdate
	Affected []affected
}

type affected struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	OldStatus string `json:"old_status"`
	NewStatus string `json:"new_status"`
}

type maintenance struct {
	incidents.Maintenance
	Title string
	Comps []string // ids
}

// status is the page's overall status in Statuspage's terms.
type status struct {
	Indicator   string // none, minor, major, critical, maintenance
	Description string
}

// clean makes outside text safe to carry anywhere: valid UTF-8, no control
// characters (XML 1.0 forbids most of them; none belongs in a title), and
// at most limit runes (0: no limit).
func clean(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return -1
		case unicode.IsControl(r), r == '\uFFFE', r == '\uFFFF':
			return -1
		}
		return r
	}, s)
	if limit > 0 && utf8.RuneCountInString(s) > limit {
		r := []rune(s)
		s = string(r[:limit-1]) + "…"
	}
	return s
}

// oneLine is clean for titles: newlines and tabs become spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(clean(s, 0)), " ")
}

func title(s string) string { return clean(oneLine(s), maxTitle) }

// load reads what a snapshot shows from the Store. It is the only place
// that touches PostgreSQL.
func load(ctx context.Context, st *incidents.Store, page Page, now time.Time, cache *updateCache) (*model, error) {
	now = now.UTC()
	infos, err := st.Components(ctx)
	if err != nil {
		return nil, err
	}
	ups, err := st.Uptime(ctx, uptimeDays)
	if err != nil {
		return nil, err
	}
	incs, err := st.List(ctx, incidents.ListFilter{PublicOnly: true, Limit: historyLimit})
	if err != nil {
		return nil, err
	}
	ms, err := st.Maintenances(ctx, now.AddDate(0, 0, -uptimeDays))
	if err != nil {
		return nil, err
	}
	m := &model{Page: page, Built: now}
	// The Store sanitises update HTML when it is written; sanitising again
	// here keeps a row written some other way from reaching a page.
	pol := sanitizer()
	safe := func(h string) string { return clean(pol.Sanitize(h), 0) }
	byName := map[string]*component{}
	m.Components = make([]component, len(infos))
	for i, ci := range infos {
		ci.Name = title(ci.Name)
		ci.Group = title(ci.Group)
		ci.Description = clean(ci.Description, 2000)
		m.Components[i] = component{ComponentInfo: ci, Uptime: -1}
		m.UpdatedAt = latest(m.UpdatedAt, ci.UpdatedAt)
	}
	for i := range m.Components {
		c := &m.Components[i]
		byName[c.ID] = c
		byName[incidents.ComponentID(c.Name)] = c
	}
	for _, u := range ups {
		c := byName[u.ID]
		if c == nil {
			continue
		}
		var runs, failed int
		for _, d := range u.Days {
			c.Days = append(c.Days, day{Day: d.Day.UTC(), Runs: d.Runs, Failed: d.Failed, Uptime: d.Uptime})
			runs += d.Runs
			failed += d.Failed
		}
		if runs > 0 {
			c.Uptime = float64(runs-failed) / float64(runs)
		}
	}
	// Groups in the order their first component appears.
	gidx := map[string]int{}
	for i := range m.Components {
		c := &m.Components[i]
		if c.Group != "" {
			c.GroupID = "group-" + incidents.ComponentID(c.Group)
		}
		k, ok := gidx[c.Group]
		if !ok || c.Group == "" {
			k = len(m.Groups)
			if c.Group != "" {
				gidx[c.Group] = k
			}
			m.Groups = append(m.Groups, group{ID: c.GroupID, Name: c.Group, Status: incidents.Operational, Position: len(m.Groups) + 1, CreatedAt: c.CreatedAt})
		}
		g := &m.Groups[k]
		g.Components = append(g.Components, c)
		g.Status = worse(g.Status, c.Status)
		g.UpdatedAt = latest(g.UpdatedAt, c.UpdatedAt)
		if c.CreatedAt.Before(g.CreatedAt) {
			g.CreatedAt = c.CreatedAt
		}
	}

	m.Incidents = make([]incident, len(incs))
	for i, in := range incs {
		us, err := cache.updates(ctx, st, in, func(u *incidents.PostedUpdate) {
			u.Body = clean(u.Body, 0)
			u.BodyHTML = safe(u.BodyHTML)
		})
		if err != nil {
			return nil, err
		}
		inc := &m.Incidents[i]
		inc.Incident = in
		inc.Title = title(in.Title)
		for _, name := range in.Components {
			if c := byName[incidents.ComponentID(name)]; c != nil {
				inc.Comps = append(inc.Comps, c.ID)
			}
		}
		prev := map[string]string{}
		first := firstChanges(in, us)
		for k, u := range us {
			up := update{PostedUpdate: u}
			changes := componentChanges(u.Components)
			if k == 0 && len(changes) == 0 {
				changes = first
			}
			for _, ch := range changes {
				c := byName[incidents.ComponentID(ch.Component)]
				if c == nil || !incidents.ComponentStatus(ch.NewStatus).Valid() {
					continue
				}
				if !incidents.ComponentStatus(ch.OldStatus).Valid() {
					ch.OldStatus = ""
				}
				old := cmp.Or(ch.OldStatus, prev[c.ID], string(incidents.Operational))
				up.Affected = append(up.Affected, affected{Code: c.ID, Name: c.Name, OldStatus: old, NewStatus: ch.NewStatus})
				prev[c.ID] = ch.NewStatus
			}
			inc.Updates = append(inc.Updates, up)
			m.UpdatedAt = latest(m.UpdatedAt, u.CreatedAt)
		}
		slices.Reverse(inc.Updates)
		m.UpdatedAt = latest(m.UpdatedAt, in.UpdatedAt)
	}
	for i := range m.Incidents {
		inc := &m.Incidents[i]
		for _, id := range inc.Comps {
			c := byName[id]
			c.Incidents = append(c.Incidents, inc)
			for k := range c.Days {
				d := &c.Days[k]
				if overlaps(inc.Incident, d.Day, d.Day.Add(24*time.Hour)) {
					d.Incidents = append(d.Incidents, inc)
				}
			}
		}
	}
	for _, mt := range ms {
		mt.BodyHTML = safe(mt.BodyHTML)
		x := maintenance{Maintenance: mt, Title: title(mt.Title)}
		for _, name := range mt.Components {
			if c := byName[incidents.ComponentID(name)]; c != nil {
				x.Comps = append(x.Comps, c.ID)
			}
		}
		m.Maint = append(m.Maint, x)
		m.UpdatedAt = latest(m.UpdatedAt, mt.UpdatedAt)
	}
	m.Status = overall(m)
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = now
	}
	m.UpdatedAt = m.UpdatedAt.UTC()
	return m, nil
}

// componentChange is one component's change in an update, as the Store
// keeps it: {"component", "old_status", "new_status"}, or in rows written
// before old_status was kept, {"component", "status"}.
type componentChange struct {
	Component string `json:"component"`
	OldStatus string `json:"old_status"`
	NewStatus string `json:"new_status"`
	Status    string `json:"status"`
}

func componentChanges(raw []byte) []componentChange {
	var cs []componentChange
	_ = json.Unmarshal(raw, &cs)
	for i := range cs {
		cs[i].NewStatus = cmp.Or(cs[i].NewStatus, cs[i].Status)
	}
	return cs
}

// firstChanges stands in for the component changes of an incident's first
// update when the Store recorded none with it (an incident opened by hand
// records its components on the incident, not on the update): the
// incident's components whose status no later update changed, at that
// status.
func firstChanges(in incidents.Incident, us []incidents.PostedUpdate) []componentChange {
	later := map[string]bool{}
	for _, u := range us[min(1, len(us)):] {
		for _, ch := range componentChanges(u.Components) {
			later[incidents.ComponentID(ch.Component)] = true
		}
	}
	var out []componentChange
	for _, name := range in.Components {
		st, ok := in.ComponentState[name]
		if !ok || later[incidents.ComponentID(name)] {
			continue
		}
		out = append(out, componentChange{Component: name, NewStatus: string(st)})
	}
	return out
}

// updateCache keeps each incident's public updates from one rebuild to the
// next while the incident is unchanged (same updated_at and last public
// update), so that a rebuild reads only what changed: a resolved incident's
// updates are read once.
type updateCache struct {
	prev, next map[int64]cachedUpdates
}

type cachedUpdates struct {
	updatedAt, lastPublicAt time.Time
	us                      []incidents.PostedUpdate
}

func (c *updateCache) updates(ctx context.Context, st *incidents.Store, in incidents.Incident, prep func(*incidents.PostedUpdate)) ([]incidents.PostedUpdate, error) {
	if c == nil {
		c = &updateCache{}
	}
	if c.next == nil {
		c.next = map[int64]cachedUpdates{}
	}
	if old, ok := c.prev[in.ID]; ok && old.updatedAt.Equal(in.UpdatedAt) && old.lastPublicAt.Equal(in.LastPublicAt) {
		c.next[in.ID] = old
		return old.us, nil
	}
	us, err := st.Updates(ctx, in.ID, true)
	if err != nil {
		return nil, err
	}
	for i := range us {
		prep(&us[i])
	}
	c.next[in.ID] = cachedUpdates{updatedAt: in.UpdatedAt, lastPublicAt: in.LastPublicAt, us: us}
	return us, nil
}

// commit makes what this rebuild read the cache of the next one.
func (c *updateCache) commit() { c.prev, c.next = c.next, nil }

// sanitizer is the policy update HTML is cleaned with again on read: the
// one incidents.RenderMarkdown applies on write.
func sanitizer() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.RequireNoFollowOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(false)
	return p
}

// overlaps reports whether an incident was open at some time in [from, to).
func overlaps(in incidents.Incident, from, to time.Time) bool {
	end := in.ResolvedAt
	if end.IsZero() {
		end = to
	}
	return in.StartedAt.Before(to) && !end.Before(from)
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func rank(s incidents.ComponentStatus) int {
	switch s {
	case incidents.UnderMaintenance:
		return 1
	case incidents.DegradedPerformance:
		return 2
	case incidents.PartialOutage:
		return 3
	case incidents.MajorOutage:
		return 4
	}
	return 0
}

func worse(a, b incidents.ComponentStatus) incidents.ComponentStatus {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

var indicators = []string{"none", "minor", "major", "critical"}

// Descriptions of the overall status, as Statuspage words them.
var descriptions = map[string]string{
	"none":        "All Systems Operational",
	"minor":       "Minor Service Outage",
	"major":       "Partial System Outage",
	"critical":    "Major Service Outage",
	"maintenance": "Service Under Maintenance",
}

// overall is the page's status: the worse of the worst component status and
// the impact of the open public incidents; maintenance when nothing but
// maintenance is going on.
func overall(m *model) status {
	lvl, maint := 0, false
	for _, c := range m.Components {
		switch c.Status {
		case incidents.DegradedPerformance:
			lvl = max(lvl, 1)
		case incidents.PartialOutage:
			lvl = max(lvl, 2)
		case incidents.MajorOutage:
			lvl = max(lvl, 3)
		case incidents.UnderMaintenance:
			maint = true
		}
	}
	for _, in := range m.Incidents {
		if in.Status.Open() {
			lvl = max(lvl, max(1, slices.Index(indicators, string(in.Impact))))
		}
	}
	for _, mt := range m.Maint {
		if mt.Status == incidents.MaintenanceInProgress || mt.Status == incidents.MaintenanceVerifying {
			maint = true
		}
	}
	ind := indicators[lvl]
	if lvl == 0 && maint {
		ind = "maintenance"
	}
	return status{Indicator: ind, Description: descriptions[ind]}
}

// componentByID returns a component of the model.
func (m *model) componentByID(id string) *component {
	for i := range m.Components {
		if m.Components[i].ID == id {
			return &m.Components[i]
		}
	}
	return nil
}

// open returns the open public incidents.
func (m *model) open() []*incident {
	var out []*incident
	for i := range m.Incidents {
		if m.Incidents[i].Status.Open() {
			out = append(out, &m.Incidents[i])
		}
	}
	return out
}

// activeMaint returns maintenance not completed, soonest first.
func (m *model) activeMaint() []*maintenance {
	var out []*maintenance
	for i := range m.Maint {
		if m.Maint[i].Status != incidents.MaintenanceCompleted {
			out = append(out, &m.Maint[i])
		}
	}
	return out
}

// incidentURL is an incident's absolute URL (or its path when the page has
// no URL configured).
func (m *model) url(path string) string {
	return strings.TrimRight(m.Page.URL, "/") + path
}

func incidentPath(id int64) string   { return fmt.Sprintf("/incidents/%d", id) }
func componentPath(id string) string { return "/components/" + id }
