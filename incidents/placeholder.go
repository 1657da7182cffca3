package incidents

import (
	"fmt"
	"strings"
	"unicode"
)

// Placeholder returns the first placeholder left in text from a prefilled
// template, or "": bracketed prose such as "[One sentence on the cause.]"
// or "[NAME, DATE]", which a person is meant to replace before posting. A
// markdown link ("[text](url)", "[text][ref]", "[ref]: url"), a task box
// ("[ ]", "[x]"), a footnote-like "[1]" and anything in code are not
// placeholders.
func Placeholder(text string) string {
	for _, line := range proseLines(text) {
		for i := 0; i < len(line); i++ {
			if line[i] != '[' || i > 0 && (line[i-1] == ']' || line[i-1] == '\\') {
				continue
			}
			end := strings.IndexAny(line[i+1:], "[]")
			if end < 0 {
				break
			}
			end += i + 1
			if line[end] == '[' {
				i = end - 1
				continue
			}
			if end+1 < len(line) && strings.ContainsRune("([:", rune(line[end+1])) {
				i = end
				continue
			}
			inner := strings.TrimSpace(line[i+1 : end])
			if looksLikePlaceholder(inner) {
				return line[i : end+1]
			}
			i = end
		}
	}
	return ""
}

// looksLikePlaceholder: prose (a space inside) or a word in capitals.
func looksLikePlaceholder(inner string) bool {
	if len([]rune(inner)) < 2 {
		return false
	}
	if strings.ContainsFunc(inner, unicode.IsSpace) {
		return true
	}
	run := 0
	for _, r := range inner {
		if unicode.IsUpper(r) {
			run++
			if run >= 2 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// proseLines returns the lines of markdown text outside fenced code blocks,
// with inline code spans blanked.
func proseLines(text string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced || strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			continue
		}
		var b strings.Builder
		inCode := false
		for _, r := range line {
			if r == '`' {
				inCode = !inCode
				continue
			}
			if !inCode {
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}

// checkPlaceholders refuses a text that still holds a placeholder.
func checkPlaceholders(field, text string) *FieldError {
	if p := Placeholder(text); p != "" {
		return &FieldError{Field: field, Msg: fmt.Sprintf("replace the placeholder %q before posting", p)}
	}
	return nil
}
