package probes

import (
	"strings"
	"testing"

	"github.com/candorhq/candor/internal/config"
)

// FuzzParseTemplate: any text either parses or is refused with a sentence;
// it never panics, and what parses renders without error when every
// variable it names has a value.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"", "plain", "{{ .csrf }}", `{{ totp .seed "sha256" 8 60 }}`, `{{ env "X" }}`,
		`{{ now "unix" }}`, "{{", "}}", `{{ "unclosed }}`, "{{ .a }}{{ .b }}", `a{{now}}b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := parseTemplate(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		vars := map[string]string{}
		for _, v := range tp.vars() {
			vars[v] = "JBSWY3DPEHPK3PXP"
		}
		out, err := tp.render(fuzzRenderer(vars))
		if err != nil {
			t.Fatalf("render %q: %v", s, err)
		}
		if tp.parts == nil && out != s {
			t.Fatalf("plain text %q rendered as %q", s, out)
		}
		_ = strings.Count(out, "")
	})
}

type fuzzRenderer map[string]string

func (r fuzzRenderer) lookup(name string) (string, bool) { v, ok := r[name]; return v, ok }
func (r fuzzRenderer) callFunc(c *call) (string, error)  { return c.fn, nil }

// FuzzCheck: any configuration is decoded and checked without a panic.
func FuzzCheck(f *testing.F) {
	f.Add("probes:\n  - name: a\n    target: http://x\n    steps: [{url: /, expect: [{status: 200}], extract: [{var: v, css: \"a[href^=x] b.c\"}]}]\n")
	f.Add("probes:\n  - name: a\n    steps: [{url: \"{{ totp .s }}\", json: {a: [\"{{ .b }}\"]}, expect: [{body: {json: \"$.a[0]\", equals: x}}]}]\n")
	f.Add("probes: [{name: a, secrets: {s: x}, steps: [{url: http://h/, let: {c: '{{ totp .s \"sha512\" 8 }}'}}]}]\n")
	f.Add("probes:\n  - name: a\n    interval: 30s\n    locations: [eu, {name: us, vars: {u: b}, secrets: {s: JBSWY3DPEHPK3PXP}}]\n    secrets: {s: JBSWY3DPEHPK3PXP}\n    tls: {ca_file: /nonexistent, server_name: x}\n    steps: [{url: http://h/, role: second_factor, form: {c: '{{ totp .s }}'}}]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		src, err := config.Parse("f.yaml", []byte(doc))
		if err != nil {
			return
		}
		c := config.NewChecker(src, func(string) (string, bool) { return "", false })
		var ps []Probe
		c.Decode("$.probes", &ps)
		Check(c, "$.probes", ps)
	})
}

// FuzzSaid: whatever a target answers, what a message quotes of it is short
// and holds no control characters.
func FuzzSaid(f *testing.F) {
	for _, s := range []string{"<title>x</title>", `{"error":{"message":"m"}}`, "plain", "<p>a<script>b</script>", "{", "\x00\xff"} {
		f.Add("text/html", s)
		f.Add("application/json", s)
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		got := said(contentType, []byte(body))
		if n := len([]rune(got)); n > saidLimit+1 {
			t.Fatalf("said %d characters: %q", n, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("a control character in %q", got)
			}
		}
	})
}
