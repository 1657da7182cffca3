package site

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
)

// TestHistoryShowsRecentMonthsAndAPagePerMonth: /history lists the newest
// three months in full and links the older ones; each month has its page;
// an update to the open incident renders again /history and its month's
// page, and keeps every older month's page as it was.
func TestHistoryShowsRecentMonthsAndAPagePerMonth(t *testing.T) {
	f := newFixture(t)
	// One resolved incident in each of the six months before t0's, then
	// one open now.
	for i := 6; i >= 1; i-- {
		at := time.Date(t0.Year(), t0.Month()-time.Month(i), 10, 9, 0, 0, 0, time.UTC)
		f.clk.Set(at)
		in := f.incident(t, incidents.NewIncident{Title: fmt.Sprintf("Incident of %s", at.Format("January 2006")), Message: "Looking.", StartedAt: at,
			Components: []incidents.ComponentUpdate{{Component: "API", Status: incidents.PartialOutage}}})
		f.update(t, in.ID, incidents.Update{Status: incidents.StatusResolved, Message: "Fixed.",
			Components: []incidents.ComponentUpdate{{Component: "API", Status: incidents.Operational}}})
	}
	f.clk.Set(t0)
	open := f.incident(t, incidents.NewIncident{Title: "Login failures", Message: "Looking."})
	f.rebuild(t)
	snap := f.site.Snapshot()
	body := func(p string) string {
		b, ok := f.site.Snapshot().Body(p)
		if !ok {
			t.Fatalf("no %s in the snapshot", p)
		}
		return string(b)
	}
	month := func(back int) time.Time {
		return time.Date(t0.Year(), t0.Month()-time.Month(back), 1, 0, 0, 0, 0, time.UTC)
	}
	hist := body("/history")
	for back := 0; back <= 6; back++ {
		m := month(back)
		key, name := m.Format("2006-01"), m.Format("January 2006")
		page := body("/history/" + key)
		if back > 0 && !strings.Contains(page, "Incident of "+name) {
			t.Errorf("/history/%s lacks its incident", key)
		}
		inFull := strings.Contains(hist, "Incident of "+name) || back == 0 && strings.Contains(hist, "Login failures")
		linked := strings.Contains(hist, `href="/history/`+key+`"`)
		if back < historyMonths && !inFull || back >= historyMonths && inFull || !linked {
			t.Errorf("/history and %s: in full %v (want %v), linked %v", name, inFull, back < historyMonths, linked)
		}
	}
	// The component page lists the incidents of its 90 days and counts the rest.
	api := body("/components/api")
	for back := 1; back <= 6; back++ {
		name := month(back).Format("January 2006")
		within := time.Date(t0.Year(), t0.Month()-time.Month(back), 10, 9, 0, 0, 0, time.UTC).After(t0.AddDate(0, 0, -89))
		if strings.Contains(api, "Incident of "+name) != within {
			t.Errorf("/components/api shows the incident of %s: %v, want %v", name, !within, within)
		}
	}
	if !strings.Contains(api, "incidents before this period") {
		t.Errorf("/components/api does not say that older incidents exist:\n%s", api)
	}
	f.update(t, open.ID, incidents.Update{Status: incidents.StatusIdentified, Message: "Found it."})
	f.rebuild(t)
	after := f.site.Snapshot()
	for back := 0; back <= 6; back++ {
		p := "/history/" + month(back).Format("2006-01")
		kept := after.files[p] == snap.files[p]
		if back == 0 && kept || back > 0 && !kept {
			t.Errorf("%s kept %v after an update to this month's open incident", p, kept)
		}
	}
	if after.files["/history"] == snap.files["/history"] {
		t.Error("/history was not rendered again after an update")
	}
}
