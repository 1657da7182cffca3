package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/candorhq/candor/internal/config"
)

// FuzzParseConfig feeds arbitrary files to the configuration parser: it must
// never panic, and every problem it reports must carry a position in the file.
func FuzzParseConfig(f *testing.F) {
	f.Add(demoConfig("127.0.0.1:8081"))
	f.Add("page:\n  name: x\nprobs: []\n")
	f.Add("components: 3\n")
	f.Add("components:\n  - name: A\n    steps: [nope]\nincidents:\n  cadence: 1s\n")
	f.Add("probes:\n  - name: p\n    steps:\n      - url: '{{ totp .x }}'\n")
	f.Add("\x00\xff: [\n")
	f.Fuzz(func(t *testing.T, doc string) {
		_, err := parseConfig("f.yaml", []byte(doc), func(string) (string, bool) { return "", false })
		var ps config.Problems
		if err == nil || !errors.As(err, &ps) {
			return // valid, or a syntax error reported by the YAML parser
		}
		for _, p := range ps {
			if p.Line == 0 && !strings.Contains(p.Msg, "empty") {
				t.Errorf("problem without a position: %q", p.String())
			}
		}
	})
}
