package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/probes"
)

func TestIncidentWorkThroughThePages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	e.enrol(b, "ada@example.com", Responder)

	// Open an incident: bad input first, then good.
	r := b.submit("/admin/incidents/new", "/admin/incidents", url.Values{"title": {""}, "message": {""}, "status": {"investigating"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Nothing was saved") {
		t.Fatalf("empty incident: %d\n%s", r.status, r.body)
	}
	r = b.submit("/admin/incidents/new", "/admin/incidents", url.Values{
		"title": {"Login failures"}, "message": {"We are investigating."}, "status": {"investigating"}, "visibility": {"public"},
		"impact": {"major"}, "classification": {"undetermined"}, "component.login": {"major_outage"},
	})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/admin/incidents/") {
		t.Fatalf("create: %d %q\n%s", r.status, r.location, r.body)
	}
	page := r.location
	id := strings.TrimPrefix(page, "/admin/incidents/")

	// A runbook attached to the incident prefills the update.
	var incID int64
	_ = e.pool.QueryRow(ctx, `select id from incidents`).Scan(&incID)
	if err := e.store.AttachRunbook(ctx, incID, incidents.RunbookRef{ID: "login-events-down", Title: "Login events store", Reasons: []string{"step password failing"}}, "system"); err != nil {
		t.Fatal(err)
	}
	detail := b.get(page)
	for _, want := range []string{"Login failures", "Runbooks", "Sign-in fails right after the password is accepted", "Prefilled from the runbook",
		"step password failing", `<time datetime="`, "UTC</time>", "Login: major_outage", "We are investigating.",
		"may only be said once a person has confirmed"} {
		if !strings.Contains(detail.body, want) {
			t.Errorf("incident page lacks %q", want)
		}
	}

	// Preview renders the markdown without posting.
	r = b.post(page+"/updates", url.Values{"csrf": {csrfOf(detail.body)}, "status": {"identified"}, "message": {"**Bold** <script>alert(1)</script>"}, "preview": {"1"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "<strong>Bold</strong>") || strings.Contains(r.body, "<script>alert") {
		t.Fatalf("preview: %d\n%s", r.status, r.body)
	}
	// A claim the policy forbids is refused with the field named.
	r = b.post(page+"/updates", url.Values{"csrf": {csrfOf(detail.body)}, "status": {"identified"}, "message": {"This is not a security incident."}, "visibility": {"public"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "<strong>message</strong>") {
		t.Fatalf("forbidden claim: %d\n%s", r.status, r.body)
	}
	// A real update.
	r = b.post(page+"/updates", url.Values{"csrf": {csrfOf(detail.body)}, "status": {"identified"}, "message": {"The events store is down."},
		"visibility": {"public"}, "component.login": {"partial_outage"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("update: %d\n%s", r.status, r.body)
	}
	ups, err := e.store.Updates(ctx, incID, true)
	if err != nil || len(ups) != 2 || ups[1].Author != "person:ada@example.com" || ups[1].Status != incidents.StatusIdentified {
		t.Fatalf("updates %+v %v", ups, err)
	}
	// Reclassify needs a reason.
	detail = b.get(page)
	r = b.post(page+"/reclassify", url.Values{"csrf": {csrfOf(detail.body)}, "classification": {"non_security"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "<strong>reason</strong>") {
		t.Fatalf("reclassify without reason: %d", r.status)
	}
	r = b.post(page+"/reclassify", url.Values{"csrf": {csrfOf(detail.body)}, "classification": {"non_security"}, "reason": {"only the events store failed"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("reclassify: %d", r.status)
	}
	inc, _ := e.store.Get(ctx, incID)
	if inc.Classification != incidents.NonSecurity || !inc.Confirmed {
		t.Fatalf("classification %s confirmed %v", inc.Classification, inc.Confirmed)
	}
	detail = b.get(page)
	if !strings.Contains(detail.body, "reason: only the events store failed") {
		t.Error("timeline lacks the reason")
	}
	// The list shows it open with its badge.
	list := b.get("/admin/incidents")
	if !strings.Contains(list.body, "non_security · confirmed") || !strings.Contains(list.body, `href="/admin/incidents/`+id+`"`) {
		t.Errorf("list:\n%s", list.body)
	}
	// Resolve it, so that the note can be published.
	r = b.post(page+"/updates", url.Values{"csrf": {csrfOf(detail.body)}, "status": {"resolved"}, "message": {"Login works again."}, "visibility": {"public"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("resolve: %d\n%s", r.status, r.body)
	}

	// An exec drafts, edits and publishes the note; a viewer may not.
	exec := e.browser()
	e.enrol(exec, "ceo@example.com", Exec)
	if r := exec.get(page); strings.Contains(r.body, "Post an update") {
		t.Error("exec is offered the update form")
	}
	editor := exec.get(page + "/note")
	if editor.status != http.StatusOK || !strings.Contains(editor.body, "the draft generated from the timeline") {
		t.Fatalf("note editor: %d\n%s", editor.status, editor.body)
	}
	draft := regexpFind(`(?s)<textarea id="body"[^>]*>(.*?)</textarea>`, editor.body)
	if !strings.Contains(draft, "Login failures") {
		t.Fatalf("draft:\n%s", draft)
	}
	// The attached runbook's post-incident summary, rendered for this incident.
	// A person confirmed it non-security above: that summary.
	if !strings.Contains(editor.body, `and the runbook &#34;Sign-in fails right after the password is accepted`) ||
		!strings.Contains(draft, "## Summary for customers") || !strings.Contains(draft, "What happened.") ||
		!strings.Contains(draft, "This was not a security incident") || strings.Contains(draft, "{{") {
		t.Errorf("the draft does not carry the runbook's post-incident summary:\n%s", draft)
	}
	body := "# Login failures\n\nLogin failed for a while.\n"
	r = exec.post(page+"/note", url.Values{"csrf": {csrfOf(editor.body)}, "body": {body}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", r.status, r.body)
	}
	r = exec.post(page+"/note", url.Values{"csrf": {csrfOf(editor.body)}, "body": {body + "\nRoot cause: the events store.\n"}})
	diff := exec.get(r.location)
	if !strings.Contains(diff.body, "Changes in version 2") || !strings.Contains(diff.body, `<span class="added">+ Root cause: the events store.`) {
		t.Fatalf("diff:\n%s", diff.body)
	}
	r = exec.post(page+"/note/publish", url.Values{"csrf": {csrfOf(diff.body)}, "version": {"2"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("publish: %d\n%s", r.status, r.body)
	}
	inc, _ = e.store.Get(ctx, incID)
	if inc.Status != incidents.StatusPostmortem {
		t.Fatalf("status after publishing: %s", inc.Status)
	}
	if e.auditCount("note.published", "incident:"+id) != 1 {
		t.Error("publication not audited")
	}
}

func TestMaintenancePages(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.enrol(b, "ada@example.com", Responder)
	start := e.clk.Now().Add(2 * time.Hour).Truncate(time.Minute)
	r := b.submit("/admin/maintenance", "/admin/maintenance", url.Values{"title": {"Database upgrade"}, "message": {"A short one."},
		"starts_at": {"yesterday"}, "ends_at": {start.Format(formTime)}, "component": {"Login"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "starts_at") {
		t.Fatalf("bad time: %d\n%s", r.status, r.body)
	}
	r = b.submit("/admin/maintenance", "/admin/maintenance", url.Values{"title": {"Database upgrade"}, "message": {"A short one."},
		"starts_at": {start.Format(formTime)}, "ends_at": {start.Add(time.Hour).Format(formTime)}, "component": {"Login"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("schedule: %d\n%s", r.status, r.body)
	}
	ms, err := e.store.Maintenances(context.Background(), time.Time{})
	if err != nil || len(ms) != 1 || !ms[0].StartsAt.Equal(start) || ms[0].Status != incidents.MaintenanceScheduled {
		t.Fatalf("maintenances %+v %v", ms, err)
	}
	r = b.submit("/admin/maintenance", "/admin/maintenance/"+itoa(ms[0].ID), url.Values{"status": {"in_progress"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("start: %d\n%s", r.status, r.body)
	}
	if page := b.get("/admin/maintenance"); !strings.Contains(page.body, "Database upgrade <small>in_progress</small>") || strings.Contains(page.body, "@when") {
		t.Errorf("maintenance page:\n%s", page.body)
	}
}

func TestDiffContext(t *testing.T) {
	d := lineDiff("1\n2\n3\n4\n5\n6\n7\n8\n9", "1\n2\n3\n4\nfive\n6\n7\n8\n9")
	var s []string
	for _, l := range diffContext(d, 1) {
		s = append(s, string(l.Op)+l.Text)
	}
	if got, want := strings.Join(s, "|"), "~…| 4|-5|+five| 6|~…"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLineDiff(t *testing.T) {
	got := lineDiff("a\nb\nc\nd", "a\nc\nx\nd")
	var s []string
	for _, d := range got {
		s = append(s, string(d.Op)+d.Text)
	}
	if want := " a|-b| c|+x| d"; strings.Join(s, "|") != want {
		t.Errorf("diff %q, want %q", strings.Join(s, "|"), want)
	}
}

// FuzzLineDiff: the lines marked ' ' and '-' are the old text, those marked
// ' ' and '+' the new one.
func FuzzLineDiff(f *testing.F) {
	f.Add("a\nb\nc", "a\nc\nd")
	f.Add("", "x")
	f.Add("same\nsame", "same")
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 4096 || len(b) > 4096 {
			return
		}
		d := lineDiff(a, b)
		var old, new []string
		for _, l := range d {
			if l.Op != '+' {
				old = append(old, l.Text)
			}
			if l.Op != '-' {
				new = append(new, l.Text)
			}
		}
		if strings.Join(old, "\n") != a || strings.Join(new, "\n") != b {
			t.Fatalf("diff of %q and %q does not rebuild them: %v", a, b, d)
		}
	})
}

func TestDetectedIncidentShowsEvidenceAndProbes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ps := probes.NewStore(e.pool)
	var last probes.Result
	for i := range 3 {
		r := probes.Result{Probe: "login", Location: "eu-west", Start: e.clk.Now().Add(time.Duration(i-3) * time.Minute), Duration: 1500 * time.Millisecond,
			Outcome: probes.OutcomeFailed, FailedStep: "password", FailedIdx: 1, Class: "http_status", Message: "HTTP 503 from POST /login"}
		if _, err := e.store.Observe(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := ps.Insert(ctx, []probes.Result{r}); err != nil {
			t.Fatal(err)
		}
		last = r
	}
	list, err := e.store.List(ctx, incidents.ListFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("incidents %v %v", list, err)
	}
	b := e.browser()
	e.enrol(b, "ada@example.com", Viewer)
	page := b.get("/admin/incidents/" + itoa(list[0].ID))
	for _, want := range []string{"Probes now", "eu-west", "HTTP 503 from POST /login", iso(last.Start), "1.5s",
		"Evidence behind the classification", "login/password", "detected"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("incident page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "Post an update") {
		t.Error("a viewer is offered the update form")
	}

	// Resolved, its classification (non-security, from the probes) not
	// confirmed by a person: the note draft takes the runbook's security
	// summary, which asks for the review's findings, not the one that says
	// nothing was compromised.
	id := list[0].ID
	if err := e.store.AttachRunbook(ctx, id, incidents.RunbookRef{ID: "login-events-down", Title: "Login events store"}, "system"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PostUpdate(ctx, id, incidents.Update{Status: incidents.StatusResolved, Message: "Fixed.", Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	if inc, _ := e.store.Get(ctx, id); inc.Classification != incidents.NonSecurity || inc.Confirmed {
		t.Fatalf("classification %s confirmed %v, want non_security unconfirmed", inc.Classification, inc.Confirmed)
	}
	exec := e.browser()
	e.enrol(exec, "ceo@example.com", Exec)
	d := exec.get("/admin/incidents/" + itoa(id) + "/note")
	if !strings.Contains(d.body, "Summary for customers") || !strings.Contains(d.body, "Security review.") || strings.Contains(d.body, "not a security incident") {
		t.Errorf("unconfirmed incident's draft:\n%s", d.body)
	}
}
