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
