package console

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/candorhq/candor/incidents"
)

// page is what every console page's frame needs.
type page struct {
	Title    string
	SignedIn bool
	Email    string
	Role     Role
	CSRF     string
	Now      time.Time
}

func (p page) Can(r Role) bool { return p.SignedIn && p.Role.Allows(r) }

func (c *Console) page(p *principal, title string) page {
	pg := page{Title: title, Now: c.now()}
	if p != nil && p.token == nil {
		pg.SignedIn, pg.Email, pg.Role, pg.CSRF = true, p.Operator.Email, p.Role, p.CSRF
	}
	return pg
}

func (c *Console) publicPage(title, csrf string) page {
	return page{Title: title, CSRF: csrf, Now: c.now()}
}

// render writes a whole page or nothing: it renders into a buffer first so
// that a failure half-way never sends half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, comp templ.Component) {
	var buf bytes.Buffer
	if err := comp.Render(r.Context(), &buf); err != nil {
		c.log.Error("console render", "path", r.URL.Path, "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("Something went wrong on our side; it has been logged.\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Formatting helpers for the views. Times are shown in UTC; console.js adds
// the reader's local time beside each <time>.

func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func incidentURL(id int64) templ.SafeURL { return templ.SafeURL("/admin/incidents/" + itoa(id)) }

func incidentPath(id int64, rest string) templ.SafeURL {
	return templ.SafeURL("/admin/incidents/" + itoa(id) + rest)
}

func classBadge(c incidents.Classification, confirmed bool) string {
	s := string(c)
	if confirmed {
		s += " · confirmed"
	} else {
		s += " · automatic"
	}
	return s
}

func fieldMsg(errs incidents.FieldErrors, field string) string {
	if f, ok := errs.Field(field); ok {
		return f.Msg
	}
	return ""
}

var (
	statuses          = []incidents.Status{incidents.StatusInvestigating, incidents.StatusIdentified, incidents.StatusMonitoring, incidents.StatusResolved}
	impacts           = []incidents.Impact{incidents.ImpactNone, incidents.ImpactMinor, incidents.ImpactMajor, incidents.ImpactCritical}
	classifications   = []incidents.Classification{incidents.Undetermined, incidents.NonSecurity, incidents.Security}
	componentStatuses = []incidents.ComponentStatus{incidents.Operational, incidents.DegradedPerformance, incidents.PartialOutage, incidents.MajorOutage, incidents.UnderMaintenance}
	maintStatuses     = []incidents.MaintenanceStatus{incidents.MaintenanceScheduled, incidents.MaintenanceInProgress, incidents.MaintenanceVerifying, incidents.MaintenanceCompleted}
)

func httpStatusText(status int) string { return http.StatusText(status) }

func joinComma(s []string) string { return strings.Join(s, ", ") }

func contains(s []string, v string) bool { return slices.Contains(s, v) }

func dashIf(s string) string {
	if s == "" {
		return ""
	}
	return " — " + s
}

func signals(e incidents.Evidence) string {
	var out []string
	for _, s := range e.Signals {
		out = append(out, fmt.Sprint(s))
	}
	return strings.Join(out, ", ")
}

func diffClass(op byte) string {
	switch op {
	case '+':
		return "added"
	case '-':
		return "removed"
	case '~':
		return "skipped"
	}
	return "same"
}

func diffText(d diffLine) string {
	if d.Op == '~' {
		return d.Text + "\n"
	}
	return string(d.Op) + " " + d.Text + "\n"
}
