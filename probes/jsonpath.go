package probes

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// jsonPath is a parsed path such as $.user.tokens[0]["access token"]: a
// member or an index per element, nothing more (no wildcards or filters,
// which a probe does not need and which make "which value?" ambiguous).
type jsonPath []pathElem

type pathElem struct {
	key     string
	index   int
	isIndex bool
}

func parseJSONPath(s string) (jsonPath, error) {
	if !strings.HasPrefix(s, "$") {
		return nil, fmt.Errorf("JSON path %q must start with $, as in $.token", s)
	}
	var p jsonPath
	rest := s[1:]
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			k := strings.IndexAny(rest, ".[")
			if k < 0 {
				k = len(rest)
			}
			if k == 0 {
				return nil, fmt.Errorf("JSON path %q has an empty member name", s)
			}
			p = append(p, pathElem{key: rest[:k]})
			rest = rest[k:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("JSON path %q has an unclosed [", s)
			}
			inner := rest[1:end]
			if strings.HasPrefix(inner, `"`) || strings.HasPrefix(inner, `'`) {
				if len(inner) < 2 || inner[len(inner)-1] != inner[0] {
					return nil, fmt.Errorf("JSON path %q has an unclosed quote", s)
				}
				p = append(p, pathElem{key: inner[1 : len(inner)-1]})
			} else {
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("JSON path %q: [%s] is not an index (write [0] or [\"name\"])", s, inner)
				}
				p = append(p, pathElem{index: n, isIndex: true})
			}
			rest = rest[end+1:]
		default:
			return nil, fmt.Errorf("JSON path %q: unexpected %q (write $.member or $[0])", s, rest[:1])
		}
	}
	return p, nil
}

var errNoJSONValue = errors.New("no value")

// lookup finds the value at the path in a decoded JSON document and returns
// it as text: strings as they are, anything else as JSON.
func (p jsonPath) lookup(doc any) (string, error) {
	v := doc
	for _, e := range p {
		switch c := v.(type) {
		case map[string]any:
			if e.isIndex {
				return "", errNoJSONValue
			}
			nv, ok := c[e.key]
			if !ok {
				return "", errNoJSONValue
			}
			v = nv
		case []any:
			if !e.isIndex || e.index >= len(c) {
				return "", errNoJSONValue
			}
			v = c[e.index]
		default:
			return "", errNoJSONValue
		}
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
