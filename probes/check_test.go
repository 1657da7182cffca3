package probes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checked decodes and checks doc and returns its problems and warnings as text.
func checked(t *testing.T, doc string, envv map[string]string) (problems, warnings string) {
	t.Helper()
	ps, c := decode(t, doc, envv)
	Check(c, "$.probes", ps)
	return c.Problems().Error(), c.Warnings().Error()
}

func TestCheckRoles(t *testing.T) {
	const doc = `probes:
  - name: login
    target: https://login.example.com
    interval: 1m
    vars: {user: probe@example.com}
    secrets: {pass_word: "${PW}", seed: "${SEED}"}
    steps:
      - name: start
        url: /signin
        extract: [{var: csrf, form_field: csrf}]
      - name: credentials
        url: /signin
        form: {u: "{{ .user }}", p: "{{ .pass_word }}", csrf: "{{ .csrf }}"}
      - name: mfa
        url: /mfa
        json: {otp: "{{ totp .seed }}"}
      - name: backup
        url: /mfa/recovery
        form: {c: "x"}
      - name: bye
        url: /session/sign-out
        method: POST
      - name: checked
        url: /signin
        role: login_page
      - name: nonsense
        url: /x
        role: totp
`
	problems, warnings := checked(t, doc, map[string]string{"PW": "pw", "SEED": "JBSWY3DPEHPK3PXP"})
	if want := `candor.yaml:28:15: unknown role "totp": use one of login_page, password, second_factor, recovery_code, remembered_device, signed_in, logout, other`; problems != want {
		t.Errorf("problems:\ngot  %s\nwant %s", problems, want)
	}
	for _, want := range []string{
		`candor.yaml:8:15: warning: step "start" looks like the login_page step`,
		`candor.yaml:11:15: warning: step "credentials" looks like the password step (it sends a password): add role: password`,
		`candor.yaml:14:15: warning: step "mfa" looks like the second_factor step (it sends a {{ totp }} code)`,
		`candor.yaml:17:15: warning: step "backup" looks like the recovery_code step`,
		`candor.yaml:20:15: warning: step "bye" looks like the logout step`,
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("missing %q in warnings:\n%s", want, warnings)
		}
	}
	if strings.Contains(warnings, `"checked"`) || strings.Contains(warnings, `"nonsense"`) {
		t.Errorf("a step with a role got a suggestion:\n%s", warnings)
	}

	// The roles reach the plan; a step without one is other.
	ps, c := decode(t, doc, map[string]string{"PW": "pw", "SEED": "JBSWY3DPEHPK3PXP"})
	ps[0].Steps = ps[0].Steps[:6]
	Check(c, "$.probes", ps)
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	plan, err := Compile(ps[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.steps[5].Role; got != RoleLoginPage {
		t.Errorf("declared role: got %q, want login_page", got)
	}
	if got := plan.steps[0].Role; got != RoleOther {
		t.Errorf("no role: got %q, want other", got)
	}
}

func TestCheckLocations(t *testing.T) {
	for _, tc := range []struct {
		name, locations string
		problems        []string // "" items: none
	}{
		{name: "plain names", locations: `[eu-west, us-east]`},
		{name: "a tagged name", locations: `[!!str eu-west]`},
		{name: "accounts per location", locations: `
      - name: eu-west
        vars: {user: eu@example.com}
        secrets: {seed: "${EU_SEED}"}
      - us-east`},
		{name: "a location only variable given everywhere", locations: `
      - {name: a, vars: {region: eu}}
      - {name: b, vars: {region: us}}`},
		{name: "duplicate", locations: `
      - eu-west
      - {name: eu-west, vars: {user: x}}`, problems: []string{`candor.yaml:10:16: location "eu-west" is listed twice`}},
		{name: "empty name", locations: `
      - {vars: {user: x}}`, problems: []string{`candor.yaml:9:10: a location needs a name`}},
		{name: "bad variable name", locations: `
      - {name: eu, vars: {"a-b": x}}`, problems: []string{`candor.yaml:9:34: "a-b" is not a variable name`}},
		{name: "a secret given as a plain var", locations: `
      - {name: eu, vars: {seed: JBSWY3DPEHPK3PXP}}`, problems: []string{`candor.yaml:9:33: "seed" is a secret of this probe: give it under this location's secrets`}},
		{name: "a location only variable given by one location", locations: `
      - {name: a, vars: {region: eu}}
      - b`, problems: []string{`candor.yaml:9:34: "region" has no value at b`}},
		{name: "a location secret without value", locations: `
      - {name: a, secrets: {seed: "${NOPE}"}}`, problems: []string{`candor.yaml:9:35: secret ${NOPE} is not set`}},
		{name: "a list item that is a list", locations: `
      - [a, b]`, problems: []string{`candor.yaml:9:9: a location is a name, or a mapping`}},
	} {
		doc := `probes:
  - name: login
    target: https://login.example.com
    interval: 2m
    vars: {user: probe@example.com}
    secrets: {seed: "${SEED}"}
    steps: [{name: code, role: second_factor, url: /mfa, form: {u: "{{ .user }}", c: "{{ totp .seed }}"}}]
    locations: ` + tc.locations + "\n"
		problems, _ := checked(t, doc, map[string]string{"SEED": "JBSWY3DPEHPK3PXP", "EU_SEED": "KRSXG5CTMVRXEZLU"})
		if len(tc.problems) == 0 && problems != "" {
			t.Errorf("%s: got problems:\n%s", tc.name, problems)
		}
		for _, want := range tc.problems {
			if !strings.Contains(problems, want) {
				t.Errorf("%s: missing %q in\n%s", tc.name, want, problems)
			}
		}
	}
}

func TestCheckWarnsWhenRunsOnOneAccountCannotEachHaveAWindow(t *testing.T) {
	probe := func(name, interval, locations, vars, secrets string) string {
		return `
  - name: ` + name + `
    target: https://login.example.com
    interval: ` + interval + `
    locations: ` + locations + `
    vars: ` + vars + `
    secrets: ` + secrets + `
    steps: [{name: code, role: second_factor, url: /mfa, form: {u: "{{ .user }}", c: "{{ totp .seed }}"}}]`
	}
	const one, other = `{seed: "${SEED}"}`, `{seed: "${OTHER}"}`
	for _, tc := range []struct {
		name, probes string
		warn         []string
	}{
		{name: "one location at the code period", probes: probe("a", "30s", "[eu]", "{user: a}", one)},
		{name: "one location faster than its codes", probes: probe("a", "15s", "[eu]", "{user: a}", one),
			warn: []string{`candor.yaml:4:15: warning: probe a runs every 15s but its one-time codes last 30s`}},
		{name: "two locations on one account", probes: probe("a", "30s", "[eu, us]", "{user: a}", one),
			warn: []string{`candor.yaml:4:15: warning: one account (the same TOTP seed) is used by probe a at eu every 30s, probe a at us every 30s, with 30s codes`}},
		{name: "two locations at a long enough interval", probes: probe("a", "1m", "[eu, us]", "{user: a}", one)},
		{name: "two locations, each its own account", probes: probe("a", "30s", `[{name: eu, secrets: {seed: "${OTHER}"}}, us]`, "{user: a}", one)},
		{name: "two locations, each its own user", probes: probe("a", "30s", `[{name: eu, vars: {user: b}}, us]`, "{user: a}", one)},
		{name: "two probes on one account", probes: probe("a", "30s", "[eu]", "{user: a}", one) + probe("b", "45s", "[eu]", "{user: a}", one),
			warn: []string{`candor.yaml:4:15: warning: one account`, `candor.yaml:11:15: warning: one account`, `probe b at eu every 45s`}},
		{name: "two probes, two accounts", probes: probe("a", "30s", "[eu]", "{user: a}", one) + probe("b", "30s", "[eu]", "{user: a}", other)},
	} {
		problems, warnings := checked(t, "probes:"+tc.probes+"\n", map[string]string{"SEED": "JBSWY3DPEHPK3PXP", "OTHER": "KRSXG5CTMVRXEZLU"})
		if problems != "" {
			t.Errorf("%s: problems:\n%s", tc.name, problems)
		}
		if len(tc.warn) == 0 && warnings != "" {
			t.Errorf("%s: got warnings:\n%s", tc.name, warnings)
		}
		for _, want := range tc.warn {
			if !strings.Contains(warnings, want) {
				t.Errorf("%s: missing %q in warnings:\n%s", tc.name, want, warnings)
			}
		}
		if strings.Contains(warnings, "JBSWY3DPEHPK3PXP") {
			t.Errorf("%s: a warning shows the seed", tc.name)
		}
	}
}

func TestCheckTLSOptionsAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, _ := newTestCA(t, "Candor Test CA")
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, probe string
		want        string // "" for no problem
	}{
		{name: "a good CA file", probe: `target: https://x.example
    tls: {ca_file: ` + good + `, server_name: login.internal}`},
		{name: "a CA file from the environment", probe: `target: https://x.example
    tls: {ca_file: "${CA_DIR}/ca.pem"}`},
		{name: "a missing CA file", probe: `target: https://x.example
    tls: {ca_file: ` + filepath.Join(dir, "missing.pem") + `}`, want: `candor.yaml:4:20: ca_file ` + filepath.Join(dir, "missing.pem") + ` cannot be read: no such file or directory`},
		{name: "a CA file without a certificate", probe: `target: https://x.example
    tls: {ca_file: ` + notPEM + `}`, want: `candor.yaml:4:20: ca_file ` + notPEM + ` holds no certificate`},
		{name: "a server name with a scheme", probe: `target: https://x.example
    tls: {server_name: "https://login.internal"}`, want: `candor.yaml:4:24: server_name "https://login.internal" must be a host name`},
		{name: "a target from the environment", probe: `target: ${LOGIN_URL}`},
		{name: "a target from an unset variable", probe: `target: ${NOPE}`, want: `candor.yaml:3:13: ${NOPE}: the environment variable NOPE is not set`},
		{name: "a var from the environment", probe: `target: ${LOGIN_URL}
    vars: {user: "${USER_NAME}"}`},
		{name: "a var from an unset variable", probe: `target: ${LOGIN_URL}
    vars: {user: "${NOPE}"}`, want: `candor.yaml:4:18: ${NOPE}: the environment variable NOPE is not set`},
		{name: "interval 0s", probe: `target: https://x.example
    interval: 0s`, want: `candor.yaml:4:15: an interval of 0 would mean the default`},
		{name: "timeout 0s", probe: `target: https://x.example
    timeout: 0s`, want: `candor.yaml:4:14: a timeout of 0 would mean the interval`},
		{name: "a step timeout of 0s", probe: `target: https://x.example
    steps: [{name: a, url: /, timeout: 0s}]`, want: `candor.yaml:4:40: a step timeout of 0 would mean the default`},
	} {
		doc := `probes:
  - name: p
    ` + tc.probe + "\n"
		if !strings.Contains(tc.probe, "steps:") {
			doc += "    steps: [{name: a, url: /}]\n"
		}
		problems, _ := checked(t, doc, map[string]string{"CA_DIR": dir, "LOGIN_URL": "https://login.example.com", "USER_NAME": "probe"})
		if tc.want == "" && problems != "" || tc.want != "" && !strings.Contains(problems, tc.want) {
			t.Errorf("%s: got problems\n%s\nwant %q", tc.name, problems, tc.want)
		}
	}

	ps, c := decode(t, "probes:\n  - name: p\n    target: ${LOGIN_URL}\n    vars: {user: \"${USER_NAME}\"}\n    steps: [{name: a, url: \"/{{ .user }}\"}]\n",
		map[string]string{"LOGIN_URL": "https://login.example.com", "USER_NAME": "probe"})
	Check(c, "$.probes", ps)
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	plan, err := Compile(ps[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.base["target"]; got != "https://login.example.com" {
		t.Errorf("target: got %q, want the environment's value", got)
	}
	if got := plan.base["user"]; got != "probe" {
		t.Errorf("var: got %q, want the environment's value", got)
	}
}
