package runbooks

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Known is what the configuration defines, for checking runbooks' match
// fields and for the coverage report. An empty list is not checked (no
// configuration to check against).
type Known struct {
	Probes     []string
	Steps      []string // step names across all probes
	Components []string
	Flows      []FlowStep // every step of every configured probe, for [Uncovered]
}

// FlowStep is one step of a configured probe as the coverage report sees it:
// where it is, what it means, and what can go wrong there.
type FlowStep struct {
	Probe      string
	Step       string   // "" for the TLS check that runs before the steps of an https target
	Role       string   // the step's role (probes.Role); "" means other
	Signals    bool     // the step has an expectation with a security signal
	Components []string // the components a failure of the step affects
}

// Classes returns the error classes a failure of s can have: the
// availability classes and rate_limited at any step; totp_rejected and
// code_window_taken where a one-time code is sent (second_factor);
// security_check where the step checks a security signal; tls and
// cert_expired at the TLS check (Step "").
func (s FlowStep) Classes() []string {
	if s.Step == "" {
		return []string{"tls", "cert_expired"}
	}
	out := slices.Clone(availabilityClasses)
	if s.Role == "second_factor" {
		out = append(out, "totp_rejected", "code_window_taken")
	}
	out = append(out, "rate_limited")
	if s.Signals {
		out = append(out, "security_check")
	}
	return out
}

// Lint checks the built-in runbooks and the runbooks in dir ("" for the
// built-ins only) and returns every problem, in file and line order:
// front matter (unknown keys, required fields, values, roles), headings and
// steps, template syntax, duplicate ids, match fields that name a probe, step
// or component the configuration (known) does not have, and that every
// template renders with a sample incident, open and resolved, with the
// classification confirmed and not, and says only what customers may read
// (see [lintRender]).
//
// Lint does not report which failures no runbook covers: that is [Uncovered],
// a warning.
func Lint(dir string, known Known) []Problem {
	builtins, ps := parseBuiltins()
	for _, f := range builtins {
		ps = append(ps, lintKnown(f, known)...)
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

// lintKnown checks a runbook's match fields against the configuration. A
// runbook keyed on names the configuration does not use never attaches;
// roles fit any configuration, so they are what the message suggests.
func lintKnown(f *file, known Known) []Problem {
	var ps []Problem
	m := f.rb.Match
	misses, names := 0, 0
	check := func(key, what string, values, configured []string) {
		if len(configured) == 0 {
			return
		}
		for i, v := range values {
			names++
			if matchesAny(v, configured) {
				continue
			}
			misses++
			line, _ := f.src.Pos(fmt.Sprintf("$.match.%s[%d]", key, i))
			ps = append(ps, Problem{File: f.rb.Source, Line: f.fmStart + line,
				Msg: fmt.Sprintf("match.%s: no %s %q in the configuration (it has %s): a failure there never attaches this runbook; match.roles fits any configuration",
					key, what, v, quoteList(configured))})
		}
	}
	check("probes", "probe", m.Probes, known.Probes)
	check("steps", "step", m.Steps, known.Steps)
	check("components", "component", m.Components, known.Components)
	if names > 0 && misses == names && len(m.Roles) == 0 {
		line, _ := f.src.Pos("$.match")
		ps = append(ps, Problem{File: f.rb.Source, Line: f.fmStart + line,
			Msg: "match names no probe, step or component of the configuration, so this runbook never attaches: match on roles (match.roles) instead, or on the configuration's names"})
	}
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

// recoveryAdvice is text about recovery codes, which only a target that
// offers them may give.
var recoveryAdvice = regexp.MustCompile(`(?i)recovery\s+codes?`)

// Names that lintRender gives the sample incident's probe, step and
// location: unlike any prose, so that finding one in a rendered template
// means the template printed it.
const (
	lintProbe    = "probe-q7x"
	lintStep     = "step-q7x"
	lintLocation = "location-q7x"
)

// internalName finds the names customers must never read: the sample's
// probe, step and location, and the error classes and roles that are not
// also plain words.
var internalName = regexp.MustCompile(`(?i)probe-q7x|step-q7x|location-q7x|\b(?:http_status|totp_rejected|cert_expired|rate_limited|code_window_taken|security_check|non_security|login_page|second_factor|recovery_code|remembered_device|signed_in)\b`)

// lintRender renders every template with sample incidents: open (first
// update, follow-up) or resolved (resolution, summary), confirmed and not,
// with each role and error class the runbook matches on, the target offering
// recovery codes and not. Every template is text for customers, so it must
// render, and must not:
//   - say "not a security incident" or "no data was compromised" before a
//     person confirms the classification;
//   - name the failing probe, step or location, an error class or a role;
//   - mention recovery codes when the target offers none (outside
//     {{if .RecoveryCodes}}), unless the runbook is for the recovery_code role;
//
// and the non-security first update, which is published as it renders, must
// leave no [placeholder] for a person to fill in.
func lintRender(rb Runbook) []Problem {
	var ps []Problem
	for _, t := range rb.Templates {
		if t.t == nil {
			continue // its parse error is already reported
		}
		seen := map[string]bool{}
		problem := func(line int, msg string) {
			if !seen[msg] {
				seen[msg] = true
				ps = append(ps, Problem{File: rb.Source, Line: line, Msg: msg})
			}
		}
		what := fmt.Sprintf("template %s (%s)", t.Name, t.Classification)
	variants:
		for _, in := range lintSamples(rb, t) {
			out, err := t.Render(in)
			if err != nil {
				line, msg := t.Line, err.Error()
				var re *RenderError
				if errors.As(err, &re) {
					line, msg = re.Line, re.Msg
				}
				problem(line, msg)
				break variants
			}
			if claim := unconfirmedClaim.FindString(out); claim != "" && !in.Confirmed {
				problem(t.Line, fmt.Sprintf("%s says %q before a person has confirmed the classification: put it inside {{if .Confirmed}} ... {{end}}", what, claim))
			}
			if name := internalName.FindString(out); name != "" {
				problem(t.Line, fmt.Sprintf("%s names %q, an internal name (probe, step, location, error class or role) customers must never read: say what fails in their words, e.g. {{failing .Role}} or {{list .Components}}", what, name))
			}
			if adv := recoveryAdvice.FindString(out); adv != "" && !in.RecoveryCodes {
				problem(t.Line, fmt.Sprintf("%s mentions %q although the target may offer none: put that advice inside {{if .RecoveryCodes}} ... {{end}}", what, adv))
			}
			if t.Name == FirstUpdate && t.Classification == NonSecurity {
				if phs := Placeholders(out); len(phs) > 0 {
					problem(t.Line, fmt.Sprintf("%s is published automatically as it renders, so it must not leave a placeholder such as %s for a person to fill in", what, phs[0]))
				}
			}
		}
	}
	return ps
}

// lintSamples returns the incidents lintRender renders t with.
func lintSamples(rb Runbook, t Template) []Incident {
	resolved := t.Name == Resolution || t.Name == PostIncidentSummary
	// Vary only what the template reads: the rest renders the same.
	rs := []string{"password"}
	if strings.Contains(t.Text, ".Role") {
		rs = rb.Match.Roles
		if len(rs) == 0 {
			rs = []string{"password", "other"}
		}
	}
	classes := []string{"http_status"}
	if strings.Contains(t.Text, ".ErrorClass") && len(rb.Match.ErrorClasses) > 0 {
		classes = rb.Match.ErrorClasses
	}
	// A recovery code fails only where the target offers them.
	recovery := []bool{false}
	if strings.Contains(t.Text, ".RecoveryCodes") {
		recovery = []bool{false, true}
	}
	if slices.Contains(rb.Match.Roles, "recovery_code") {
		recovery = []bool{true}
	}
	var out []Incident
	for _, confirmed := range []bool{false, true} {
		for _, role := range rs {
			for _, class := range classes {
				for _, rc := range recovery {
					in := SampleIncident(t.Classification, resolved)
					in.Probe, in.Step, in.Locations = lintProbe, lintStep, []string{lintLocation}
					in.Role, in.ErrorClass, in.RecoveryCodes, in.Confirmed = role, class, rc, confirmed
					out = append(out, in)
				}
			}
		}
	}
	return out
}

// Uncovered reports, for the configuration in known, each failure (a role
// failing with an error class) that no runbook of set covers, once per role
// and class, naming the first probe and step where it can happen. Its
// problems are warnings: an uncovered failure still opens an incident and
// the publication policy still speaks, but on-call gets no checklist for it.
//
// A failure is covered when a runbook fits it (see [Match], with the
// components the step affects and the classification the class implies:
// security for tls and security_check, non_security otherwise) on more than
// its classification. A general runbook that fits every non-security
// incident (long-outage communication) covers nothing in particular. A
// security failure is covered by any runbook that fits it: the security
// runbook applies whatever failed.
func Uncovered(set []Runbook, known Known) []Problem {
	type key struct{ role, class string }
	reported := map[key]bool{}
	var ps []Problem
	for _, fs := range known.Flows {
		role := fs.Role
		if role == "" {
			role = "other"
		}
		for _, class := range fs.Classes() {
			k := key{role, class}
			if reported[k] {
				continue
			}
			q := Query{Roles: []string{role}, ErrorClasses: []string{class}, Probes: []string{fs.Probe},
				Components: fs.Components, Classification: NonSecurity}
			if fs.Step != "" {
				q.Steps = []string{fs.Step}
			}
			if slices.Contains(securityClasses, class) {
				q.Classification = Security
			}
			if covered(set, q) {
				continue
			}
			reported[k] = true
			where := "step " + fs.Step
			if fs.Step == "" {
				where = "the TLS check before its steps"
			}
			ps = append(ps, Problem{File: "runbooks", Msg: fmt.Sprintf("no runbook covers role %s failing with class %s (probe %s, %s)", role, class, fs.Probe, where)})
		}
	}
	return ps
}

func covered(set []Runbook, q Query) bool {
	for _, m := range Match(set, q) {
		if q.Classification == Security || len(m.Reasons) > 1 || m.Match.Classification == "" {
			return true
		}
	}
	return false
}
