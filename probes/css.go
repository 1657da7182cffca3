package probes

import (
	"fmt"
	"strings"

	"golang.org/x/net/html"
)

// selector is a parsed CSS selector from the subset probes need to find a
// form field or a link: compound selectors (tag, #id, .class, [attr],
// [attr=value], [attr^=value], [attr*=value]) joined by descendant spaces.
type selector []compound

type compound struct {
	tag     string
	id      string
	classes []string
	attrs   []attrSel
}

type attrSel struct {
	name, value string
	op          byte // 0: present, '=': equals, '^': prefix, '*': contains
}

func parseSelector(s string) (selector, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty CSS selector")
	}
	var sel selector
	for _, f := range fields {
		if strings.ContainsAny(f, ">+~,:") {
			return nil, fmt.Errorf("CSS selector %q: only tags, #id, .class, [attr] and [attr=value] joined by spaces are supported", s)
		}
		c, err := parseCompound(f)
		if err != nil {
			return nil, fmt.Errorf("CSS selector %q: %v", s, err)
		}
		sel = append(sel, c)
	}
	return sel, nil
}

func parseCompound(s string) (compound, error) {
	var c compound
	i := 0
	ident := func() string {
		j := i
		for j < len(s) && (s[j] == '-' || s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		v := s[i:j]
		i = j
		return v
	}
	if i < len(s) && s[i] == '*' {
		i++
	} else {
		c.tag = strings.ToLower(ident())
	}
	for i < len(s) {
		switch s[i] {
		case '#':
			i++
			if c.id = ident(); c.id == "" {
				return c, fmt.Errorf("# needs an id")
			}
		case '.':
			i++
			cl := ident()
			if cl == "" {
				return c, fmt.Errorf(". needs a class name")
			}
			c.classes = append(c.classes, cl)
		case '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return c, fmt.Errorf("unclosed [")
			}
			inner := s[i+1 : i+end]
			i += end + 1
			a := attrSel{}
			if k := strings.IndexByte(inner, '='); k >= 0 {
				a.name, a.value, a.op = inner[:k], inner[k+1:], '='
				if strings.HasSuffix(a.name, "^") || strings.HasSuffix(a.name, "*") {
					a.op = a.name[len(a.name)-1]
					a.name = a.name[:len(a.name)-1]
				}
				if len(a.value) >= 2 && (a.value[0] == '"' || a.value[0] == '\'') && a.value[len(a.value)-1] == a.value[0] {
					a.value = a.value[1 : len(a.value)-1]
				}
			} else {
				a.name = inner
			}
			if a.name == "" {
				return c, fmt.Errorf("[%s] needs an attribute name", inner)
			}
			a.name = strings.ToLower(a.name)
			c.attrs = append(c.attrs, a)
		default:
			return c, fmt.Errorf("unexpected %q", s[i:i+1])
		}
	}
	return c, nil
}

func attrOf(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func (c compound) matches(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	if c.tag != "" && n.Data != c.tag {
		return false
	}
	if c.id != "" {
		if v, _ := attrOf(n, "id"); v != c.id {
			return false
		}
	}
	if len(c.classes) > 0 {
		v, _ := attrOf(n, "class")
		have := strings.Fields(v)
		for _, want := range c.classes {
			found := false
			for _, h := range have {
				if h == want {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
	}
	for _, a := range c.attrs {
		v, ok := attrOf(n, a.name)
		if !ok {
			return false
		}
		switch a.op {
		case '=':
			ok = v == a.value
		case '^':
			ok = strings.HasPrefix(v, a.value)
		case '*':
			ok = strings.Contains(v, a.value)
		}
		if !ok {
			return false
		}
	}
	return true
}

// matches reports whether n matches the whole selector (its last compound,
// with each earlier compound matched by some ancestor, in order).
func (s selector) matches(n *html.Node) bool {
	if !s[len(s)-1].matches(n) {
		return false
	}
	k := len(s) - 2
	for a := n.Parent; a != nil && k >= 0; a = a.Parent {
		if s[k].matches(a) {
			k--
		}
	}
	return k < 0
}

// first returns the first node in document order that matches.
func (s selector) first(root *html.Node) *html.Node {
	for n := range root.Descendants() {
		if s.matches(n) {
			return n
		}
	}
	return nil
}

// textOf returns the text inside n, spaces collapsed.
func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// formField returns the value of the first form field named name: an input's
// value attribute or a textarea's text.
func formField(root *html.Node, name string) (string, bool) {
	for n := range root.Descendants() {
		if n.Type != html.ElementNode || (n.Data != "input" && n.Data != "textarea") {
			continue
		}
		if v, _ := attrOf(n, "name"); v != name {
			continue
		}
		if n.Data == "textarea" {
			return textOf(n), true
		}
		v, _ := attrOf(n, "value")
		return v, true
	}
	return "", false
}
