package incidents

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/probes"
)

// Defaults of the incident policy.
const (
	DefaultOpenAfter    = 2                // K: consecutive failed runs in a location
	DefaultRecoverAfter = 3                // M: consecutive good runs in every location
	DefaultQuietPeriod  = 10 * time.Minute // monitoring without a failure before resolving
	DefaultCooldown     = 30 * time.Minute // a failure returning this soon reopens
	DefaultCadence      = 30 * time.Minute // longest silence towards customers
	DefaultStaleAfter   = 5 * time.Minute  // a location silent this long stops counting
	DefaultCorrelate    = 2 * time.Minute  // failures that begin this close together are one incident
)

// Limits on what people and configuration may write.
const (
	MaxTitle     = 200
	MaxMessage   = 64 << 10 // bytes of markdown in one update or maintenance
	MaxReason    = 2000
	MaxNote      = 256 << 10 // bytes of one post-incident note version
	MaxTemplate  = 8 << 10
	MaxComponent = 100 // characters of a component name
)

// Config is the incidents part of the configuration: the top-level
// components: and incidents: sections.
type Config struct {
	Components []Component `yaml:"components"`
	Policy     Policy      `yaml:"incidents"`
}

// Component is one thing customers see a status for, and how probe failures
// map onto it:
//
//	components:
//	  - name: Login
//	    group: Sign-in
//	    probes: [login, login-remembered]   # slow runs of these degrade it
//	    steps: [login_page, password]       # a failure at these steps affects it
//	  - name: Two-step authentication
//	    roles: [second_factor, recovery_code] # a failure at a step with these roles, in any probe
//
// A step is written bare (any probe's step of that name) or as probe/step.
// Roles are what steps mean (role: in a probe's steps), so that a component
// follows the flow whatever its steps are called. A failure at a step that
// no component names, by step or by role, affects the components that list
// its probe.
type Component struct {
	Name        string   `yaml:"name"`
	Group       string   `yaml:"group"`
	Description string   `yaml:"description"`
	Probes      []string `yaml:"probes"`
	Steps       []string `yaml:"steps"`
	// Roles are step roles (probes.Role) whose failure affects it, in any probe.
	Roles []string `yaml:"roles"`
}

// ID returns the component's stable id: its name in lower case with runs of
// other characters than letters and digits turned into '-'
// ("Two-step authentication" → "two-step-authentication").
func (c Component) ID() string { return ComponentID(c.Name) }

// ComponentID returns the stable id of the component named name.
func ComponentID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}

// Policy is the incidents: section: when the detector opens and closes
// incidents, and what is published.
type Policy struct {
	// OpenAfter is K: a location counts as failing after K consecutive failed runs.
	OpenAfter int `yaml:"open_after"`
	// Quorum is Q: an incident opens when at least Q of a probe's locations
	// are failing. 0 means a majority.
	Quorum int `yaml:"quorum"`
	// RecoverAfter is M: the incident moves to monitoring once every location
	// has had M consecutive good runs (and the probe's latency marks clear the same way).
	RecoverAfter int `yaml:"recover_after"`
	// QuietPeriod is how long an incident stays in monitoring without a
	// failure before it is resolved (default 10m). 0 resolves it as soon as
	// every location has passed recover_after runs. Only non-security
	// incidents are resolved automatically.
	QuietPeriod *config.Duration `yaml:"quiet_period"`
	// Cooldown: the same failure (probe, step role and error class)
	// returning within this time after resolution reopens the incident
	// instead of opening a new one (default 30m). 0 never reopens.
	Cooldown *config.Duration `yaml:"cooldown"`
	// Cadence is the longest an open incident may go without a public update
	// before on-call is reminded (and again at every cadence).
	Cadence config.Duration `yaml:"cadence"`
	// CorrelateWithin: a probe failure on other components that began within
	// this time of an open automatic incident's first failure, with the
	// same classification, joins that incident instead of opening another
	// (one fault breaking several steps is one incident). 0 turns it off.
	CorrelateWithin *config.Duration `yaml:"correlate_within"`
	// StaleAfter: a location that has not reported for this long no longer
	// counts towards a probe's locations.
	StaleAfter config.Duration `yaml:"stale_after"`
	// AutoPublish says whether a non-security incident's first update is
	// published at once, and its automatic moves to monitoring and resolved
	// posted as public updates (default true). Security incidents never are.
	AutoPublish *bool `yaml:"auto_publish"`
	// RecoveryCodes says whether the target offers recovery codes, so that
	// automatic texts may advise customers to sign in with one while the
	// two-step code fails. Unset, it is true when a configured probe has a
	// step with role recovery_code.
	RecoveryCodes *bool `yaml:"recovery_codes"`
	// Templates are the texts of automatic updates.
	Templates Templates `yaml:"templates"`
}

// Templates are Go text/templates over [TemplateData] (functions: utc,
// duration, list, lower, sentence). They must not claim "not a security
// incident" or "no data was compromised": only a person may say that.
// Public texts should speak of what customers see (.Problem, .Recovered,
// .Past, .Components), never of steps, probes, locations or error classes.
type Templates struct {
	Title       string `yaml:"title"`
	FirstUpdate string `yaml:"first_update"`
	// Monitoring is posted when the probes pass again (monitoring).
	Monitoring string `yaml:"monitoring"`
	// Resolved is posted when the quiet period ends (resolved).
	Resolved string `yaml:"resolved"`
}

// The default templates, used when the configuration gives none. They are
// written from the failing step's role and the components customers see.
const (
	DefaultTitleTemplate       = `{{if .Components}}{{list .Components}}{{else}}Sign-in{{end}}: {{if eq .Classification "security"}}suspected security problem{{else}}{{.Headline}}{{end}}`
	DefaultFirstUpdateTemplate = `We are investigating a problem{{if .Components}} affecting **{{list .Components}}**{{end}}.

Since {{utc .StartedAt}}, {{.Problem}}.{{if .Advice}} {{.Advice}}{{end}}

We have no indication that this is a security incident. We will post an update within {{duration .Cadence}}.`
	DefaultMonitoringTemplate = `{{sentence .Recovered}} since {{utc .EndedAt}}. We are monitoring{{if .Components}} **{{list .Components}}**{{end}} to make sure it stays that way, and will post an update within {{duration .Cadence}}.`
	DefaultResolvedTemplate   = `{{sentence .Recovered}} since {{utc .EndedAt}}. Between {{utc .StartedAt}} and {{utc .EndedAt}} ({{duration .Duration}}), {{.Past}}.

This incident is resolved.`
)

// WithDefaults returns p with every unset value filled in.
func (p Policy) WithDefaults() Policy {
	if p.OpenAfter == 0 {
		p.OpenAfter = DefaultOpenAfter
	}
	if p.RecoverAfter == 0 {
		p.RecoverAfter = DefaultRecoverAfter
	}
	if p.QuietPeriod == nil {
		d := config.Dur(DefaultQuietPeriod)
		p.QuietPeriod = &d
	}
	if p.Cooldown == nil {
		d := config.Dur(DefaultCooldown)
		p.Cooldown = &d
	}
	p.Cadence = config.Dur(p.Cadence.Or(DefaultCadence))
	p.StaleAfter = config.Dur(p.StaleAfter.Or(DefaultStaleAfter))
	if p.CorrelateWithin == nil {
		d := config.Dur(DefaultCorrelate)
		p.CorrelateWithin = &d
	}
	if p.AutoPublish == nil {
		t := true
		p.AutoPublish = &t
	}
	if p.Templates.Title == "" {
		p.Templates.Title = DefaultTitleTemplate
	}
	if p.Templates.FirstUpdate == "" {
		p.Templates.FirstUpdate = DefaultFirstUpdateTemplate
	}
	if p.Templates.Monitoring == "" {
		p.Templates.Monitoring = DefaultMonitoringTemplate
	}
	if p.Templates.Resolved == "" {
		p.Templates.Resolved = DefaultResolvedTemplate
	}
	return p
}

// quorum returns how many of n locations must fail.
func (p Policy) quorum(n int) int {
	if n <= 0 {
		return 1
	}
	q := p.Quorum
	if q <= 0 {
		q = n/2 + 1
	}
	return min(q, n)
}

// Check reports every problem in cfg at its YAML path under root (usually
// "$": "$.components[1].steps[0]", "$.incidents.cadence"). probeSteps, when
// not nil, maps each configured probe to its step names, so that components
// naming an unknown probe or step are reported.
func Check(c *config.Checker, root string, cfg *Config, probeSteps map[string][]string) {
	if root == "" {
		root = "$"
	}
	cpath := root + ".components"
	seen := map[string]int{}
	for i, comp := range cfg.Components {
		p := fmt.Sprintf("%s[%d]", cpath, i)
		name := strings.TrimSpace(comp.Name)
		switch {
		case name == "":
			c.Errorf(p, "component needs a name")
		case len([]rune(name)) > MaxComponent:
			c.Errorf(p+".name", "component name is %d characters; the limit is %d", len([]rune(name)), MaxComponent)
		case ComponentID(name) == "":
			c.Errorf(p+".name", "component name %q needs at least one letter or digit", name)
		}
		if id := ComponentID(name); id != "" {
			if first, dup := seen[id]; dup {
				c.Errorf(p+".name", "component %q has the same id %q as components[%d]", name, id, first)
			} else {
				seen[id] = i
			}
		}
		for j, pr := range comp.Probes {
			if probeSteps == nil {
				break
			}
			if _, ok := probeSteps[pr]; !ok {
				c.Errorf(fmt.Sprintf("%s.probes[%d]", p, j), "component %q names probe %q, which is not configured (probes: %s)", name, pr, strings.Join(sortedKeys(probeSteps), ", "))
			}
		}
		for j, role := range comp.Roles {
			if !probes.Role(role).Valid() {
				names := make([]string, len(probes.Roles))
				for k, r := range probes.Roles {
					names[k] = string(r)
				}
				c.Errorf(fmt.Sprintf("%s.roles[%d]", p, j), "component %q names role %q, which is not a step role (roles: %s)", name, role, strings.Join(names, ", "))
			}
		}
		for j, st := range comp.Steps {
			sp := fmt.Sprintf("%s.steps[%d]", p, j)
			pr, step, qualified := strings.Cut(st, "/")
			if !qualified {
				pr, step = "", st
			}
			if strings.TrimSpace(step) == "" {
				c.Errorf(sp, "step %q needs a name (write step or probe/step)", st)
				continue
			}
			if probeSteps == nil {
				continue
			}
			if qualified {
				steps, ok := probeSteps[pr]
				switch {
				case !ok:
					c.Errorf(sp, "step %q names probe %q, which is not configured", st, pr)
				case !slices.Contains(steps, step) && step != "tls":
					c.Errorf(sp, "probe %q has no step %q (steps: %s)", pr, step, strings.Join(steps, ", "))
				}
				continue
			}
			found := step == "tls"
			for _, steps := range probeSteps {
				if slices.Contains(steps, step) {
					found = true
				}
			}
			if !found {
				c.Errorf(sp, "no configured probe has a step %q", step)
			}
		}
	}

	ipath := root + ".incidents"
	pol := cfg.Policy
	intIn := func(field string, v, lo, hi int) {
		if v != 0 && (v < lo || v > hi) {
			c.Errorf(ipath+"."+field, "%s is %d; it must be between %d and %d", field, v, lo, hi)
		}
	}
	intIn("open_after", pol.OpenAfter, 1, 100)
	intIn("recover_after", pol.RecoverAfter, 1, 100)
	intIn("quorum", pol.Quorum, 1, 100)
	// quiet_period and cooldown may be 0 (and then mean 0, as
	// correlate_within does); cadence and stale_after have minimums, so a 0
	// written there is refused rather than silently taken for the default.
	durMin := func(field string, d config.Duration, lo time.Duration) {
		if d.D < lo {
			c.Errorf(ipath+"."+field, "%s is %s; it must be at least %s", field, d.D, lo)
		}
	}
	written := func(field string) bool { return c.Source() != nil && c.Source().Has(ipath+"."+field) }
	if pol.Cadence.D != 0 || written("cadence") {
		durMin("cadence", pol.Cadence, time.Minute)
	}
	if pol.StaleAfter.D != 0 || written("stale_after") {
		durMin("stale_after", pol.StaleAfter, 10*time.Second)
	}
	for field, text := range map[string]string{"title": pol.Templates.Title, "first_update": pol.Templates.FirstUpdate,
		"monitoring": pol.Templates.Monitoring, "resolved": pol.Templates.Resolved} {
		if text == "" {
			continue
		}
		if err := checkTemplate(field, text); err != nil {
			c.Errorf(ipath+".templates."+field, "%v", err)
		}
	}
}

// checkTemplate parses and renders a template with realistic data and
// applies the publication policy's rule on claims.
func checkTemplate(name, text string) error {
	if len(text) > MaxTemplate {
		return fmt.Errorf("template %s is %d bytes; the limit is %d", name, len(text), MaxTemplate)
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs()).Parse(text)
	if err != nil {
		return fmt.Errorf("template %s: %v", name, strings.TrimPrefix(err.Error(), "template: "))
	}
	var b bytes.Buffer
	if err := t.Execute(&b, sampleTemplateData()); err != nil {
		return fmt.Errorf("template %s does not render: %v", name, strings.TrimPrefix(err.Error(), "template: "))
	}
	if claim := unconfirmedClaim(b.String()); claim != "" {
		return fmt.Errorf("template %s says %q: only a person who confirmed the classification may say that; write \"we have no indication that this is a security incident\"", name, claim)
	}
	return nil
}

func sampleTemplateData() TemplateData {
	start := time.Date(2025, 3, 4, 8, 12, 0, 0, time.UTC)
	return TemplateData{
		Title: "Login: failures", Components: []string{"Login"}, Probe: "login", Step: "password",
		ErrorClass: "http_status", What: "HTTP 500 errors", Classification: string(NonSecurity),
		StartedAt: start, DetectedAt: start.Add(time.Minute), Locations: []string{"eu-west", "us-east"},
		Cadence: DefaultCadence, Role: string(probes.RolePassword), EndedAt: start.Add(47 * time.Minute),
	}.withWords()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// componentMap answers which components a probe's failure affects.
type componentMap struct {
	order   []string            // component names in configuration order
	byStep  map[string][]string // "step" or "probe/step" → names
	byRole  map[string][]string // step role → names
	byProbe map[string][]string // probe → names
}

func newComponentMap(cs []Component) componentMap {
	m := componentMap{byStep: map[string][]string{}, byRole: map[string][]string{}, byProbe: map[string][]string{}}
	for _, c := range cs {
		m.order = append(m.order, c.Name)
		for _, s := range c.Steps {
			m.byStep[s] = appendUnique(m.byStep[s], c.Name)
		}
		for _, r := range c.Roles {
			m.byRole[r] = appendUnique(m.byRole[r], c.Name)
		}
		for _, p := range c.Probes {
			m.byProbe[p] = appendUnique(m.byProbe[p], c.Name)
		}
	}
	return m
}

// forStep returns the components a failure of probe at step, whose role
// is role, affects, in configuration order: those naming the step or its
// role, else those naming the probe.
func (m componentMap) forStep(probe, step, role string) []string {
	var names []string
	names = append(names, m.byStep[probe+"/"+step]...)
	names = appendUnique(names, m.byStep[step]...)
	if role != "" {
		names = appendUnique(names, m.byRole[role]...)
	}
	if len(names) == 0 {
		names = append(names, m.byProbe[probe]...)
	}
	return m.sorted(names)
}

// forProbe returns the components a probe watches as a whole (for latency).
func (m componentMap) forProbe(probe string) []string {
	return m.sorted(append([]string(nil), m.byProbe[probe]...))
}

func (m componentMap) sorted(names []string) []string {
	idx := func(n string) int { return slices.Index(m.order, n) }
	slices.SortStableFunc(names, func(a, b string) int { return idx(a) - idx(b) })
	return names
}

func appendUnique(list []string, v ...string) []string {
	for _, x := range v {
		if !slices.Contains(list, x) {
			list = append(list, x)
		}
	}
	return list
}
