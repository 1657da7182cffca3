package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/pgtest"
	"github.com/candorhq/candor/runbooks"
)

// FuzzWriteAPI posts arbitrary bodies to the write API's JSON endpoints:
// whatever comes in, the answer is never a 5xx, always JSON, and a refusal
// names the field it refuses.
func FuzzWriteAPI(f *testing.F) {
	for _, s := range []string{
		`{"title":"Login failures","status":"investigating","message":"We are looking.","impact":"major","components":[{"component":"Login","status":"major_outage"}]}`,
		`{"status":"identified","message":"Found it.","visibility":"internal"}`,
		`{"incident":{"name":"x","status":"investigating","body":"b","impact_override":"minor","component_ids":["login"],"components":{"login":"partial_outage"}}}`,
		`{"reclassify":{"classification":"security","reason":""}}`,
		`{"title":"` + strings.Repeat("A", 300) + `"}`,
		`{"message":"<script>alert(1)</script>\u0000"}`,
		`[]`, `null`, `{"title":1e999}`, `{"components":[null]}`, "\xff\xfe",
	} {
		f.Add(s)
	}
	pool := pgtest.New(f)
	ctx := context.Background()
	store := incidents.NewStore(pool, incidents.Config{Components: testComponents}, incidents.Options{})
	if err := store.SyncComponents(ctx); err != nil {
		f.Fatal(err)
	}
	rbs, err := runbooks.Load("")
	if err != nil {
		f.Fatal(err)
	}
	c, err := New(Options{Pool: pool, Incidents: store, Runbooks: rbs, BaseURL: "http://127.0.0.1", PageID: testPageID})
	if err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	f.Cleanup(srv.Close)
	token, err := CreateToken(ctx, pool, "admin", "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := store.CreateIncident(ctx, incidents.NewIncident{Title: "Target", Status: incidents.StatusInvestigating,
		Message: "Existing.", Impact: incidents.ImpactMinor, Actor: "person:fuzz@example.com"}); err != nil {
		f.Fatal(err)
	}
	client := &http.Client{Timeout: 20 * time.Second} // a hang becomes a failing input
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range []string{"/api/v1/incidents", "/api/v1/incidents/1/updates", "/api/v1/incidents/1/reclassify",
			"/api/v1/pages/" + testPageID + "/incidents", "/api/v1/webhooks"} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+p, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("POST %s %q: %s %s", p, body, resp.Status, out)
			}
			if resp.StatusCode == http.StatusServiceUnavailable && p != "/api/v1/webhooks" {
				t.Fatalf("POST %s %q: %s %s", p, body, resp.Status, out)
			}
			if !json.Valid(out) {
				t.Fatalf("POST %s %q: %d answer is not JSON: %q", p, body, resp.StatusCode, out)
			}
		}
	})
}
