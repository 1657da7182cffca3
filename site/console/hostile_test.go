package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/notify"
)

// TestHostileInputIsNeverA500 posts NUL bytes, invalid UTF-8, markup and
// oversized values into every form and the API: each is refused or stored
// harmlessly, never a server error.
func TestHostileInputIsNeverA500(t *testing.T) {
	var relay *notify.Relay
	e := newEnv(t, withRelay("", &relay))
	ctx := context.Background()
	admin := e.browser()
	root := e.enrol(admin, "root@example.com", Admin)
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Login failures", Message: "Investigating.", Actor: "person:test"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := CreateToken(ctx, e.pool, "admin", "hostile")
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"\x00", "a\xffb", "<script>alert(1)</script>", strings.Repeat("x", 300<<10), "\u202e", "../../etc/passwd"}
	forms := []struct {
		page, path string
		fields     []string
	}{
		{"/admin/login", "/admin/login", []string{"email", "password"}},
		{"/admin/operators", "/admin/operators", []string{"email", "role"}},
		{"/admin/tokens", "/admin/tokens", []string{"name", "role"}},
		{"/admin/incidents/new", "/admin/incidents", []string{"title", "message", "status", "impact", "classification", "visibility"}},
		{"/admin/incidents/" + itoa(inc.ID), "/admin/incidents/" + itoa(inc.ID) + "/updates", []string{"status", "message", "impact", "reason", "classification", "component.login"}},
		{"/admin/incidents/" + itoa(inc.ID), "/admin/incidents/" + itoa(inc.ID) + "/reclassify", []string{"classification", "reason"}},
		{"/admin/maintenance", "/admin/maintenance", []string{"title", "message", "starts_at", "ends_at", "component"}},
		{"/admin/incidents/" + itoa(inc.ID) + "/note", "/admin/incidents/" + itoa(inc.ID) + "/note", []string{"body"}},
		{"/admin/incidents/" + itoa(inc.ID) + "/note", "/admin/incidents/" + itoa(inc.ID) + "/note/publish", []string{"version"}},
		{"/admin/components", "/admin/components/login", []string{"status", "automatic"}},
		{"/admin/webhooks", "/admin/webhooks", []string{"url", "description"}},
		{"/admin/webhooks", "/admin/webhooks", []string{"description"}},
	}
	for _, f := range forms {
		for _, v := range values {
			form := url.Values{}
			if f.path == "/admin/webhooks" {
				form.Set("url", "http://127.0.0.1:9/hook") // loopback: allowed in this test
			}
			for _, field := range f.fields {
				form.Set(field, v)
			}
			b := admin
			if f.path == "/admin/login" {
				b = e.browser()
			}
			r := b.submit(f.page, f.path, form)
			if r.status >= 500 {
				t.Errorf("POST %s with %.20q: %d\n%.500s", f.path, v, r.status, r.body)
			}
			if strings.Contains(r.body, "<script>alert") {
				t.Errorf("POST %s: markup echoed unescaped", f.path)
			}
		}
	}
	// The second step and enrolment with hostile values.
	b := e.browser()
	for _, v := range values {
		if r := b.submit("/admin/login", "/admin/login/code", url.Values{"code": {v}, "recovery": {v}}); r.status >= 500 {
			t.Errorf("code %.20q: %d", v, r.status)
		}
		if r := b.get("/admin/enrol/" + url.PathEscape(v)); r.status != http.StatusNotFound {
			t.Errorf("enrol link %.20q: %d", v, r.status)
		}
	}
	for _, path := range []string{"/admin/incidents/abc", "/admin/incidents/99999999999999999999", "/admin/incidents/-1", "/admin/incidents/0/note"} {
		if r := admin.get(path); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d", path, r.status)
		}
	}
	for _, body := range []string{"\x00", `{"title":"a\u0000b","message":"x"}`, `{"title":"` + strings.Repeat("x", 2<<20) + `"}`, `[1,2]`, `{"components":[{"component":"\u0000","status":"x"}]}`} {
		if status, b := e.api("POST", "/api/v1/incidents", tok, "Bearer", body); status >= 500 || status < 400 {
			t.Errorf("API body %.30q: %d %.300s", body, status, b)
		}
	}
	for _, body := range []string{`{"url":"http://127.0.0.1:9/\u0000"}`, `{"url":"http://127.0.0.1:9/","description":"a\u0007b"}`,
		`{"url":"http://127.0.0.1:9/","description":"\u0000"}`, `{"url":["x"]}`, `{"url":"http://[::1`} {
		if status, b := e.api("POST", "/api/v1/webhooks", tok, "Bearer", body); status >= 500 || status < 400 {
			t.Errorf("webhook body %.30q: %d %.300s", body, status, b)
		}
	}
	for _, body := range []string{`{"component":{"status":"\u0000"}}`, `{"component":{"status":"a\ud800b"}}`, `{"component":{"status":"` + strings.Repeat("x", 300<<10) + `"}}`} {
		if status, b := e.api("PATCH", "/api/v1/pages/"+testPageID+"/components/login", tok, "Bearer", body); status != http.StatusUnprocessableEntity {
			t.Errorf("component body %.30q: %d %.300s", body, status, b)
		}
	}
	// A user agent that is not UTF-8 is stored with the session.
	ua := e.browser()
	page := ua.get("/admin/login")
	req, _ := http.NewRequest("POST", e.srv.URL+"/admin/login", strings.NewReader(url.Values{
		"csrf": {csrfOf(page.body)}, "email": {root.email}, "password": {root.password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "a\xffb")
	if r := ua.do(req); r.status != http.StatusSeeOther {
		t.Errorf("odd user agent: %d", r.status)
	}
}
