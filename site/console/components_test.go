package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestComponentStatusByHandThroughThePages(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.enrol(b, "ada@example.com", Responder)

	page := b.get("/admin/components")
	if page.status != http.StatusOK || strings.Count(page.body, `<tr class="component-row">`) != 2 || !strings.Contains(page.body, `aria-label="Status of Login"`) {
		t.Fatalf("components page: %d\n%s", page.status, page.body)
	}
	if r := b.submit("/admin/components", "/admin/components/login", url.Values{"status": {"down"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "unknown component status") {
		t.Errorf("bad status: %d\n%s", r.status, r.body)
	}
	if r := b.submit("/admin/components", "/admin/components/nope", url.Values{"status": {"major_outage"}}); r.status != http.StatusNotFound {
		t.Errorf("unknown component: %d", r.status)
	}
	if r := b.submit("/admin/components", "/admin/components/login", url.Values{"status": {"major_outage"}}); r.status != http.StatusSeeOther {
		t.Fatalf("set: %d\n%s", r.status, r.body)
	}
	page = b.get("/admin/components")
	if !strings.Contains(page.body, "major_outage by person:ada@example.com") || !strings.Contains(page.body, "Give back to automatic") {
		t.Errorf("after setting:\n%s", page.body)
	}
	if e.auditCount("component.status_set", "component:login") != 1 {
		t.Error("not audited")
	}
	if r := b.submit("/admin/components", "/admin/components/login", url.Values{"automatic": {"true"}}); r.status != http.StatusSeeOther {
		t.Fatalf("give back: %d", r.status)
	}
	page = b.get("/admin/components")
	if strings.Contains(page.body, "Give back to automatic") || strings.Contains(page.body, "major_outage by") {
		t.Errorf("after giving back:\n%s", page.body)
	}
	comps, err := e.store.Components(t.Context())
	if err != nil || comps[0].Status != "operational" {
		t.Errorf("Login after giving back: %+v %v", comps, err)
	}

	// A viewer sees the statuses without the forms.
	v := e.browser()
	e.enrol(v, "viewer@example.com", Viewer)
	if r := v.get("/admin/components"); r.status != http.StatusOK || strings.Contains(r.body, `action="/admin/components/`) {
		t.Errorf("viewer's page: %d\n%s", r.status, r.body)
	}
}
