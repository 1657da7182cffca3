package probes

import (
	"strings"
	"testing"

	"github.com/candorhq/candor/internal/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func decode(t *testing.T, doc string, envv map[string]string) ([]Probe, *config.Checker) {
	t.Helper()
	src, err := config.Parse("candor.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := config.NewChecker(src, env(envv))
	var ps []Probe
	c.Decode("$.probes", &ps)
	return ps, c
}

func TestCheckAcceptsAGoodProbe(t *testing.T) {
	const doc = `probes:
  - name: login
    target: https://app.example.com
    interval: 30s
    timeout: 20s
    locations: [eu, us]
    vars: {user: probe@example.com}
    secrets:
      password: ${PW}
      seed: ${SEED}
    steps:
      - name: page
        url: /login
        expect:
          - status: 200
          - body: {contains: Sign in}
        extract:
          - {var: csrf, form_field: csrf_token}
          - {var: title, css: "form#login input[name=csrf_token]", attr: value}
      - name: password
        url: /login
        form: {email: "{{ .user }}", password: "{{ .password }}", csrf_token: "{{ .csrf }}"}
        expect:
          - status: [200, 303]
          - url: {path: /2fa}
            signal: second_step_skipped
      - name: code
        url: "{{ .target }}/api/totp"
        let: {code: "{{ totp .seed \"sha256\" 8 60 }}"}
        json: {code: "{{ .code }}", remember: true, at: "{{ now \"unix\" }}", who: ["{{ env \"USER\" }}"]}
        expect:
          - body: {json: "$.session.id", present: true}
          - cookie: {name: sid, http_only: true, secure: true, max_lifetime: 720h}
          - header: {name: Content-Type, regex: "^application/json"}
        extract:
          - {var: token, json: "$.session[\"id\"]"}
          - {var: sid, cookie: sid}
          - {var: loc, header: Location}
          - {var: r, regex: "id=([0-9]+)"}
`
	ps, c := decode(t, doc, map[string]string{"PW": "hunter2", "SEED": "JBSWY3DPEHPK3PXP"})
	Check(c, "$.probes", ps)
	if err := c.Err(); err != nil {
		t.Fatalf("got problems:\n%v", err)
	}
	if _, err := Compile(ps[0]); err != nil {
		t.Fatal(err)
	}
}

func TestCheckReportsEveryProblemAtItsPlace(t *testing.T) {
	const doc = `probes:
  - name: login
    secrets:
      password: ${MISSING}
      seed: ${SEED}
    vars: {plain: ABC}
    steps:
      - name: page
        url: /login
        extract:
          - {var: csrf, regex: "name=(\"[a-z"}
          - {var: x, css: "form > input"}
          - {var: y, json: "token"}
      - name: page
        url: "{{ .nope }}/x"
        form: {code: "{{ totpp .seed }}", other: "{{ totp .plain }}"}
        expect:
          - body: {json: "$.a[b]", equals: "1"}
          - status: 200
            body: {contains: x}
          - cookie: {name: sid}
          - url: {contains: ok}
            signal: nonsense
  - name: login
    steps:
      - url: https://x.example/
        timeout: 5 s
`
	ps, c := decode(t, doc, map[string]string{"SEED": "JBSWY3DPEHPK3PXP"})
	Check(c, "$.probes", ps)
	got := c.Problems().Error()
	for _, want := range []string{
		`candor.yaml:4:17: secret ${MISSING} is not set`,
		`candor.yaml:9:14: url "/login" is relative: give the probe a target`,
		`candor.yaml:11:32: bad regular expression: missing closing ]`,
		`candor.yaml:12:27: CSS selector "form > input": only tags`,
		`candor.yaml:13:28: JSON path "token" must start with $`,
		`candor.yaml:14:15: duplicate step name "page"`,
		`candor.yaml:15:14: variable .nope is not defined here`,
		`candor.yaml:16:22: unknown template function "totpp"`,
		`candor.yaml:16:50: the TOTP seed .plain must be a secret`,
		`candor.yaml:18:26: JSON path "$.a[b]": [b] is not an index`,
		`candor.yaml:19:13: an assertion checks exactly one of status, body, url, header or cookie (found 2)`,
		`candor.yaml:21:22: say what to check`,
		`candor.yaml:23:21: unknown signal "nonsense"`,
		`candor.yaml:24:11: duplicate probe name "login"`,
		`candor.yaml:27:18: "5 s" is not a duration`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "hunter") {
		t.Error("a secret leaked")
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{{ .a }", `"{{" is not closed`},
		{"a }} b", `"}}" without a matching "{{"`},
		{"{{ }}", "empty {{ }}"},
		{"{{ printf .a }}", `unknown template function "printf"`},
		{`{{ totp .s "md5" }}`, `unknown TOTP algorithm "md5"`},
		{`{{ totp .s "sha1" 7 }}`, "digits must be 6 or 8"},
		{`{{ env USER }}`, "neither a variable"},
		{`{{ .a .b }}`, "a variable takes no arguments"},
		{`{{ now 3 }}`, "now takes no argument"},
	} {
		_, err := parseTemplate(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseTemplate(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}
