package runbooks

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
)

// Incident is the data a communication template is rendered with. Times are
// shown in UTC whatever their location. Fields a template does not use may be
// left zero, but a template that formats a zero time fails to render rather
// than print year 1.
type Incident struct {
	ID             string        // the incident's id
	Title          string        // its public title, e.g. "Login failures"
	Status         string        // investigating, identified, monitoring, resolved, postmortem
	Components     []string      // affected components, e.g. Login, Two-step authentication
	Probe          string        // the failing probe, e.g. login
	Step           string        // the failing step, e.g. password (never for public text)
	Role           string        // the failing step's role, e.g. second_factor
	RecoveryCodes  bool          // the target offers recovery codes: only then may text advise using one
	ErrorClass     string        // the failing step's error class, e.g. http_status
	Classification string        // security, non_security or undetermined
	Confirmed      bool          // a person has confirmed the classification
	StartedAt      time.Time     // the first failed run
	DetectedAt     time.Time     // when the incident was opened
	ResolvedAt     time.Time     // zero while open
	Duration       time.Duration // from start to resolution, or to now while open
	Locations      []string      // probe locations that see the failure
	Cadence        time.Duration // the promised interval between public updates, e.g. 30m
	URL            string        // the incident's public page
}

// Template is one named communication template of a runbook.
type Template struct {
	Name           string // first_update, follow_up, resolution or post_incident_summary
	Classification string // security or non_security
	Text           string // the template source (Go text/template over [Incident])
	Source         string // the runbook file
	Line           int    // the line of its "## Template:" heading
	t              *template.Template
}

// Funcs are the functions templates may call besides text/template's own:
//
//	utc       a time as "2006-01-02 15:04 UTC" (an error for a zero time)
//	duration  a duration as "10h 47m", "47m" or "less than a minute"
//	list      a list as "A", "A and B", "A, B and C" (an error for an empty list)
//	lower     lower case
//	failing   a step's role as what customers see fail, e.g. "signing in fails
//	          after the password is entered" ("" for other or no role)
func Funcs() template.FuncMap {
	return template.FuncMap{
		"utc":      formatUTC,
		"duration": formatDuration,
		"list":     formatList,
		"lower":    strings.ToLower,
		"failing":  Failing,
	}
}

// Failing returns what customers see fail when a step of the given role
// (probes.Role) fails, in words that name no step, probe or class and start
// in lower case, or "" for other, no role or a role it does not know: a
// template then says what is affected by its components instead.
func Failing(role string) string {
	switch role {
	case "login_page":
		return "the sign-in page does not load"
	case "password":
		return "signing in fails after the password is entered"
	case "second_factor":
		return "signing in fails at two-step verification"
	case "recovery_code":
		return "signing in with a recovery code fails"
	case "remembered_device":
		return "signing in on a remembered device fails"
	case "signed_in":
		return "pages after signing in do not load"
	case "logout":
		return "signing out fails"
	}
	return ""
}

// Placeholders returns the placeholders left in text, in order, each once:
// bracketed prose such as "[One sentence on the cause, once you know it.]"
// or a word in capitals such as "[NAME, DATE]", where a person writes what
// only they know (a cause, a remedy). A prefilled update that still has one
// must not be posted; the incidents store refuses it by the same rule. A
// markdown link ("[text](url)", "[text][ref]", "[ref]: url"), a task box
// ("[ ]", "[x]"), a short "[1]" and anything in code are not placeholders.
func Placeholders(text string) []string {
	var out []string
	for _, line := range proseLines(text) {
		for i := 0; i < len(line); i++ {
			if line[i] != '[' || i > 0 && (line[i-1] == ']' || line[i-1] == '\\') {
				continue
			}
			end := strings.IndexAny(line[i+1:], "[]")
			if end < 0 {
				break
			}
			end += i + 1
			if line[end] == '[' { // a nested or unclosed bracket: start again from the inner one
				i = end - 1
				continue
			}
			if end+1 < len(line) && strings.ContainsRune("([:", rune(line[end+1])) {
				i = end // a link or a reference
				continue
			}
			if ph := line[i : end+1]; looksLikePlaceholder(strings.TrimSpace(line[i+1:end])) && !slices.Contains(out, ph) {
				out = append(out, ph)
			}
			i = end
		}
	}
	return out
}

// looksLikePlaceholder: prose (a space inside) or a word in capitals.
func looksLikePlaceholder(inner string) bool {
	if len([]rune(inner)) < 2 {
		return false
	}
	if strings.ContainsFunc(inner, unicode.IsSpace) {
		return true
	}
	run := 0
	for _, r := range inner {
		if !unicode.IsUpper(r) {
			run = 0
			continue
		}
		if run++; run >= 2 {
			return true
		}
	}
	return false
}

// proseLines returns the lines of markdown text outside fenced and indented
// code blocks, with inline code spans removed.
func proseLines(text string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced || strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			continue
		}
		var b strings.Builder
		inCode := false
		for _, r := range line {
			if r == '`' {
				inCode = !inCode
				continue
			}
			if !inCode {
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}

func formatUTC(t time.Time) (string, error) {
	if t.IsZero() {
		return "", errors.New("the time is not set")
	}
	return t.UTC().Format("2006-01-02 15:04 UTC"), nil
}

func formatDuration(d time.Duration) (string, error) {
	if d < 0 {
		return "", fmt.Errorf("negative duration %s", d)
	}
	if d < time.Minute {
		return "less than a minute", nil
	}
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m), nil
	case m == 0:
		return fmt.Sprintf("%dh", h), nil
	}
	return fmt.Sprintf("%dh %dm", h, m), nil
}

func formatList(items []string) (string, error) {
	switch len(items) {
	case 0:
		return "", errors.New("the list is empty")
	case 1:
		return items[0], nil
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1], nil
}

// newTemplate parses a template section. heading is the file line of its
// "## Template:" heading; the text starts on the next line.
func newTemplate(source, name, class, text string, heading int) (Template, *Problem) {
	tp := Template{Name: name, Classification: class, Text: strings.TrimSpace(text), Source: source, Line: heading}
	if tp.Text == "" {
		return tp, &Problem{File: source, Line: heading, Msg: fmt.Sprintf("template %s (%s) is empty", name, class)}
	}
	t, err := template.New(tp.key()).Funcs(Funcs()).Option("missingkey=error").Parse(text)
	if err != nil {
		line, msg := tp.explain(err)
		return tp, &Problem{File: source, Line: line, Msg: msg}
	}
	tp.t = t
	return tp, nil
}

// key names the parsed template; it has no colon, so errors can be split.
func (tp Template) key() string { return tp.Name + "." + tp.Classification }

// Render renders the template with in. The result is trimmed markdown. An
// error names the file and line of the template and what went wrong.
func (tp Template) Render(in Incident) (string, error) {
	if tp.t == nil {
		return "", &RenderError{File: tp.Source, Line: tp.Line, Msg: fmt.Sprintf("template %s (%s) was not parsed", tp.Name, tp.Classification)}
	}
	var b strings.Builder
	if err := tp.t.Execute(&b, in); err != nil {
		line, msg := tp.explain(err)
		return "", &RenderError{File: tp.Source, Line: line, Msg: msg, Err: err}
	}
	return strings.TrimSpace(b.String()), nil
}

// RenderError is a template that failed to render, at a line of its file.
type RenderError struct {
	File string
	Line int
	Msg  string // names the template and what went wrong
	Err  error  // text/template's error
}

func (e *RenderError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Unwrap returns text/template's error.
func (e *RenderError) Unwrap() error { return e.Err }

// templateErr matches text/template's errors: "template: NAME:LINE[:COL]: MSG".
var templateErr = regexp.MustCompile(`^template: [^:]*:(\d+)(?::\d+)?: (?:executing "[^"]*" )?(.*)$`)

// explain turns a text/template error into the file line it concerns and a
// plain message that names the template.
func (tp Template) explain(err error) (int, string) {
	msg := err.Error()
	line := tp.Line
	if m := templateErr.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		line, msg = tp.Line+n, m[2]
	}
	return line, fmt.Sprintf("template %s (%s): %s", tp.Name, tp.Classification, msg)
}

// Template returns the runbook's template name for an incident of the given
// classification. An undetermined incident gets the security template: those
// are never published automatically, so a person reviews the words first.
func (rb Runbook) Template(name, classification string) (Template, bool) {
	if classification != NonSecurity {
		classification = Security
	}
	for _, t := range rb.Templates {
		if t.Name == name && t.Classification == classification {
			return t, true
		}
	}
	return Template{}, false
}

// Render renders the runbook's template name for in, chosen by in.Classification.
func (rb Runbook) Render(name string, in Incident) (string, error) {
	t, ok := rb.Template(name, in.Classification)
	if !ok {
		return "", fmt.Errorf("runbook %s has no template %s for %s incidents", rb.ID, name, in.Classification)
	}
	return t.Render(in)
}

// SampleIncident is a realistic incident for previews and for linting
// templates: the login outage of the events store, eleven hours long, open
// (resolved false) or resolved, of the given classification.
func SampleIncident(classification string, resolved bool) Incident {
	start := time.Date(2025, 3, 4, 8, 12, 0, 0, time.UTC)
	in := Incident{
		ID:             "inc_42",
		Title:          "Customers cannot log in",
		Status:         "investigating",
		Components:     []string{"Login", "Two-step authentication"},
		Probe:          "login",
		Step:           "password",
		Role:           "password",
		ErrorClass:     "http_status",
		Classification: classification,
		StartedAt:      start,
		DetectedAt:     start.Add(90 * time.Second),
		Duration:       47 * time.Minute,
		Locations:      []string{"eu-west", "us-east"},
		Cadence:        30 * time.Minute,
		URL:            "https://status.example.com/incidents/inc_42",
	}
	if resolved {
		in.Status = "resolved"
		in.Duration = 10*time.Hour + 47*time.Minute
		in.ResolvedAt = start.Add(in.Duration)
	}
	return in
}
