package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/runbooks"
)

// apiLoginConfig is a configuration unlike the demo: a JSON login API over
// https with its own step names and roles declared, and components mapped to
// roles.
const apiLoginConfig = `page:
  name: Example
components:
  - name: Accounts
    roles: [login_page, password, signed_in, logout]
  - name: SSO
    roles: [second_factor]
probes:
  - name: api-login
    target: https://login.example.com
    interval: 1m
    steps:
      - name: start
        role: login_page
        url: /api/session
      - name: authenticate
        role: password
        url: /api/session
        json: {user: probe@example.com, password: x}
        expect:
          - status: 200
          - body: {contains: otp_required}
            signal: second_step_skipped
      - name: verify-otp
        role: second_factor
        url: /api/session/otp
        json: {code: "123456"}
      - name: me
        role: signed_in
        url: /api/me
      - name: fetch-config
        url: /api/config
      - name: sign-out
        role: logout
        method: POST
        url: /api/session/delete
`

func TestRunbooksLintReportsUncoveredFailures(t *testing.T) {
	path := writeFile(t, "api.yaml", apiLoginConfig)
	code, stdout, stderr := runCmd(t, t.Context(), "runbooks", "lint", "--config", path)
	if code != 0 {
		t.Fatalf("exit status = %d, want 0: uncovered failures are warnings\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var uncovered []string
	for _, l := range lines {
		if strings.HasPrefix(l, "runbooks: no runbook covers ") {
			uncovered = append(uncovered, l)
		}
	}
	// The built-ins cover every role of this configuration but other, at
	// whatever names its steps have, and the TLS check of its https target.
	want := []string{}
	for _, class := range []string{"dns", "connect", "timeout", "http_status", "assertion", "extraction"} {
		want = append(want, "runbooks: no runbook covers role other failing with class "+class+" (probe api-login, step fetch-config)")
	}
	if strings.Join(uncovered, "\n") != strings.Join(want, "\n") {
		t.Errorf("uncovered failures:\n%s\nwant\n%s", strings.Join(uncovered, "\n"), strings.Join(want, "\n"))
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "no problems; 6 failure(s) of the configured probes that no runbook covers (warnings)") {
		t.Errorf("summary line = %q", last)
	}
}

// A runbook of one's own keyed on the demo's step names never attaches to
// this configuration: lint says so at its line, and the failures the
// built-in it replaced covered are reported uncovered once it is fixed.
func TestRunbooksLintNamesWhatNeverAttaches(t *testing.T) {
	path := writeFile(t, "api.yaml", apiLoginConfig)
	dir := t.TempDir()
	rb := "---\nid: two-step-failing\ntitle: Ours\nseverity: major\nowner: us\nmatch:\n  steps: [totp]\n  components: [Two-step authentication]\n  error_classes: [totp_rejected]\n---\n## Steps\n\n1. Check the clock.\n"
	if err := os.WriteFile(filepath.Join(dir, "two-step.md"), []byte(rb), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runCmd(t, t.Context(), "runbooks", "lint", "--config", path, dir)
	if code != 1 {
		t.Errorf("exit status = %d, want 1\n%s", code, stdout)
	}
	file := filepath.Join(dir, "two-step.md")
	for _, want := range []string{
		file + `:7: match.steps: no step "totp" in the configuration`,
		file + `:8: match.components: no component "Two-step authentication" in the configuration (it has "Accounts", "SSO")`,
		file + ":7: match names no probe, step or component of the configuration, so this runbook never attaches",
		"candor: 3 problem(s) in the built-in runbooks and " + dir,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lint output lacks %q:\n%s", want, stdout)
		}
	}

	// Keyed on the role instead, it attaches; what it does not cover is named.
	rb = strings.Replace(rb, "  steps: [totp]\n  components: [Two-step authentication]\n", "  roles: [second_factor]\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "two-step.md"), []byte(rb), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCmd(t, t.Context(), "runbooks", "lint", "--config", path, dir)
	if code != 0 {
		t.Errorf("exit status = %d, want 0\n%s", code, stdout)
	}
	for _, want := range []string{
		"runbooks: no runbook covers role second_factor failing with class http_status (probe api-login, step verify-otp)",
		"runbooks: no runbook covers role second_factor failing with class timeout (probe api-login, step verify-otp)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lint output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "role second_factor failing with class totp_rejected") {
		t.Errorf("the runbook keyed on the role does not cover rejected codes:\n%s", stdout)
	}
}

// TestAdvisorFollowsMeaning asks the advisor as the incidents store does,
// for failures of a configuration unlike the demo: the runbook attached
// follows the failing step's role, and the first public update names no
// step, probe or location, and advises recovery codes only where the target
// offers them; a probe problem gets its runbook and no public words.
func TestAdvisorFollowsMeaning(t *testing.T) {
	set, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	a := advisor{set: set, pageURL: "https://status.example.com/"}
	start := time.Date(2026, 3, 4, 8, 12, 0, 0, time.UTC)
	query := func(step, role, class string, recovery bool) incidents.AdviceQuery {
		return incidents.AdviceQuery{Incident: 9, Components: []string{"SSO"}, Probes: []string{"api-login"},
			Steps: []string{step}, Roles: []string{role}, ErrorClasses: []string{class},
			Classification: incidents.NonSecurity, Messages: []string{step + ": answered 401 'Authentication failed' after 5.02 s; usually 0.9 s"},
			Data: incidents.TemplateData{Title: "Sign-in problems", Components: []string{"SSO"}, Probe: "api-login", Step: step,
				Role: role, RecoveryCodes: recovery, ErrorClass: class, Classification: "non_security",
				StartedAt: start, DetectedAt: start.Add(time.Minute), Locations: []string{"fra1"}, Cadence: 30 * time.Minute}}
	}
	internal := []string{"api-login", "verify-otp", "authenticate", "fra1", "totp_rejected", "http_status", "second_factor"}
	tests := []struct {
		name         string
		q            incidents.AdviceQuery
		first        string
		wantWords    []string
		notWords     []string
		noFirstWords bool
	}{
		{"a code rejected, no recovery codes", query("verify-otp", "second_factor", "totp_rejected", false), "two-step-failing",
			[]string{"two-step verification", "codes from authenticator apps may be rejected", "https://status.example.com/incidents/9"},
			[]string{"recovery"}, false},
		{"a code rejected, recovery codes offered", query("verify-otp", "second_factor", "totp_rejected", true), "two-step-failing",
			[]string{"sign in with one of your recovery codes"}, nil, false},
		{"an error right after the password", query("authenticate", "password", "http_status", true), "login-events-down",
			[]string{"after the password is entered"}, []string{"recovery", "internal service", "traced"}, false},
		{"the target rate-limits the code step", query("verify-otp", "second_factor", "rate_limited", true), "probe-account-problem",
			nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adv := a.Advise(tt.q)
			if len(adv.Runbooks) == 0 || adv.Runbooks[0].ID != tt.first {
				t.Fatalf("attached %+v, want %s first", adv.Runbooks, tt.first)
			}
			if tt.noFirstWords {
				if adv.FirstUpdate != "" {
					t.Errorf("a probe problem got public words:\n%s", adv.FirstUpdate)
				}
				return
			}
			flat := strings.Join(strings.Fields(adv.FirstUpdate), " ")
			if flat == "" {
				t.Fatal("no first update")
			}
			for _, w := range tt.wantWords {
				if !strings.Contains(flat, w) {
					t.Errorf("first update lacks %q:\n%s", w, adv.FirstUpdate)
				}
			}
			for _, w := range append(internal, tt.notWords...) {
				if strings.Contains(strings.ToLower(flat), strings.ToLower(w)) {
					t.Errorf("first update says %q:\n%s", w, adv.FirstUpdate)
				}
			}
		})
	}
}

// Every placeholder the built-in templates leave for a person is one the
// incidents store refuses to post, and the store refuses nothing else in
// them: lint's rule (no placeholder in the automatic first update) and the
// store's are the same rule.
func TestBuiltinPlaceholdersAreRefusedByTheStore(t *testing.T) {
	set, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	withPlaceholder := 0
	for _, rb := range set {
		for _, tp := range rb.Templates {
			resolved := tp.Name == runbooks.Resolution || tp.Name == runbooks.PostIncidentSummary
			in := runbooks.SampleIncident(tp.Classification, resolved)
			in.RecoveryCodes = true
			out, err := tp.Render(in)
			if err != nil {
				t.Fatalf("%s %s (%s): %v", rb.ID, tp.Name, tp.Classification, err)
			}
			phs, refused := runbooks.Placeholders(out), incidents.Placeholder(out)
			if (len(phs) > 0) != (refused != "") || len(phs) > 0 && phs[0] != refused {
				t.Errorf("%s %s (%s): runbooks sees %q, the store refuses %q:\n%s", rb.ID, tp.Name, tp.Classification, phs, refused, out)
			}
			if len(phs) > 0 {
				withPlaceholder++
			}
		}
	}
	if withPlaceholder < 10 {
		t.Errorf("only %d built-in templates leave a placeholder; the follow-ups, resolutions and summaries should ask a person for the cause", withPlaceholder)
	}
}
