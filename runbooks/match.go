package runbooks

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Query is what an incident looks like now: everything failing across its
// probes and locations.
type Query struct {
	Components     []string // affected components
	Probes         []string // failing probes
	Steps          []string // failing steps
	Roles          []string // the failing steps' roles (probes.Role values, e.g. second_factor)
	ErrorClasses   []string // error classes of the failing runs
	Classification string   // security, non_security or undetermined
	Messages       []string // the failing runs' (redacted) messages
}

// Matched is a runbook that fits a query, how well, and why. (It is not
// called Match because that is the function that finds them.)
type Matched struct {
	Runbook
	Score   int
	Reasons []string // one plain reason per matched field, e.g. "step password failing"
}

// Points each matched field of a runbook's criteria scores.
const (
	PointsRoles           = 4
	PointsSteps           = 4
	PointsErrorClasses    = 3
	PointsMessageContains = 3
	PointsProbes          = 2
	PointsComponents      = 2
	PointsClassification  = 1
)

// Match returns the runbooks of set that fit q, best first.
//
// A runbook's criteria fall in two groups: where it fails (roles, steps,
// probes, components) and what the failure is (error_classes,
// message_contains). A field matches when the query shares at least one
// value with it (names compared without regard to case; message_contains as
// case-insensitive substrings of any message). A runbook fits when, for each
// group it uses, at least one field of that group matches, and its
// classification, when it sets one, equals the query's. A runbook that sets
// only a classification fits on it alone (general runbooks such as
// "communicating during a long outage").
//
// Roles are the key that fits any configuration: they say what the failing
// step means, whatever the probe's author named it. Steps, probes and
// components are for runbooks written for one configuration.
//
// A query whose every error class is a probe problem (rate_limited,
// code_window_taken) is about the probe, not about what customers get: only
// runbooks whose error_classes name a probe problem fit it, so that no
// runbook written for customers' failures offers its words.
//
// The score is the sum of the matched fields' points (Points*). Ties are broken
// by severity (critical, major, minor), then by id, so the order is the same
// on every replica.
func Match(set []Runbook, q Query) []Matched {
	var out []Matched
	for _, rb := range set {
		if m, ok := match(rb, q); ok {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if ra, rb := severityRank(a.Severity), severityRank(b.Severity); ra != rb {
			return ra < rb
		}
		return a.ID < b.ID
	})
	return out
}

func match(rb Runbook, q Query) (Matched, bool) {
	c := rb.Match
	if c.empty() {
		return Matched{}, false
	}
	if c.Classification != "" && c.Classification != q.Classification {
		return Matched{}, false
	}
	if probeProblemsOnly(q.ErrorClasses) && len(common(c.ErrorClasses, probeProblemClasses)) == 0 {
		return Matched{}, false // the probe's problem, not the customers'
	}
	m := Matched{Runbook: rb}
	// field scores one criterion and reports whether it is set and whether it matched.
	field := func(hit []string, set bool, points int, reason string) (bool, bool) {
		if !set || len(hit) == 0 {
			return set, false
		}
		m.Score += points
		m.Reasons = append(m.Reasons, fmt.Sprintf(reason, strings.Join(hit, ", ")))
		return true, true
	}
	rolesSet, rolesHit := field(common(c.Roles, q.Roles), len(c.Roles) > 0, PointsRoles, "role %s failing")
	stepsSet, stepsHit := field(common(c.Steps, q.Steps), len(c.Steps) > 0, PointsSteps, "step %s failing")
	classSet, classHit := field(common(c.ErrorClasses, q.ErrorClasses), len(c.ErrorClasses) > 0, PointsErrorClasses, "error class %s")
	msgSet, msgHit := field(inMessages(c.MessageContains, q.Messages), len(c.MessageContains) > 0, PointsMessageContains, "message mentions %s")
	probesSet, probesHit := field(common(c.Probes, q.Probes), len(c.Probes) > 0, PointsProbes, "probe %s failing")
	compSet, compHit := field(common(c.Components, q.Components), len(c.Components) > 0, PointsComponents, "component %s affected")

	if (rolesSet || stepsSet || probesSet || compSet) && !(rolesHit || stepsHit || probesHit || compHit) {
		return Matched{}, false // fails somewhere else
	}
	if (classSet || msgSet) && !(classHit || msgHit) {
		return Matched{}, false // fails in another way
	}
	if c.Classification != "" {
		m.Score += PointsClassification
		m.Reasons = append(m.Reasons, "classification "+c.Classification)
	}
	return m, true
}

// probeProblemsOnly reports whether classes is not empty and every one of
// them is a probe problem.
func probeProblemsOnly(classes []string) bool {
	for _, c := range classes {
		if !slices.Contains(probeProblemClasses, strings.ToLower(c)) {
			return false
		}
	}
	return len(classes) > 0
}

// common returns the values of want that are in have (ignoring case), in
// want's order, as the query spells them.
func common(want, have []string) []string {
	var hit []string
	for _, w := range want {
		for _, h := range have {
			if strings.EqualFold(w, h) {
				if !slices.Contains(hit, h) {
					hit = append(hit, h)
				}
				break
			}
		}
	}
	return hit
}

// inMessages returns the quoted substrings of want found in any message.
func inMessages(want, messages []string) []string {
	var hit []string
	for _, w := range want {
		lw := strings.ToLower(w)
		for _, msg := range messages {
			if lw != "" && strings.Contains(strings.ToLower(msg), lw) {
				hit = append(hit, fmt.Sprintf("%q", w))
				break
			}
		}
	}
	return hit
}

func severityRank(s string) int {
	if i := slices.Index(severities, s); i >= 0 {
		return i
	}
	return len(severities)
}

// BestTemplate returns the first of matches (best first, as [Match] returns
// them) that has the template name for an incident of the given
// classification, and that template. Use it to prefill an update.
func BestTemplate(matches []Matched, name, classification string) (Matched, Template, bool) {
	for _, m := range matches {
		if t, ok := m.Template(name, classification); ok {
			return m, t, true
		}
	}
	return Matched{}, Template{}, false
}
