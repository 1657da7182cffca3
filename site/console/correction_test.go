package console

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/probes"
)

// An incident customers were told of, raised by what its probe now sees:
// the page warns, prefills a correction, and the correction's placeholder
// blocks posting it as it is.
func TestPublicIncidentRaisedOffersACorrection(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	observe := func(i int, step string, class probes.ErrorClass, role probes.Role) {
		r := probes.Result{Probe: "login", Location: "eu-west", Start: e.clk.Now().Add(time.Duration(i-10) * time.Minute), Duration: time.Second,
			Outcome: probes.OutcomeFailed, FailedStep: step, FailedRole: role, FailedIdx: 1, Class: class, Message: "answered 200 without the expected text"}
		if _, err := e.store.Observe(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	observe(0, "password", probes.ClassHTTPStatus, probes.RolePassword)
	observe(1, "password", probes.ClassHTTPStatus, probes.RolePassword)
	observe(2, "totp", probes.ClassAssertion, probes.RoleSecondFactor)
	list, err := e.store.List(ctx, incidents.ListFilter{})
	if err != nil || len(list) != 1 || !list[0].Public || list[0].Classification != incidents.Undetermined {
		t.Fatalf("want one public incident raised to undetermined: %+v %v", list, err)
	}
	b := e.browser()
	e.enrol(b, "ada@example.com", Responder)
	page := "/admin/incidents/" + itoa(list[0].ID)
	detail := b.get(page)
	body := html.UnescapeString(detail.body)
	for _, want := range []string{"[What customers should know or do now, in one or two sentences.]",
		"Customers were told of this incident before the evidence classified it undetermined"} {
		if !strings.Contains(body, want) {
			t.Errorf("incident page lacks %q", want)
		}
	}
	draft := e.store.Policy().CorrectionDraft(list[0], mustTimeline(t, e, list[0].ID))
	r := b.post(page+"/updates", url.Values{"csrf": {csrfOf(detail.body)}, "message": {draft}, "visibility": {"public"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(html.UnescapeString(r.body), `replace the placeholder "[What customers should know or do now, in one or two sentences.]" before posting`) {
		t.Fatalf("posting the correction as it is: %d\n%s", r.status, r.body)
	}
}

func mustTimeline(t *testing.T, e *env, id int64) []incidents.TimelineEvent {
	t.Helper()
	tl, err := e.store.Timeline(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}
