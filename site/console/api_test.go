package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

type apiErrors struct {
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (e *env) api(method, path, token, scheme, body string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", scheme+" "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return res.StatusCode, b
}

func fields(t *testing.T, body []byte) map[string]string {
	t.Helper()
	var ae apiErrors
	if err := json.Unmarshal(body, &ae); err != nil {
		t.Fatalf("errors body %s: %v", body, err)
	}
	m := map[string]string{}
	for _, e := range ae.Errors {
		m[e.Field] = e.Message
	}
	return m
}

func TestWriteAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	responder, err := CreateToken(ctx, e.pool, "responder", "deploy-bot")
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := CreateToken(ctx, e.pool, "viewer", "dashboard")
	if err != nil {
		t.Fatal(err)
	}
	// Only the hash is stored.
	var n int
	_ = e.pool.QueryRow(ctx, `select count(*) from api_tokens where position(convert_to($1, 'UTF8') in token_hash) > 0`, responder).Scan(&n)
	if !strings.HasPrefix(responder, "candor_") || n != 0 {
		t.Fatalf("token %q stored in the clear?", responder)
	}

	// Field errors name the fields.
	status, body := e.api("POST", "/api/v1/incidents", responder, "Bearer", `{"status":"exploded","impact":"huge","components":[{"component":"Nope","status":"bad"}]}`)
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid incident: %d %s", status, body)
	}
	f := fields(t, body)
	for _, want := range []string{"title", "message", "status", "impact"} {
		if f[want] == "" {
			t.Errorf("no error on %q in %s", want, body)
		}
	}
	// Malformed JSON, unknown fields, wrong types: 400 naming the field.
	for in, field := range map[string]string{`{"title": 5}`: "title", `{"titel":"x"}`: "titel", `{`: "", ``: ""} {
		status, body := e.api("POST", "/api/v1/incidents", responder, "Bearer", in)
		if status != http.StatusBadRequest {
			t.Errorf("%q: %d %s", in, status, body)
			continue
		}
		if _, ok := fields(t, body)[field]; !ok {
			t.Errorf("%q: no error on %q in %s", in, field, body)
		}
	}

	// Create, with Statuspage's "OAuth" scheme.
	status, body = e.api("POST", "/api/v1/incidents", responder, "OAuth", `{"title":"Login failures","message":"We are investigating **login** failures.",
		"impact":"major","components":[{"component":"Login","status":"major_outage"}],"classification":"non_security"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct {
		Incident struct {
			ID             int64  `json:"id"`
			Status         string `json:"status"`
			Classification string `json:"classification"`
			Confirmed      bool   `json:"classification_confirmed"`
		} `json:"incident"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	id := created.Incident.ID
	if created.Incident.Status != "investigating" || created.Incident.Classification != "non_security" || !created.Incident.Confirmed {
		t.Errorf("created %+v", created.Incident)
	}
	path := "/api/v1/incidents/" + itoa(id)

	// Updates: a bad status is a field error, a good one is posted.
	status, body = e.api("POST", path+"/updates", responder, "Bearer", `{"status":"fixed","message":""}`)
	if f := fields(t, body); status != http.StatusUnprocessableEntity || f["status"] == "" || f["message"] == "" {
		t.Fatalf("bad update: %d %s", status, body)
	}
	status, body = e.api("POST", path+"/updates", responder, "Bearer", `{"status":"identified","message":"The events store is down; we are moving login off it."}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"identified"`) {
		t.Fatalf("update: %d %s", status, body)
	}
	// Reclassify: the reason is required.
	status, body = e.api("POST", path+"/reclassify", responder, "Bearer", `{"classification":"security"}`)
	if f := fields(t, body); status != http.StatusUnprocessableEntity || f["reason"] == "" {
		t.Fatalf("reclassify without reason: %d %s", status, body)
	}
	status, body = e.api("POST", path+"/reclassify", responder, "Bearer", `{"classification":"security","reason":"a replayed code was accepted"}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"classification": "security"`) {
		t.Fatalf("reclassify: %d %s", status, body)
	}

	// Reading with a viewer token; writing with it is refused.
	status, body = e.api("GET", "/api/v1/incidents?open=true", viewer, "Bearer", "")
	if status != http.StatusOK || !strings.Contains(string(body), "Login failures") {
		t.Fatalf("list: %d %s", status, body)
	}
	status, body = e.api("GET", path, viewer, "Bearer", "")
	if status != http.StatusOK || !strings.Contains(string(body), "moving login off it") {
		t.Fatalf("get: %d %s", status, body)
	}
	if status, _ := e.api("POST", path+"/updates", viewer, "Bearer", `{"message":"x"}`); status != http.StatusForbidden {
		t.Fatalf("viewer writes: %d", status)
	}
	if status, _ := e.api("GET", "/api/v1/incidents/999999", viewer, "Bearer", ""); status != http.StatusNotFound {
		t.Fatalf("unknown incident: %d", status)
	}
	if status, body := e.api("GET", "/api/v1/incidents?limit=0", viewer, "Bearer", ""); status != http.StatusBadRequest || fields(t, body)["limit"] == "" {
		t.Fatalf("bad limit: %d %s", status, body)
	}
	// The timeline names the token as the actor.
	tl, err := e.store.Timeline(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if tl[len(tl)-1].Actor != "token:deploy-bot" {
		t.Errorf("actor %q", tl[len(tl)-1].Actor)
	}

	// A revoked token stops working.
	var tokID int64
	_ = e.pool.QueryRow(ctx, `select id from api_tokens where name = 'dashboard'`).Scan(&tokID)
	if _, err := revokeToken(ctx, e.pool, tokID, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if status, _ := e.api("GET", "/api/v1/incidents", viewer, "Bearer", ""); status != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", status)
	}
	if status, _ := e.api("GET", "/api/v1/incidents", responder, "Basic", ""); status != http.StatusUnauthorized {
		t.Fatalf("basic auth: %d", status)
	}
	if status, _ := e.api("GET", "/api/v1/nothing", responder, "Bearer", ""); status != http.StatusNotFound {
		t.Fatalf("unknown endpoint: %d", status)
	}
}

func TestCreateTokenRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	for _, in := range [][2]string{{"root", "x"}, {"viewer", ""}, {"viewer", strings.Repeat("x", 101)}} {
		if _, err := CreateToken(context.Background(), e.pool, in[0], in[1]); err == nil {
			t.Errorf("CreateToken(%q, %q) succeeded", in[0], in[1])
		}
	}
}

func TestLookupOperatorAndAudit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := LookupOperator(ctx, e.pool, "nobody@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	e.enrol(e.browser(), "Ada@example.com", Responder)
	o, err := LookupOperator(ctx, e.pool, " ADA@example.com ")
	if err != nil || o.Role != Responder || !o.Enrolled || o.Disabled || !o.Role.Allows(Exec) {
		t.Fatalf("lookup: %+v %v", o, err)
	}
	if err := Audit(ctx, e.pool, "slack:U123", "slack.refused", "incident:1", "", map[string]any{"why": "bad signature"}); err != nil {
		t.Fatal(err)
	}
	if e.auditCount("slack.refused", "incident:1") != 1 {
		t.Error("audit entry missing")
	}
}
