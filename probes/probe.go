// Package probes runs synthetic probes that walk a whole login path (password,
// two-step code, remembered device, recovery code) as a real browser would,
// and says which step broke, what it answered and what the evidence points to.
//
// A probe is configuration: a named sequence of HTTP steps sharing a cookie
// jar, with assertions, extractions into variables, and templates
// ({{ .csrf }}, {{ totp .seed }}). Each step may declare its role in the
// flow (login_page, password, second_factor, …): what Candor says to
// customers and which runbook applies follow roles, never step names. A
// probe may trust a private CA (tls.ca_file) and give each location its own
// credentials, so that locations probing one target use separate accounts
// (a one-time code is accepted once per account).
//
// [Check] validates probes at their YAML paths and warns where a step's
// shape suggests a role it does not declare, or where runs on one account
// cannot each have their own code window; [Compile] turns one into a [Plan];
// a [Runner] runs a plan and returns a [Result]; a [Scheduler] runs every
// plan once per interval per location across replicas and hands results to
// a [Store] and to a callback.
package probes

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/candorhq/candor/internal/config"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// DefaultLocation is the location of a replica whose configuration names none.
const DefaultLocation = "local"

// Defaults of a probe.
const (
	DefaultInterval     = time.Minute
	DefaultStepTimeout  = 10 * time.Second
	DefaultMaxBody      = 1 << 20 // bytes read from a response; the rest is ignored
	DefaultMaxRedirects = 10
	DefaultWarnDays     = 21
	DefaultCriticalDays = 7
)

// Probe is one synthetic probe as written under "probes:" in the configuration.
type Probe struct {
	Name string `yaml:"name"`
	// Target is the base URL; a step URL that starts with "/" is relative to
	// it. ${ENV} references are expanded.
	Target config.Text `yaml:"target"`
	// Interval between runs (default 1m), Timeout of a whole run (default the
	// interval), Jitter: each replica ticks at a random offset below this
	// after each interval boundary, so that replicas and probes spread out.
	Interval config.Duration `yaml:"interval"`
	Timeout  config.Duration `yaml:"timeout"`
	Jitter   config.Duration `yaml:"jitter"`
	// DegradedAfter: a run whose steps take longer than this in total is
	// "degraded" (0: never).
	DegradedAfter config.Duration `yaml:"degraded_after"`
	// Locations that run this probe; empty means every location. Each is a
	// name, or a [Location] with the vars and secrets used there.
	Locations []Location `yaml:"locations"`
	// Vars are plain variables (${ENV} references are expanded); Secrets are
	// variables that never appear in results, messages or logs.
	Vars    map[string]config.Text   `yaml:"vars"`
	Secrets map[string]config.Secret `yaml:"secrets"`
	// MaxBodyBytes caps what is read of each response (default 1 MiB).
	MaxBodyBytes int64      `yaml:"max_body_bytes"`
	TLS          TLSOptions `yaml:"tls"`
	Steps        []Step     `yaml:"steps"`
}

// LocationNames returns the names of the locations that run p; none means every location.
func (p Probe) LocationNames() []string {
	names := make([]string, 0, len(p.Locations))
	for _, l := range p.Locations {
		names = append(names, l.Name)
	}
	return names
}

// Location is one location that runs a probe: written as its name alone
// (locations: [eu-west, us-east]) or, so that each location signs in with
// its own account, as a mapping whose vars and secrets add to or replace the
// probe's there (locations: [{name: eu-west, secrets: {totp_seed: ${EU_SEED}}}]).
type Location struct {
	Name    string                   `yaml:"name"`
	Vars    map[string]config.Text   `yaml:"vars"`
	Secrets map[string]config.Secret `yaml:"secrets"`
}

// UnmarshalYAML implements yaml.NodeUnmarshaler: a plain name, or a mapping.
func (l *Location) UnmarshalYAML(n ast.Node) error {
	switch v := n.(type) {
	case *ast.StringNode:
		*l = Location{Name: v.Value}
		return nil
	case *ast.TagNode: // "!!str eu-west": the tagged value is what counts
		if v.Value != nil {
			return l.UnmarshalYAML(v.Value)
		}
	case *ast.MappingNode, *ast.MappingValueNode:
		type plain Location // without this method
		var pl plain
		if err := yaml.NodeToValue(n, &pl, yaml.Strict()); err != nil {
			return err
		}
		*l = Location(pl)
		return nil
	}
	return &nodeError{msg: "a location is a name, or a mapping with name, vars and secrets", tk: n.GetToken()}
}

// nodeError is a decoding error at a node, which the configuration checker
// reports at the node's line and column.
type nodeError struct {
	msg string
	tk  *token.Token
}

func (e *nodeError) Error() string                 { return e.msg }
func (e *nodeError) GetMessage() string            { return e.msg }
func (e *nodeError) GetToken() *token.Token        { return e.tk }
func (e *nodeError) FormatError(bool, bool) string { return e.msg }

// TLSOptions configures TLS for an HTTPS target: the check run before the
// steps, and the trust every step of the probe uses.
type TLSOptions struct {
	Skip         bool `yaml:"skip"`
	WarnDays     int  `yaml:"warn_days"`     // degraded below this many days to expiry (default 21)
	CriticalDays int  `yaml:"critical_days"` // failed below this many days (default 7)
	// CAFile is a PEM bundle of certificates trusted for this probe only, in
	// addition to the system's roots (a private CA), so that the rest of
	// Candor (Slack, email) keeps the system's trust.
	CAFile config.Text `yaml:"ca_file"`
	// ServerName is the name sent in SNI and checked against the
	// certificate, when it differs from the target's host.
	ServerName string `yaml:"server_name"`
}

// Step is one HTTP request of a probe.
type Step struct {
	Name string `yaml:"name"`
	// Role says what the step means in the login flow (default other): the
	// words customers read, the runbook that applies and the classification
	// follow it, never the step's name.
	Role   Role   `yaml:"role"`
	Method string `yaml:"method"` // default GET, or POST when a form or JSON body is given
	URL    string `yaml:"url"`
	// Headers, Form values and JSON strings are templates.
	Headers map[string]string `yaml:"headers"`
	Form    map[string]string `yaml:"form"`
	JSON    any               `yaml:"json"`
	// Let sets variables before the request (e.g. a TOTP code to reuse later).
	Let map[string]string `yaml:"let"`
	// NewSession starts this step with an empty cookie jar.
	NewSession bool `yaml:"new_session"`
	// FollowRedirects (default true) up to MaxRedirects (default 10).
	FollowRedirects *bool           `yaml:"follow_redirects"`
	MaxRedirects    int             `yaml:"max_redirects"`
	Timeout         config.Duration `yaml:"timeout"` // default 10s
	Expect          []Expect        `yaml:"expect"`
	Extract         []Extract       `yaml:"extract"`
}

// Expect is one assertion on a step's response. Exactly one of Status, Body,
// URL, Header and Cookie is given. Without any Status assertion a step
// expects a status below 400.
//
// A failing assertion with a Signal is a security finding (class
// security_check) rather than an availability failure — unless the response
// was a server error, which says nothing about security.
type Expect struct {
	Status Statuses     `yaml:"status"`
	Body   *Match       `yaml:"body"`
	URL    *Match       `yaml:"url"`
	Header *Match       `yaml:"header"`
	Cookie *CookieMatch `yaml:"cookie"`
	Signal Signal       `yaml:"signal"`
}

// Match tests a text: the body (or the value at JSON path JSON in it), the
// final URL (Path compares its path), or the header Name.
type Match struct {
	Name        string  `yaml:"name"`
	JSON        string  `yaml:"json"`
	Path        string  `yaml:"path"`
	Equals      *string `yaml:"equals"`
	Contains    string  `yaml:"contains"`
	NotContains string  `yaml:"not_contains"`
	Regex       string  `yaml:"regex"`
	Present     *bool   `yaml:"present"`
}

// CookieMatch tests a cookie set (Set-Cookie) by any response of the step,
// redirects included. Secure is only checked over HTTPS.
type CookieMatch struct {
	Name        string          `yaml:"name"`
	Present     *bool           `yaml:"present"`
	Secure      *bool           `yaml:"secure"`
	HTTPOnly    *bool           `yaml:"http_only"`
	MaxLifetime config.Duration `yaml:"max_lifetime"`
}

// Extract stores a value from the response in variable Var. Exactly one
// source is given: Regex (the first group, or the whole match), FormField
// (an input's value), CSS (Attr of the first match, or its text), JSON (a
// path), Header or Cookie.
type Extract struct {
	Var       string `yaml:"var"`
	Regex     string `yaml:"regex"`
	FormField string `yaml:"form_field"`
	CSS       string `yaml:"css"`
	Attr      string `yaml:"attr"`
	JSON      string `yaml:"json"`
	Header    string `yaml:"header"`
	Cookie    string `yaml:"cookie"`
}

// Statuses is one status code or a list of them.
type Statuses []int

// UnmarshalYAML implements yaml.BytesUnmarshaler.
func (s *Statuses) UnmarshalYAML(b []byte) error {
	var one int
	if err := yaml.Unmarshal(b, &one); err == nil {
		*s = Statuses{one}
		return nil
	}
	var many []int
	if err := yaml.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("status is a number such as 200 or a list such as [200, 302]")
	}
	*s = many
	return nil
}

var knownSignals = []Signal{
	SignalTLSInvalid, SignalWrongPasswordAccepted, SignalWrongCodeAccepted,
	SignalReplayedCodeAccepted, SignalSecondStepSkipped, SignalProtectedPageReachable,
	SignalCookieFlagsWeak,
}

// builtinVars are variables every template may use.
var builtinVars = []string{"target", "location"}

// Check reports every problem with ps at its YAML path (path is where the
// list is, e.g. "$.probes"): undefined variables, unknown template
// functions and roles, bad regexes, JSON paths and CSS selectors, missing
// secrets and CA files, duplicate names. It warns (without failing) where a
// step's shape suggests a role it does not declare, and where the runs on
// one account (one TOTP seed) come more often than its codes change. Decode
// ps with c.Decode(path, &ps) first; secrets that could not be resolved
// were reported then.
func Check(c *config.Checker, path string, ps []Probe) {
	seen := map[string]string{}
	plans := make([]*Plan, len(ps))
	for i, p := range ps {
		pp := fmt.Sprintf("%s[%d]", path, i)
		if p.Name != "" {
			if first, dup := seen[p.Name]; dup {
				c.Errorf(pp+".name", "duplicate probe name %q (first used at %s)", p.Name, first)
			} else {
				seen[p.Name] = pp
			}
		}
		plan, problems := compile(p)
		failed := false
		for _, pr := range problems {
			if pr.warn {
				c.Warnf(pp+pr.path, "%s", pr.msg)
			} else {
				c.Errorf(pp+pr.path, "%s", pr.msg)
				failed = true
			}
		}
		if !failed {
			plans[i] = plan
		}
	}
	checkCodeWindows(c, path, plans)
}

// Compile checks p and prepares it to run. The error lists every problem;
// warnings (see [Check]) do not stop it.
func Compile(p Probe) (*Plan, error) {
	plan, problems := compile(p)
	var msgs []string
	for _, pr := range problems {
		if !pr.warn {
			msgs = append(msgs, fmt.Sprintf("probe %q: %s: %s", p.Name, strings.TrimPrefix(pr.path, "."), pr.msg))
		}
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return plan, nil
}

// problem is an error, or a warning, at a path relative to the probe.
type problem struct {
	path, msg string
	warn      bool
}

// Plan is a compiled probe, ready to run many times, concurrently.
type Plan struct {
	Probe    Probe
	target   *url.URL
	steps    []stepPlan
	base     map[string]string            // target, location (filled per run), vars, secrets
	atLoc    map[string]map[string]string // per location: vars and secrets that replace base's there
	secrets  []string                     // values to redact (every location's), longest first
	interval time.Duration
	timeout  time.Duration
	maxBody  int64
	caCerts  []*x509.Certificate // trusted for this probe besides the roots (tls.ca_file)
	totps    []totpUse           // the {{ totp }} calls of a run, for the one-code-per-window check
}

// totpUse is one {{ totp }} call in a probe's steps.
type totpUse struct {
	seed   string // the variable holding the seed
	period time.Duration
}

// accountAt identifies the account whose codes the seed variable makes
// at location, as the runs' code-window claims do: the seed's value and the
// plain variables (the user name among them) as that location sees them.
// It is "" when the seed has no value there. It holds a secret: never show it.
func (p *Plan) accountAt(location, seed string) string {
	v := p.valueAt(location, seed)
	if v == "" {
		return ""
	}
	plain := map[string]string{}
	for k, val := range p.Probe.Vars {
		plain[k] = string(val)
	}
	for _, l := range p.Probe.Locations {
		if l.Name == location {
			for k, val := range l.Vars {
				plain[k] = string(val)
			}
		}
	}
	var b strings.Builder
	b.WriteString(v)
	for _, k := range sortedKeys(plain) {
		fmt.Fprintf(&b, "\x00%s=%s", k, plain[k])
	}
	return b.String()
}

// valueAt returns the value of variable name when the probe runs at location.
func (p *Plan) valueAt(location, name string) string {
	if v, ok := p.atLoc[location][name]; ok {
		return v
	}
	return p.base[name]
}

// Name returns the probe's name.
func (p *Plan) Name() string { return p.Probe.Name }

// Interval returns the time between runs.
func (p *Plan) Interval() time.Duration { return p.interval }

// Timeout returns the limit on one run.
func (p *Plan) Timeout() time.Duration { return p.timeout }

// RunsAt reports whether the probe runs at location.
func (p *Plan) RunsAt(location string) bool {
	return len(p.Probe.Locations) == 0 || slices.Contains(p.Probe.LocationNames(), location)
}

type kv struct {
	key string
	val tmpl
}

type stepPlan struct {
	Step
	method   string
	url      tmpl
	headers  []kv
	form     []kv
	json     any // the JSON body with tmpl at its string leaves
	let      []kv
	follow   bool
	maxRedir int
	timeout  time.Duration
	expects  []expectPlan
	extracts []extractPlan
	usesHTML bool
	usesJSON bool
}

type expectPlan struct {
	Expect
	equals, contains, notContains tmpl
	hasEquals                     bool
	re                            *regexp.Regexp
	json                          jsonPath
}

type extractPlan struct {
	Extract
	re   *regexp.Regexp
	sel  selector
	json jsonPath
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// compile checks p and builds its plan; problems carry paths relative to the probe.
func compile(p Probe) (*Plan, []problem) {
	var probs []problem
	bad := func(path, format string, args ...any) {
		probs = append(probs, problem{path: path, msg: fmt.Sprintf(format, args...)})
	}
	warn := func(path, format string, args ...any) {
		probs = append(probs, problem{path: path, msg: fmt.Sprintf(format, args...), warn: true})
	}
	plan := &Plan{
		Probe:    p,
		base:     map[string]string{},
		atLoc:    map[string]map[string]string{},
		interval: p.Interval.Or(DefaultInterval),
		maxBody:  p.MaxBodyBytes,
	}
	plan.timeout = p.Timeout.Or(plan.interval)
	if plan.maxBody <= 0 {
		plan.maxBody = DefaultMaxBody
	}
	if p.Name == "" {
		bad(".name", "a probe needs a name")
	} else if strings.ContainsAny(p.Name, " /\t\n") {
		bad(".name", "probe name %q must not contain spaces or slashes (it is used on the command line)", p.Name)
	}
	// A zero written in the file would otherwise silently mean the default.
	if p.Interval.Given() && p.Interval.D == 0 {
		bad(".interval", "an interval of 0 would mean the default (%s): write the interval you mean, at least 1s", DefaultInterval)
	} else if plan.interval < time.Second {
		bad(".interval", "the interval must be at least 1s")
	}
	if p.Timeout.Given() && p.Timeout.D == 0 {
		bad(".timeout", "a timeout of 0 would mean the interval: write the limit you mean, or leave timeout out")
	}
	if plan.timeout > plan.interval {
		bad(".timeout", "the timeout (%s) must not exceed the interval (%s), or runs would overlap", plan.timeout, plan.interval)
	}
	if p.Jitter.D >= plan.interval {
		bad(".jitter", "the jitter (%s) must be shorter than the interval (%s)", p.Jitter.D, plan.interval)
	}
	if p.MaxBodyBytes < 0 {
		bad(".max_body_bytes", "max_body_bytes must be positive")
	}
	if p.TLS.WarnDays < 0 || p.TLS.CriticalDays < 0 {
		bad(".tls", "warn_days and critical_days must be positive")
	}
	if p.TLS.CAFile != "" {
		certs, err := readCAFile(string(p.TLS.CAFile))
		if err != nil {
			bad(".tls.ca_file", "%v", err)
		}
		plan.caCerts = certs
	}
	if sn := p.TLS.ServerName; sn != "" && (strings.ContainsAny(sn, "/: \t") || strings.HasPrefix(sn, ".") || strings.HasSuffix(sn, ".")) {
		bad(".tls.server_name", "server_name %q must be a host name, such as login.example.com (no scheme, port or path)", sn)
	}
	if p.Target != "" {
		target := string(p.Target)
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(".target", "target %q must be an absolute http:// or https:// URL", target)
		} else {
			plan.target = u
			plan.base["target"] = strings.TrimSuffix(target, "/")
		}
	}

	// Variables defined so far, and which of them are secrets.
	defined := map[string]bool{}
	secret := map[string]bool{}
	for _, b := range builtinVars {
		defined[b] = true
	}
	for _, k := range sortedKeys(p.Vars) {
		if !validName(k) {
			bad(".vars."+k, "%q is not a variable name: use letters, digits and _", k)
		}
		if defined[k] {
			bad(".vars."+k, "variable %q is built in; choose another name", k)
		}
		defined[k] = true
		plan.base[k] = string(p.Vars[k])
	}
	for _, k := range sortedKeys(p.Secrets) {
		if !validName(k) {
			bad(".secrets."+k, "%q is not a variable name: use letters, digits and _", k)
		}
		if defined[k] {
			bad(".secrets."+k, "%q is defined twice (vars and secrets share one namespace)", k)
		}
		defined[k] = true
		secret[k] = true
		s := p.Secrets[k]
		if !s.IsSet() {
			bad(".secrets."+k, "secret %q has no value: write ${ENV_VAR} or file:/path", k)
		}
		plan.base[k] = s.Reveal()
		if v := s.Reveal(); v != "" {
			plan.secrets = append(plan.secrets, v)
		}
	}
	compileLocations(p, plan, defined, secret, bad)
	sort.Slice(plan.secrets, func(i, j int) bool { return len(plan.secrets[i]) > len(plan.secrets[j]) })

	// seedValues returns every value the secret seed takes, across locations.
	seedValues := func(name string) []string {
		var vs []string
		if s, ok := p.Secrets[name]; ok && s.IsSet() {
			vs = append(vs, s.Reveal())
		}
		for _, l := range p.Locations {
			if s, ok := l.Secrets[name]; ok && s.IsSet() {
				vs = append(vs, s.Reveal())
			}
		}
		return vs
	}
	// What the step being compiled refers to, for the role it suggests.
	var stepTOTP bool
	var stepSecrets []string

	// tpl parses a template at path and checks its variables against defined.
	tpl := func(path, s string) tmpl {
		t, err := parseTemplate(s)
		if err != nil {
			bad(path, "%v", err)
			return tmpl{raw: s}
		}
		for _, v := range t.vars() {
			if !defined[v] {
				bad(path, "variable .%s is not defined here: define it under vars, secrets, let, or extract it in an earlier step", v)
			}
			if secret[v] {
				stepSecrets = append(stepSecrets, v)
			}
		}
		for _, c := range t.totpCalls() {
			v := c.args[0].variable
			stepTOTP = true
			if defined[v] && !secret[v] {
				bad(path, "the TOTP seed .%s must be a secret (under secrets:), not a plain variable", v)
				continue
			}
			for _, val := range seedValues(v) {
				if val != "" && !validSeed(val) {
					bad(path, "the TOTP seed .%s is not valid base32 (the text an authenticator app is given)", v)
					break
				}
			}
			if params, err := totpParams(c.args[1:]); err == nil {
				plan.totps = append(plan.totps, totpUse{seed: v, period: params.Period})
			}
		}
		return t
	}

	if len(p.Steps) == 0 {
		bad(".steps", "a probe needs at least one step")
	}
	stepNames := map[string]bool{}
	for i, s := range p.Steps {
		sp := fmt.Sprintf(".steps[%d]", i)
		st := stepPlan{Step: s, follow: s.FollowRedirects == nil || *s.FollowRedirects}
		stepTOTP, stepSecrets = false, nil
		if s.Role != "" && !s.Role.Valid() {
			bad(sp+".role", "unknown role %q: use one of %s", s.Role, roleList())
		}
		st.Role = s.Role.Or()
		if s.Name == "" {
			st.Name = fmt.Sprintf("step %d", i+1)
		} else if stepNames[s.Name] {
			bad(sp+".name", "duplicate step name %q", s.Name)
		}
		stepNames[st.Name] = true

		for _, k := range sortedKeys(s.Let) {
			st.let = append(st.let, kv{k, tpl(sp+".let."+k, s.Let[k])})
		}
		for _, k := range sortedKeys(s.Let) {
			if !validName(k) {
				bad(sp+".let."+k, "%q is not a variable name: use letters, digits and _", k)
			}
			if secret[k] || slices.Contains(builtinVars, k) {
				bad(sp+".let."+k, "%q is a secret or built-in variable and cannot be set", k)
			}
			defined[k] = true
		}

		if s.URL == "" {
			bad(sp, "a step needs a url")
		} else {
			st.url = tpl(sp+".url", s.URL)
			if st.url.parts == nil {
				if strings.HasPrefix(s.URL, "/") {
					if p.Target == "" {
						bad(sp+".url", "url %q is relative: give the probe a target", s.URL)
					}
				} else if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					bad(sp+".url", "url %q must be absolute (http:// or https://) or start with / (relative to the target)", s.URL)
				}
			}
		}
		for _, k := range sortedKeys(s.Headers) {
			st.headers = append(st.headers, kv{k, tpl(sp+".headers."+k, s.Headers[k])})
		}
		for _, k := range sortedKeys(s.Form) {
			st.form = append(st.form, kv{k, tpl(sp+".form."+k, s.Form[k])})
		}
		if s.Form != nil && s.JSON != nil {
			bad(sp, "a step sends a form or a JSON body, not both")
		}
		if s.JSON != nil {
			st.json = jsonTemplate(sp+".json", s.JSON, tpl)
		}
		st.method = strings.ToUpper(s.Method)
		if st.method == "" {
			st.method = http.MethodGet
			if s.Form != nil || s.JSON != nil {
				st.method = http.MethodPost
			}
		} else if !slices.Contains(methods, st.method) {
			bad(sp+".method", "unknown method %q", s.Method)
		}
		st.maxRedir = s.MaxRedirects
		if st.maxRedir == 0 {
			st.maxRedir = DefaultMaxRedirects
		} else if st.maxRedir < 0 {
			bad(sp+".max_redirects", "max_redirects must be positive")
		}
		if s.Timeout.Given() && s.Timeout.D == 0 {
			bad(sp+".timeout", "a step timeout of 0 would mean the default (%s): write the limit you mean, or leave timeout out", DefaultStepTimeout)
		}
		st.timeout = s.Timeout.Or(DefaultStepTimeout)
		if st.timeout > plan.timeout {
			st.timeout = plan.timeout
		}

		for j, e := range s.Expect {
			ep := fmt.Sprintf("%s.expect[%d]", sp, j)
			st.expects = append(st.expects, compileExpect(ep, e, tpl, bad, &st))
		}
		for j, x := range s.Extract {
			xp := fmt.Sprintf("%s.extract[%d]", sp, j)
			xpl := compileExtract(xp, x, bad, &st)
			if x.Var != "" {
				if !validName(x.Var) {
					bad(xp+".var", "%q is not a variable name: use letters, digits and _", x.Var)
				} else if secret[x.Var] || slices.Contains(builtinVars, x.Var) {
					bad(xp+".var", "%q is a secret or built-in variable and cannot be set", x.Var)
				}
				defined[x.Var] = true
			}
			st.extracts = append(st.extracts, xpl)
		}
		if s.Role == "" {
			if role, why := suggestRole(i, st, stepTOTP, stepSecrets); role != "" {
				warn(sp+".name", "step %q looks like the %s step (%s): add role: %s, so that what Candor tells customers and the runbook it attaches follow what the step means", st.Name, role, why, role)
			}
		}
		plan.steps = append(plan.steps, st)
	}
	return plan, probs
}

func roleList() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// suggestRole returns the role a step without one evidently has, and why,
// or "" when its shape says nothing certain.
func suggestRole(i int, st stepPlan, usesTOTP bool, secrets []string) (Role, string) {
	name := strings.ToLower(st.Name)
	url := strings.ToLower(st.URL)
	sends := st.form != nil || st.json != nil
	switch {
	case usesTOTP:
		return RoleSecondFactor, "it sends a {{ totp }} code"
	case strings.Contains(name, "recovery") || strings.Contains(url, "recovery") || strings.Contains(name, "backup_code"):
		return RoleRecoveryCode, "its name or URL says recovery"
	case sends && slices.ContainsFunc(secrets, func(s string) bool {
		s = strings.ToLower(s)
		return strings.Contains(s, "password") || strings.Contains(s, "passwd") || strings.Contains(s, "pass")
	}):
		return RolePassword, "it sends a password"
	case strings.Contains(url, "logout") || strings.Contains(url, "log-out") || strings.Contains(url, "log_out") ||
		strings.Contains(url, "signout") || strings.Contains(url, "sign-out") || strings.Contains(url, "sign_out"):
		return RoleLogout, "its URL signs out"
	case i == 0 && st.method == http.MethodGet && st.usesHTML && slices.ContainsFunc(st.Extract, func(x Extract) bool { return x.FormField != "" || x.CSS != "" }):
		return RoleLoginPage, "it is the first page and a form is read from it"
	}
	return "", ""
}

// compileLocations checks the probe's locations and the vars and secrets
// each gives, records them in plan, and marks as defined the variables every
// location gives (so templates may use them without a probe-wide value).
func compileLocations(p Probe, plan *Plan, defined, secret map[string]bool, bad func(string, string, ...any)) {
	seen := map[string]bool{}
	given := map[string]int{} // variable → how many locations give it
	for i, l := range p.Locations {
		lp := fmt.Sprintf(".locations[%d]", i)
		if l.Name == "" {
			bad(lp, "a location needs a name")
			continue
		}
		if strings.ContainsAny(l.Name, " /\t\n") {
			bad(lp+".name", "location %q must not contain spaces or slashes", l.Name)
		}
		if seen[l.Name] {
			bad(lp+".name", "location %q is listed twice: give each location once, with all its vars and secrets", l.Name)
			continue
		}
		seen[l.Name] = true
		vals := map[string]string{}
		for _, k := range sortedKeys(l.Vars) {
			kp := lp + ".vars." + k
			switch {
			case !validName(k):
				bad(kp, "%q is not a variable name: use letters, digits and _", k)
			case slices.Contains(builtinVars, k):
				bad(kp, "variable %q is built in; choose another name", k)
			case p.Secrets[k].IsSet() || secret[k]:
				bad(kp, "%q is a secret of this probe: give it under this location's secrets, so that it stays hidden", k)
			default:
				vals[k] = string(l.Vars[k])
				given[k]++
			}
		}
		for _, k := range sortedKeys(l.Secrets) {
			kp := lp + ".secrets." + k
			s := l.Secrets[k]
			switch {
			case !validName(k):
				bad(kp, "%q is not a variable name: use letters, digits and _", k)
			case slices.Contains(builtinVars, k):
				bad(kp, "variable %q is built in; choose another name", k)
			case p.Vars[k] != "" || l.Vars[k] != "":
				bad(kp, "%q is a plain variable of this probe or location: vars and secrets share one namespace", k)
			case !s.IsSet():
				bad(kp, "secret %q has no value: write ${ENV_VAR} or file:/path", k)
			default:
				vals[k] = s.Reveal()
				secret[k] = true
				given[k]++
				if v := s.Reveal(); v != "" {
					plan.secrets = append(plan.secrets, v)
				}
			}
		}
		plan.atLoc[l.Name] = vals
	}
	for k, n := range given {
		if !defined[k] && n == len(p.Locations) {
			defined[k] = true
		}
	}
	// A variable only some locations give, with no probe-wide value, is
	// undefined where it is missing.
	for i, l := range p.Locations {
		for _, k := range append(sortedKeys(l.Vars), sortedKeys(l.Secrets)...) {
			if !defined[k] && validName(k) && !slices.Contains(builtinVars, k) {
				var missing []string
				for _, o := range p.Locations {
					if _, ok := plan.atLoc[o.Name][k]; !ok && o.Name != "" {
						missing = append(missing, o.Name)
					}
				}
				kind := "vars"
				if _, ok := l.Secrets[k]; ok {
					kind = "secrets"
				}
				bad(fmt.Sprintf(".locations[%d].%s.%s", i, kind, k), "%q has no value at %s: give it for every location, or a default under the probe's %s", k, strings.Join(missing, ", "), kind)
			}
		}
	}
}

// readCAFile reads a PEM bundle of CA certificates.
func readCAFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("ca_file %s cannot be read: %v", path, err)
	}
	var certs []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca_file %s holds a certificate that cannot be read: %v", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("ca_file %s holds no certificate: it must be PEM (-----BEGIN CERTIFICATE-----)", path)
	}
	return certs, nil
}

// checkCodeWindows warns where the runs on one account (one TOTP seed
// value) need more code windows than there are: a target accepts each code
// once, so two runs in one window make a false failure (or wait for the
// next window). plans[i] is nil for a probe with problems.
func checkCodeWindows(c *config.Checker, path string, plans []*Plan) {
	type use struct {
		probe    int
		location string
		perRun   int // {{ totp }} calls on this seed in one run
		interval time.Duration
		period   time.Duration
	}
	bySeed := map[string][]use{} // keyed by the account, which is never shown
	var order []string
	for i, pl := range plans {
		if pl == nil {
			continue
		}
		calls := map[string]int{}
		period := map[string]time.Duration{}
		for _, u := range pl.totps {
			calls[u.seed]++
			period[u.seed] = max(period[u.seed], u.period)
		}
		locs := pl.Probe.LocationNames()
		if len(locs) == 0 {
			locs = []string{""} // every location: at least one
		}
		for _, seed := range sortedKeys(calls) {
			for _, l := range locs {
				v := pl.accountAt(l, seed)
				if v == "" {
					continue
				}
				if _, ok := bySeed[v]; !ok {
					order = append(order, v)
				}
				bySeed[v] = append(bySeed[v], use{i, l, calls[seed], pl.interval, period[seed]})
			}
		}
	}
	for _, v := range order {
		uses := bySeed[v]
		// Windows needed per window: the sum over runs of calls × period / interval.
		var load float64
		for _, u := range uses {
			load += float64(u.perRun) * u.period.Seconds() / u.interval.Seconds()
		}
		if load <= 1 {
			continue
		}
		warned := map[int]bool{}
		for _, u := range uses {
			if warned[u.probe] {
				continue
			}
			warned[u.probe] = true
			pp := fmt.Sprintf("%s[%d]", path, u.probe)
			var who []string
			for _, o := range uses {
				w := fmt.Sprintf("probe %s", plans[o.probe].Name())
				if o.location != "" {
					w += " at " + o.location
				}
				w += " every " + o.interval.String()
				if o.perRun > 1 {
					w += fmt.Sprintf(" (%d codes a run)", o.perRun)
				}
				who = append(who, w)
			}
			if len(uses) == 1 {
				c.Warnf(pp+".interval", "probe %s runs every %s but its one-time codes last %s: a target accepts each code once, so runs on one account need a code window each; make the interval at least %s, or some runs will wait for the next window",
					plans[u.probe].Name(), u.interval, u.period, time.Duration(u.perRun)*u.period)
				continue
			}
			c.Warnf(pp+".interval", "one account (the same TOTP seed) is used by %s, with %s codes: a target accepts each code once, so these runs cannot each have their own code window; give each location or probe its own account (locations: [{name: …, secrets: {…}}]) or lengthen the intervals",
				strings.Join(who, ", "), u.period)
		}
	}
}

// jsonTemplate copies a decoded JSON body, parsing every string as a template.
func jsonTemplate(path string, v any, tpl func(string, string) tmpl) any {
	switch c := v.(type) {
	case string:
		return tpl(path, c)
	case map[string]any:
		out := make(map[string]any, len(c))
		for _, k := range sortedKeys(c) {
			out[k] = jsonTemplate(path+"."+k, c[k], tpl)
		}
		return out
	case []any:
		out := make([]any, len(c))
		for i, e := range c {
			out[i] = jsonTemplate(fmt.Sprintf("%s[%d]", path, i), e, tpl)
		}
		return out
	}
	return v
}

func compileExpect(ep string, e Expect, tpl func(string, string) tmpl, bad func(string, string, ...any), st *stepPlan) expectPlan {
	xp := expectPlan{Expect: e}
	n := 0
	if e.Status != nil {
		n++
		if len(e.Status) == 0 {
			bad(ep+".status", "status needs at least one code")
		}
		for _, code := range e.Status {
			if code < 100 || code > 599 {
				bad(ep+".status", "%d is not an HTTP status code", code)
			}
		}
	}
	var m *Match
	for _, x := range []*Match{e.Body, e.URL, e.Header} {
		if x != nil {
			n++
			m = x
		}
	}
	if e.Cookie != nil {
		n++
		if e.Cookie.Name == "" {
			bad(ep+".cookie", "a cookie assertion needs the cookie's name")
		}
		if e.Cookie.Present == nil && e.Cookie.Secure == nil && e.Cookie.HTTPOnly == nil && e.Cookie.MaxLifetime.D == 0 {
			bad(ep+".cookie", "say what to check: present, secure, http_only or max_lifetime")
		}
	}
	if n != 1 {
		bad(ep, "an assertion checks exactly one of status, body, url, header or cookie (found %d)", n)
	}
	if e.Signal != "" && !slices.Contains(knownSignals, e.Signal) {
		bad(ep+".signal", "unknown signal %q", e.Signal)
	}
	if m == nil {
		return xp
	}
	mp := ep + ".body"
	switch m {
	case e.URL:
		mp = ep + ".url"
		if m.Name != "" || m.JSON != "" {
			bad(mp, "a url assertion takes path, equals, contains, not_contains, regex")
		}
	case e.Header:
		mp = ep + ".header"
		if m.Name == "" {
			bad(mp, "a header assertion needs the header's name")
		}
		if m.JSON != "" || m.Path != "" {
			bad(mp, "a header assertion takes name, equals, contains, not_contains, regex or present")
		}
	default:
		if m.Name != "" || m.Path != "" {
			bad(mp, "a body assertion takes json, equals, contains, not_contains, regex or present")
		}
		if m.JSON != "" {
			st.usesJSON = true
		}
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		bad(mp+".path", "a URL path starts with /")
	}
	if m.Equals == nil && m.Contains == "" && m.NotContains == "" && m.Regex == "" && m.Present == nil && m.Path == "" {
		bad(mp, "say what to check: equals, contains, not_contains, regex or present")
	}
	if m.Equals != nil {
		xp.hasEquals = true
		xp.equals = tpl(mp+".equals", *m.Equals)
	}
	xp.contains = tpl(mp+".contains", m.Contains)
	xp.notContains = tpl(mp+".not_contains", m.NotContains)
	if m.Regex != "" {
		re, err := regexp.Compile(m.Regex)
		if err != nil {
			bad(mp+".regex", "bad regular expression: %v", regexErr(err))
		}
		xp.re = re
	}
	if m.JSON != "" {
		jp, err := parseJSONPath(m.JSON)
		if err != nil {
			bad(mp+".json", "%v", err)
		}
		xp.json = jp
	}
	return xp
}

func regexErr(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s in %q", se.Code, se.Expr)
	}
	return err.Error()
}

func compileExtract(xp string, x Extract, bad func(string, string, ...any), st *stepPlan) extractPlan {
	pl := extractPlan{Extract: x}
	if x.Var == "" {
		bad(xp, "an extraction needs var: the variable to store the value in")
	}
	n := 0
	for _, s := range []string{x.Regex, x.FormField, x.CSS, x.JSON, x.Header, x.Cookie} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		bad(xp, "an extraction reads exactly one of regex, form_field, css, json, header or cookie (found %d)", n)
	}
	if x.Attr != "" && x.CSS == "" {
		bad(xp+".attr", "attr goes with css")
	}
	if x.Regex != "" {
		re, err := regexp.Compile(x.Regex)
		if err != nil {
			bad(xp+".regex", "bad regular expression: %v", regexErr(err))
		} else if re.NumSubexp() > 1 {
			bad(xp+".regex", "the regular expression has %d groups: use at most one, around the value", re.NumSubexp())
		}
		pl.re = re
	}
	if x.CSS != "" {
		sel, err := parseSelector(x.CSS)
		if err != nil {
			bad(xp+".css", "%v", err)
		}
		pl.sel = sel
		st.usesHTML = true
	}
	if x.FormField != "" {
		st.usesHTML = true
	}
	if x.JSON != "" {
		jp, err := parseJSONPath(x.JSON)
		if err != nil {
			bad(xp+".json", "%v", err)
		}
		pl.json = jp
		st.usesJSON = true
	}
	return pl
}
