// Package config reads Candor's YAML configuration and reports every problem in it
// as file:line:column with a plain sentence.
//
// Each part of Candor owns the type of its own section and checks it with a
// [Checker]; this package knows nothing of what the sections mean. The flow is:
//
//	src, err := config.Parse("candor.yaml", data)   // syntax errors
//	c := config.NewChecker(src, os.LookupEnv)
//	c.Decode("$.probes", &probes)                    // unknown keys, wrong types
//	probes.Check(c, "$.probes")                      // the part's own rules
//	err = c.Err()                                    // every problem, or nil
package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Problem is one thing wrong with a configuration, at a place in its file.
type Problem struct {
	File string
	Line int // 1-based; 0 when the place is unknown
	Col  int // 1-based; 0 when the place is unknown
	Msg  string
	// Warning marks advice: the configuration works as written, but
	// probably not as meant. A warning never makes a check fail.
	Warning bool
}

func (p Problem) String() string {
	msg := p.Msg
	if p.Warning {
		msg = "warning: " + msg
	}
	if p.Line == 0 {
		return fmt.Sprintf("%s: %s", p.File, msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, msg)
}

// Problems is every problem found in a configuration, in file order. It is an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Source is a parsed YAML document and the name it is reported under.
type Source struct {
	Name string
	file *ast.File
}

// Parse parses data as one YAML document. A syntax error is returned as [Problems].
func Parse(name string, data []byte) (*Source, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Problems{fromYAML(name, err)}
	}
	return &Source{Name: name, file: f}, nil
}

// root is the document's top node, or nil for an empty document.
func (s *Source) root() ast.Node {
	if s == nil || s.file == nil || len(s.file.Docs) == 0 {
		return nil
	}
	return s.file.Docs[0].Body
}

// Node returns the node at a YAML path such as "$.probes[0].steps[2].url", or nil.
// A path the YAML library cannot parse (a key with brackets or quotes in it)
// finds nothing.
func (s *Source) Node(path string) (n ast.Node) {
	defer func() {
		if recover() != nil { // go-yaml's path parser panics on some keys, e.g. "0[0:"
			n = nil
		}
	}()
	root := s.root()
	if root == nil {
		return nil
	}
	if path == "$" || path == "" {
		return root
	}
	p, err := yaml.PathString(path)
	if err != nil {
		return nil
	}
	n, err = p.FilterNode(root)
	if err != nil || n == nil {
		return nil
	}
	return n
}

// Has reports whether the document has a node at path.
func (s *Source) Has(path string) bool { return s.Node(path) != nil }

// Pos returns the line and column of the node at path, or of its nearest
// ancestor that exists (so a missing key is reported where it belongs). A
// mapping is reported at its first key, where a reader's eye starts.
func (s *Source) Pos(path string) (line, col int) {
	for p := path; p != ""; p = parent(p) {
		n := s.Node(p)
		switch m := n.(type) {
		case *ast.MappingNode:
			if len(m.Values) > 0 {
				n = m.Values[0].Key
			}
		case *ast.MappingValueNode:
			n = m.Key
		}
		if n != nil {
			if tk := n.GetToken(); tk != nil && tk.Position != nil {
				return tk.Position.Line, tk.Position.Column
			}
		}
		if p == "$" {
			break
		}
	}
	return 0, 0
}

// keyPos returns the position of the key of the mapping entry at path (for
// "unknown key" or "appears twice"), or Pos(path) when path is not a key.
func (s *Source) keyPos(path string) (line, col int) {
	pp := parent(path)
	if key, ok := strings.CutPrefix(path[len(pp):], "."); ok && pp != "" {
		var kvs []*ast.MappingValueNode
		switch m := s.Node(pp).(type) {
		case *ast.MappingNode:
			kvs = m.Values
		case *ast.MappingValueNode:
			kvs = []*ast.MappingValueNode{m}
		}
		for _, kv := range kvs {
			if kv.Key.String() == key {
				if tk := kv.Key.GetToken(); tk != nil && tk.Position != nil {
					return tk.Position.Line, tk.Position.Column
				}
			}
		}
	}
	return s.Pos(path)
}

// parent strips the last element of a YAML path: "$.a.b[2]" → "$.a.b", "$.a.b" → "$.a".
func parent(path string) string {
	if path == "$" {
		return ""
	}
	i := strings.LastIndexAny(path, ".[")
	if i <= 0 {
		return "$"
	}
	return path[:i]
}

// Checker collects problems while a configuration is decoded and checked.
type Checker struct {
	src      *Source
	lookup   func(string) (string, bool)
	problems Problems
	warnings Problems
	unread   []string // paths Decode could not read
}

// NewChecker returns a Checker for src. lookup resolves ${ENV} references in
// secrets and [Text] values (os.LookupEnv in production, a map in tests).
func NewChecker(src *Source, lookup func(string) (string, bool)) *Checker {
	return &Checker{src: src, lookup: lookup}
}

// Source returns the document being checked.
func (c *Checker) Source() *Source { return c.src }

// Errorf records a problem at the node at path (or its nearest existing ancestor).
func (c *Checker) Errorf(path, format string, args ...any) {
	if c.isUnread(path) {
		return
	}
	line, col := c.src.Pos(path)
	c.problems = append(c.problems, Problem{File: c.src.Name, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// KeyErrorf records a problem at the key of the mapping entry at path, for
// problems with the key itself ("unknown key", "appears twice").
func (c *Checker) KeyErrorf(path, format string, args ...any) {
	if c.isUnread(path) {
		return
	}
	line, col := c.src.keyPos(path)
	c.problems = append(c.problems, Problem{File: c.src.Name, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// Warnf records a warning at the node at path: something that works as
// written but is probably not what was meant. Warnings are kept apart from
// problems: they never make [Checker.Err] fail.
func (c *Checker) Warnf(path, format string, args ...any) {
	if c.isUnread(path) {
		return
	}
	line, col := c.src.Pos(path)
	c.warnings = append(c.warnings, Problem{File: c.src.Name, Line: line, Col: col, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// Problems returns the problems recorded so far (not the warnings), in file order.
func (c *Checker) Problems() Problems { return inFileOrder(c.problems) }

// Warnings returns the warnings recorded so far, in file order.
func (c *Checker) Warnings() Problems { return inFileOrder(c.warnings) }

func inFileOrder(in Problems) Problems {
	ps := append(Problems(nil), in...)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Col < ps[j].Col
	})
	return ps
}

// Err returns every recorded problem as [Problems], or nil when there are
// none. Warnings are not problems: see [Checker.Warnings].
func (c *Checker) Err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return c.Problems()
}

// Decode decodes the node at path into v (a pointer), rejecting unknown keys
// and wrong types, then resolves the [Secret] and checks the [Duration] values
// inside v. A missing node leaves v as it is and reports nothing. A list is
// decoded item by item, so that every bad item is reported, not just the first.
// Decode reports whether v was decoded without problems. Checks may still
// look at what was read: their problems at or under a path that could not be
// read are dropped, so that a list's good items are checked while its bad
// item reports only why it could not be read.
func (c *Checker) Decode(path string, v any) bool {
	n := c.src.Node(path)
	if n == nil {
		return true
	}
	before := len(c.problems)
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("config: Decode needs a non-nil pointer")
	}
	if seq, ok := n.(*ast.SequenceNode); ok && rv.Elem().Kind() == reflect.Slice {
		out := reflect.MakeSlice(rv.Elem().Type(), 0, len(seq.Values))
		for i, item := range seq.Values {
			ev := reflect.New(rv.Elem().Type().Elem())
			itemPath := fmt.Sprintf("%s[%d]", path, i)
			if err := nodeToValue(item, ev.Interface()); err != nil {
				c.yamlError(itemPath, err)
			} else {
				c.walk(itemPath, ev.Elem())
			}
			out = reflect.Append(out, ev.Elem())
		}
		rv.Elem().Set(out)
	} else if err := nodeToValue(n, v); err != nil {
		c.yamlError(path, err)
	} else {
		c.walk(path, rv.Elem())
	}
	return len(c.problems) == before
}

// isUnread reports whether path is at or under a path Decode could not
// read: a check of what was read says nothing useful there, the read error
// already stands.
func (c *Checker) isUnread(path string) bool {
	for _, u := range c.unread {
		if path == u || strings.HasPrefix(path, u) && (path[len(u)] == '.' || path[len(u)] == '[') {
			return true
		}
	}
	return false
}

// nodeToValue decodes n into v strictly. go-yaml panics on some malformed
// documents (a tag with no value: "! 000"); that becomes an error here.
func nodeToValue(n ast.Node, v any) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("this value cannot be read: check its syntax")
		}
	}()
	return yaml.NodeToValue(n, v, yaml.Strict())
}

func (c *Checker) yamlError(path string, err error) {
	c.unread = append(c.unread, path)
	p := fromYAML(c.src.Name, err)
	if p.Line == 0 {
		p.Line, p.Col = c.src.Pos(path)
	}
	c.problems = append(c.problems, p)
}

// fromYAML turns a go-yaml error into a Problem with its position and a plain message.
func fromYAML(file string, err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := Problem{File: file, Msg: plain(ye.GetMessage())}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Col = tk.Position.Line, tk.Position.Column
		}
		return p
	}
	return Problem{File: file, Msg: plain(err.Error())}
}

// plain rewrites go-yaml's messages for people who write YAML, not Go.
func plain(msg string) string {
	msg = strings.TrimSpace(msg)
	if strings.HasPrefix(msg, "unknown field ") {
		return "unknown key " + strings.TrimPrefix(msg, "unknown field ")
	}
	if strings.HasPrefix(msg, "cannot unmarshal ") {
		// "cannot unmarshal string into Go struct field Probe.interval of type int"
		rest := strings.TrimPrefix(msg, "cannot unmarshal ")
		if from, to, ok := strings.Cut(rest, " into Go "); ok {
			if k := strings.LastIndex(to, " "); k >= 0 {
				return fmt.Sprintf("expected %s, found %s", kindName(to[k+1:]), kindName(from))
			}
		}
	}
	// "int was used where sequence is expected"
	if from, to, ok := strings.Cut(msg, " was used where "); ok {
		if to, ok := strings.CutSuffix(to, " is expected"); ok {
			return fmt.Sprintf("expected %s, found %s", kindName(to), kindName(from))
		}
	}
	return msg
}

func kindName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map"), goType == "mapping":
		return "a mapping"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "text"
	case goType == "array", goType == "sequence":
		return "a list"
	}
	if strings.Contains(goType, ".") { // a struct type
		return "a mapping"
	}
	return goType
}

// resolver is implemented by configuration values that need work after
// decoding: secrets that read the environment or a file, durations to parse.
type resolver interface {
	resolve(lookup func(string) (string, bool)) error
}

var resolverType = reflect.TypeFor[resolver]()

// walk visits every value decoded into v, resolving secrets and durations and
// reporting their problems at their YAML paths.
func (c *Checker) walk(path string, v reflect.Value) {
	if v.CanAddr() && v.Addr().Type().Implements(resolverType) {
		if err := v.Addr().Interface().(resolver).resolve(c.lookup); err != nil {
			c.Errorf(path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			c.walk(path, v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, inline := yamlName(f)
			if inline {
				c.walk(path, v.Field(i))
				continue
			}
			if name == "-" {
				continue
			}
			c.walk(path+"."+name, v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			c.walk(path+"["+strconv.Itoa(i)+"]", v.Index(i))
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			// Map values are not addressable: copy, resolve, store back.
			ev := reflect.New(v.Type().Elem()).Elem()
			ev.Set(iter.Value())
			c.walk(path+"."+fmt.Sprint(iter.Key().Interface()), ev)
			v.SetMapIndex(iter.Key(), ev)
		}
	}
}

// yamlName returns the key a struct field is read from, as go-yaml does.
func yamlName(f reflect.StructField) (name string, inline bool) {
	tag := f.Tag.Get("yaml")
	if tag == "" {
		return strings.ToLower(f.Name), f.Anonymous
	}
	name, opts, _ := strings.Cut(tag, ",")
	if strings.Contains(opts, "inline") {
		return "", true
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false
}
