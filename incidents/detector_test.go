package incidents

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/probes"
)

var t0 = time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)

const interval = 15 * time.Second

var demoProbes = []string{"login", "login-remembered", "login-security"}

// round runs every probe in every location once, at t0 + n intervals, with
// the result make returns (nil: ok), and returns the events.
func (s *sim) round(n int, locs []string, make func(probe, loc string, at time.Time) probes.Result) []Event {
	var all []Event
	for pi, p := range demoProbes {
		for li, l := range locs {
			at := t0.Add(time.Duration(n)*interval + time.Duration(pi*3+li)*time.Second)
			var r probes.Result
			if make != nil {
				r = make(p, l, at)
			}
			if r.Probe == "" {
				r = ok(p, l, at)
			}
			all = append(all, s.observe(r, at.Add(time.Second))...)
		}
	}
	return all
}

var twoLocs = []string{"eu-west", "us-east"}

func eventsDown(p, l string, at time.Time) probes.Result {
	step := "password"
	if p == "login-security" {
		step = "wrong_password"
	}
	return fail(p, l, at, step, probes.ClassHTTPStatus)
}

func TestEventsDownOpensOneNonSecurityIncidentAndResolves(t *testing.T) {
	s := newSim(t, Policy{})
	for n := range 4 {
		if evs := s.round(n, twoLocs, nil); len(evs) != 0 {
			t.Fatalf("healthy round %d produced %v", n, kinds(evs))
		}
	}
	faultAt := t0.Add(4 * interval)
	first := s.round(4, twoLocs, eventsDown)
	if len(s.open()) != 0 || count(first, KindDetected) != 0 {
		t.Fatalf("one failed run per location opened an incident: %v", kinds(first))
	}
	second := s.round(5, twoLocs, eventsDown)
	open := s.open()
	if len(open) != 1 {
		t.Fatalf("got %d open incidents, want 1: %+v", len(open), open)
	}
	inc := open[0]
	if got := count(second, KindDetected); got != 1 {
		t.Fatalf("got %d detected events, want 1: %v", got, kinds(second))
	}
	if inc.DetectedAt.Sub(faultAt) > 2*interval {
		t.Errorf("detected %s after the fault; want within two intervals", inc.DetectedAt.Sub(faultAt))
	}
	if !inc.StartedAt.Equal(faultAt) {
		t.Errorf("started at %v, want the first failed run %v", inc.StartedAt, faultAt)
	}
	if inc.Classification != NonSecurity || inc.Confirmed {
		t.Errorf("classification %s confirmed=%v, want automatic non_security", inc.Classification, inc.Confirmed)
	}
	if !slices.Equal(inc.Components, []string{"Login"}) || inc.ComponentState["Login"] != MajorOutage {
		t.Errorf("components %v %v, want Login major_outage", inc.Components, inc.ComponentState)
	}
	if !slices.Equal(inc.Probes, demoProbes) || len(inc.FailingProbes) != 3 {
		t.Errorf("probes %v failing %v, want all three", inc.Probes, inc.FailingProbes)
	}
	if inc.Signature != "failure:password:http_status:login" {
		t.Errorf("signature %q", inc.Signature)
	}
	var update *Event
	for i, e := range s.log {
		if e.Kind == KindUpdatePosted {
			update = &s.log[i]
			break
		}
	}
	if update == nil || !inc.Public {
		t.Fatalf("no public first update; public=%v", inc.Public)
	}
	msg := update.Extra["message"].(string)
	for _, want := range []string{"**Login**", "signing in fails after the password is entered", "2025-03-04 08:01 UTC", "We have no indication that this is a security incident"} {
		if !strings.Contains(msg, want) {
			t.Errorf("first update lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(strings.ToLower(msg), "not a security incident") {
		t.Errorf("first update claims what only a person may: %s", msg)
	}

	// The fault goes on: the incident is extended, not duplicated.
	for n := 6; n < 20; n++ {
		s.round(n, twoLocs, eventsDown)
	}
	if got := len(s.incs); got != 1 {
		t.Fatalf("got %d incidents during a long outage, want 1", got)
	}
	// Cleared: M good rounds later, monitoring; then the quiet period resolves it.
	var evs []Event
	for n := 20; n < 23; n++ {
		evs = append(evs, s.round(n, twoLocs, nil)...)
	}
	if got := s.incs[inc.ID].Status; got != StatusMonitoring {
		t.Fatalf("status %s after %d good rounds, want monitoring (events %v)", got, 3, kinds(evs))
	}
	if got := count(evs, KindProbeRecovered); got != 3 {
		t.Errorf("got %d probe_recovered, want 3", got)
	}
	if got := s.incs[inc.ID].ComponentState["Login"]; got != Operational {
		t.Errorf("Login is %s while monitoring, want operational", got)
	}
	monitoringAt := s.incs[inc.ID].MonitoringAt
	if evs := s.tick(monitoringAt.Add(9 * time.Minute)); count(evs, KindStatusChanged) != 0 {
		t.Fatalf("resolved before the quiet period: %v", kinds(evs))
	}
	s.tick(monitoringAt.Add(10 * time.Minute))
	if got := s.incs[inc.ID]; got.Status != StatusResolved || !got.ResolvedAt.Equal(monitoringAt.Add(10*time.Minute)) {
		t.Fatalf("status %s resolved at %v, want resolved after the quiet period", got.Status, got.ResolvedAt)
	}
}

func TestSecurityFaultsOpenUnpublishedSecurityIncidents(t *testing.T) {
	skip2SA := func(p, l string, at time.Time) probes.Result {
		switch p {
		case "login-remembered": // its password step has no signal: an assertion failure
			return fail(p, l, at, "password", probes.ClassAssertion)
		default:
			return fail(p, l, at, "password", probes.ClassSecurityCheck, probes.SignalSecondStepSkipped)
		}
	}
	acceptAny := func(p, l string, at time.Time) probes.Result {
		if p == "login-security" {
			return fail(p, l, at, "wrong_code", probes.ClassSecurityCheck, probes.SignalWrongCodeAccepted)
		}
		return probes.Result{}
	}
	for _, tc := range []struct {
		name      string
		fault     func(p, l string, at time.Time) probes.Result
		component string
		signal    probes.Signal
	}{
		{"skip_2sa", skip2SA, "Login", probes.SignalSecondStepSkipped},
		{"accept_any_code", acceptAny, "Two-step authentication", probes.SignalWrongCodeAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Policy{})
			s.round(0, twoLocs, nil)
			s.round(1, twoLocs, tc.fault)
			s.round(2, twoLocs, tc.fault)
			s.round(3, twoLocs, tc.fault)
			open := s.open()
			if len(open) != 1 {
				t.Fatalf("got %d open incidents, want 1: %+v", len(open), open)
			}
			inc := open[0]
			if inc.Classification != Security {
				t.Errorf("classification %s, want security", inc.Classification)
			}
			if inc.Public || count(s.log, KindUpdatePosted) != 0 {
				t.Errorf("a security incident was published automatically")
			}
			if !slices.Contains(inc.Components, tc.component) || !slices.Contains(inc.Signals, tc.signal) {
				t.Errorf("components %v signals %v, want %s and %s", inc.Components, inc.Signals, tc.component, tc.signal)
			}
			for _, e := range s.log {
				if e.Kind == KindDetected && !strings.Contains(e.Extra["publication"].(string), "never published automatically") {
					t.Errorf("detected event does not say why it was not published: %v", e.Extra)
				}
			}
		})
	}
}

// The assertion-only probe reaching the quorum first must not publish: its
// failure is undetermined, and the security evidence that follows raises it.
func TestUndeterminedFirstThenSecurity(t *testing.T) {
	s := newSim(t, Policy{})
	for n := 1; n <= 2; n++ {
		for _, l := range twoLocs {
			at := t0.Add(time.Duration(n) * interval)
			s.observe(fail("login-remembered", l, at, "password", probes.ClassAssertion), at)
		}
	}
	open := s.open()
	if len(open) != 1 || open[0].Classification != Undetermined || open[0].Public {
		t.Fatalf("want one unpublished undetermined incident, got %+v", open)
	}
	for n := 1; n <= 2; n++ {
		for _, l := range twoLocs {
			at := t0.Add(time.Duration(n)*interval + 5*time.Second)
			s.observe(fail("login", l, at, "password", probes.ClassSecurityCheck, probes.SignalSecondStepSkipped), at)
		}
	}
	open = s.open()
	if len(open) != 1 || open[0].Classification != Security || open[0].Public {
		t.Fatalf("want the same incident raised to security, got %+v", open)
	}
	if count(s.log, KindClassificationChanged) != 1 {
		t.Errorf("events %v, want one classification_changed", kinds(s.log))
	}
}

func TestQuorumAndConsecutiveFailures(t *testing.T) {
	three := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name    string
		pol     Policy
		failing []string // locations that fail
		rounds  int
		want    int // open incidents
	}{
		{"one failure is not an outage", Policy{}, three, 1, 0},
		{"K failures in all locations", Policy{}, three, 2, 1},
		{"majority of three", Policy{}, []string{"a", "b"}, 2, 1},
		{"one of three is a local problem", Policy{}, []string{"a"}, 5, 0},
		{"quorum 1", Policy{Quorum: 1}, []string{"a"}, 2, 1},
		{"K=3", Policy{OpenAfter: 3}, three, 2, 0},
		{"K=3 reached", Policy{OpenAfter: 3}, three, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, tc.pol)
			for n := range tc.rounds {
				for i, l := range three {
					at := t0.Add(time.Duration(n)*interval + time.Duration(i)*time.Second)
					r := ok("login", l, at)
					if slices.Contains(tc.failing, l) {
						r = fail("login", l, at, "password", probes.ClassTimeout)
					}
					s.observe(r, at)
				}
			}
			if got := len(s.open()); got != tc.want {
				t.Errorf("got %d open incidents, want %d (%v)", got, tc.want, kinds(s.log))
			}
		})
	}
}

func TestConfiguredLocationsAndStaleOnes(t *testing.T) {
	s := newSim(t, Policy{})
	s.locs["login"] = []string{"a", "b", "c"} // c never reports: 2 of 3 is still a majority
	for n := range 2 {
		for _, l := range []string{"a", "b", "x"} {
			at := t0.Add(time.Duration(n) * interval)
			s.observe(fail("login", l, at, "password", probes.ClassTimeout), at)
		}
	}
	if got := len(s.open()); got != 1 {
		t.Fatalf("got %d open, want 1", got)
	}
	if slices.Contains(s.open()[0].Locations, "x") {
		t.Errorf("a location not configured for the probe counted: %v", s.open()[0].Locations)
	}

	// A location that stopped reporting no longer blocks the majority.
	s = newSim(t, Policy{})
	for _, l := range []string{"a", "b", "c"} {
		s.observe(ok("login", l, t0), t0)
	}
	later := t0.Add(time.Hour)
	for n := range 2 {
		at := later.Add(time.Duration(n) * interval)
		s.observe(fail("login", "a", at, "password", probes.ClassTimeout), at)
	}
	if got := len(s.open()); got != 1 {
		t.Fatalf("with b and c stale, got %d open, want 1", got)
	}
}

func TestExtendInsteadOfDuplicate(t *testing.T) {
	s := newSim(t, Policy{})
	for n := range 2 {
		s.observe(fail("login", "eu", t0.Add(time.Duration(n)*interval), "password", probes.ClassHTTPStatus), t0.Add(time.Duration(n)*interval))
	}
	at := t0.Add(2 * interval)
	evs := s.observe(fail("login", "eu", at, "totp", probes.ClassTOTPRejected), at)
	if got := kinds(evs); !slices.Contains(got, KindStepFailing) || !slices.Contains(got, KindExtended) {
		t.Fatalf("events %v, want step_failing and extended", got)
	}
	inc := s.open()[0]
	if len(s.incs) != 1 || !slices.Equal(inc.Components, []string{"Login", "Two-step authentication"}) {
		t.Fatalf("incidents %d, components %v", len(s.incs), inc.Components)
	}
	if !slices.Equal(inc.Steps, []string{"login/password", "login/totp"}) {
		t.Errorf("steps %v", inc.Steps)
	}
	// The same step again adds nothing to the timeline.
	at = t0.Add(3 * interval)
	if evs := s.observe(fail("login", "eu", at, "totp", probes.ClassTOTPRejected), at); len(evs) != 0 {
		t.Errorf("a repeated failure produced %v", kinds(evs))
	}
	// Another probe on a shared component joins it.
	for n := 4; n < 6; n++ {
		at := t0.Add(time.Duration(n) * interval)
		s.observe(fail("login-remembered", "eu", at, "totp", probes.ClassTOTPRejected), at)
	}
	if len(s.incs) != 1 || !slices.Contains(s.open()[0].Probes, "login-remembered") {
		t.Errorf("incidents %d, probes %v", len(s.incs), s.open()[0].Probes)
	}
}

func TestReopenWithinCooldownAndNewAfter(t *testing.T) {
	s := newSim(t, Policy{})
	outage := func(from int) {
		for n := from; n < from+2; n++ {
			at := t0.Add(time.Duration(n) * interval)
			s.observe(fail("login", "eu", at, "password", probes.ClassHTTPStatus), at)
		}
	}
	recover := func(from int) time.Time {
		var at time.Time
		for n := from; n < from+3; n++ {
			at = t0.Add(time.Duration(n) * interval)
			s.observe(ok("login", "eu", at), at)
		}
		s.tick(at.Add(10 * time.Minute))
		return at.Add(10 * time.Minute)
	}
	outage(0)
	resolved := recover(2)
	if got := s.incs[1].Status; got != StatusResolved {
		t.Fatalf("status %s, want resolved", got)
	}
	// Back 5 minutes later: the same incident reopens.
	n := int(resolved.Add(5*time.Minute).Sub(t0) / interval)
	outage(n)
	if len(s.incs) != 1 || s.incs[1].Status != StatusInvestigating {
		t.Fatalf("incidents %d, status %s; want incident 1 reopened", len(s.incs), s.incs[1].Status)
	}
	byStatus := map[string]int{}
	for _, e := range s.log {
		if e.Kind == KindUpdatePosted && e.Extra["visibility"] == string(Public) {
			byStatus[e.To]++
		}
	}
	if byStatus["investigating"] != 2 || byStatus["monitoring"] != 1 || byStatus["resolved"] != 1 {
		t.Errorf("public updates by status %v, want the first, monitoring, resolved and one on reopening", byStatus)
	}
	resolved = recover(n + 2)
	// Back an hour later: a new incident.
	n = int(resolved.Add(time.Hour).Sub(t0) / interval)
	outage(n)
	if len(s.incs) != 2 || s.incs[2].Status != StatusInvestigating {
		t.Fatalf("incidents %d, want a second one after the cooldown", len(s.incs))
	}
}

func TestFailingAgainWhileMonitoring(t *testing.T) {
	s := newSim(t, Policy{})
	for n := range 2 {
		at := t0.Add(time.Duration(n) * interval)
		s.observe(fail("login", "eu", at, "password", probes.ClassHTTPStatus), at)
	}
	for n := 2; n < 5; n++ {
		at := t0.Add(time.Duration(n) * interval)
		s.observe(ok("login", "eu", at), at)
	}
	if s.incs[1].Status != StatusMonitoring {
		t.Fatalf("status %s", s.incs[1].Status)
	}
	// One failure delays the resolution.
	at := t0.Add(5 * interval)
	s.observe(fail("login", "eu", at, "password", probes.ClassHTTPStatus), at)
	s.tick(s.incs[1].MonitoringAt.Add(10 * time.Minute))
	if s.incs[1].Status != StatusMonitoring {
		t.Fatalf("resolved %s after a failure during monitoring", s.incs[1].Status)
	}
	// K failures send it back to investigating.
	at = t0.Add(6 * interval)
	s.observe(fail("login", "eu", at, "password", probes.ClassHTTPStatus), at)
	if got := s.incs[1]; got.Status != StatusInvestigating || got.ComponentState["Login"] == Operational {
		t.Fatalf("status %s, Login %s; want investigating with Login down", got.Status, got.ComponentState["Login"])
	}
	// Customers heard it works again: they hear it fails again.
	last := s.log[len(s.log)-1]
	if last.Kind != KindUpdatePosted || last.To != string(StatusInvestigating) || last.Extra["visibility"] != string(Public) ||
		!strings.Contains(last.Extra["message"].(string), "signing in fails after the password is entered") {
		t.Errorf("last event %s to %s %v, want a public update saying it fails again", last.Kind, last.To, last.Extra)
	}
	if len(s.incs) != 1 {
		t.Fatalf("got %d incidents", len(s.incs))
	}
}

func TestMaintenanceSuppresses(t *testing.T) {
	s := newSim(t, Policy{})
	s.maint = []string{"Login"}
	var evs []Event
	for n := range 6 {
		at := t0.Add(time.Duration(n) * interval)
		evs = append(evs, s.observe(fail("login", "eu", at, "password", probes.ClassHTTPStatus), at)...)
	}
	if len(s.incs) != 0 || count(evs, KindSuppressed) != 1 {
		t.Fatalf("incidents %d, events %v; want none and one suppressed", len(s.incs), kinds(evs))
	}
	// A failure that reaches a component not under maintenance opens, on that component only.
	at := t0.Add(6 * interval)
	s.observe(fail("login", "eu", at, "totp", probes.ClassHTTPStatus), at)
	at = t0.Add(7 * interval)
	s.observe(fail("login", "eu", at, "totp", probes.ClassHTTPStatus), at)
	// Security evidence is never suppressed.
	s2 := newSim(t, Policy{})
	s2.maint = []string{"Login"}
	for n := range 2 {
		at := t0.Add(time.Duration(n) * interval)
		s2.observe(fail("login", "eu", at, "password", probes.ClassSecurityCheck, probes.SignalSecondStepSkipped), at)
	}
	if len(s2.open()) != 1 || s2.open()[0].Classification != Security {
		t.Fatalf("a security failure during maintenance was suppressed")
	}
}

func TestLatencyDegradesComponents(t *testing.T) {
	s := newSim(t, Policy{})
	var evs []Event
	for n := range 2 {
		at := t0.Add(time.Duration(n) * interval)
		evs = append(evs, s.observe(slow("login", "eu", at), at)...)
	}
	if count(evs, KindLatencyDegraded) != 1 || len(s.incs) != 0 {
		t.Fatalf("events %v", kinds(evs))
	}
	if got := s.states["login"].SlowComponents; !slices.Equal(got, []string{"Login"}) {
		t.Errorf("slow components %v, want Login (the password step was slow)", got)
	}
	evs = nil
	for n := 2; n < 5; n++ {
		at := t0.Add(time.Duration(n) * interval)
		evs = append(evs, s.observe(ok("login", "eu", at), at)...)
	}
	if count(evs, KindLatencyRecovered) != 1 || len(s.states["login"].SlowComponents) != 0 {
		t.Fatalf("events %v, want latency_recovered", kinds(evs))
	}
}

func TestReminders(t *testing.T) {
	s := newSim(t, Policy{})
	for n := range 2 {
		at := t0.Add(time.Duration(n) * interval)
		s.observe(fail("login", "eu", at, "password", probes.ClassHTTPStatus), at)
	}
	published := s.incs[1].LastPublicAt
	if evs := s.tick(published.Add(29 * time.Minute)); count(evs, KindReminderDue) != 0 {
		t.Fatalf("reminder before the cadence")
	}
	if evs := s.tick(published.Add(30 * time.Minute)); count(evs, KindReminderDue) != 1 {
		t.Fatalf("no reminder at the cadence")
	}
	if evs := s.tick(published.Add(45 * time.Minute)); count(evs, KindReminderDue) != 0 {
		t.Fatalf("reminder repeated before the next cadence")
	}
	if evs := s.tick(published.Add(60 * time.Minute)); count(evs, KindReminderDue) != 1 {
		t.Fatalf("no reminder at the second cadence")
	}
	s.person(1, StatusIdentified, published.Add(70*time.Minute))
	if evs := s.tick(published.Add(95 * time.Minute)); count(evs, KindReminderDue) != 0 {
		t.Fatalf("reminder 25 minutes after a public update")
	}
	if evs := s.tick(published.Add(100 * time.Minute)); count(evs, KindReminderDue) != 1 {
		t.Fatalf("no reminder a cadence after the last public update")
	}
	s.person(1, StatusResolved, published.Add(101*time.Minute))
	if evs := s.tick(published.Add(200 * time.Minute)); count(evs, KindReminderDue) != 0 {
		t.Fatalf("reminder for a resolved incident")
	}
}

func TestClassificationEvidence(t *testing.T) {
	sec := fail("login", "eu", t0, "wrong_code", probes.ClassSecurityCheck, probes.SignalWrongCodeAccepted)
	for _, tc := range []struct {
		name string
		runs []probes.Result
		want Classification
	}{
		{"none", nil, Undetermined},
		{"timeout", []probes.Result{fail("login", "eu", t0, "password", probes.ClassTimeout)}, NonSecurity},
		{"http status", []probes.Result{fail("login", "eu", t0, "password", probes.ClassHTTPStatus)}, NonSecurity},
		{"clock skew", []probes.Result{fail("login", "eu", t0, "totp", probes.ClassTOTPRejected)}, NonSecurity},
		{"slow", []probes.Result{slow("login", "eu", t0)}, NonSecurity},
		{"assertion", []probes.Result{fail("login", "eu", t0, "password", probes.ClassAssertion)}, Undetermined},
		{"tls without a signal", []probes.Result{fail("login", "eu", t0, "tls", probes.ClassTLS)}, Undetermined},
		{"tls signal", []probes.Result{fail("login", "eu", t0, "tls", probes.ClassTLS, probes.SignalTLSInvalid)}, Security},
		{"signal wins", []probes.Result{fail("login", "eu", t0, "password", probes.ClassTimeout), sec}, Security},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev []Evidence
			for _, r := range tc.runs {
				ev = append(ev, evidenceOf(r))
			}
			if got := Classify(ev); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}

	// A person's confirmation stands against undetermined evidence, not against a signal.
	inc := Incident{ID: 1, Classification: NonSecurity, Confirmed: true}
	if evs := classificationEvents(inc, []Evidence{evidenceOf(fail("login", "eu", t0, "password", probes.ClassAssertion))}, "x", t0); len(evs) != 0 {
		t.Errorf("undetermined evidence overrode a confirmation: %+v", evs)
	}
	evs := classificationEvents(inc, []Evidence{evidenceOf(sec)}, "x", t0)
	if len(evs) != 1 || evs[0].To != string(Security) || evs[0].Confirmed {
		t.Errorf("a security signal did not override the confirmation: %+v", evs)
	}
	if got := Apply(inc, evs[0]); got.Classification != Security || got.Confirmed {
		t.Errorf("applied: %s confirmed=%v", got.Classification, got.Confirmed)
	}
}

func TestLateAndBackwardsResults(t *testing.T) {
	s := newSim(t, Policy{})
	s.observe(fail("login", "eu", t0.Add(interval), "password", probes.ClassHTTPStatus), t0.Add(interval))
	// A late result from before the last one is ignored, so it cannot complete a streak.
	s.observe(fail("login", "eu", t0, "password", probes.ClassHTTPStatus), t0.Add(2*interval))
	if len(s.incs) != 0 {
		t.Fatalf("a late result opened an incident")
	}
	// The clock jumped back an hour: start afresh instead of ignoring everything.
	back := t0.Add(-time.Hour)
	s.observe(fail("login", "eu", back, "password", probes.ClassHTTPStatus), back)
	s.observe(fail("login", "eu", back.Add(interval), "password", probes.ClassHTTPStatus), back.Add(interval))
	if len(s.open()) != 1 {
		t.Fatalf("got %d open after the clock went back, want 1", len(s.open()))
	}
	if inc := s.open()[0]; inc.DetectedAt.Before(inc.StartedAt) {
		t.Errorf("detected %v before it started %v", inc.DetectedAt, inc.StartedAt)
	}
}

func TestValidTransition(t *testing.T) {
	for _, tc := range []struct {
		from, to Status
		ok       bool
	}{
		{StatusInvestigating, StatusInvestigating, true},
		{StatusInvestigating, StatusIdentified, true},
		{StatusIdentified, StatusMonitoring, true},
		{StatusMonitoring, StatusInvestigating, true},
		{StatusMonitoring, StatusResolved, true},
		{StatusResolved, StatusInvestigating, true},
		{StatusResolved, StatusResolved, false},
		{StatusInvestigating, StatusPostmortem, false},
		{StatusResolved, StatusPostmortem, true},
		{StatusPostmortem, StatusInvestigating, false},
		{StatusInvestigating, "fixed", false},
	} {
		if err := ValidTransition(tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("%s → %s: got %v, want ok=%v", tc.from, tc.to, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		from, to MaintenanceStatus
		ok       bool
	}{
		{MaintenanceScheduled, MaintenanceInProgress, true},
		{MaintenanceInProgress, MaintenanceVerifying, true},
		{MaintenanceVerifying, MaintenanceCompleted, true},
		{MaintenanceScheduled, MaintenanceCompleted, true},
		{MaintenanceCompleted, MaintenanceInProgress, false},
		{MaintenanceScheduled, MaintenanceVerifying, false},
		{MaintenanceScheduled, "done", false},
	} {
		if err := ValidMaintenanceTransition(tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("%s → %s: got %v, want ok=%v", tc.from, tc.to, err, tc.ok)
		}
	}
}

// dashboardDown is the demo's "error at dashboard": /dashboard answers 500,
// which the login probes see at their dashboard steps (Dashboard) and the
// security probe at protected_page (Two-step authentication), where it
// expected a redirect to the second step.
func dashboardDown(p, l string, at time.Time) probes.Result {
	step := "dashboard"
	if p == "login-security" {
		step = "protected_page"
	}
	return fail(p, l, at, step, probes.ClassHTTPStatus)
}

func TestFailuresThatBeginTogetherAreOneIncident(t *testing.T) {
	s := newSim(t, Policy{})
	for n := 4; n < 8; n++ {
		s.round(n, twoLocs, dashboardDown)
	}
	if len(s.incs) != 1 {
		t.Fatalf("one fault opened %d incidents, want 1: %+v", len(s.incs), s.incs)
	}
	inc := s.open()[0]
	if !slices.Equal(inc.Components, []string{"Two-step authentication", "Dashboard"}) && !slices.Equal(inc.Components, []string{"Dashboard", "Two-step authentication"}) {
		t.Errorf("components %v, want Dashboard and Two-step authentication", inc.Components)
	}
	if inc.Classification != NonSecurity || len(inc.Probes) != 3 {
		t.Errorf("classification %s probes %v", inc.Classification, inc.Probes)
	}
	var why string
	for _, e := range s.log {
		if strings.Contains(e.Reason, "correlate_within") {
			why = e.Reason
		}
	}
	if !strings.Contains(why, "apart from this incident's first failure") {
		t.Errorf("the join does not say why; reasons in the log: %v", reasons(s.log))
	}
}

func TestFailuresThatBeginApartOrDifferAreSeparateIncidents(t *testing.T) {
	// The login probes fail at the dashboard from round 4; the security
	// probe starts failing ten minutes later, with a security signal: apart
	// in time and in classification.
	late := func(p, l string, at time.Time) probes.Result {
		if p == "login-security" {
			if at.Before(t0.Add(4*interval + 10*time.Minute)) {
				return probes.Result{}
			}
			r := fail(p, l, at, "protected_page", probes.ClassSecurityCheck)
			r.Signals = []probes.Signal{probes.SignalSecondStepSkipped}
			return r
		}
		return dashboardDown(p, l, at)
	}
	s := newSim(t, Policy{})
	for n := 4; n < 4+50; n++ {
		s.round(n, twoLocs, late)
	}
	if len(s.incs) != 2 {
		t.Fatalf("%d incidents, want 2", len(s.incs))
	}
	// Off: the same simultaneous fault as above opens one per component.
	off := config.Dur(0)
	s = newSim(t, Policy{CorrelateWithin: &off})
	for n := 4; n < 8; n++ {
		s.round(n, twoLocs, dashboardDown)
	}
	if len(s.incs) != 2 {
		t.Fatalf("with correlate_within 0, %d incidents, want 2", len(s.incs))
	}
}

func reasons(evs []Event) []string {
	var out []string
	for _, e := range evs {
		if e.Reason != "" {
			out = append(out, string(e.Kind)+": "+e.Reason)
		}
	}
	return out
}

func TestLateResultsAreRecordedAtTheirRunsEnd(t *testing.T) {
	now := t0.Add(time.Hour)
	r := probes.Result{Probe: "login", Location: "eu-west", Start: now.Add(-10 * time.Minute), Duration: 2 * time.Second}
	st := ProbeState{Locations: map[string]LocationState{"eu-west": {LastAt: now.Add(-20 * time.Minute)}}}
	if got, want := appliedAt(r, st, now), r.Start.Add(r.Duration); !got.Equal(want) {
		t.Errorf("a result kept ten minutes is recorded at %s, want its end %s", got, want)
	}
	fresh := r
	fresh.Start = now.Add(-time.Second)
	if got := appliedAt(fresh, st, now); !got.Equal(now) {
		t.Errorf("a result just taken is recorded at %s, want now", got)
	}
	st.Locations["us-east"] = LocationState{LastAt: now.Add(-5 * time.Minute)}
	if got := appliedAt(r, st, now); !got.Equal(now) {
		t.Errorf("a late result older than what is recorded is stamped %s, want now (the probe's history stays in order)", got)
	}
}
