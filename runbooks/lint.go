package runbooks

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Known is what the configuration defines, for checking runbooks' match
// fields. An empty list is not checked (no configuration to check against).
type Known struct {
	Probes     []string
	Steps      []string // step names across all probes
	Components []string
}

// Lint checks the built-in runbooks and the runbooks in dir ("" for the
// built-ins only) and returns every problem, in file and line order:
// front matter (unknown keys, required fields, values), headings and steps,
// template syntax, duplicate ids, and that every template renders with a
// sample incident, open and resolved, with the classification confirmed and
// not, without claiming "not a security incident" before a person confirms.
// The runbooks in dir also have their match fields checked against known;
// the built-ins are written for any configuration and are not.
func Lint(dir string, known Known) []Problem {
	builtins, ps := parseBuiltins()
	for _, f := range builtins {
		ps = append(ps, lintRender(f.rb)...)
	}
	if dir != "" {
		files, dps := parseDir(dir)
		ps = append(ps, dps...)
		for _, f := range files {
			ps = append(ps, lintKnown(f, known)...)
			ps = append(ps, lintRender(f.rb)...)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return sortProblems(ps)
}

// lintKnown checks a runbook's match fields against the configuration.
func lintKnown(f *file, known Known) []Problem {
	var ps []Problem
	check := func(key, what string, values, names []string) {
		if len(names) == 0 {
			return
		}
		for i, v := range values {
			if matchesAny(v, names) {
				continue
			}
			line, _ := f.src.Pos(fmt.Sprintf("$.match.%s[%d]", key, i))
			ps = append(ps, Problem{File: f.rb.Source, Line: f.fmStart + line,
				Msg: fmt.Sprintf("match.%s: no %s %q in the configuration (it has %s)", key, what, v, quoteList(names))})
		}
	}
	check("probes", "probe", f.rb.Match.Probes, known.Probes)
	check("steps", "step", f.rb.Match.Steps, known.Steps)
	check("components", "component", f.rb.Match.Components, known.Components)
	return ps
}

func matchesAny(v string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(v, n) {
			return true
		}
	}
	return false
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// unconfirmedClaim is what the publication policy allows only after a person
// has confirmed the classification.
var unconfirmedClaim = regexp.MustCompile(`(?i)\bnot\s+a\s+security\s+incident|\bno\s+(?:\w+\s+)?data\s+(?:was|were|has\s+been|have\s+been)\s+(?:compromised|accessed|exposed)`)

// lintRender renders every template with sample incidents: open and resolved,
// confirmed and not.
func lintRender(rb Runbook) []Problem {
	var ps []Problem
	for _, t := range rb.Templates {
		if t.t == nil {
			continue // its parse error is already reported
		}
		// A first update and a follow-up are written while the incident is
		// open; a resolution and a summary once it is resolved.
		resolved := t.Name == Resolution || t.Name == PostIncidentSummary
		for _, confirmed := range []bool{false, true} {
			in := SampleIncident(t.Classification, resolved)
			in.Confirmed = confirmed
			out, err := t.Render(in)
			if err != nil {
				p := Problem{File: rb.Source, Line: t.Line, Msg: err.Error()}
				var re *RenderError
				if errors.As(err, &re) {
					p.Line, p.Msg = re.Line, re.Msg
				}
				ps = append(ps, p)
				break
			}
			if !confirmed {
				if claim := unconfirmedClaim.FindString(out); claim != "" {
					ps = append(ps, Problem{File: rb.Source, Line: t.Line, Msg: fmt.Sprintf(
						"template %s (%s) says %q before a person has confirmed the classification: put it inside {{if .Confirmed}} ... {{end}}",
						t.Name, t.Classification, claim)})
				}
			}
		}
	}
	return ps
}
