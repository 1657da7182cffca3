package runbooks

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to the parser: it must never panic, every
// problem must point at a line of the file, and a runbook that parses must
// render or fail to render cleanly and be matchable. Seeds: the built-ins and
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	names, err := builtinFS.ReadDir("builtin")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range names {
		data, err := builtinFS.ReadFile("builtin/" + e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(good))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := strings.Count(strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data)), "\n") + 1
		rb, err := Parse("f.md", data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse error %v is not Problems", err)
			}
			for _, p := range ps {
				if p.File != "f.md" || p.Line < 0 || p.Line > lines {
					t.Fatalf("problem %q points outside the file's %d lines", p, lines)
				}
			}
			return
		}
		if rb.ID == "" || rb.Title == "" || len(rb.Steps) == 0 {
			t.Fatalf("Parse accepted a runbook without id, title or steps: %+v", rb)
		}
		for _, tp := range rb.Templates {
			in := SampleIncident(tp.Classification, true)
			if _, err := tp.Render(in); err != nil {
				var re *RenderError
				if !errors.As(err, &re) || re.Line < tp.Line || re.Line > lines {
					t.Fatalf("render error %v does not point into the template at line %d", err, tp.Line)
				}
			}
		}
		q := Query{Roles: rb.Match.Roles, Steps: rb.Match.Steps, Probes: rb.Match.Probes, Components: rb.Match.Components,
			ErrorClasses: rb.Match.ErrorClasses, Classification: rb.Match.Classification, Messages: rb.Match.MessageContains}
		if ms := Match([]Runbook{rb}, q); len(ms) != 1 {
			t.Fatalf("a runbook does not match a query made of its own criteria: %+v", rb.Match)
		}
	})
}
