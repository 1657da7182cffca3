package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/notify"
)

// TestEveryRouteChecksTheRole walks every route of the console and the API
// with no session, a bad credential and every role, and checks that exactly
// the roles at or above the route's own get through.
func TestEveryRouteChecksTheRole(t *testing.T) {
	var relay *notify.Relay
	e := newEnv(t, withRelay("", &relay))
	ctx := context.Background()
	now := e.clk.Now()

	var public []string
	for _, rt := range e.c.routes {
		if rt.role == "" {
			public = append(public, rt.method+" "+rt.path)
		}
	}
	wantPublic := []string{"GET /admin/login", "POST /admin/login", "GET /admin/login/code", "POST /admin/login/code",
		"GET /admin/enrol/{token}", "POST /admin/enrol/{token}"}
	if !slices.Equal(public, wantPublic) {
		t.Fatalf("routes without a role: %v, want only %v", public, wantPublic)
	}

	// The notification routes, with the least role of each.
	want := map[string]Role{
		"GET /admin/deliveries":             Viewer,
		"POST /admin/deliveries/{id}/retry": Responder,
		"GET /admin/webhooks":               Viewer,
		"POST /admin/webhooks":              Admin,
		"POST /admin/webhooks/{id}/resume":  Responder,
		"POST /admin/webhooks/{id}/delete":  Admin,
		"GET /api/v1/webhooks":              Viewer,
		"POST /api/v1/webhooks":             Admin,
		"POST /api/v1/webhooks/{id}/resume": Responder,
		"DELETE /api/v1/webhooks/{id}":      Admin,
	}
	for _, rt := range e.c.routes {
		if role, ok := want[rt.method+" "+rt.path]; ok {
			if rt.role != role {
				t.Errorf("%s %s needs %s, want %s", rt.method, rt.path, rt.role, role)
			}
			delete(want, rt.method+" "+rt.path)
		}
	}
	if len(want) != 0 {
		t.Errorf("routes missing from the table: %v", want)
	}

	// One operator per role, enrolled; sessions are made per request.
	ops := map[Role]int64{}
	for _, r := range append(Roles, "target") {
		role := r
		if r == "target" {
			role = Viewer
		}
		var id int64
		if err := e.pool.QueryRow(ctx, `insert into operators (email, role, password_hash, totp_secret, enrolled_at, created_at, updated_at)
			values ($1, $2, $3, 'JBSWY3DPEHPK3PXP', $4, $4, $4) returning id`, string(r)+"@example.com", string(role), hashPassword(testPassword), now).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ops[r] = id
	}
	tokens := map[Role]string{}
	for _, r := range Roles {
		tok, err := CreateToken(ctx, e.pool, string(r), "role-test-"+string(r))
		if err != nil {
			t.Fatal(err)
		}
		tokens[r] = tok
	}
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Login failures", Message: "We are looking into it.", Actor: "person:test"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.store.ScheduleMaintenance(ctx, incidents.NewMaintenance{Title: "Database upgrade", Message: "Short.",
		Components: []string{"Login"}, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), Actor: "person:test"})
	if err != nil {
		t.Fatal(err)
	}
	_, victimToken, err := insertToken(ctx, e.pool, Viewer, "victim", "test", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rememberDevice(ctx, e.pool, ops["target"], "127.0.0.1", "test", now); err != nil {
		t.Fatal(err)
	}
	var device int64
	_ = e.pool.QueryRow(ctx, `select id from operator_devices`).Scan(&device)
	hook, _, err := relay.AddWebhook(ctx, notify.NewWebhook{URL: "http://127.0.0.1:9/hook", Actor: "person:test"})
	if err != nil {
		t.Fatal(err)
	}
	// A delivery to retry: the incident's opening, queued for the subscriber
	// as the relay would.
	var delivery int64
	if err := e.pool.QueryRow(ctx, `insert into notify_deliveries (outbox_id, channel, ordering_key, state, attempts, next_attempt_at, last_error, created_at, updated_at)
		select id, $1, 'incident:' || incident_id, 'dead', 3, $2, 'webhook answered 500', $2, $2 from outbox order by id limit 1 returning id`,
		webhookChannel(hook.ID), now).Scan(&delivery); err != nil {
		t.Fatal(err)
	}

	pathOf := func(p string) string {
		id := inc.ID
		switch {
		case strings.HasPrefix(p, "/admin/operators/"):
			id = ops["target"]
		case strings.HasPrefix(p, "/admin/tokens/"):
			id = victimToken
		case strings.HasPrefix(p, "/admin/maintenance/"):
			id = m.ID
		case strings.HasPrefix(p, "/admin/account/devices/"):
			id = device
		case strings.HasPrefix(p, "/admin/webhooks/"), strings.HasPrefix(p, "/api/v1/webhooks/"):
			id = hook.ID
		case strings.HasPrefix(p, "/admin/deliveries/"):
			id = delivery
		}
		if strings.Contains(p, "/components/{id}") {
			return strings.ReplaceAll(strings.ReplaceAll(p, "{id}", "login"), "{page_id}", testPageID)
		}
		p = strings.ReplaceAll(p, "{id}", fmt.Sprint(id))
		p = strings.ReplaceAll(p, "{page_id}", testPageID)
		return strings.ReplaceAll(p, "{$}", "")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(req *http.Request) (int, string) {
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Location")
	}

	checked := 0
	for _, rt := range e.c.routes {
		if rt.role == "" {
			continue
		}
		path := pathOf(rt.path)
		for _, who := range append([]Role{"", "bad"}, Roles...) {
			name := fmt.Sprintf("%s %s as %q", rt.method, path, who)
			var req *http.Request
			if rt.api {
				var body *strings.Reader
				if rt.method != "GET" {
					body = strings.NewReader("{}")
				} else {
					body = strings.NewReader("")
				}
				req, _ = http.NewRequest(rt.method, e.srv.URL+path, body)
				switch who {
				case "":
				case "bad":
					req.Header.Set("Authorization", "Bearer candor_not-a-real-token")
				default:
					req.Header.Set("Authorization", "Bearer "+tokens[who])
				}
			} else {
				form := url.Values{}
				var cookie *http.Cookie
				switch who {
				case "":
				case "bad":
					cookie = &http.Cookie{Name: sessionCookie, Value: "forged"}
				default:
					tok, s, err := createSession(ctx, e.pool, ops[who], "full", "127.0.0.1", "test", e.clk.Now())
					if err != nil {
						t.Fatal(err)
					}
					cookie = &http.Cookie{Name: sessionCookie, Value: tok}
					form.Set("csrf", s.CSRF)
				}
				req, _ = http.NewRequest(rt.method, e.srv.URL+path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if cookie != nil {
					req.AddCookie(cookie)
				}
			}
			status, location := do(req)
			checked++
			switch {
			case who == "" || who == "bad":
				if rt.api || rt.method != "GET" {
					if status != http.StatusUnauthorized {
						t.Errorf("%s: got %d, want 401", name, status)
					}
				} else if status != http.StatusSeeOther || location != "/admin/login" {
					t.Errorf("%s: got %d to %q, want 303 to /admin/login", name, status, location)
				}
			case !who.Allows(rt.role):
				if status != http.StatusForbidden {
					t.Errorf("%s: got %d, want 403 (route needs %s)", name, status, rt.role)
				}
			default:
				if status == http.StatusUnauthorized || status == http.StatusForbidden || status >= 500 {
					t.Errorf("%s: got %d, want the route to run", name, status)
				}
			}
		}
	}
	if want := (len(e.c.routes) - len(wantPublic)) * 6; checked != want {
		t.Errorf("checked %d requests, want %d", checked, want)
	}
	if e.auditCount("access.denied", "") == 0 || e.auditCount("api.refused", "") == 0 {
		t.Error("refusals not audited")
	}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		have, need Role
		want       bool
	}{
		{Viewer, Viewer, true}, {Viewer, Exec, false}, {Exec, Viewer, true}, {Exec, Responder, false},
		{Responder, Exec, true}, {Responder, Admin, false}, {Admin, Responder, true}, {"", Viewer, false}, {"root", Viewer, false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", tc.have, tc.need, got, tc.want)
		}
	}
}
