package runbooks

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestBuiltinsLintClean(t *testing.T) {
	for _, p := range Lint("", Known{}) {
		t.Errorf("%s", p)
	}
	// The built-ins are not checked against a configuration, so a config
	// without the demo's names must not make them fail.
	for _, p := range Lint("", Known{Probes: []string{"api-login"}, Steps: []string{"start"}, Components: []string{"Web"}}) {
		t.Errorf("with another configuration: %s", p)
	}
}

func TestBuiltinsAreComplete(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"login-events-down", "login-password-step", "long-outage-communication",
		"suspected-security-incident", "tls-certificate", "two-step-failing"}
	var got []string
	for _, rb := range set {
		got = append(got, rb.ID)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("built-in ids = %v, want %v", got, want)
	}
	for _, rb := range set {
		if len(rb.Steps) < 5 {
			t.Errorf("%s has %d steps; a useful runbook has at least 5", rb.ID, len(rb.Steps))
		}
		if rb.Summary == "" || rb.Owner == "" || !strings.HasPrefix(rb.Source, "builtin/") {
			t.Errorf("%s: summary %q, owner %q, source %q", rb.ID, rb.Summary, rb.Owner, rb.Source)
		}
		for _, name := range TemplateNames {
			for _, class := range []string{Security, NonSecurity} {
				if tp, ok := rb.Template(name, class); !ok || tp.Classification != class {
					t.Errorf("%s has no template %s (%s)", rb.ID, name, class)
				}
			}
		}
	}
}

// eventsOutage is the real eleven-hour outage as an incident would describe it,
// with times in a non-UTC zone to show that templates print UTC.
func eventsOutage(class string, resolved, confirmed bool) Incident {
	auckland := time.FixedZone("NZDT", 13*3600)
	start := time.Date(2025, 3, 4, 21, 12, 30, 0, auckland) // 08:12:30 UTC
	in := Incident{
		ID: "inc_7", Title: "Customers cannot log in", Status: "investigating",
		Components: []string{"Login"}, Probe: "login", Step: "password", ErrorClass: "http_status",
		Classification: class, Confirmed: confirmed,
		StartedAt: start, DetectedAt: start.Add(75 * time.Second), Duration: 2*time.Hour + 5*time.Minute,
		Locations: []string{"eu-west", "us-east", "ap-south"}, Cadence: 30 * time.Minute,
		URL: "https://status.example.com/incidents/inc_7",
	}
	if resolved {
		in.Status, in.Duration = "resolved", 10*time.Hour+47*time.Minute
		in.ResolvedAt = start.Add(in.Duration)
	}
	return in
}

var claim = regexp.MustCompile(`(?i)not a security incident|no customer data was compromised`)

func TestBuiltinTemplatesRender(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, rb := range set {
		for _, tp := range rb.Templates {
			resolved := tp.Name == Resolution || tp.Name == PostIncidentSummary
			for _, confirmed := range []bool{false, true} {
				in := eventsOutage(tp.Classification, resolved, confirmed)
				out, err := tp.Render(in)
				if err != nil {
					t.Errorf("%s %s (%s): %v", rb.ID, tp.Name, tp.Classification, err)
					continue
				}
				where := rb.ID + " " + tp.Name + " (" + tp.Classification + ")"
				flat := strings.Join(strings.Fields(out), " ") // phrases may wrap
				if strings.Contains(out, "{{") || strings.Contains(out, "<no value>") || strings.Contains(out, "0001-01-01") {
					t.Errorf("%s rendered a placeholder or zero value:\n%s", where, out)
				}
				if strings.Contains(out, "NZDT") || strings.Contains(out, "21:12") {
					t.Errorf("%s shows local time, want UTC:\n%s", where, out)
				}
				if !strings.Contains(flat, "2025-03-04 08:12 UTC") && !strings.Contains(flat, "2025-03-04 18:59 UTC") {
					t.Errorf("%s names no UTC time of the incident:\n%s", where, out)
				}
				if c := claim.FindString(flat); c != "" && (!confirmed || tp.Classification == Security) {
					t.Errorf("%s says %q (confirmed %v):\n%s", where, c, confirmed, out)
				}
				if tp.Classification == Security && strings.Contains(strings.ToLower(flat), "no indication that this") {
					t.Errorf("%s: a security template must not say there is no indication of a security incident:\n%s", where, out)
				}
				if tp.Classification == NonSecurity && (tp.Name == FirstUpdate || tp.Name == FollowUp) &&
					!strings.Contains(flat, "We have no indication that this is a security incident") {
					t.Errorf("%s does not say plainly that we have no indication of a security incident:\n%s", where, out)
				}
				if tp.Name == FirstUpdate || tp.Name == FollowUp {
					if !strings.Contains(flat, "within 30m") && !strings.Contains(flat, "every 30m") {
						t.Errorf("%s does not promise the next update within the cadence:\n%s", where, out)
					}
				}
				if tp.Name == Resolution && tp.Classification == NonSecurity {
					wantClaim := confirmed
					if got := claim.MatchString(flat); got != wantClaim {
						t.Errorf("%s with confirmed %v: says not a security incident %v, want %v", where, confirmed, got, wantClaim)
					}
				}
			}
		}
	}
}

// The first public update of the events outage is what customers saw first
// in the real incident: check it word for word where it matters.
func TestEventsFirstUpdate(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	q := Query{Probes: []string{"login"}, Steps: []string{"password"}, ErrorClasses: []string{"http_status"},
		Components: []string{"Login"}, Classification: NonSecurity, Messages: []string{"HTTP 503"}}
	m, tp, ok := BestTemplate(Match(set, q), FirstUpdate, NonSecurity)
	if !ok || m.ID != "login-events-down" {
		t.Fatalf("BestTemplate = %s, %v; want login-events-down", m.ID, ok)
	}
	out, err := tp.Render(eventsOutage(NonSecurity, false, false))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Since 2025-03-04 08:12 UTC, customers cannot log in",
		"after the password is entered",
		"Affected: Login.",
		"We have no indication that this is a security incident.",
		"within 30m at https://status.example.com/incidents/inc_7",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("first update lacks %q:\n%s", want, out)
		}
	}
}

func TestSecurityRunbookTellsCustomersWhatToDo(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := set.ByID("suspected-security-incident")
	follow, err := rb.Render(FollowUp, eventsOutage(Security, false, false))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(follow, "do **not** change your password yet") {
		t.Errorf("the security follow-up does not ask to wait with password changes until the fix:\n%s", follow)
	}
	res, err := rb.Render(Resolution, eventsOutage(Security, true, true))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Change your password", "password manager", "two-step authentication"} {
		if !strings.Contains(res, want) {
			t.Errorf("the security resolution lacks %q:\n%s", want, res)
		}
	}
	// An undetermined incident gets the security wording.
	tp, ok := rb.Template(FirstUpdate, "undetermined")
	if !ok || tp.Classification != Security {
		t.Errorf("Template(first_update, undetermined) = %s, %v; want the security one", tp.Classification, ok)
	}
}
