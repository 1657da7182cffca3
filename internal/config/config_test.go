package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type step struct {
	Name    string   `yaml:"name"`
	Timeout Duration `yaml:"timeout"`
}

type probe struct {
	Name     string   `yaml:"name"`
	Password Secret   `yaml:"password"`
	Interval Duration `yaml:"interval"`
	Steps    []step   `yaml:"steps"`
	Count    int      `yaml:"count"`
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEveryProblemHasAPosition(t *testing.T) {
	const doc = `probes:
  - name: login
    password: ${PROBE_PASSWORD}
    interval: 15 seconds
    steps:
      - name: form
        timeout: 5s
      - name: totp
        timeout: soon
  - name: other
    colour: blue
  - name: third
    count: many
`
	src, err := Parse("candor.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(src, env(nil))
	var ps []probe
	c.Decode("$.probes", &ps)
	c.Errorf("$.probes[0].name", "duplicate name %q", "login")
	var got []string
	for _, p := range c.Problems() {
		got = append(got, p.String())
	}
	want := []string{
		`candor.yaml:2:11: duplicate name "login"`,
		`candor.yaml:3:15: secret ${PROBE_PASSWORD} is not set: the environment variable PROBE_PASSWORD is missing or empty`,
		`candor.yaml:4:15: "15 seconds" is not a duration: write a number with a unit, such as 30s, 5m or 1h`,
		`candor.yaml:9:18: "soon" is not a duration: write a number with a unit, such as 30s, 5m or 1h`,
		`candor.yaml:11:5: unknown key "colour"`,
		`candor.yaml:13:12: expected a whole number, found text`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var problems Problems
	if !errors.As(c.Err(), &problems) || len(problems) != len(want) {
		t.Errorf("Err() = %v, want %d problems", c.Err(), len(want))
	}
}

func TestSyntaxErrorHasAPosition(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("probes:\n  - name: [unclosed\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bad.yaml:") || strings.Count(err.Error(), ":") < 3 {
		t.Fatalf("got %v, want bad.yaml:line:col: …", err)
	}
}

func TestSecretsResolveAndNeverPrint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "seed")
	if err := os.WriteFile(file, []byte("JBSWY3DPEHPK3PXP\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := "a: ${A}\nb: file:" + file + "\nc: plain\n"
	src, err := Parse("s.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		A Secret `yaml:"a"`
		B Secret `yaml:"b"`
		C Secret `yaml:"c"`
	}
	c := NewChecker(src, env(map[string]string{"A": "hunter2"}))
	if !c.Decode("$", &v) {
		t.Fatal(c.Err())
	}
	if v.A.Reveal() != "hunter2" || v.B.Reveal() != "JBSWY3DPEHPK3PXP" || v.C.Reveal() != "plain" {
		t.Errorf("got %q %q %q", v.A.Reveal(), v.B.Reveal(), v.C.Reveal())
	}
	for _, s := range []Secret{v.A, v.B, v.C} {
		if s.String() != "[redacted]" || s.LogValue().String() != "[redacted]" {
			t.Errorf("secret printed as %q", s.String())
		}
	}
}

func TestTextExpandsTheEnvironment(t *testing.T) {
	type section struct {
		Target Text            `yaml:"target"`
		Vars   map[string]Text `yaml:"vars"`
	}
	for _, tc := range []struct {
		doc, want, problem string
	}{
		{doc: "s:\n  target: ${LOGIN_URL}\n", want: "https://login.example.com"},
		{doc: "s:\n  target: https://${HOST}:8443/\n", want: "https://login.example.com:8443/"},
		{doc: "s:\n  target: price $${X} and $5\n", want: "price ${X} and $5"},
		{doc: "s:\n  target: plain\n", want: "plain"},
		{doc: "s:\n  target: x\n  vars:\n    user: ${NOPE}\n", problem: "candor.yaml:4:11: ${NOPE}: the environment variable NOPE is not set"},
		{doc: "s:\n  target: ${A-B}\n", problem: "candor.yaml:2:11: ${A-B} is not an environment variable reference"},
		{doc: "s:\n  target: \"${OPEN\"\n", problem: "without a closing"},
	} {
		src, err := Parse("candor.yaml", []byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		c := NewChecker(src, env(map[string]string{"LOGIN_URL": "https://login.example.com", "HOST": "login.example.com"}))
		var s section
		c.Decode("$.s", &s)
		err = c.Err()
		if tc.problem != "" {
			if err == nil || !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("%q: got %v, want a problem containing %q", tc.doc, err, tc.problem)
			}
			continue
		}
		if err != nil || string(s.Target) != tc.want {
			t.Errorf("%q: got %q (%v), want %q", tc.doc, s.Target, err, tc.want)
		}
	}
}

func TestWarningsAreReportedButDoNotFail(t *testing.T) {
	src, err := Parse("candor.yaml", []byte("probes:\n  - name: login\n    interval: 10s\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker(src, env(nil))
	c.Warnf("$.probes[0].interval", "two locations share one account")
	if err := c.Err(); err != nil {
		t.Fatalf("a warning made the check fail: %v", err)
	}
	ws := c.Warnings()
	if len(ws) != 1 || ws[0].String() != "candor.yaml:3:15: warning: two locations share one account" {
		t.Errorf("got warnings %v, want one at 3:15 prefixed warning:", ws)
	}
	if len(c.Problems()) != 0 {
		t.Errorf("a warning was counted as a problem: %v", c.Problems())
	}
}
