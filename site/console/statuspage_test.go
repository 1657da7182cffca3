package console

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestStatuspageCompatibleAPI(t *testing.T) {
	e := newEnv(t)
	tok, err := CreateToken(context.Background(), e.pool, "responder", "statuspage-script")
	if err != nil {
		t.Fatal(err)
	}
	base := "/api/v1/pages/" + testPageID

	// Components, with Statuspage's fields.
	status, body := e.api("GET", base+"/components", tok, "OAuth", "")
	if status != http.StatusOK {
		t.Fatalf("components: %d %s", status, body)
	}
	var comps []map[string]any
	if err := json.Unmarshal(body, &comps); err != nil || len(comps) != 2 {
		t.Fatalf("components %s: %v", body, err)
	}
	for _, k := range []string{"id", "page_id", "group_id", "created_at", "updated_at", "group", "name", "description", "position",
		"status", "showcase", "only_show_if_degraded", "automation_email", "start_date"} {
		if _, ok := comps[0][k]; !ok {
			t.Errorf("component lacks %q", k)
		}
	}
	if comps[0]["id"] != "login" || comps[0]["page_id"] != testPageID {
		t.Errorf("component %v", comps[0])
	}

	// Validation errors name the request's fields.
	status, body = e.api("POST", base+"/incidents", tok, "OAuth", `{"incident":{"status":"broken","components":{"nope":"major_outage"}}}`)
	if status != http.StatusUnprocessableEntity || fields(t, body)["incident.components"] == "" {
		t.Fatalf("unknown component: %d %s", status, body)
	}
	status, body = e.api("POST", base+"/incidents", tok, "OAuth", `{"incident":{"status":"broken"}}`)
	f := fields(t, body)
	if status != http.StatusUnprocessableEntity || f["incident.name"] == "" || f["incident.body"] == "" || f["incident.status"] == "" {
		t.Fatalf("invalid incident: %d %s", status, body)
	}
	if status, _ := e.api("POST", base+"/incidents", tok, "OAuth", `{}`); status != http.StatusBadRequest {
		t.Fatalf("no incident object: %d", status)
	}
	if status, _ := e.api("GET", "/api/v1/pages/other/incidents", tok, "OAuth", ""); status != http.StatusNotFound {
		t.Fatalf("another page: %d", status)
	}

	// Create as a Statuspage script would.
	status, body = e.api("POST", base+"/incidents", tok, "OAuth", `{"incident":{"name":"Login failures","status":"investigating",
		"impact_override":"major","body":"We are investigating.","component_ids":["login","two-step-authentication"],
		"components":{"login":"major_outage"},"deliver_notifications":true}}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var inc map[string]any
	if err := json.Unmarshal(body, &inc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
		"shortlink", "started_at", "page_id", "incident_updates", "components", "classification"} {
		if _, ok := inc[k]; !ok {
			t.Errorf("incident lacks %q", k)
		}
	}
	if inc["impact"] != "major" || inc["status"] != "investigating" {
		t.Errorf("incident %v", inc)
	}
	var got []string
	for _, c := range inc["components"].([]any) {
		got = append(got, c.(map[string]any)["id"].(string))
	}
	if !slices.Equal(got, []string{"login", "two-step-authentication"}) {
		t.Errorf("components %v", got)
	}
	id := inc["id"].(string)

	// PATCH posts an update; body is required, renaming is refused.
	status, body = e.api("PATCH", base+"/incidents/"+id, tok, "Bearer", `{"incident":{"status":"identified"}}`)
	if status != http.StatusUnprocessableEntity || fields(t, body)["incident.body"] == "" {
		t.Fatalf("patch without body: %d %s", status, body)
	}
	status, body = e.api("PATCH", base+"/incidents/"+id, tok, "Bearer", `{"incident":{"name":"Renamed","status":"identified","body":"x"}}`)
	if status != http.StatusUnprocessableEntity || fields(t, body)["incident.name"] == "" {
		t.Fatalf("rename: %d %s", status, body)
	}
	status, body = e.api("PATCH", base+"/incidents/"+id, tok, "Bearer", `{"incident":{"status":"resolved","body":"Fixed.",
		"components":{"login":"operational"},"classification":"non_security"}}`)
	if status != http.StatusUnprocessableEntity || fields(t, body)["incident.classification_reason"] == "" {
		t.Fatalf("reclassify without reason: %d %s", status, body)
	}
	status, body = e.api("PATCH", base+"/incidents/"+id, tok, "Bearer", `{"incident":{"status":"resolved","body":"Fixed.",
		"components":{"login":"operational"},"classification":"non_security","classification_reason":"the events store alone failed"}}`)
	if status != http.StatusOK {
		t.Fatalf("patch: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &inc); err != nil {
		t.Fatal(err)
	}
	if inc["status"] != "resolved" || inc["resolved_at"] == nil || inc["classification"] != "non_security" || inc["classification_confirmed"] != true {
		t.Errorf("after patch: %v", inc)
	}
	first := inc["incident_updates"].([]any)[0].(map[string]any)
	if first["body"] != "Fixed." {
		t.Errorf("updates are not newest first: %v", first)
	}
	got = nil
	for _, a := range first["affected_components"].([]any) {
		m := a.(map[string]any)
		got = append(got, m["code"].(string)+":"+m["old_status"].(string)+"→"+m["new_status"].(string))
	}
	if !slices.Equal(got, []string{"login:major_outage→operational"}) {
		t.Errorf("affected components %v", got)
	}
	status, body = e.api("GET", base+"/incidents", tok, "Bearer", "")
	if status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(string(body)), "[") || !strings.Contains(string(body), `"Login failures"`) {
		t.Fatalf("list: %d %s", status, body)
	}
}

func TestStatuspageComponentPatch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := CreateToken(ctx, e.pool, "responder", "statuspage-script")
	if err != nil {
		t.Fatal(err)
	}
	base := "/api/v1/pages/" + testPageID + "/components/"

	for _, tc := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"component":{"status":"down"}}`, http.StatusUnprocessableEntity, "component.status"},
		{`{"component":{}}`, http.StatusUnprocessableEntity, "component.status"},
		{`{"component":{"status":"major_outage","automatic":true}}`, http.StatusUnprocessableEntity, "component.automatic"},
		{`{"component":{"status":"major_outage","name":"Sign-in"}}`, http.StatusUnprocessableEntity, "component.name"},
		{`{"component":{"status":"major_outage","showcase":false}}`, http.StatusBadRequest, ""},
		{`{}`, http.StatusBadRequest, "component"},
	} {
		status, body := e.api("PATCH", base+"login", tok, "OAuth", tc.body)
		if status != tc.status || (tc.field != "" && fields(t, body)[tc.field] == "") {
			t.Errorf("%s: got %d %s, want %d naming %s", tc.body, status, body, tc.status, tc.field)
		}
	}
	if status, _ := e.api("PATCH", base+"nope", tok, "OAuth", `{"component":{"status":"major_outage"}}`); status != http.StatusNotFound {
		t.Errorf("unknown component: %d", status)
	}

	// Statuspage's request sets the status and answers with the component.
	status, body := e.api("PATCH", base+"login", tok, "OAuth", `{"component":{"status":"partial_outage","name":"Login"}}`)
	if status != http.StatusOK {
		t.Fatalf("patch: %d %s", status, body)
	}
	var comp map[string]any
	if err := json.Unmarshal(body, &comp); err != nil {
		t.Fatal(err)
	}
	if comp["id"] != "login" || comp["status"] != "partial_outage" || comp["page_id"] != testPageID {
		t.Errorf("component %v", comp)
	}
	var actor, kind string
	if err := e.pool.QueryRow(ctx, `select e.actor, o.kind from outbox o join incident_events e on e.id = o.event_id order by o.id desc limit 1`).Scan(&actor, &kind); err != nil {
		t.Fatal(err)
	}
	if actor != "token:statuspage-script" || kind != "component_changed" {
		t.Errorf("outbox: %s by %s", kind, actor)
	}
	if e.auditCount("component.status_set", "component:login") != 1 {
		t.Error("the override is not audited")
	}
	status, body = e.api("GET", "/api/v1/pages/"+testPageID+"/components", tok, "Bearer", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"partial_outage"`) {
		t.Errorf("components after the patch: %d %s", status, body)
	}

	// automatic: true gives the status back to incidents and probes.
	status, body = e.api("PATCH", base+"login", tok, "Bearer", `{"component":{"automatic":true}}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"status": "operational"`) {
		t.Errorf("automatic: %d %s", status, body)
	}
	if e.auditCount("component.status_cleared", "component:login") != 1 {
		t.Error("clearing is not audited")
	}

	// A viewer may not.
	view, err := CreateToken(ctx, e.pool, "viewer", "reader")
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := e.api("PATCH", base+"login", view, "Bearer", `{"component":{"status":"major_outage"}}`); status != http.StatusForbidden {
		t.Errorf("viewer: %d", status)
	}
}
