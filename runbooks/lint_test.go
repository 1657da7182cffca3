package runbooks

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// good is a valid runbook; the lint cases below break one thing in it.
const good = `---
id: ours
title: Our events queue
match:
  probes: [login]
  steps:
    - password
  components: [Login]
  error_classes: [http_status]
  classification: non_security
severity: major
owner: us
links:
  - title: Queue dashboard
    url: https://grafana.example.com/d/queue
---
Summary.

## Steps

1. Check the queue.
   ` + "```" + `
   ## not a heading: inside a code block
   ` + "```" + `
2. Restart the consumers.

## Template: first_update (non_security)

Since {{utc .StartedAt}}, {{with failing .Role}}{{.}}{{else}}signing in fails{{end}}.
We have no indication that this is a security incident.

## Template: resolution (non_security)

Resolved at {{utc .ResolvedAt}} after {{duration .Duration}}.
{{if .Confirmed}}This was not a security incident.{{end}}
`

var demoKnown = Known{
	Probes:     []string{"login", "login-remembered", "login-security"},
	Steps:      []string{"login_page", "password", "totp", "dashboard"},
	Components: []string{"Login", "Two-step authentication", "API", "Dashboard"},
}

func lintOne(t *testing.T, src string) []string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ours.md"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range Lint(dir, demoKnown) {
		got = append(got, strings.TrimPrefix(p.String(), dir+string(filepath.Separator)))
	}
	return got
}

func TestLintGood(t *testing.T) {
	if got := lintOne(t, good); len(got) != 0 {
		t.Fatalf("Lint of a good runbook = %q, want no problems", got)
	}
	rb, err := Parse("ours.md", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(rb.Steps) != 2 || rb.Steps[0].Text != "Check the queue." || !strings.Contains(rb.Steps[0].Detail, "## not a heading") {
		t.Errorf("steps = %#v, want two, the first with its code block", rb.Steps)
	}
	if len(rb.Templates) != 2 || rb.Templates[0].Line != 27 {
		t.Errorf("templates = %d, first at line %d; want 2, first at 27", len(rb.Templates), rb.Templates[0].Line)
	}
}

func TestLintReportsTheLine(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want []string // "ours.md:LINE: message" prefixes, in order
	}{
		{"unknown key", rep("owner: us\n", "owner: us\ncolour: red\n"),
			[]string{`ours.md:13: unknown key "colour"`}},
		{"unknown key in match", rep("  classification: non_security\n", "  classification: non_security\n  locations: [eu]\n"),
			[]string{`ours.md:11: unknown key "locations"`}},
		{"missing title and owner", rep("title: Our events queue\n", "", "owner: us\n", ""),
			[]string{"ours.md:2: title is required", "ours.md:2: owner (the team"}},
		{"bad severity", rep("severity: major", "severity: sev1"),
			[]string{`ours.md:11: severity "sev1" is not one of critical, major, minor`}},
		{"unknown error class in a list", rep("  error_classes: [http_status]\n", "  error_classes:\n    - http_status\n    - http_500\n"),
			[]string{`ours.md:11: error class "http_500" is not one probes report`}},
		{"bad classification", rep("classification: non_security", "classification: outage"),
			[]string{`ours.md:10: classification "outage" is not one of security, non_security, undetermined`}},
		{"unknown probe, step and component", rep("probes: [login]", "probes: [login, logon]", "    - password\n", "    - password\n    - passwd\n", "components: [Login]", "components: [Logins]"),
			[]string{`ours.md:5: match.probes: no probe "logon" in the configuration`, `ours.md:8: match.steps: no step "passwd"`, `ours.md:9: match.components: no component "Logins"`}},
		{"wrong type", rep("probes: [login]", "probes: login"),
			[]string{"ours.md:5: expected a list, found text"}},
		{"bad id", rep("id: ours", "id: Our Runbook"),
			[]string{`ours.md:2: id "Our Runbook" must be lower-case`}},
		{"empty match", rep("match:\n  probes: [login]\n  steps:\n    - password\n  components: [Login]\n  error_classes: [http_status]\n  classification: non_security\n", "match: {}\n"),
			[]string{"ours.md:4: match is empty"}},
		{"bad link", rep("url: https://grafana.example.com/d/queue", "url: grafana.example.com"),
			[]string{`ours.md:15: link url "grafana.example.com" must start with https://`}},
		{"yaml syntax error", rep("components: [Login]", "components: [Login"),
			[]string{"ours.md:"}},
		{"no front matter", func(s string) string { return strings.TrimPrefix(s, "---\n") },
			[]string{"ours.md:1: a runbook starts with a line \"---\""}},
		{"front matter not closed", func(s string) string { return strings.Replace(s, "---\nSummary", "Summary", 1) },
			[]string{"ours.md:1: the front matter is not closed"}},
		{"no steps", rep("## Steps\n", "## Checklist\n"),
			[]string{"ours.md:16: no \"## Steps\" section"}},
		{"text before the first step", rep("1. Check the queue.\n", "Do these:\n1. Check the queue.\n"),
			[]string{"ours.md:21: text before the first step"}},
		{"bad template heading", rep("## Template: first_update (non_security)", "## Template: first update"),
			[]string{"ours.md:27: a template heading is written"}},
		{"unknown template name", rep("## Template: first_update (non_security)", "## Template: opening (non_security)"),
			[]string{`ours.md:27: unknown template "opening"`}},
		{"unknown template classification", rep("## Template: first_update (non_security)", "## Template: first_update (outage)"),
			[]string{`ours.md:27: template first_update is for "outage"`}},
		{"duplicate template", rep("## Template: resolution (non_security)", "## Template: first_update (non_security)"),
			[]string{"ours.md:32: template first_update (non_security) is already defined at line 27"}},
		{"template syntax error", rep("{{with failing .Role}}", "{{with failing .Role"),
			[]string{"ours.md:29: template first_update (non_security): "}},
		{"unknown function", rep("{{utc .StartedAt}}", "{{utcc .StartedAt}}"),
			[]string{`ours.md:29: template first_update (non_security): function "utcc" not defined`}},
		{"unknown field", rep("failing .Role", "failing .FailingRole"),
			[]string{"ours.md:29: template first_update (non_security): at <.FailingRole>: can't evaluate field FailingRole"}},
		{"resolved time in a first update", rep("{{utc .StartedAt}}", "{{utc .ResolvedAt}}"),
			[]string{"ours.md:29: template first_update (non_security): at <utc .ResolvedAt>: error calling utc: the time is not set"}},
		{"claim without confirmation", rep("{{if .Confirmed}}This was not a security incident.{{end}}", "This was not a security incident."),
			[]string{`ours.md:32: template resolution (non_security) says "not a security incident" before a person has confirmed`}},
		{"claim of no data without confirmation", rep("We have no indication that this is a security incident.", "No customer data was compromised."),
			[]string{`ours.md:27: template first_update (non_security) says "No customer data was compromised"`}},
		{"unknown role", rep("  classification: non_security\n", "  classification: non_security\n  roles: [password, totp]\n"),
			[]string{`ours.md:11: role "totp" is not one a step may declare: login_page, password, second_factor`}},
		{"names the step", rep("{{else}}signing in fails{{end}}.", "{{else}}signing in fails{{end}} at the {{.Step}} step."),
			[]string{`ours.md:27: template first_update (non_security) names "step-q7x", an internal name`}},
		{"names the probe and its locations", rep("{{else}}signing in fails{{end}}.", "{{else}}signing in fails{{end}}: our checks of {{.Probe}} from {{list .Locations}} fail."),
			[]string{`ours.md:27: template first_update (non_security) names "probe-q7x", an internal name`}},
		{"names the error class", rep("Resolved at", "Resolved ({{.ErrorClass}}) at"),
			[]string{`ours.md:32: template resolution (non_security) names "http_status", an internal name`}},
		{"recovery-code advice the target may not offer", rep("We have no indication", "Sign in with a recovery code. We have no indication"),
			[]string{`ours.md:27: template first_update (non_security) mentions "recovery code" although the target may offer none: put that advice inside {{if .RecoveryCodes}}`}},
		{"placeholder in the automatic first update", rep("We have no indication", "[One sentence on the cause.] We have no indication"),
			[]string{`ours.md:27: template first_update (non_security) is published automatically as it renders, so it must not leave a placeholder such as [One sentence on the cause.]`}},
		{"empty template", rep("Resolved at {{utc .ResolvedAt}} after {{duration .Duration}}.\n{{if .Confirmed}}This was not a security incident.{{end}}\n", ""),
			[]string{"ours.md:32: template resolution (non_security) is empty"}},
		{"unclosed code block", rep("   ```\n2. Restart", "2. Restart"),
			[]string{"ours.md:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lintOne(t, tt.edit(good))
			if len(got) != len(tt.want) {
				t.Fatalf("Lint = %q, want %d problems like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// rep returns an edit that replaces old with new, pairwise, once each.
func rep(pairs ...string) func(string) string {
	return func(s string) string {
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				panic(fmt.Sprintf("test edit: %q not in the runbook", pairs[i]))
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		return s
	}
}

func TestLintDuplicateIDsAndOverrides(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.md", good)
	write("b.md", good)                                                               // same id as a.md
	write("events.md", strings.Replace(good, "id: ours", "id: login-events-down", 1)) // overriding a built-in is fine
	got := Lint(dir, demoKnown)
	want := filepath.Join(dir, "b.md") + `:2: id "ours" is already used by ` + filepath.Join(dir, "a.md")
	if len(got) != 1 || got[0].String() != want {
		t.Errorf("Lint = %q, want only %q", got, want)
	}
}

func TestLintMissingDirectory(t *testing.T) {
	got := Lint(filepath.Join(t.TempDir(), "nope"), Known{})
	if len(got) != 1 || !strings.Contains(got[0].Msg, "cannot read the runbook directory") {
		t.Errorf("Lint of a missing directory = %q", got)
	}
}

func TestLintWithoutConfigSkipsNames(t *testing.T) {
	dir := t.TempDir()
	src := strings.Replace(good, "probes: [login]", "probes: [anything]", 1)
	if err := os.WriteFile(filepath.Join(dir, "x.md"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Lint(dir, Known{}); len(got) != 0 {
		t.Errorf("Lint with no configuration = %q, want no problems", got)
	}
}

// apiLogin is a configuration unlike the demo: a JSON login API over https
// whose steps have their own names and declare roles.
var apiLogin = Known{
	Probes:     []string{"api-login"},
	Steps:      []string{"start", "authenticate", "verify-otp", "me", "fetch-config", "sign-out"},
	Components: []string{"Accounts", "SSO"},
	Flows: []FlowStep{
		{Probe: "api-login", Role: "login_page", Components: []string{"Accounts"}}, // the TLS check
		{Probe: "api-login", Step: "start", Role: "login_page", Components: []string{"Accounts"}},
		{Probe: "api-login", Step: "authenticate", Role: "password", Signals: true, Components: []string{"Accounts"}},
		{Probe: "api-login", Step: "verify-otp", Role: "second_factor", Components: []string{"SSO"}},
		{Probe: "api-login", Step: "me", Role: "signed_in", Components: []string{"Accounts"}},
		{Probe: "api-login", Step: "fetch-config", Components: []string{"Accounts"}},
		{Probe: "api-login", Step: "sign-out", Role: "logout", Components: []string{"Accounts"}},
	},
}

func TestFlowStepClasses(t *testing.T) {
	tests := []struct {
		name string
		fs   FlowStep
		want string
	}{
		{"the TLS check", FlowStep{Probe: "p", Role: "login_page"}, "tls cert_expired"},
		{"a password step", FlowStep{Probe: "p", Step: "s", Role: "password"}, "dns connect timeout http_status assertion extraction rate_limited"},
		{"a code step", FlowStep{Probe: "p", Step: "s", Role: "second_factor"}, "dns connect timeout http_status assertion extraction totp_rejected code_window_taken rate_limited"},
		{"a step with a security signal", FlowStep{Probe: "p", Step: "s", Signals: true}, "dns connect timeout http_status assertion extraction rate_limited security_check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(tt.fs.Classes(), " "); got != tt.want {
				t.Errorf("Classes() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUncovered(t *testing.T) {
	builtins, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	strs := func(ps []Problem) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.String())
		}
		return out
	}
	// The built-ins cover every role but other, whatever the steps are called.
	got := strs(Uncovered(builtins, apiLogin))
	var want []string
	for _, class := range availabilityClasses {
		want = append(want, "runbooks: no runbook covers role other failing with class "+class+" (probe api-login, step fetch-config)")
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Uncovered(built-ins) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A runbook of one's own for that step's component covers it; one that
	// replaces the two-step runbook with the demo's step name uncovers the
	// code step's failures.
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config.md", "---\nid: config-service\ntitle: Config service\nseverity: minor\nowner: us\nmatch:\n  components: [Accounts]\n  steps: [fetch-config]\n  error_classes: [dns, connect, timeout, http_status, assertion, extraction]\n---\n## Steps\n\n1. Call the config team.\n")
	write("two-step.md", "---\nid: two-step-failing\ntitle: Ours\nseverity: major\nowner: us\nmatch:\n  steps: [totp]\n  error_classes: [totp_rejected]\n---\n## Steps\n\n1. Check the clock.\n")
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got = strs(Uncovered(set, apiLogin))
	want = []string{
		"runbooks: no runbook covers role second_factor failing with class http_status (probe api-login, step verify-otp)",
		"runbooks: no runbook covers role second_factor failing with class totp_rejected (probe api-login, step verify-otp)",
	}
	if !containsAll(got, want) {
		t.Errorf("Uncovered with the two-step runbook replaced =\n%s\nwant it to include\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, g := range got {
		if strings.Contains(g, "role other") {
			t.Errorf("the config-service runbook does not cover %q", g)
		}
		if strings.Contains(g, "code_window_taken") || strings.Contains(g, "rate_limited") {
			t.Errorf("probe problems are covered by the probe-account runbook, yet %q", g)
		}
	}
	// ... and lint says why the replacement never attaches.
	var msgs []string
	for _, p := range Lint(dir, apiLogin) {
		msgs = append(msgs, strings.TrimPrefix(p.String(), dir+string(filepath.Separator)))
	}
	wantLint := []string{
		`two-step.md:7: match.steps: no step "totp" in the configuration (it has "start", "authenticate", "verify-otp", "me", "fetch-config", "sign-out"): a failure there never attaches this runbook; match.roles fits any configuration`,
		`two-step.md:7: match names no probe, step or component of the configuration, so this runbook never attaches: match on roles (match.roles) instead, or on the configuration's names`,
	}
	if !containsAll(msgs, wantLint) || len(msgs) != 2 {
		t.Errorf("Lint =\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(wantLint, "\n"))
	}

	// Without probes in the configuration there is nothing to cover.
	if got := Uncovered(builtins, Known{}); len(got) != 0 {
		t.Errorf("Uncovered with no configuration = %q, want nothing", got)
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
