// Package runbooks parses, lints and matches runbooks: markdown files with YAML
// front matter that tell on-call what to do about a kind of incident and give
// them the words to use with customers.
//
// The built-in runbooks are embedded from builtin/*.md; a directory of the
// operator's own runbooks adds to them or replaces them by id ([Load]). When an
// incident opens or changes, [Match] ranks the runbooks against what is failing,
// and a runbook's [Template] renders a customer update from an [Incident].
// Runbooks match on what a failure means (the failing step's role, its error
// class, the classification), so that the built-ins fit any configuration;
// [Lint] checks them against one, and [Uncovered] lists the failures it can
// have that no runbook covers.
// The file format is described in README.md.
//
// The package is a leaf: it knows nothing of probes or incidents beyond the
// plain strings and times they hand it.
package runbooks

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/candorhq/candor/internal/config"
)

//go:embed builtin/*.md
var builtinFS embed.FS

// Runbook is one parsed runbook file.
type Runbook struct {
	ID        string
	Title     string
	Match     Criteria // what incidents it is for
	Severity  string   // critical, major or minor
	Owner     string   // the team or person who keeps it current
	Links     []Link
	Summary   string    // markdown between the front matter and the first "## " heading
	Steps     []Step    // the "## Steps" checklist, in order
	Sections  []Section // every other "## " section, in file order
	Templates []Template
	Source    string // "builtin/NAME.md" or the path it was loaded from
}

// Criteria is a runbook's match section: what an incident must look like for
// the runbook to be offered. See [Match] for how it is scored.
type Criteria struct {
	Roles           []string `yaml:"roles"` // what the failing step means (probes.Role names): the key that fits any configuration
	Components      []string `yaml:"components"`
	Probes          []string `yaml:"probes"`
	Steps           []string `yaml:"steps"`
	ErrorClasses    []string `yaml:"error_classes"`
	Classification  string   `yaml:"classification"`
	MessageContains []string `yaml:"message_contains"` // case-insensitive substrings of a failing result's message
}

func (c Criteria) empty() bool {
	return len(c.Roles) == 0 && len(c.Components) == 0 && len(c.Probes) == 0 && len(c.Steps) == 0 &&
		len(c.ErrorClasses) == 0 && c.Classification == "" && len(c.MessageContains) == 0
}

// Link is a reference on-call may need: a dashboard, a vendor's status page.
type Link struct {
	Title string `yaml:"title"`
	URL   string `yaml:"url"`
}

// Step is one item of a runbook's checklist.
type Step struct {
	Text   string // the item's first paragraph, without its number, on one line
	Detail string // the rest of the item (commands, sub-items), markdown, dedented
}

// Section is a "## " section of a runbook that is neither steps nor a template.
type Section struct {
	Title string
	Body  string
}

// Severities, from most to least severe.
var severities = []string{"critical", "major", "minor"}

// Template names, in the order an incident uses them.
const (
	FirstUpdate         = "first_update"
	FollowUp            = "follow_up"
	Resolution          = "resolution"
	PostIncidentSummary = "post_incident_summary"
)

// TemplateNames is every communication template name, in the order an incident uses them.
var TemplateNames = []string{FirstUpdate, FollowUp, Resolution, PostIncidentSummary}

// Classifications a template is written for. An incident may also be
// "undetermined"; see [Runbook.Template].
const (
	Security    = "security"
	NonSecurity = "non_security"
)

// classifications is what match.classification accepts.
var classifications = []string{Security, NonSecurity, "undetermined"}

// errorClasses is what probes report (probes.ErrorClass), repeated here
// because runbooks imports no other part of Candor.
var errorClasses = []string{"dns", "connect", "tls", "cert_expired", "timeout", "http_status", "assertion", "extraction",
	"totp_rejected", "rate_limited", "code_window_taken", "security_check"}

// availabilityClasses are the classes a failure of any step can have.
var availabilityClasses = []string{"dns", "connect", "timeout", "http_status", "assertion", "extraction"}

// probeProblemClasses say something about the probe (its account rate-limited,
// its code windows taken), not about what customers get
// (probes.ErrorClass.ProbeProblem). Only a runbook that names one of them
// fits a failure that has nothing else: see [Match].
var probeProblemClasses = []string{"rate_limited", "code_window_taken"}

// securityClasses are the classes that make an incident a security one by
// themselves (a TLS failure other than an expired certificate, a failed
// security check).
var securityClasses = []string{"tls", "security_check"}

// roles are what a step may mean in a login flow (probes.Roles), in flow
// order, repeated here because runbooks imports no other part of Candor.
var roles = []string{"login_page", "password", "second_factor", "recovery_code", "remembered_device", "signed_in", "logout", "other"}

// Problem is one thing wrong with a runbook file, at a line of it.
type Problem struct {
	File string
	Line int // 1-based; 0 when it concerns the whole file
	Msg  string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// Problems is a list of problems; it is an error, one problem a line.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// Set is a collection of runbooks with unique ids, sorted by id.
type Set []Runbook

// ByID returns the runbook with the given id.
func (s Set) ByID(id string) (Runbook, bool) {
	for _, rb := range s {
		if rb.ID == id {
			return rb, true
		}
	}
	return Runbook{}, false
}

// Load returns the built-in runbooks, with the runbooks in dir added to them;
// a runbook in dir whose id is that of a built-in replaces it. dir "" means
// the built-ins only. Every *.md file in dir is a runbook except README.md.
// A file that does not parse is an error ([Problems]); Load does not check
// match fields against the configuration or render templates: that is [Lint].
func Load(dir string) (Set, error) {
	builtins, ps := parseBuiltins()
	byID := map[string]Runbook{}
	for _, f := range builtins {
		byID[f.rb.ID] = f.rb
	}
	if dir != "" {
		files, dps := parseDir(dir)
		ps = append(ps, dps...)
		for _, f := range files {
			byID[f.rb.ID] = f.rb
		}
	}
	if len(ps) > 0 {
		return nil, sortProblems(ps)
	}
	set := make(Set, 0, len(byID))
	for _, rb := range byID {
		set = append(set, rb)
	}
	sort.Slice(set, func(i, j int) bool { return set[i].ID < set[j].ID })
	return set, nil
}

// Parse parses one runbook file. name is what problems are reported under.
func Parse(name string, data []byte) (Runbook, error) {
	f, ps := parseFile(name, data)
	if len(ps) > 0 {
		return Runbook{}, sortProblems(ps)
	}
	return f.rb, nil
}

// file is a parsed runbook with what Lint needs to report positions.
type file struct {
	rb      Runbook
	src     *config.Source // the front matter, for positions of keys
	fmStart int            // line of the opening "---"
}

func parseBuiltins() ([]*file, []Problem) {
	names, err := fs.Glob(builtinFS, "builtin/*.md")
	if err != nil {
		return nil, []Problem{{File: "builtin", Msg: err.Error()}}
	}
	var files []*file
	var ps []Problem
	for _, name := range names {
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			ps = append(ps, Problem{File: name, Msg: err.Error()})
			continue
		}
		f, fps := parseFile(name, data)
		ps = append(ps, fps...)
		if f != nil {
			files = append(files, f)
		}
	}
	ps = append(ps, duplicateIDs(files)...)
	return files, ps
}

// parseDir parses every runbook in dir; files that do not parse are left out
// and their problems returned.
func parseDir(dir string) ([]*file, []Problem) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, []Problem{{File: dir, Msg: fmt.Sprintf("cannot read the runbook directory: %v", unwrapPath(err))}}
	}
	var files []*file
	var ps []Problem
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".md") || strings.EqualFold(e.Name(), "README.md") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			ps = append(ps, Problem{File: path, Msg: fmt.Sprintf("cannot read: %v", unwrapPath(err))})
			continue
		}
		f, fps := parseFile(path, data)
		ps = append(ps, fps...)
		if f != nil {
			files = append(files, f)
		}
	}
	ps = append(ps, duplicateIDs(files)...)
	return files, ps
}

func duplicateIDs(files []*file) []Problem {
	var ps []Problem
	first := map[string]*file{}
	for _, f := range files {
		if f.rb.ID == "" {
			continue
		}
		if g, ok := first[f.rb.ID]; ok {
			line, _ := f.src.Pos("$.id")
			ps = append(ps, Problem{File: f.rb.Source, Line: f.fmStart + line,
				Msg: fmt.Sprintf("id %q is already used by %s", f.rb.ID, g.rb.Source)})
			continue
		}
		first[f.rb.ID] = f
	}
	return ps
}

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	stepPattern     = regexp.MustCompile(`^(\d+)[.)]\s+(.*)$`)
	templatePattern = regexp.MustCompile(`^##\s+Template:\s*([A-Za-z_]+)\s*\(\s*([A-Za-z_]+)\s*\)\s*$`)
)

// frontMatter is the YAML between the "---" lines.
type frontMatter struct {
	ID       string   `yaml:"id"`
	Title    string   `yaml:"title"`
	Match    Criteria `yaml:"match"`
	Severity string   `yaml:"severity"`
	Owner    string   `yaml:"owner"`
	Links    []Link   `yaml:"links"`
}

// parseFile parses a runbook and reports every structural problem: the front
// matter's keys and values, the body's headings, steps and template syntax.
// It returns nil when the front matter cannot be read at all.
func parseFile(name string, data []byte) (*file, []Problem) {
	// Line breaks as YAML reads them: \r\n, \n or a lone \r, so that every
	// position reported is a line of the file.
	text := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(bytes.TrimPrefix(data, []byte("\ufeff"))))
	lines := strings.Split(text, "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "---" {
		return nil, []Problem{{File: name, Line: 1, Msg: `a runbook starts with a line "---", then its YAML front matter, then a closing "---"`}}
	}
	end := -1
	for i := 1; i < len(lines); i++ {
		if t := strings.TrimRight(lines[i], " \t"); t == "---" || t == "..." {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, []Problem{{File: name, Line: 1, Msg: `the front matter is not closed: add a line "---" after it`}}
	}
	f := &file{fmStart: 1}
	f.rb.Source = name

	// Front matter: config gives positions relative to its first line, which is file line 2.
	src, err := config.Parse(name, []byte(strings.Join(lines[1:end], "\n")))
	if err != nil {
		return nil, fromConfig(err, f.fmStart)
	}
	f.src = src
	c := config.NewChecker(src, func(string) (string, bool) { return "", false })
	var fm frontMatter
	if c.Decode("$", &fm) { // after unknown keys or wrong types, more would be noise
		checkFrontMatter(c, &fm)
	}
	ps := fromConfig(c.Err(), f.fmStart)
	f.rb.ID, f.rb.Title, f.rb.Match = fm.ID, fm.Title, fm.Match
	f.rb.Severity, f.rb.Owner, f.rb.Links = fm.Severity, fm.Owner, fm.Links

	ps = append(ps, parseBody(&f.rb, lines[end+1:], end+2)...)
	return f, ps
}

func checkFrontMatter(c *config.Checker, fm *frontMatter) {
	required := func(path, value, what string) {
		if strings.TrimSpace(value) == "" {
			c.Errorf(path, "%s is required", what)
		}
	}
	required("$.id", fm.ID, "id")
	if fm.ID != "" && !idPattern.MatchString(fm.ID) {
		c.Errorf("$.id", "id %q must be lower-case letters, digits and hyphens, such as login-events-down", fm.ID)
	}
	required("$.title", fm.Title, "title")
	required("$.owner", fm.Owner, "owner (the team or person who keeps this runbook current)")
	required("$.severity", fm.Severity, "severity ("+strings.Join(severities, ", ")+")")
	if fm.Severity != "" && !slices.Contains(severities, fm.Severity) {
		c.Errorf("$.severity", "severity %q is not one of %s", fm.Severity, strings.Join(severities, ", "))
	}
	m := fm.Match
	if m.empty() {
		c.Errorf("$.match", "match is empty: give at least one of roles, components, probes, steps, error_classes, classification, message_contains, or this runbook never matches")
	}
	for i, r := range m.Roles {
		if !slices.Contains(roles, r) {
			c.Errorf(fmt.Sprintf("$.match.roles[%d]", i), "role %q is not one a step may declare: %s", r, strings.Join(roles, ", "))
		}
	}
	if m.Classification != "" && !slices.Contains(classifications, m.Classification) {
		c.Errorf("$.match.classification", "classification %q is not one of %s", m.Classification, strings.Join(classifications, ", "))
	}
	for i, ec := range m.ErrorClasses {
		if !slices.Contains(errorClasses, ec) {
			c.Errorf(fmt.Sprintf("$.match.error_classes[%d]", i), "error class %q is not one probes report: %s", ec, strings.Join(errorClasses, ", "))
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"components", m.Components}, {"probes", m.Probes}, {"steps", m.Steps}, {"message_contains", m.MessageContains}} {
		for i, v := range l.list {
			if strings.TrimSpace(v) == "" {
				c.Errorf(fmt.Sprintf("$.match.%s[%d]", l.key, i), "empty value in match.%s", l.key)
			}
		}
	}
	for i, l := range fm.Links {
		path := fmt.Sprintf("$.links[%d]", i)
		if strings.TrimSpace(l.Title) == "" {
			c.Errorf(path, "a link needs a title")
		}
		if !strings.HasPrefix(l.URL, "https://") && !strings.HasPrefix(l.URL, "http://") {
			c.Errorf(path+".url", "link url %q must start with https:// or http://", l.URL)
		}
	}
}

// parseBody splits the markdown body into summary, steps, sections and
// templates. first is the file line number of lines[0].
func parseBody(rb *Runbook, lines []string, first int) []Problem {
	var ps []Problem
	problem := func(line int, format string, args ...any) {
		ps = append(ps, Problem{File: rb.Source, Line: line, Msg: fmt.Sprintf(format, args...)})
	}

	// Split at "## " headings outside fenced code blocks.
	type part struct {
		heading string
		line    int // file line of the heading
		body    []string
	}
	parts := []part{{line: first - 1}}
	fence := ""
	for i, l := range lines {
		if f := fenceOf(l); f != "" {
			switch {
			case fence == "":
				fence = f
			case strings.HasPrefix(f, fence):
				fence = ""
			}
		}
		if fence == "" && strings.HasPrefix(l, "## ") {
			parts = append(parts, part{heading: strings.TrimSpace(l[3:]), line: first + i})
			continue
		}
		parts[len(parts)-1].body = append(parts[len(parts)-1].body, l)
	}
	if fence != "" {
		problem(first+len(lines)-1, "a fenced code block (%s) is not closed", fence)
	}

	rb.Summary = strings.TrimSpace(strings.Join(parts[0].body, "\n"))
	seenSteps := 0
	seen := map[string]int{}
	for _, p := range parts[1:] {
		switch {
		case strings.EqualFold(p.heading, "Steps"):
			if seenSteps != 0 {
				problem(p.line, "a second \"## Steps\" section (the first is at line %d)", seenSteps)
				continue
			}
			seenSteps = p.line
			var sps []Problem
			rb.Steps, sps = parseSteps(rb.Source, p.body, p.line+1)
			ps = append(ps, sps...)
			if len(rb.Steps) == 0 {
				problem(p.line, "the Steps section has no steps: number them \"1. \", \"2. \", ...")
			}
		case strings.HasPrefix(strings.ToLower(p.heading), "template"):
			m := templatePattern.FindStringSubmatch("## " + p.heading)
			if m == nil {
				problem(p.line, "a template heading is written \"## Template: NAME (CLASSIFICATION)\", with NAME one of %s and CLASSIFICATION security or non_security", strings.Join(TemplateNames, ", "))
				continue
			}
			name, class := m[1], m[2]
			if !slices.Contains(TemplateNames, name) {
				problem(p.line, "unknown template %q: the templates are %s", name, strings.Join(TemplateNames, ", "))
				continue
			}
			if class != Security && class != NonSecurity {
				problem(p.line, "template %s is for %q: write (security) or (non_security)", name, class)
				continue
			}
			key := name + " (" + class + ")"
			if l, ok := seen[key]; ok {
				problem(p.line, "template %s is already defined at line %d", key, l)
				continue
			}
			seen[key] = p.line
			t, err := newTemplate(rb.Source, name, class, strings.Join(p.body, "\n"), p.line)
			if err != nil {
				ps = append(ps, *err)
				continue
			}
			rb.Templates = append(rb.Templates, t)
		default:
			rb.Sections = append(rb.Sections, Section{Title: p.heading, Body: strings.TrimSpace(strings.Join(p.body, "\n"))})
		}
	}
	if seenSteps == 0 {
		problem(first-1, "no \"## Steps\" section: on-call needs a numbered checklist")
	}
	return ps
}

// parseSteps reads a numbered list: each "N. " line at the start of a line
// begins a step; the lines under it belong to it.
func parseSteps(source string, lines []string, first int) ([]Step, []Problem) {
	var steps []Step
	var detail [][]string
	var ps []Problem
	fence := ""
	for i, l := range lines {
		if f := fenceOf(l); f != "" {
			switch {
			case fence == "":
				fence = f
			case strings.HasPrefix(f, fence):
				fence = ""
			}
		}
		if m := stepPattern.FindStringSubmatch(l); m != nil && fence == "" {
			steps = append(steps, Step{Text: strings.TrimSpace(m[2])})
			detail = append(detail, nil)
			continue
		}
		if len(steps) == 0 {
			if strings.TrimSpace(l) != "" {
				ps = append(ps, Problem{File: source, Line: first + i, Msg: "text before the first step: start each step with a number, \"1. \""})
			}
			continue
		}
		detail[len(detail)-1] = append(detail[len(detail)-1], l)
	}
	for i := range steps {
		// The item's first paragraph is its text; what follows (commands,
		// sub-items, further paragraphs) is its detail.
		rest := strings.Split(dedent(detail[i]), "\n")
		text := []string{steps[i].Text}
		for len(rest) > 0 && !endsParagraph(rest[0]) {
			text = append(text, strings.TrimSpace(rest[0]))
			rest = rest[1:]
		}
		steps[i].Text = strings.Join(text, " ")
		steps[i].Detail = dedent(rest)
	}
	return steps, ps
}

// endsParagraph reports whether a line is not a continuation of the
// paragraph above it: a blank line, a fence, a list item or a heading.
func endsParagraph(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || fenceOf(t) != "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, ">") ||
		strings.HasPrefix(t, "- ") || strings.HasPrefix(t, "* ") || strings.HasPrefix(t, "+ ") ||
		stepPattern.MatchString(t) || strings.HasPrefix(t, "|")
}

// fenceOf returns the fence ("```" or "~~~", as long as written) a line opens
// or closes, or "".
func fenceOf(line string) string {
	t := strings.TrimLeft(line, " \t")
	for _, c := range []string{"`", "~"} {
		if strings.HasPrefix(t, c+c+c) {
			n := len(t) - len(strings.TrimLeft(t, c))
			return t[:n]
		}
	}
	return ""
}

// dedent removes the indentation common to the non-blank lines and trims
// blank lines at both ends.
func dedent(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			out[i] = ""
		} else {
			out[i] = l[indent:]
		}
	}
	return strings.Join(out, "\n")
}

// fromConfig turns config problems, whose lines count from the first line of
// the front matter, into problems with file lines.
func fromConfig(err error, offset int) []Problem {
	if err == nil {
		return nil
	}
	cps, ok := err.(config.Problems)
	if !ok {
		return []Problem{{Line: offset, Msg: err.Error()}}
	}
	ps := make([]Problem, len(cps))
	for i, p := range cps {
		line := offset // the opening "---", for an empty front matter
		if p.Line > 0 {
			line = offset + p.Line
		}
		ps[i] = Problem{File: p.File, Line: line, Msg: p.Msg}
	}
	return ps
}

func sortProblems(ps []Problem) Problems {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
	return Problems(ps)
}

func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
