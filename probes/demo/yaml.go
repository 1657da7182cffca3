package demo

import (
	_ "embed"
	"strings"
	"text/template"
)

//go:embed probes.yaml
var probesYAML string

// The probes file is itself a template, with [[ ]] delimiters so that the
// flow language's own {{ }} pass through untouched.
var probesTemplate = template.Must(template.New("probes.yaml").Delims("[[", "]]").Parse(probesYAML))

// ProbesYAML returns the commented YAML of the three demo probes (login,
// login-remembered, login-security) against the demo target at baseURL
// (e.g. "http://127.0.0.1:8081"): a "probes:" list to splice into a
// configuration file, and a tutorial of the flow language.
func ProbesYAML(baseURL string) string {
	var b strings.Builder
	err := probesTemplate.Execute(&b, map[string]any{
		"BaseURL":        strings.TrimSuffix(baseURL, "/"),
		"Domain":         Domain,
		"Password":       Password,
		"TOTPSecret":     TOTPSecret,
		"Period":         TOTPPeriod,
		"SessionCookie":  SessionCookie,
		"RememberCookie": RememberCookie,
	})
	if err != nil {
		panic("demo: probes.yaml: " + err.Error()) // the template is embedded: a build mistake
	}
	return b.String()
}
