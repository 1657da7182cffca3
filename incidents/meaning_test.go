package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/probes"
)

// A configuration unlike the demo: other component, probe, step and
// location names; components mapped by role only.
func unlikeComponents() []Component {
	return []Component{
		{Name: "Account access", Roles: []string{"login_page", "password", "logout", "remembered_device"}},
		{Name: "Verification", Roles: []string{"second_factor", "recovery_code"}},
		{Name: "Customer portal", Roles: []string{"signed_in"}},
		{Name: "Everything else", Probes: []string{"acme-sso", "acme-api"}},
	}
}

var unlikeLocs = []string{"fra1", "sfo2"}

// unlikeSteps names, per role, the step of the form-login probe and of the
// JSON API probe.
var unlikeSteps = map[probes.Role][2]string{
	probes.RoleLoginPage:        {"fetch_form", "get_csrf"},
	probes.RolePassword:         {"submit_creds", "post_session"},
	probes.RoleSecondFactor:     {"mfa_form", "post_otp"},
	probes.RoleRecoveryCode:     {"backup_code", "post_backup"},
	probes.RoleRememberedDevice: {"trusted_browser", "trusted_token"},
	probes.RoleSignedIn:         {"home", "get_me"},
	probes.RoleLogout:           {"sign_off", "delete_session"},
	probes.RoleOther:            {"misc", "healthz"},
}

func newSimWith(t testing.TB, comps []Component, pol Policy) *sim {
	s := newSim(t, pol)
	s.d = NewDetector(comps, pol)
	return s
}

func failAt(probe, loc string, at time.Time, step string, role probes.Role, class probes.ErrorClass, signals ...probes.Signal) probes.Result {
	r := fail(probe, loc, at, step, class, signals...)
	r.FailedRole = role
	r.Message = "step \"" + step + "\" (POST /v1/x): answered 401 'Authentication failed' after 5.02 s; usually 0.9 s"
	return r
}

// drive runs probe in every location of locs for rounds [from, to), failing
// with mk (nil: ok), and returns the events.
func (s *sim) drive(probe string, locs []string, from, to int, mk func(loc string, at time.Time) probes.Result) []Event {
	var all []Event
	for n := from; n < to; n++ {
		for i, l := range locs {
			at := t0.Add(time.Duration(n)*interval + time.Duration(i)*time.Second)
			r := ok(probe, l, at)
			if mk != nil {
				r = mk(l, at)
			}
			all = append(all, s.observe(r, at)...)
		}
	}
	return all
}

// publicTexts returns the public update messages in events, and the titles
// of the incidents they publish.
func publicTexts(evs []Event) []string {
	public := map[int64]bool{}
	for _, e := range evs {
		if e.Kind == KindUpdatePosted && e.Extra["visibility"] == string(Public) {
			public[e.Incident] = true
		}
	}
	var out []string
	for _, e := range evs {
		if e.Title != "" && public[e.Incident] {
			out = append(out, e.Title)
		}
		if e.Kind == KindUpdatePosted && e.Extra["visibility"] == string(Public) {
			out = append(out, e.Extra["message"].(string))
		}
	}
	return out
}

var classNames = []probes.ErrorClass{probes.ClassDNS, probes.ClassConnect, probes.ClassTLS, probes.ClassTimeout,
	probes.ClassHTTPStatus, probes.ClassAssertion, probes.ClassExtraction, probes.ClassTOTPRejected,
	probes.ClassSecurityCheck, probes.ClassCertExpired, probes.ClassRateLimited, probes.ClassCodeWindowTaken}

// internalName returns the first internal name (step, probe, location, error
// class) text names, or "".
func internalName(text string, names []string) string {
	for _, n := range names {
		if regexp.MustCompile(`(?i)(^|[^\pL\pN_-])` + regexp.QuoteMeta(n) + `($|[^\pL\pN_-])`).MatchString(text) {
			return n
		}
	}
	return ""
}

// Every built-in automatic text (title, first update, monitoring,
// resolution), for every role, with and without recovery codes, for a form
// login and a JSON API configured unlike the demo, names no step, probe,
// location or error class, and advises recovery codes only when the target
// offers them and the two-step code is what fails.
func TestBuiltInTextsNameNothingInternal(t *testing.T) {
	type shape struct {
		probe string
		idx   int
		class probes.ErrorClass
	}
	shapes := []shape{{"acme-sso", 0, probes.ClassHTTPStatus}, {"acme-api", 1, probes.ClassHTTPStatus},
		{"acme-api", 1, probes.ClassTimeout}, {"acme-sso", 0, probes.ClassTOTPRejected}}
	var names []string
	for _, st := range unlikeSteps {
		names = append(names, st[0], st[1])
	}
	names = append(names, "acme-sso", "acme-api", "fra1", "sfo2")
	for _, c := range classNames {
		names = append(names, string(c))
	}
	for _, recovery := range []bool{false, true} {
		for _, role := range probes.Roles {
			for _, sh := range shapes {
				name := string(role) + "/" + sh.probe + "/" + string(sh.class)
				if recovery {
					name += "/recovery"
				}
				t.Run(name, func(t *testing.T) {
					s := newSimWith(t, unlikeComponents(), Policy{RecoveryCodes: &recovery})
					step := unlikeSteps[role][sh.idx]
					var evs []Event
					evs = append(evs, s.drive(sh.probe, unlikeLocs, 0, 2, func(l string, at time.Time) probes.Result {
						return failAt(sh.probe, l, at, step, role, sh.class)
					})...)
					evs = append(evs, s.drive(sh.probe, unlikeLocs, 2, 5, nil)...)
					evs = append(evs, s.tick(t0.Add(time.Hour))...)
					texts := publicTexts(evs)
					var msgs []string
					for _, e := range evs {
						if e.Kind == KindUpdatePosted {
							msgs = append(msgs, e.To)
						}
					}
					if !slices.Equal(msgs, []string{"investigating", "monitoring", "resolved"}) {
						t.Fatalf("public updates %v, want investigating, monitoring and resolved", msgs)
					}
					for _, text := range texts {
						if n := internalName(text, names); n != "" {
							t.Errorf("public text names %q:\n%s", n, text)
						}
						if claim := unconfirmedClaim(text); claim != "" {
							t.Errorf("public text claims %q:\n%s", claim, text)
						}
					}
					all := strings.Join(texts, "\n")
					advises := strings.Contains(all, "recovery codes")
					if want := recovery && role == probes.RoleSecondFactor; advises != want {
						t.Errorf("recovery-code advice %v, want %v:\n%s", advises, want, all)
					}
					if words := wordsByRole[role]; !strings.Contains(all, words.problem) || !strings.Contains(all, sentence(words.recovered)) {
						t.Errorf("texts do not say %q and %q:\n%s", words.problem, words.recovered, all)
					}
					if !strings.Contains(all, "Between 2025-03-04 08:00 UTC and 2025-03-04 08:01 UTC (1m)") || !strings.Contains(all, "This incident is resolved.") {
						t.Errorf("the resolution does not give the duration:\n%s", all)
					}
				})
			}
		}
	}
}

func TestComponentsFollowRoles(t *testing.T) {
	m := newComponentMap(append(unlikeComponents(), Component{Name: "Named step", Steps: []string{"acme-sso/home"}}))
	for _, tc := range []struct {
		probe, step, role string
		want              []string
	}{
		{"acme-sso", "mfa_form", "second_factor", []string{"Verification"}},
		{"anything", "whatever", "password", []string{"Account access"}},
		{"acme-sso", "home", "signed_in", []string{"Customer portal", "Named step"}},
		{"acme-api", "healthz", "other", []string{"Everything else"}},
		{"unknown", "x", "", nil},
	} {
		if got := m.forStep(tc.probe, tc.step, tc.role); !slices.Equal(got, tc.want) {
			t.Errorf("%s/%s (%s): got %v, want %v", tc.probe, tc.step, tc.role, got, tc.want)
		}
	}
}

// The demo scenario of the issue: skip_2sa while a public events_down
// incident is in monitoring.
func TestSecurityDuringPublicMonitoringOpensItsOwn(t *testing.T) {
	s := newSim(t, Policy{})
	s.round(0, twoLocs, nil)
	s.round(1, twoLocs, eventsDown)
	s.round(2, twoLocs, eventsDown)
	for n := 3; n < 6; n++ {
		s.round(n, twoLocs, nil)
	}
	pub := s.incs[1]
	if pub.Status != StatusMonitoring || !pub.Public || pub.Classification != NonSecurity {
		t.Fatalf("events_down incident %s public=%v %s, want public non_security in monitoring", pub.Status, pub.Public, pub.Classification)
	}
	publicBefore := publicTexts(s.log)
	skip2SA := func(p, l string, at time.Time) probes.Result {
		switch p {
		case "login-remembered":
			return fail(p, l, at, "password", probes.ClassAssertion)
		default:
			return fail(p, l, at, "password", probes.ClassSecurityCheck, probes.SignalSecondStepSkipped)
		}
	}
	from := len(s.log)
	for n := 6; n < 9; n++ {
		s.round(n, twoLocs, skip2SA)
	}
	during := s.log[from:]
	if got := s.incs[1]; got.Classification != NonSecurity || got.Status != StatusMonitoring || got.ComponentState["Login"] != Operational {
		t.Errorf("the public incident became %s %s, Login %s; want it unchanged", got.Classification, got.Status, got.ComponentState["Login"])
	}
	if got := publicTexts(during); len(got) != 0 {
		t.Errorf("public texts during the security fault: %q", got)
	}
	if got := publicTexts(s.log[:from]); !slices.Equal(got, publicBefore) {
		t.Errorf("public texts changed")
	}
	var sec []Incident
	for _, inc := range s.open() {
		if inc.ID != 1 {
			sec = append(sec, inc)
		}
	}
	if len(sec) == 0 || sec[0].Classification != Security || sec[0].Public {
		t.Fatalf("no private security incident of its own: %+v", sec)
	}
	for _, inc := range sec {
		for c, st := range inc.ComponentState {
			if st == MajorOutage && inc.Classification == Security {
				t.Errorf("security incident %d puts %s in %s; logins work", inc.ID, c, st)
			}
		}
	}
	for _, e := range during {
		if e.Incident == 1 && e.Kind != KindProbeRecovered {
			t.Errorf("the public incident got %s: %s", e.Kind, e.Reason)
		}
	}
	// The fault clears: the events_down incident resolves; the security
	// incident (and any undetermined one) waits in monitoring for a person.
	for n := 9; n < 12; n++ {
		s.round(n, twoLocs, nil)
	}
	var reminded bool
	for _, at := range []time.Duration{time.Hour, 2 * time.Hour, 5 * time.Hour} {
		for _, e := range s.tick(t0.Add(at)) {
			if e.Kind == KindReminderDue && e.Incident != 1 && strings.Contains(e.Reason, "never resolved automatically") {
				reminded = true
			}
		}
	}
	if got := s.incs[1].Status; got != StatusResolved {
		t.Errorf("events_down incident %s, want resolved", got)
	}
	for _, inc := range sec {
		if got := s.incs[inc.ID]; got.Status != StatusMonitoring {
			t.Errorf("%s incident %d is %s, want monitoring until a person acts", got.Classification, inc.ID, got.Status)
		}
	}
	if !reminded {
		t.Errorf("on-call was not reminded of the security incident waiting in monitoring")
	}
	// The security fault returns: its incident is investigated again, and
	// still no component is put in an outage for it.
	for n := 1300; n < 1303; n++ {
		s.round(n, twoLocs, skip2SA)
	}
	for _, inc := range sec {
		got := s.incs[inc.ID]
		if got.Classification == Security && got.Status != StatusInvestigating {
			t.Errorf("security incident %d is %s after the fault returned, want investigating", got.ID, got.Status)
		}
		for c, st := range got.ComponentState {
			if got.Classification == Security && st != Operational {
				t.Errorf("security incident %d puts %s in %s", got.ID, c, st)
			}
		}
	}
}

func TestProbeProblemsStayWithOnCall(t *testing.T) {
	for _, class := range []probes.ErrorClass{probes.ClassRateLimited, probes.ClassCodeWindowTaken} {
		t.Run(string(class), func(t *testing.T) {
			s := newSim(t, Policy{})
			// The target answers every request 429 (or every code window is taken).
			for n := range 6 {
				s.round(n, twoLocs, func(p, l string, at time.Time) probes.Result {
					return fail(p, l, at, "login_page", class)
				})
			}
			if len(s.incs) == 0 {
				t.Fatal("on-call heard nothing")
			}
			if got := publicTexts(s.log); len(got) > 0 && count(s.log, KindUpdatePosted) > 0 {
				t.Errorf("public updates: %q", got)
			}
			for _, inc := range s.incs {
				if inc.Public || inc.Classification == NonSecurity {
					t.Errorf("incident %d public=%v %s", inc.ID, inc.Public, inc.Classification)
				}
				for c, st := range inc.ComponentState {
					if st != Operational {
						t.Errorf("incident %d moves %s to %s", inc.ID, c, st)
					}
				}
			}
			for _, e := range s.log {
				if e.Kind == KindDetected && !strings.Contains(e.Extra["publication"].(string), "customers were not told") {
					t.Errorf("the detected event does not say customers were not told: %v", e.Extra)
				}
			}
		})
	}
	// Other evidence shows customers affected: that is published.
	s := newSim(t, Policy{})
	for n := range 2 {
		for i, l := range twoLocs {
			at := t0.Add(time.Duration(n)*interval + time.Duration(i)*time.Second)
			r := fail("login", l, at, "totp", probes.ClassRateLimited)
			if l == "us-east" {
				r = fail("login", l, at, "totp", probes.ClassHTTPStatus)
			}
			s.observe(r, at)
		}
	}
	if open := s.open(); len(open) != 1 || !open[0].Public || open[0].Classification != NonSecurity {
		t.Fatalf("a 500 in one location and a rate limit in the other: %+v", open)
	}
	// A probe problem while a public incident is open raises nothing.
	at := t0.Add(2 * interval)
	s.observe(fail("login", "us-east", at, "totp", probes.ClassRateLimited), at)
	if got := s.open()[0].Classification; got != NonSecurity {
		t.Errorf("a rate limit raised the incident to %s", got)
	}
}

func TestExpiredCertificateIsAPublicOutage(t *testing.T) {
	s := newSimWith(t, unlikeComponents(), Policy{})
	notAfter := time.Date(2025, 3, 3, 23, 59, 0, 0, time.UTC)
	s.drive("acme-api", unlikeLocs, 0, 2, func(l string, at time.Time) probes.Result {
		r := failAt("acme-api", l, at, "tls", probes.RoleLoginPage, probes.ClassCertExpired, probes.SignalTLSInvalid)
		r.CertNotAfter = &notAfter
		return r
	})
	open := s.open()
	if len(open) != 1 || open[0].Classification != NonSecurity || !open[0].Public || open[0].ComponentState["Account access"] != MajorOutage {
		t.Fatalf("want one public non-security outage, got %+v", open)
	}
	msg := strings.Join(publicTexts(s.log), "\n")
	if !strings.Contains(msg, "certificate expired on 2025-03-03 23:59 UTC") || !strings.Contains(msg, "secure connections fail") {
		t.Errorf("the first update does not say the certificate expired, and when:\n%s", msg)
	}
}

// Three different faults in a row are three incidents; the same failure
// returning within the cooldown reopens its own.
func TestOnlyTheSameFailureReopens(t *testing.T) {
	zero := config.Dur(0)
	s := newSim(t, Policy{QuietPeriod: &zero})
	a := func(l string, at time.Time) probes.Result {
		return fail("login", l, at, "password", probes.ClassHTTPStatus)
	}
	b := func(l string, at time.Time) probes.Result {
		return fail("login", l, at, "wrong_code", probes.ClassSecurityCheck, probes.SignalWrongCodeAccepted)
	}
	c := func(l string, at time.Time) probes.Result {
		return fail("login", l, at, "dashboard", probes.ClassTimeout)
	}
	s.drive("login", twoLocs, 0, 2, a)
	s.drive("login", twoLocs, 2, 5, nil)
	if got := s.incs[1].Status; got != StatusResolved {
		t.Fatalf("with quiet_period 0, incident 1 is %s after the probes passed, want resolved at once", got)
	}
	s.drive("login", twoLocs, 5, 7, b)
	s.drive("login", twoLocs, 7, 10, nil)
	s.drive("login", twoLocs, 10, 12, c)
	s.drive("login", twoLocs, 12, 15, nil)
	if len(s.incs) != 3 {
		t.Fatalf("three different faults made %d incidents, want 3", len(s.incs))
	}
	for id, want := range map[int64]Classification{1: NonSecurity, 2: Security, 3: NonSecurity} {
		if got := s.incs[id].Classification; got != want {
			t.Errorf("incident %d is %s, want %s", id, got, want)
		}
	}
	if s.incs[2].Public || s.incs[2].Status != StatusMonitoring {
		t.Errorf("security incident public=%v %s, want private, waiting in monitoring", s.incs[2].Public, s.incs[2].Status)
	}
	s.drive("login", twoLocs, 15, 17, a)
	if len(s.incs) != 3 || s.incs[1].Status != StatusInvestigating {
		t.Errorf("the first failure returning within the cooldown: %d incidents, incident 1 %s; want it reopened", len(s.incs), s.incs[1].Status)
	}

	// cooldown: 0 never reopens.
	s = newSim(t, Policy{QuietPeriod: &zero, Cooldown: &zero})
	s.drive("login", twoLocs, 0, 2, a)
	s.drive("login", twoLocs, 2, 5, nil)
	s.drive("login", twoLocs, 5, 7, a)
	if len(s.incs) != 2 {
		t.Errorf("with cooldown 0, %d incidents, want 2", len(s.incs))
	}
}

// An incident customers were told of that gains a security signal all the
// same alerts on-call and says nothing more by itself.
func TestPublicIncidentGainingASecuritySignal(t *testing.T) {
	inc := Incident{ID: 7, Signature: "failure:password:http_status:login", Classification: NonSecurity, Confirmed: true, Public: true,
		Status: StatusInvestigating, Components: []string{"Login"}, FailingProbes: []string{"login"}}
	sec := evidenceOf(fail("login", "eu", t0, "wrong_code", probes.ClassSecurityCheck, probes.SignalWrongCodeAccepted))
	evs := classificationEvents(inc, []Evidence{sec}, "probe:login@eu", t0)
	if len(evs) != 2 || evs[0].To != string(Security) || evs[1].Kind != KindReminderDue || evs[1].Extra["alert"] != AlertPublicNowSecurity {
		t.Fatalf("events %+v, want the classification and an alert to on-call", evs)
	}
	now := Apply(Apply(inc, evs[0]), evs[1])
	d := NewDetector(demoComponents(), Policy{})
	if got := d.leave(now, "login", twoLocs, "probe:login@eu", t0, "passed"); len(got) != 1 || got[0].Kind != KindProbeRecovered {
		t.Errorf("the probes passing again produced %v, want only probe_recovered", kinds(got))
	}
	var tl []TimelineEvent
	for _, e := range evs {
		b, _ := json.Marshal(e)
		tl = append(tl, TimelineEvent{Incident: 7, At: e.At, Kind: e.Kind, Actor: e.Actor, Payload: b})
	}
	draft := d.Policy().CorrectionDraft(now, tl)
	if !strings.Contains(draft, "**Correction:**") || Placeholder(draft) == "" {
		t.Errorf("the correction offered has no placeholder to replace: %q", draft)
	}
	if d.Policy().CorrectionDraft(inc, tl) != "" {
		t.Errorf("a correction offered for a non-security incident")
	}
	if d.Policy().CorrectionDraft(now, tl[:1]) != "" {
		t.Errorf("a correction offered without the alert")
	}
}

func TestPlaceholder(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[One sentence on the cause.]", "[One sentence on the cause.]"},
		{"We fixed it. [What we found, e.g. a full disk.] Sorry.", "[What we found, e.g. a full disk.]"},
		{"Signed, [NAME, DATE]", "[NAME, DATE]"},
		{"Owner: [TBD]", "[TBD]"},
		{"See [our status page](https://status.example.com).", ""},
		{"See [the docs][1].\n\n[1]: https://example.com", ""},
		{"- [ ] check logs\n- [x] restart", ""},
		{"Footnote [1] and [a]", ""},
		{"Code: `[NOT A PLACEHOLDER]`", ""},
		{"```\n[Not this either]\n```", ""},
		{"An unclosed [bracket", ""},
		{"Nested [[Fill this in]]", "[Fill this in]"},
	} {
		if got := Placeholder(tc.text); got != tc.want {
			t.Errorf("Placeholder(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestStoreRefusesPlaceholders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	run(t, s, clk, 0, 2, eventsDown)
	open, err := s.List(ctx, ListFilter{OpenOnly: true})
	if err != nil || len(open) != 1 {
		t.Fatalf("%v %v", open, err)
	}
	before := scalar[int](t, pool, `select count(*) from incident_events`)
	_, err = s.PostUpdate(ctx, open[0].ID, Update{Actor: "person:ada", Status: StatusIdentified,
		Message: "We have found the cause. [One sentence on the cause.] We will post an update within 30 minutes."})
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want FieldErrors", err)
	}
	if e, ok := fe.Field("message"); !ok || !strings.Contains(e.Msg, `replace the placeholder "[One sentence on the cause.]" before posting`) {
		t.Errorf("got %v", fe)
	}
	_, err = s.CreateIncident(ctx, NewIncident{Title: "Billing [NAME]", Message: "Investigating.", Actor: "person:ada"})
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want FieldErrors", err)
	}
	if _, ok := fe.Field("title"); !ok {
		t.Errorf("got %v, want an error on the title", fe)
	}
	if after := scalar[int](t, pool, `select count(*) from incident_events`); after != before {
		t.Errorf("refused updates wrote %d events", after-before)
	}
}

// A target answering every request 429 opens nothing public and leaves the
// public components as they are.
func TestStoreRateLimitedEverywhereIsNotPublic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	run(t, s, clk, 0, 4, func(p, l string, at time.Time) probes.Result {
		return fail(p, l, at, "login_page", probes.ClassRateLimited)
	})
	if got := scalar[int](t, pool, `select count(*) from incidents where not public`); got == 0 {
		t.Errorf("on-call heard nothing")
	}
	if got := scalar[int](t, pool, `select count(*) from incidents where public`); got != 0 {
		t.Errorf("%d public incidents", got)
	}
	if got := scalar[int](t, pool, `select count(*) from outbox where public`); got != 0 {
		t.Errorf("%d public outbox rows", got)
	}
	comps, err := s.Components(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range comps {
		if c.Status != Operational {
			t.Errorf("%s is %s", c.Name, c.Status)
		}
	}
}

func TestCheckRolesAndZeroDurations(t *testing.T) {
	const doc = `components:
  - name: Verification
    roles: [second_factor, mfa]
incidents:
  cooldown: 0s
  quiet_period: 0s
  cadence: 0s
  stale_after: 0s
`
	src, err := config.Parse("candor.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := config.NewChecker(src, func(string) (string, bool) { return "", false })
	var cfg Config
	c.Decode("$.components", &cfg.Components)
	c.Decode("$.incidents", &cfg.Policy)
	Check(c, "$", &cfg, nil)
	got := c.Err()
	if got == nil {
		t.Fatal("no problems found")
	}
	for _, want := range []string{
		`candor.yaml:3:28: component "Verification" names role "mfa", which is not a step role`,
		`candor.yaml:7:12: cadence is 0s; it must be at least 1m0s`,
		`candor.yaml:8:16: stale_after is 0s; it must be at least 10s`,
	} {
		if !strings.Contains(got.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, got)
		}
	}
	for _, field := range []string{"cooldown", "quiet_period"} {
		if strings.Contains(got.Error(), field) {
			t.Errorf("%s is refused:\n%v", field, got)
		}
	}
	if n := strings.Count(got.Error(), "names role"); n != 1 {
		t.Errorf("%d roles refused, want only mfa:\n%v", n, got)
	}
	pol := cfg.Policy.WithDefaults()
	if pol.Cooldown.D != 0 || pol.QuietPeriod.D != 0 {
		t.Errorf("cooldown %s quiet_period %s, want the 0 written", pol.Cooldown.D, pol.QuietPeriod.D)
	}
	if pol := (Policy{}).WithDefaults(); pol.Cooldown.D != DefaultCooldown || pol.QuietPeriod.D != DefaultQuietPeriod {
		t.Errorf("unset: cooldown %s quiet_period %s, want the defaults", pol.Cooldown.D, pol.QuietPeriod.D)
	}
}

// A public incident whose probe now fails in a way only a person can
// explain is raised, on-call is alerted with what the public page says,
// nothing public changes by itself afterwards, and each run is one piece of
// evidence however many events cite it.
func TestStorePublicIncidentRaisedAlertsOnCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	login := func(mk func(l string, at time.Time) probes.Result) func(p, l string, at time.Time) probes.Result {
		return func(p, l string, at time.Time) probes.Result {
			if p != "login" {
				return probes.Result{}
			}
			return mk(l, at)
		}
	}
	run(t, s, clk, 0, 2, login(func(l string, at time.Time) probes.Result {
		return fail("login", l, at, "password", probes.ClassHTTPStatus)
	}))
	open, err := s.List(ctx, ListFilter{OpenOnly: true})
	if err != nil || len(open) != 1 || !open[0].Public {
		t.Fatalf("want one public incident: %+v %v", open, err)
	}
	id := open[0].ID
	first, err := s.Updates(ctx, id, true)
	if err != nil || len(first) != 1 {
		t.Fatalf("updates %+v %v", first, err)
	}
	evs := run(t, s, clk, 2, 3, login(func(l string, at time.Time) probes.Result {
		return fail("login", l, at, "totp", probes.ClassAssertion)
	}))
	var alert *Event
	for i, e := range evs {
		if e.Kind == KindReminderDue && e.Extra["alert"] == AlertPublicNowSecurity {
			alert = &evs[i]
		}
	}
	if alert == nil {
		t.Fatalf("no alert to on-call: %v", kinds(evs))
	}
	if got := alert.Extra["public_page"]; got != first[0].Body {
		t.Errorf("the alert says the public page reads %q, want %q", got, first[0].Body)
	}
	if !strings.Contains(alert.Reason, "We are investigating a problem affecting **Login**") {
		t.Errorf("the alert's reason does not quote the public page: %s", alert.Reason)
	}
	run(t, s, clk, 3, 8, nil)
	inc, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != StatusInvestigating || inc.Classification != Undetermined {
		t.Errorf("incident %s %s, want it left investigating for a person", inc.Status, inc.Classification)
	}
	if ups, _ := s.Updates(ctx, id, true); len(ups) != 1 {
		t.Errorf("%d public updates, want only the first", len(ups))
	}
	// The console offers a correction, which cannot be posted as it is.
	tl, err := s.Timeline(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	draft := s.Policy().CorrectionDraft(inc, tl)
	if draft == "" {
		t.Fatal("no correction offered")
	}
	var fe FieldErrors
	if _, err := s.PostUpdate(ctx, id, Update{Message: draft, Actor: "person:ada"}); !errors.As(err, &fe) {
		t.Errorf("the correction was posted with its placeholder: %v", err)
	}
	fixed := strings.Replace(draft, Placeholder(draft), "Signing in may fail; we will say more soon.", 1)
	if _, err := s.PostUpdate(ctx, id, Update{Message: fixed, Actor: "person:ada"}); err != nil {
		t.Fatal(err)
	}
	tl, _ = s.Timeline(ctx, id)
	if inc, _ := s.Get(ctx, id); s.Policy().CorrectionDraft(inc, tl) != "" {
		t.Errorf("a correction is still offered after a person posted one")
	}
	if got, want := scalar[int](t, pool, `select count(*) from incident_evidence where incident_id = $1`, id),
		scalar[int](t, pool, `select count(distinct (run_at, probe, location)) from incident_evidence where incident_id = $1`, id); got != want {
		t.Errorf("%d evidence rows for %d runs", got, want)
	}
}

// The same fault while the public incident is still being investigated:
// the probes that now raise a security signal leave it for a private
// security incident of their own; the public incident is never classified
// security and says nothing more by itself.
func TestSecurityDuringPublicInvestigationOpensItsOwn(t *testing.T) {
	s := newSim(t, Policy{})
	s.round(0, twoLocs, eventsDown)
	s.round(1, twoLocs, eventsDown)
	if pub := s.incs[1]; !pub.Public || pub.Status != StatusInvestigating {
		t.Fatalf("events_down incident %+v, want public and investigating", pub)
	}
	from := len(s.log)
	skip2SA := func(p, l string, at time.Time) probes.Result {
		if p == "login-remembered" {
			return fail(p, l, at, "password", probes.ClassAssertion)
		}
		return fail(p, l, at, "password", probes.ClassSecurityCheck, probes.SignalSecondStepSkipped)
	}
	for n := 2; n < 6; n++ {
		s.round(n, twoLocs, skip2SA)
	}
	if got := s.incs[1].Classification; got == Security {
		t.Errorf("the public incident was reclassified security")
	}
	for _, e := range s.log[from:] {
		if e.Incident == 1 && e.Kind == KindUpdatePosted {
			t.Errorf("the public incident got an update: %v", e.Extra)
		}
	}
	var sec []Incident
	for _, inc := range s.sorted() {
		if inc.Classification == Security {
			sec = append(sec, inc)
		}
	}
	if len(sec) != 1 || sec[0].ID == 1 || sec[0].Public {
		t.Fatalf("security incidents %+v, want one private one of its own", sec)
	}
	if got := sec[0].ComponentState["Login"]; got != Operational {
		t.Errorf("the security incident puts Login in %s", got)
	}
}

// Placeholder reads whatever people type: it never panics, and what it
// finds is bracketed text found in the input.
func FuzzPlaceholder(f *testing.F) {
	for _, s := range []string{"[One sentence on the cause.]", "[a](b) [NAME, DATE]", "```\n[X Y]\n```", "`[", "[[]]", "[ü Ü]", "\\[Not this]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := Placeholder(s)
		if p != "" && (!strings.Contains(s, p) || p[0] != '[' || p[len(p)-1] != ']') {
			t.Errorf("Placeholder(%q) = %q", s, p)
		}
	})
}
