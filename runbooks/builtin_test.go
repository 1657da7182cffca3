package runbooks

import (
	"fmt"
	"regexp"
	"slices"
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
	want := []string{"login-events-down", "login-password-step", "long-outage-communication", "probe-account-problem",
		"recovery-code-failing", "remembered-device-failing", "signed-in-pages-failing",
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
		// A built-in fits any configuration: it matches on what a failure
		// means, never on the names one configuration gave its probes.
		if m := rb.Match; len(m.Steps)+len(m.Probes)+len(m.Components)+len(m.MessageContains) > 0 {
			t.Errorf("%s matches on names or message text (%+v): built-ins match on roles, error classes and classification only", rb.ID, m)
		}
		// Customers are not told of a probe problem: its runbook has nothing
		// for them.
		if probeProblemsOnly(rb.Match.ErrorClasses) {
			if len(rb.Templates) > 0 {
				t.Errorf("%s is for probe problems but has %d templates for customers", rb.ID, len(rb.Templates))
			}
			continue
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

// The first public update of a failure right after the password is what
// customers saw first in the real eleven-hour outage: check it word for word
// where it matters, for a configuration whose names are not the demo's.
func TestAfterPasswordFirstUpdate(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	q := Query{Probes: []string{"api-login"}, Steps: []string{"authenticate"}, Roles: []string{"password"},
		ErrorClasses: []string{"http_status"}, Components: []string{"Accounts"}, Classification: NonSecurity,
		Messages: []string{"authenticate: answered 401 'Authentication failed' after 5.02 s; usually 0.9 s"}}
	m, tp, ok := BestTemplate(Match(set, q), FirstUpdate, NonSecurity)
	if !ok || m.ID != "login-events-down" {
		t.Fatalf("BestTemplate = %s, %v; want login-events-down", m.ID, ok)
	}
	in := eventsOutage(NonSecurity, false, false)
	in.Components, in.Probe, in.Step, in.Role = []string{"Accounts"}, "api-login", "authenticate", "password"
	out, err := tp.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"Since 2025-03-04 08:12 UTC, customers cannot sign in",
		"after the password is entered",
		"Affected: Accounts.",
		"We have no indication that this is a security incident.",
		"within 30m at https://status.example.com/incidents/inc_7",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("first update lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"authenticate", "api-login", "http_status", "internal service", "traced", "events"} {
		if strings.Contains(flat, bad) {
			t.Errorf("first update says %q:\n%s", bad, out)
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

// TestBuiltinTemplatesFitAnyConfiguration renders every built-in template
// for incidents of a configuration unlike the demo (other component, probe,
// step and location names, a JSON API with or without recovery codes), for
// each role and error class the runbook is for, each classification,
// confirmed and not: what customers read names none of the configuration's
// internal names, no error class or role, and advises recovery codes only
// where the target offers them.
func TestBuiltinTemplatesFitAnyConfiguration(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	internal := []string{"api-login", "authenticate", "verify-otp", "fra1", "ams3"}
	internal = append(internal, errorClasses...)
	internal = append(internal, roles...)
	word := func(w string) *regexp.Regexp {
		return regexp.MustCompile(`(?i)(^|[^\w-])` + regexp.QuoteMeta(w) + `($|[^\w-])`)
	}
	// Names that are also plain English: only a step-like use of them counts.
	plain := map[string]bool{"dns": true, "connect": true, "tls": true, "timeout": true, "assertion": true,
		"extraction": true, "password": true, "logout": true, "other": true}
	recovery := regexp.MustCompile(`(?i)recovery\s+codes?`)
	stepLike := regexp.MustCompile(`(?i)\bat the [\w-]+ step\b|\bour checks\b|\bprobes?\b`)
	renders := 0
	for _, rb := range set {
		rolesOf := append([]string{""}, rb.Match.Roles...)
		if len(rb.Match.Roles) == 0 {
			rolesOf = append([]string{""}, roles...)
		}
		classesOf := append([]string{""}, rb.Match.ErrorClasses...)
		if len(rb.Match.ErrorClasses) == 0 {
			classesOf = []string{"", "http_status", "timeout", "totp_rejected", "tls", "cert_expired", "security_check"}
		}
		for _, tp := range rb.Templates {
			// Vary only what the template reads: the rest renders the same.
			rolesOf, classesOf := rolesOf, classesOf
			if !strings.Contains(tp.Text, ".Role") {
				rolesOf = rolesOf[:1]
				if slices.Contains(rb.Match.Roles, "recovery_code") {
					rolesOf = []string{"recovery_code"}
				}
			}
			if !strings.Contains(tp.Text, ".ErrorClass") {
				classesOf = classesOf[:1]
			}
			resolved := tp.Name == Resolution || tp.Name == PostIncidentSummary
			classifications := []string{tp.Classification}
			if tp.Classification == Security {
				classifications = append(classifications, "undetermined")
			}
			for _, class := range classifications {
				for _, role := range rolesOf {
					for _, ec := range classesOf {
						for _, rc := range []bool{false, true} {
							if role == "recovery_code" && !rc {
								continue // a recovery code fails only where the target offers them
							}
							for _, confirmed := range []bool{false, true} {
								in := eventsOutage(class, resolved, confirmed)
								in.Components = []string{"Accounts", "SSO"}
								in.Probe, in.Step, in.Role, in.ErrorClass = "api-login", "verify-otp", role, ec
								if role == "password" || role == "login_page" {
									in.Step = "authenticate"
								}
								in.Locations, in.RecoveryCodes = []string{"fra1", "ams3"}, rc
								out, err := tp.Render(in)
								where := fmt.Sprintf("%s %s (%s) for class %s, role %q, error class %q, recovery codes %v, confirmed %v",
									rb.ID, tp.Name, tp.Classification, class, role, ec, rc, confirmed)
								renders++
								if err != nil {
									t.Errorf("%s: %v", where, err)
									continue
								}
								if strings.TrimSpace(out) == "" {
									t.Errorf("%s rendered nothing", where)
								}
								for _, name := range internal {
									if plain[name] {
										continue
									}
									if word(name).MatchString(out) {
										t.Errorf("%s names %q:\n%s", where, name, out)
									}
								}
								if s := stepLike.FindString(out); s != "" {
									t.Errorf("%s speaks of steps or probes (%q):\n%s", where, s, out)
								}
								if !rc {
									if s := recovery.FindString(out); s != "" {
										t.Errorf("%s advises %q but the target offers no recovery codes:\n%s", where, s, out)
									}
								}
								if tp.Name == FirstUpdate && tp.Classification == NonSecurity {
									if phs := Placeholders(out); len(phs) > 0 {
										t.Errorf("%s is published automatically but leaves %q:\n%s", where, phs, out)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	if renders < 500 {
		t.Errorf("rendered %d variants; the loops lost their way", renders)
	}
}
