package console

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/runbooks"
)

func (c *Console) home(w http.ResponseWriter, r *http.Request, _ *principal) error {
	http.Redirect(w, r, "/admin/incidents", http.StatusSeeOther)
	return nil
}

func (c *Console) incidentList(w http.ResponseWriter, r *http.Request, p *principal) error {
	list, err := c.o.Incidents.List(r.Context(), incidents.ListFilter{Limit: 200})
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, incidentsPage(c.page(p, "Incidents"), list))
	return nil
}

// updateForm is the post-update form as submitted (or prefilled).
type updateForm struct {
	Status         string
	Message        string
	Visibility     string
	Impact         string
	Components     map[string]string // component name → status ("" not affected)
	Classification string
	Reason         string
}

// timelineRow is one timeline event as the console shows it.
type timelineRow struct {
	At      time.Time
	Kind    string
	Actor   string
	Summary string
}

// runbookView is an attached runbook and what on-call needs from it.
type runbookView struct {
	ID, Title string
	Reasons   []string
	Summary   string
	Steps     []string
	Missing   bool // attached but no longer loaded
}

type incidentView struct {
	Inc        incidents.Incident
	Timeline   []timelineRow
	Evidence   []incidents.Evidence
	Updates    []incidents.PostedUpdate
	Runbooks   []runbookView
	Components []incidents.ComponentInfo
	Form       updateForm
	Errors     incidents.FieldErrors
	Preview    string // sanitised HTML of the message
	Warnings   []string
	Prefilled  string          // the runbook the message was prefilled from
	Probes     []probes.Result // the latest run of each affected probe at each location
}

func (c *Console) incidentDetail(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	v, err := c.incidentView(r, id)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, incidentPage(c.page(p, v.Inc.Title), v))
	return nil
}

func (c *Console) incidentView(r *http.Request, id int64) (incidentView, error) {
	ctx := r.Context()
	var v incidentView
	var err error
	if v.Inc, err = c.o.Incidents.Get(ctx, id); err != nil {
		return v, err
	}
	tl, err := c.o.Incidents.Timeline(ctx, id)
	if err != nil {
		return v, err
	}
	for _, te := range tl {
		v.Timeline = append(v.Timeline, timelineRow{At: te.At.UTC(), Kind: string(te.Kind), Actor: te.Actor, Summary: summarize(te.Kind, te.Event())})
	}
	v.Runbooks = c.attached(tl)
	if v.Evidence, err = c.o.Incidents.Evidence(ctx, id); err != nil {
		return v, err
	}
	if v.Updates, err = c.o.Incidents.Updates(ctx, id, false); err != nil {
		return v, err
	}
	if v.Components, err = c.o.Incidents.Components(ctx); err != nil {
		return v, err
	}
	v.Form = updateForm{Status: string(v.Inc.Status), Visibility: string(incidents.Public), Components: map[string]string{}}
	for name, st := range v.Inc.ComponentState {
		v.Form.Components[name] = string(st)
	}
	name := runbooks.FollowUp
	if !v.Inc.Status.Open() {
		name = runbooks.Resolution
	}
	v.Form.Message, v.Prefilled = c.fromRunbook(v.Inc, v.Runbooks, name)
	correction := c.o.Incidents.Policy().CorrectionDraft(v.Inc, tl)
	if correction != "" {
		// Customers were told of this incident before the evidence raised
		// it: offer the correction first (its placeholder blocks posting).
		v.Form.Message, v.Prefilled = correction, ""
	}
	if c.o.Probes != nil {
		for _, pr := range v.Inc.Probes {
			for _, loc := range v.Inc.Locations {
				rs, err := c.o.Probes.Recent(ctx, pr, loc, 1)
				if err != nil {
					return v, err
				}
				v.Probes = append(v.Probes, rs...)
			}
		}
	}
	v.Warnings = warnings(v.Inc)
	if correction != "" {
		v.Warnings = append(v.Warnings, "Customers were told of this incident before the evidence classified it "+string(v.Inc.Classification)+
			": automatic public updates have stopped, and the public page still says what was last posted. Review it and post a correction (prefilled below).")
	}
	return v, nil
}

func (c *Console) runbookView(ref incidents.RunbookRef) runbookView {
	rv := runbookView{ID: ref.ID, Title: ref.Title, Reasons: ref.Reasons}
	rb, ok := c.o.Runbooks.ByID(ref.ID)
	if !ok {
		rv.Missing = true
		return rv
	}
	rv.Title, rv.Summary = rb.Title, rb.Summary
	for _, s := range rb.Steps {
		rv.Steps = append(rv.Steps, s.Text)
	}
	return rv
}

// attached returns the runbooks attached on an incident's timeline, each
// once, in the order they were attached.
func (c *Console) attached(tl []incidents.TimelineEvent) []runbookView {
	var out []runbookView
	seen := map[string]bool{}
	for _, te := range tl {
		if te.Kind != incidents.KindRunbookAttached {
			continue
		}
		if e := te.Event(); e.Runbook != nil && !seen[e.Runbook.ID] {
			seen[e.Runbook.ID] = true
			out = append(out, c.runbookView(*e.Runbook))
		}
	}
	return out
}

// fromRunbook returns the named template (follow_up, resolution,
// post_incident_summary) of the first attached runbook that has one for the
// incident's classification, rendered, and that runbook's title.
//
// A post-incident summary is the last word to customers: until a person has
// confirmed the classification, it is the security one, which asks for the
// review's findings instead of saying that nothing was compromised.
func (c *Console) fromRunbook(inc incidents.Incident, attached []runbookView, name string) (string, string) {
	class := string(inc.Classification)
	if name == runbooks.PostIncidentSummary && !inc.Confirmed {
		class = string(incidents.Undetermined)
	}
	for _, rv := range attached {
		rb, ok := c.o.Runbooks.ByID(rv.ID)
		if !ok {
			continue
		}
		tp, ok := rb.Template(name, class)
		if !ok {
			continue
		}
		text, err := tp.Render(c.runbookIncident(inc))
		if err != nil {
			continue
		}
		return text, rb.Title
	}
	return "", ""
}

func (c *Console) runbookIncident(inc incidents.Incident) runbooks.Incident {
	end := inc.ResolvedAt
	if end.IsZero() {
		end = c.now()
	}
	ri := runbooks.Incident{
		ID: strconv.FormatInt(inc.ID, 10), Title: inc.Title, Status: string(inc.Status), Components: inc.Components,
		Classification: string(inc.Classification), Confirmed: inc.Confirmed,
		StartedAt: inc.StartedAt, DetectedAt: inc.DetectedAt, ResolvedAt: inc.ResolvedAt, Duration: end.Sub(inc.StartedAt),
		Locations: inc.Locations, Cadence: c.o.Incidents.Policy().Cadence.D,
		URL: c.o.BaseURL + "/incidents/" + strconv.FormatInt(inc.ID, 10),
	}
	if len(inc.FailingProbes) > 0 {
		ri.Probe = inc.FailingProbes[0]
	} else if len(inc.Probes) > 0 {
		ri.Probe = inc.Probes[0]
	}
	if len(inc.Steps) > 0 {
		_, step, _ := strings.Cut(inc.Steps[0], "/")
		ri.Step = step
	}
	return ri
}

// warnings are the publication policy's rules that apply now.
func warnings(inc incidents.Incident) []string {
	var out []string
	if !(inc.Classification == incidents.NonSecurity && inc.Confirmed) {
		out = append(out, `"Not a security incident" and "no data was compromised" may only be said once a person has confirmed the classification as non_security (reclassify below, with a reason).`)
	}
	if inc.Classification != incidents.NonSecurity && !inc.Public {
		out = append(out, "Nothing about this incident is public yet: a public update publishes it.")
	}
	return out
}

func summarize(kind incidents.EventKind, e incidents.Event) string {
	var parts []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	add(e.Title)
	if e.From != "" || e.To != "" {
		add(e.From + " → " + e.To)
	}
	if e.Probe != "" {
		loc := e.Probe
		if e.Step != "" {
			loc += "/" + e.Step
		}
		if e.Location != "" {
			loc += " @ " + e.Location
		}
		add(loc)
	}
	add(e.Class)
	add(e.Message)
	if len(e.Components) > 0 && kind != incidents.KindStepFailing {
		add(strings.Join(e.Components, ", "))
	}
	for _, cs := range e.ComponentState {
		add(cs.Component + ": " + string(cs.Status))
	}
	if e.Runbook != nil {
		add(e.Runbook.Title)
	}
	if e.Classification != "" && e.From == "" {
		s := string(e.Classification)
		if e.Confirmed {
			s += " (confirmed)"
		}
		add(s)
	}
	if e.Reason != "" {
		add("reason: " + e.Reason)
	}
	return clip(strings.Join(parts, " · "), 2000)
}

func (c *Console) parseUpdateForm(r *http.Request, comps []incidents.ComponentInfo) updateForm {
	f := updateForm{
		Status:         r.PostFormValue("status"),
		Message:        r.PostFormValue("message"),
		Visibility:     r.PostFormValue("visibility"),
		Impact:         r.PostFormValue("impact"),
		Classification: r.PostFormValue("classification"),
		Reason:         r.PostFormValue("reason"),
		Components:     map[string]string{},
	}
	for _, ci := range comps {
		if st := r.PostFormValue("component." + ci.ID); st != "" {
			f.Components[ci.Name] = st
		}
	}
	return f
}

func (f updateForm) componentUpdates(comps []incidents.ComponentInfo) []incidents.ComponentUpdate {
	var out []incidents.ComponentUpdate
	for _, ci := range comps { // in configuration order
		if st, ok := f.Components[ci.Name]; ok {
			out = append(out, incidents.ComponentUpdate{Component: ci.Name, Status: incidents.ComponentStatus(st)})
		}
	}
	return out
}

func (c *Console) postUpdate(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	v, err := c.incidentView(r, id)
	if err != nil {
		return err
	}
	f := c.parseUpdateForm(r, v.Components)
	u := incidents.Update{
		Status: incidents.Status(f.Status), Message: f.Message, Visibility: incidents.Visibility(f.Visibility),
		Impact: incidents.Impact(f.Impact), Components: f.componentUpdates(v.Components), Actor: p.actor(),
	}
	if f.Classification != "" {
		u.Reclassify = &incidents.Reclassification{Classification: incidents.Classification(f.Classification), Reason: f.Reason}
	}
	if r.PostFormValue("preview") != "" {
		v.Form, v.Prefilled = f, ""
		html, err := incidents.RenderMarkdown(f.Message)
		if err != nil {
			return err
		}
		v.Preview = html
		if err := incidents.CheckClaims(f.Message, v.Inc.Classification, v.Inc.Confirmed); err != nil {
			v.Warnings = append(v.Warnings, err.Error())
		}
		c.render(w, r, http.StatusOK, incidentPage(c.page(p, v.Inc.Title), v))
		return nil
	}
	if _, err := c.o.Incidents.PostUpdate(r.Context(), id, u); err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			v.Form, v.Prefilled, v.Errors = f, "", fe
			c.render(w, r, http.StatusUnprocessableEntity, incidentPage(c.page(p, v.Inc.Title), v))
			return nil
		}
		return err
	}
	c.auditReq(r, p.actor(), "incident.update_posted", incidentTarget(id), map[string]any{"status": f.Status, "visibility": f.Visibility})
	http.Redirect(w, r, fmt.Sprintf("/admin/incidents/%d", id), http.StatusSeeOther)
	return nil
}

func incidentTarget(id int64) string { return "incident:" + strconv.FormatInt(id, 10) }

func (c *Console) reclassify(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	to := incidents.Classification(r.PostFormValue("classification"))
	if _, err := c.o.Incidents.Reclassify(r.Context(), id, to, r.PostFormValue("reason"), p.actor()); err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			v, verr := c.incidentView(r, id)
			if verr != nil {
				return verr
			}
			v.Errors = fe
			c.render(w, r, http.StatusUnprocessableEntity, incidentPage(c.page(p, v.Inc.Title), v))
			return nil
		}
		return err
	}
	c.auditReq(r, p.actor(), "incident.reclassified", incidentTarget(id), map[string]any{"to": to})
	http.Redirect(w, r, fmt.Sprintf("/admin/incidents/%d", id), http.StatusSeeOther)
	return nil
}

// New incidents.

type newIncidentForm struct {
	Title, Status, Message, Visibility, Impact, Classification string
	Components                                                 map[string]string
}

func (c *Console) newIncidentForm(w http.ResponseWriter, r *http.Request, p *principal) error {
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	f := newIncidentForm{Status: string(incidents.StatusInvestigating), Visibility: string(incidents.Public), Impact: string(incidents.ImpactMinor), Components: map[string]string{}}
	c.render(w, r, http.StatusOK, newIncidentPage(c.page(p, "New incident"), f, comps, nil))
	return nil
}

func (c *Console) createIncident(w http.ResponseWriter, r *http.Request, p *principal) error {
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	f := newIncidentForm{
		Title: r.PostFormValue("title"), Status: r.PostFormValue("status"), Message: r.PostFormValue("message"),
		Visibility: r.PostFormValue("visibility"), Impact: r.PostFormValue("impact"),
		Classification: r.PostFormValue("classification"), Components: map[string]string{},
	}
	var cu []incidents.ComponentUpdate
	for _, ci := range comps {
		if st := r.PostFormValue("component." + ci.ID); st != "" {
			f.Components[ci.Name] = st
			cu = append(cu, incidents.ComponentUpdate{Component: ci.Name, Status: incidents.ComponentStatus(st)})
		}
	}
	inc, err := c.o.Incidents.CreateIncident(r.Context(), incidents.NewIncident{
		Title: f.Title, Status: incidents.Status(f.Status), Message: f.Message, Visibility: incidents.Visibility(f.Visibility),
		Impact: incidents.Impact(f.Impact), Components: cu, Classification: incidents.Classification(f.Classification), Actor: p.actor(),
	})
	if err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			c.render(w, r, http.StatusUnprocessableEntity, newIncidentPage(c.page(p, "New incident"), f, comps, fe))
			return nil
		}
		return err
	}
	c.auditReq(r, p.actor(), "incident.created", incidentTarget(inc.ID), nil)
	http.Redirect(w, r, fmt.Sprintf("/admin/incidents/%d", inc.ID), http.StatusSeeOther)
	return nil
}

// Maintenance.

type maintenanceForm struct {
	Title, Message, StartsAt, EndsAt string
	Components                       []string
}

const formTime = "2006-01-02T15:04" // <input type="datetime-local">, read as UTC

func (c *Console) maintenanceList(w http.ResponseWriter, r *http.Request, p *principal) error {
	now := c.now()
	f := maintenanceForm{StartsAt: now.Add(time.Hour).Truncate(time.Hour).Format(formTime), EndsAt: now.Add(2 * time.Hour).Truncate(time.Hour).Format(formTime)}
	return c.renderMaintenance(w, r, p, http.StatusOK, f, nil)
}

func (c *Console) renderMaintenance(w http.ResponseWriter, r *http.Request, p *principal, status int, f maintenanceForm, errs incidents.FieldErrors) error {
	ms, err := c.o.Incidents.Maintenances(r.Context(), c.now().Add(-30*24*time.Hour))
	if err != nil {
		return err
	}
	comps, err := c.o.Incidents.Components(r.Context())
	if err != nil {
		return err
	}
	c.render(w, r, status, maintenancePage(c.page(p, "Maintenance"), ms, comps, f, errs))
	return nil
}

func (c *Console) scheduleMaintenance(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("The form could not be read.")
	}
	f := maintenanceForm{Title: r.PostFormValue("title"), Message: r.PostFormValue("message"),
		StartsAt: r.PostFormValue("starts_at"), EndsAt: r.PostFormValue("ends_at"), Components: r.PostForm["component"]}
	var errs incidents.FieldErrors
	starts, err := time.ParseInLocation(formTime, f.StartsAt, time.UTC)
	if err != nil {
		errs = append(errs, incidents.FieldError{Field: "starts_at", Msg: "a UTC time such as 2026-12-01T02:00 is required"})
	}
	ends, err := time.ParseInLocation(formTime, f.EndsAt, time.UTC)
	if err != nil {
		errs = append(errs, incidents.FieldError{Field: "ends_at", Msg: "a UTC time such as 2026-12-01T04:00 is required"})
	}
	if len(errs) > 0 {
		return c.renderMaintenance(w, r, p, http.StatusUnprocessableEntity, f, errs)
	}
	m, err := c.o.Incidents.ScheduleMaintenance(r.Context(), incidents.NewMaintenance{
		Title: f.Title, Message: f.Message, Components: f.Components, StartsAt: starts, EndsAt: ends, Actor: p.actor(),
	})
	if err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			return c.renderMaintenance(w, r, p, http.StatusUnprocessableEntity, f, fe)
		}
		return err
	}
	c.auditReq(r, p.actor(), "maintenance.scheduled", "maintenance:"+strconv.FormatInt(m.ID, 10), nil)
	http.Redirect(w, r, "/admin/maintenance", http.StatusSeeOther)
	return nil
}

func (c *Console) updateMaintenance(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	to := incidents.MaintenanceStatus(r.PostFormValue("status"))
	if _, err := c.o.Incidents.UpdateMaintenance(r.Context(), id, to, r.PostFormValue("message"), p.actor()); err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			return c.renderMaintenance(w, r, p, http.StatusUnprocessableEntity, maintenanceForm{}, fe)
		}
		return err
	}
	c.auditReq(r, p.actor(), "maintenance.changed", "maintenance:"+strconv.FormatInt(id, 10), map[string]any{"to": to})
	http.Redirect(w, r, "/admin/maintenance", http.StatusSeeOther)
	return nil
}

// Post-incident notes.

type noteView struct {
	Inc      incidents.Incident
	Versions []incidents.NoteVersion
	Body     string
	From     string // "draft" or "version N"
	Diff     []diffLine
	DiffOf   int // version compared with the one before it; 0 none
	Errors   incidents.FieldErrors
}

func (c *Console) noteView(r *http.Request, id int64) (noteView, error) {
	ctx := r.Context()
	var v noteView
	var err error
	if v.Inc, err = c.o.Incidents.Get(ctx, id); err != nil {
		return v, err
	}
	if v.Versions, err = c.o.Incidents.Notes(ctx, id); err != nil {
		return v, err
	}
	want, _ := strconv.Atoi(r.URL.Query().Get("version"))
	for _, nv := range v.Versions {
		if nv.Version == want || (want == 0 && nv.Version == v.Versions[len(v.Versions)-1].Version) {
			v.Body, v.From = nv.Body, "version "+strconv.Itoa(nv.Version)
		}
	}
	if v.From == "" {
		if v.Body, err = c.o.Incidents.DraftNote(ctx, id); err != nil {
			return v, err
		}
		v.From = "the draft generated from the timeline"
		// The attached runbook's words for customers, to edit.
		tl, err := c.o.Incidents.Timeline(ctx, id)
		if err != nil {
			return v, err
		}
		if text, title := c.fromRunbook(v.Inc, c.attached(tl), runbooks.PostIncidentSummary); text != "" {
			v.Body = strings.TrimRight(v.Body, "\n") + "\n\n## Summary for customers\n\n" +
				"_From the runbook \"" + title + "\": check every sentence before publishing._\n\n" + strings.TrimSpace(text) + "\n"
			v.From += " and the runbook \"" + title + "\""
		}
	}
	if d, _ := strconv.Atoi(r.URL.Query().Get("diff")); d > 1 {
		i := slices.IndexFunc(v.Versions, func(nv incidents.NoteVersion) bool { return nv.Version == d })
		if i > 0 {
			v.Diff, v.DiffOf = diffContext(lineDiff(v.Versions[i-1].Body, v.Versions[i].Body), 3), d
		}
	}
	return v, nil
}

func (c *Console) noteEditor(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	v, err := c.noteView(r, id)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, notePage(c.page(p, "Post-incident note"), v))
	return nil
}

func (c *Console) saveNote(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	nv, err := c.o.Incidents.SaveNote(r.Context(), id, r.PostFormValue("body"), p.actor())
	if err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			v, verr := c.noteView(r, id)
			if verr != nil {
				return verr
			}
			v.Body, v.Errors = r.PostFormValue("body"), fe
			c.render(w, r, http.StatusUnprocessableEntity, notePage(c.page(p, "Post-incident note"), v))
			return nil
		}
		return err
	}
	c.auditReq(r, p.actor(), "note.saved", incidentTarget(id), map[string]any{"version": nv.Version})
	http.Redirect(w, r, fmt.Sprintf("/admin/incidents/%d/note?diff=%d", id, nv.Version), http.StatusSeeOther)
	return nil
}

func (c *Console) publishNote(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ver, err := strconv.Atoi(r.PostFormValue("version"))
	if err != nil || ver <= 0 {
		return &httpError{status: http.StatusUnprocessableEntity, msg: "Choose a saved version to publish.",
			fields: incidents.FieldErrors{{Field: "version", Msg: "a saved version number is required"}}}
	}
	if _, err := c.o.Incidents.PublishNote(r.Context(), id, ver, p.actor()); err != nil {
		var fe incidents.FieldErrors
		if errors.As(err, &fe) {
			v, verr := c.noteView(r, id)
			if verr != nil {
				return verr
			}
			v.Errors = fe
			c.render(w, r, http.StatusUnprocessableEntity, notePage(c.page(p, "Post-incident note"), v))
			return nil
		}
		return err
	}
	c.auditReq(r, p.actor(), "note.published", incidentTarget(id), map[string]any{"version": ver})
	http.Redirect(w, r, fmt.Sprintf("/admin/incidents/%d/note", id), http.StatusSeeOther)
	return nil
}
