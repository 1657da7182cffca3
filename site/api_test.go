package site

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
)

// Statuspage's v2 fields, as issue #5 lists them. Every one must be present
// (null allowed where Statuspage allows it); extra fields are fine.
var (
	pageFields      = []string{"id", "name", "url", "time_zone", "updated_at"}
	statusFields    = []string{"indicator", "description"}
	componentFields = []string{"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase", "start_date", "group_id", "page_id", "group", "only_show_if_degraded"}
	incidentFields  = []string{"id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact", "shortlink", "started_at", "page_id", "incident_updates", "components"}
	updateFields    = []string{"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at", "affected_components"}

	allIndicators     = []string{"none", "minor", "major", "critical", "maintenance"}
	componentStatuses = []string{"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}
	incidentStatuses  = []string{"investigating", "identified", "monitoring", "resolved", "postmortem"}
	maintStatuses     = []string{"scheduled", "in_progress", "verifying", "completed"}
	impacts           = []string{"none", "minor", "major", "critical"}
	timeFields        = []string{"updated_at", "created_at", "monitoring_at", "resolved_at", "started_at", "display_at", "scheduled_for", "scheduled_until"}
)

type obj = map[string]any

func TestAPIFieldsAndEnumerations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resolved, open := f.scenario(t)
	f.rebuild(t)
	srv := httptest.NewServer(f.site.Handler())
	defer srv.Close()

	endpoints := map[string][]string{ // path: top-level keys
		"/api/v2/summary.json":                         {"page", "status", "components", "incidents", "scheduled_maintenances"},
		"/api/v2/status.json":                          {"page", "status"},
		"/api/v2/components.json":                      {"page", "components"},
		"/api/v2/incidents.json":                       {"page", "incidents"},
		"/api/v2/incidents/unresolved.json":            {"page", "incidents"},
		"/api/v2/scheduled-maintenances.json":          {"page", "scheduled_maintenances"},
		"/api/v2/scheduled-maintenances/upcoming.json": {"page", "scheduled_maintenances"},
		"/api/v2/scheduled-maintenances/active.json":   {"page", "scheduled_maintenances"},
	}
	docs := map[string]obj{}
	for path, keys := range endpoints {
		resp, body := get(t, srv, path, "Accept-Encoding", "gzip")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var doc obj
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs[path] = doc
		for _, k := range keys {
			if _, ok := doc[k]; !ok {
				t.Errorf("%s: no %q", path, k)
			}
		}
		checkFields(t, path+" page", doc["page"].(obj), pageFields)
		if p := doc["page"].(obj); p["id"] != "example" || p["name"] != "Example Status" || p["url"] != "https://status.example.com" {
			t.Errorf("%s: page %v", path, p)
		}
		if st, ok := doc["status"].(obj); ok {
			checkFields(t, path+" status", st, statusFields)
			checkEnum(t, path+" status.indicator", st["indicator"], allIndicators)
		}
		for _, c := range list(doc["components"]) {
			checkComponent(t, path, c)
		}
		for _, key := range []string{"incidents", "scheduled_maintenances"} {
			for _, in := range list(doc[key]) {
				checkFields(t, path+" incident", in, incidentFields)
				if key == "incidents" {
					checkEnum(t, path+" incident.status", in["status"], incidentStatuses)
					checkEnum(t, path+" incident.impact", in["impact"], impacts)
				} else {
					checkEnum(t, path+" maintenance.status", in["status"], maintStatuses)
				}
				checkTimes(t, path, in)
				for _, c := range list(in["components"]) {
					checkComponent(t, path+" incident", c)
				}
				for _, u := range list(in["incident_updates"]) {
					checkFields(t, path+" update", u, updateFields)
					checkTimes(t, path, u)
					if u["incident_id"] != in["id"] {
						t.Errorf("%s: update %v of incident %v", path, u["incident_id"], in["id"])
					}
					if key == "incidents" {
						checkEnum(t, path+" update.status", u["status"], incidentStatuses)
					}
					if _, ok := u["affected_components"].([]any); !ok {
						t.Errorf("%s: affected_components %v", path, u["affected_components"])
					}
				}
			}
		}
	}

	// What each endpoint holds.
	ids := func(path, key string) []string {
		var out []string
		for _, in := range list(docs[path][key]) {
			out = append(out, in["id"].(string))
		}
		return out
	}
	rid, oid := itoa(resolved.ID), itoa(open.ID)
	if got := ids("/api/v2/incidents.json", "incidents"); !slices.Equal(got, []string{oid, rid}) {
		t.Errorf("incidents.json: %v, want [%s %s]", got, oid, rid)
	}
	if got := ids("/api/v2/incidents/unresolved.json", "incidents"); !slices.Equal(got, []string{oid}) {
		t.Errorf("unresolved.json: %v", got)
	}
	if got := ids("/api/v2/summary.json", "incidents"); !slices.Equal(got, []string{oid}) {
		t.Errorf("summary.json incidents: %v", got)
	}
	if got := ids("/api/v2/scheduled-maintenances/upcoming.json", "scheduled_maintenances"); len(got) != 1 {
		t.Errorf("upcoming.json: %v", got)
	}
	if got := ids("/api/v2/scheduled-maintenances/active.json", "scheduled_maintenances"); len(got) != 0 {
		t.Errorf("active.json: %v", got)
	}
	st := docs["/api/v2/status.json"]["status"].(obj)
	if st["indicator"] != "major" || st["description"] != "Partial System Outage" {
		t.Errorf("status: %v", st)
	}
	// The open incident: public updates only, newest first, with the component change.
	var oi obj
	for _, in := range list(docs["/api/v2/incidents.json"]["incidents"]) {
		if in["id"] == oid {
			oi = in
		}
	}
	ups := list(oi["incident_updates"])
	if len(ups) != 2 || ups[0]["status"] != "identified" || ups[1]["status"] != "investigating" {
		t.Fatalf("open incident updates: %v", ups)
	}
	for _, u := range ups {
		if strings.Contains(u["body"].(string), "internal") {
			t.Errorf("an internal update is public: %v", u["body"])
		}
	}
	aff := ups[1]["affected_components"].([]any)
	if len(aff) != 1 || aff[0].(obj)["code"] != "two-step-authentication" || aff[0].(obj)["new_status"] != "partial_outage" {
		t.Errorf("affected_components: %v", aff)
	}
	if oi["shortlink"] != "https://status.example.com/incidents/"+oid || oi["impact"] != "major" || oi["resolved_at"] != nil {
		t.Errorf("open incident: %v", oi)
	}
	// Groups are components with group true and their members.
	var groups []string
	for _, c := range list(docs["/api/v2/components.json"]["components"]) {
		if c["group"] == true {
			groups = append(groups, c["name"].(string))
			if len(c["components"].([]any)) == 0 {
				t.Errorf("group %v has no members", c["name"])
			}
		} else if c["name"] == "Login" && c["group_id"] != "group-sign-in" {
			t.Errorf("Login's group_id: %v", c["group_id"])
		}
	}
	if !slices.Equal(groups, []string{"Sign-in", "Platform"}) {
		t.Errorf("groups: %v", groups)
	}
}

func TestStatusIndicator(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rebuild(t)
	if got := statusOf(t, f); got != "none/All Systems Operational" {
		t.Errorf("quiet: %s", got)
	}
	// Maintenance in progress and nothing else.
	f.clk.Set(t0.Add(-time.Hour))
	if _, err := f.store.ScheduleMaintenance(t.Context(), incidents.NewMaintenance{Title: "Upgrade", Components: []string{"API"},
		StartsAt: t0.Add(-time.Minute), EndsAt: t0.Add(time.Hour), Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	f.clk.Set(t0)
	if _, err := f.store.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.rebuild(t)
	if got := statusOf(t, f); got != "maintenance/Service Under Maintenance" {
		t.Errorf("maintenance: %s", got)
	}
	f.incident(t, incidents.NewIncident{Title: "Down", Message: "Down.", Impact: incidents.ImpactCritical,
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.MajorOutage}}})
	f.rebuild(t)
	if got := statusOf(t, f); got != "critical/Major Service Outage" {
		t.Errorf("outage: %s", got)
	}
}

func statusOf(t *testing.T, f *fixture) string {
	t.Helper()
	body, _ := f.site.Snapshot().Body("/api/v2/status.json")
	var doc struct{ Status apiStatus }
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Status.Indicator + "/" + doc.Status.Description
}

func list(v any) []obj {
	var out []obj
	xs, _ := v.([]any)
	for _, x := range xs {
		out = append(out, x.(obj))
	}
	return out
}

func checkFields(t *testing.T, where string, o obj, fields []string) {
	t.Helper()
	for _, k := range fields {
		if _, ok := o[k]; !ok {
			t.Errorf("%s: missing field %q in %v", where, k, o)
		}
	}
}

func checkEnum(t *testing.T, where string, v any, allowed []string) {
	t.Helper()
	s, _ := v.(string)
	if !slices.Contains(allowed, s) {
		t.Errorf("%s: %v is not one of %v", where, v, allowed)
	}
}

func checkComponent(t *testing.T, where string, c obj) {
	t.Helper()
	checkFields(t, where+" component", c, componentFields)
	checkEnum(t, where+" component.status", c["status"], componentStatuses)
	checkTimes(t, where, c)
	if c["page_id"] != "example" {
		t.Errorf("%s: page_id %v", where, c["page_id"])
	}
	if _, ok := c["group"].(bool); !ok {
		t.Errorf("%s: group %v", where, c["group"])
	}
}

// checkTimes: every time is RFC 3339 in UTC with Z.
func checkTimes(t *testing.T, where string, o obj) {
	t.Helper()
	for _, k := range timeFields {
		v, ok := o[k]
		if !ok || v == nil {
			continue
		}
		s, _ := v.(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "Z") {
			t.Errorf("%s: %s = %v is not RFC 3339 UTC", where, k, v)
		}
	}
}

// TestClassificationOnlyWhenConfirmed: the public reads "non_security" or
// "security" only once a person confirmed it; the detector's automatic
// verdict shows as undetermined, on pages and in the API.
func TestClassificationOnlyWhenConfirmed(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		class     incidents.Classification
		confirmed bool
		want      string
	}{
		{incidents.NonSecurity, false, "undetermined"},
		{incidents.Security, false, "undetermined"},
		{incidents.NonSecurity, true, "non_security"},
		{incidents.Security, true, "security"},
		{"", true, "undetermined"},
	} {
		if got := publicClass(incidents.Incident{Classification: c.class, Confirmed: c.confirmed}); got != c.want {
			t.Errorf("%s confirmed %v: %s, want %s", c.class, c.confirmed, got, c.want)
		}
	}
	f := newFixture(t)
	in := f.incident(t, incidents.NewIncident{Title: "Errors", Message: "Errors at sign-in."})
	f.rebuild(t)
	page, _ := f.site.Snapshot().Body("/incidents/" + itoa(in.ID))
	if strings.Contains(string(page), "security incident") {
		t.Errorf("an unconfirmed incident's page makes a security claim")
	}
	if _, err := f.store.Reclassify(t.Context(), in.ID, incidents.NonSecurity, "the errors come from a full disk", "person:ada@example.com"); err != nil {
		t.Fatal(err)
	}
	f.rebuild(t)
	page, _ = f.site.Snapshot().Body("/incidents/" + itoa(in.ID))
	api, _ := f.site.Snapshot().Body("/api/v2/incidents.json")
	if !strings.Contains(string(page), "Not a security incident") || !strings.Contains(string(api), `"classification":"non_security"`) {
		t.Errorf("a confirmed non-security incident does not say so")
	}
}
