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
	for _, pl := range proseLines(text) {
		line, orig := pl[0], pl[1]
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
			if looksLikePlaceholder(strings.TrimSpace(line[i+1 : end])) {
				return orig[i : end+1]
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

// proseLines returns the lines of markdown text outside fenced and
// indented code blocks, each as {masked, original}: in masked, inline code
// spans (with their backticks) are NUL bytes, so that brackets in code are
// not read while what is returned comes from the text as typed.
func proseLines(text string) [][2]string {
	var out [][2]string
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
		masked := []byte(line)
		inCode := false
		for i := range masked {
			if masked[i] == '`' {
				inCode = !inCode
				masked[i] = 0
			} else if inCode {
				masked[i] = 0
			}
		}
		out = append(out, [2]string{string(masked), line})
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
