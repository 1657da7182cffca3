package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
