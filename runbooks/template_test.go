package runbooks

import (
	"strings"
	"testing"
	"text/template"
	"time"
)

func TestFuncs(t *testing.T) {
	auckland := time.FixedZone("NZDT", 13*3600)
	tests := []struct {
		name    string
		text    string
		data    any
		want    string
		wantErr string
	}{
		{"utc converts to UTC", `{{utc .}}`, time.Date(2025, 3, 5, 7, 59, 59, 0, auckland), "2025-03-04 18:59 UTC", ""},
		{"utc refuses a zero time", `{{utc .}}`, time.Time{}, "", "the time is not set"},
		{"duration hours and minutes", `{{duration .}}`, 10*time.Hour + 47*time.Minute + 59*time.Second, "10h 47m", ""},
		{"duration whole hours", `{{duration .}}`, 2 * time.Hour, "2h", ""},
		{"duration minutes", `{{duration .}}`, 47 * time.Minute, "47m", ""},
		{"duration over a day stays in hours", `{{duration .}}`, 26*time.Hour + 5*time.Minute, "26h 5m", ""},
		{"duration under a minute", `{{duration .}}`, 59 * time.Second, "less than a minute", ""},
		{"duration negative", `{{duration .}}`, -time.Minute, "", "negative duration"},
		{"list one", `{{list .}}`, []string{"Login"}, "Login", ""},
		{"list two", `{{list .}}`, []string{"Login", "API"}, "Login and API", ""},
		{"list three", `{{list .}}`, []string{"Login", "API", "Dashboard"}, "Login, API and Dashboard", ""},
		{"list empty", `{{list .}}`, []string(nil), "", "the list is empty"},
		{"lower", `{{lower .}}`, "Two-step", "two-step", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			tmpl, err := newTestTemplate(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			err = tmpl.Execute(&b, tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || b.String() != tt.want {
				t.Fatalf("got %q, %v; want %q", b.String(), err, tt.want)
			}
		})
	}
}

func TestRenderErrorsNameFileAndLine(t *testing.T) {
	src := "---\nid: x\ntitle: X\nseverity: minor\nowner: o\nmatch: {classification: non_security}\n---\n## Steps\n1. Do it.\n\n## Template: follow_up (non_security)\n\nStill failing at {{.Step}}\nsince {{utc .StartedAt}}.\n"
	rb, err := Parse("x.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = rb.Render(FollowUp, Incident{Classification: NonSecurity, Step: "password"})
	want := "x.md:14: template follow_up (non_security): at <utc .StartedAt>: error calling utc: the time is not set"
	if err == nil || err.Error() != want {
		t.Errorf("Render error = %v, want %q", err, want)
	}
	_, err = rb.Render(FirstUpdate, Incident{Classification: NonSecurity})
	if err == nil || !strings.Contains(err.Error(), "runbook x has no template first_update for non_security incidents") {
		t.Errorf("Render of a missing template = %v", err)
	}
	out, err := rb.Render(FollowUp, SampleIncident(NonSecurity, false))
	if err != nil || out != "Still failing at password\nsince 2025-03-04 08:12 UTC." {
		t.Errorf("Render = %q, %v", out, err)
	}
}

func newTestTemplate(text string) (*template.Template, error) {
	return template.New("t").Funcs(Funcs()).Option("missingkey=error").Parse(text)
}

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"Signing in works again. [One sentence on the cause, once you know it.] You need do nothing.", []string{"[One sentence on the cause, once you know it.]"}},
		{"Reviewed by: [NAME, DATE]. [NAME, DATE] again.", []string{"[NAME, DATE]"}},
		{"Reviewed by [REVIEWER].", []string{"[REVIEWER]"}},
		{"See [our status page](https://status.example.com) and [the docs][docs].\n\n[docs]: https://example.com", nil},
		{"- [ ] a task\n- [x] done", nil},
		{"A footnote[1] and [cause], a single lower-case word, are not prose to replace.", nil},
		{"In code: `[Not a placeholder here]`.\n```\n[Nor here, in a block]\n```", nil},
		{"    [Nor in an indented block]", nil},
		{"Nested [outer [Inner text to replace]] brackets.", []string{"[Inner text to replace]"}},
		{"An open [bracket without end", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got := Placeholders(tt.text)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Placeholders(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestFailingNamesNoRole(t *testing.T) {
	for _, role := range roles {
		got := Failing(role)
		if role == "other" {
			if got != "" {
				t.Errorf("Failing(other) = %q, want \"\": a template speaks of its components instead", got)
			}
			continue
		}
		if got == "" || strings.Contains(got, "_") || strings.Contains(got, role) && role != "password" {
			t.Errorf("Failing(%s) = %q, want customers' words without the role's name", role, got)
		}
	}
	if got := Failing("dashboard"); got != "" {
		t.Errorf("Failing of an unknown role = %q, want \"\"", got)
	}
}
