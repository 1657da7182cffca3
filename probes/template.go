package probes

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The flow language's templates are deliberately small: text with {{ … }}
// actions, each either a variable (".csrf") or a call of one of three
// functions with literal or variable arguments:
//
//	{{ .password }}                  a variable (vars, secrets, let, extract)
//	{{ totp .totp_seed }}            the current TOTP code (SHA1, 6 digits, 30 s)
//	{{ totp .seed "sha256" 8 60 }}   algorithm, digits and period spelled out
//	{{ env "PROBE_USER" }}           an environment variable
//	{{ now }}                        the time in RFC 3339, UTC
//	{{ now "unix" }}                 seconds since 1970; any other argument is a Go time layout
//
// No pipelines, no conditionals: a flow is data, and everything a template can
// refer to is known when the configuration is checked.

// templateFuncs are the functions a template may call.
var templateFuncs = map[string]bool{"totp": true, "env": true, "now": true}

// tmpl is a parsed template. A template without actions renders to its text
// without allocating.
type tmpl struct {
	raw   string
	parts []part // nil when raw has no actions
}

type part struct {
	lit  string
	call *call // nil for a literal part
}

type call struct {
	fn   string // "" for a bare variable reference (args[0])
	args []arg
}

type arg struct {
	variable string // name without the dot, when the argument is a variable
	text     string // a string literal
	num      int
	isNum    bool
}

func (a arg) String() string {
	switch {
	case a.variable != "":
		return "." + a.variable
	case a.isNum:
		return strconv.Itoa(a.num)
	}
	return strconv.Quote(a.text)
}

// parseTemplate parses s. Errors are plain sentences for a person writing YAML.
func parseTemplate(s string) (tmpl, error) {
	t := tmpl{raw: s}
	if !strings.Contains(s, "{{") {
		if strings.Contains(s, "}}") {
			return t, errors.New(`"}}" without a matching "{{"`)
		}
		return t, nil
	}
	rest := s
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return t, errors.New(`"}}" without a matching "{{"`)
			}
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if i > 0 {
			if strings.Contains(rest[:i], "}}") {
				return t, errors.New(`"}}" without a matching "{{"`)
			}
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return t, errors.New(`"{{" is not closed with "}}"`)
		}
		c, err := parseAction(strings.TrimSpace(rest[:j]))
		if err != nil {
			return t, err
		}
		t.parts = append(t.parts, part{call: c})
		rest = rest[j+2:]
	}
	return t, nil
}

func parseAction(s string) (*call, error) {
	if s == "" {
		return nil, errors.New("empty {{ }}: write a variable such as {{ .csrf }} or a function such as {{ totp .seed }}")
	}
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	c := &call{}
	first := words[0]
	if strings.HasPrefix(first, ".") {
		if len(words) > 1 {
			return nil, fmt.Errorf("{{ %s }}: a variable takes no arguments", s)
		}
		a, err := parseArg(first)
		if err != nil {
			return nil, err
		}
		c.args = []arg{a}
		return c, nil
	}
	if !templateFuncs[first] {
		return nil, fmt.Errorf("unknown template function %q: the functions are totp, env and now (a variable starts with a dot, as in .%s)", first, first)
	}
	c.fn = first
	for _, w := range words[1:] {
		a, err := parseArg(w)
		if err != nil {
			return nil, err
		}
		c.args = append(c.args, a)
	}
	return c, checkCall(c)
}

func splitWords(s string) ([]string, error) {
	var words []string
	for s != "" {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		if s[0] == '"' {
			// Find the closing quote, honouring backslash escapes.
			end := -1
			for k := 1; k < len(s); k++ {
				if s[k] == '\\' {
					k++
					continue
				}
				if s[k] == '"' {
					end = k
					break
				}
			}
			if end < 0 {
				return nil, fmt.Errorf("unclosed string in {{ %s }}", s)
			}
			words = append(words, s[:end+1])
			s = s[end+1:]
			continue
		}
		k := strings.IndexAny(s, " \t")
		if k < 0 {
			k = len(s)
		}
		words = append(words, s[:k])
		s = s[k:]
	}
	return words, nil
}

func parseArg(w string) (arg, error) {
	switch {
	case strings.HasPrefix(w, "."):
		name := w[1:]
		if !validName(name) {
			return arg{}, fmt.Errorf("%q is not a variable name: use letters, digits and _", w)
		}
		return arg{variable: name}, nil
	case strings.HasPrefix(w, `"`):
		v, err := strconv.Unquote(w)
		if err != nil {
			return arg{}, fmt.Errorf("bad string %s: %v", w, err)
		}
		return arg{text: v}, nil
	}
	n, err := strconv.Atoi(w)
	if err != nil {
		return arg{}, fmt.Errorf("%q is neither a variable (.name), a string (\"…\") nor a number", w)
	}
	return arg{num: n, isNum: true}, nil
}

// validName reports whether s can name a variable.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// checkCall checks a function call's arguments as far as they are literals.
func checkCall(c *call) error {
	switch c.fn {
	case "env":
		if len(c.args) != 1 || c.args[0].isNum || c.args[0].variable != "" {
			return errors.New(`env takes one name in quotes, as in {{ env "PROBE_USER" }}`)
		}
	case "now":
		if len(c.args) > 1 || len(c.args) == 1 && (c.args[0].isNum || c.args[0].variable != "") {
			return errors.New(`now takes no argument or one layout in quotes, as in {{ now "unix" }}`)
		}
	case "totp":
		if len(c.args) < 1 || len(c.args) > 4 || c.args[0].variable == "" {
			return errors.New(`totp takes a secret seed and optionally algorithm, digits and period, as in {{ totp .totp_seed }} or {{ totp .totp_seed "sha1" 6 30 }}`)
		}
		_, err := totpParams(c.args[1:])
		return err
	}
	return nil
}

// vars returns the variables the template refers to.
func (t tmpl) vars() []string {
	var vs []string
	for _, p := range t.parts {
		if p.call == nil {
			continue
		}
		for _, a := range p.call.args {
			if a.variable != "" {
				vs = append(vs, a.variable)
			}
		}
	}
	return vs
}

// totpSeeds returns the variables used as TOTP seeds.
func (t tmpl) totpSeeds() []string {
	var vs []string
	for _, p := range t.parts {
		if p.call != nil && p.call.fn == "totp" {
			vs = append(vs, p.call.args[0].variable)
		}
	}
	return vs
}

// totpCalls returns the template's {{ totp }} calls.
func (t tmpl) totpCalls() []*call {
	var cs []*call
	for _, p := range t.parts {
		if p.call != nil && p.call.fn == "totp" {
			cs = append(cs, p.call)
		}
	}
	return cs
}

// renderer evaluates calls for one run.
type renderer interface {
	lookup(name string) (string, bool)
	callFunc(c *call) (string, error)
}

// render evaluates the template.
func (t tmpl) render(r renderer) (string, error) {
	if t.parts == nil {
		return t.raw, nil
	}
	var b strings.Builder
	b.Grow(len(t.raw))
	for _, p := range t.parts {
		if p.call == nil {
			b.WriteString(p.lit)
			continue
		}
		if p.call.fn == "" {
			name := p.call.args[0].variable
			v, ok := r.lookup(name)
			if !ok {
				return "", fmt.Errorf("variable .%s has no value", name)
			}
			b.WriteString(v)
			continue
		}
		v, err := r.callFunc(p.call)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
