package incidents

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
)

// RenderMarkdown renders an update's markdown to HTML that is safe to put in
// a page: goldmark drops raw HTML, and bluemonday's user-content policy
// removes whatever else could run (javascript: links, event attributes).
// Links get rel="nofollow noopener" and open as written.
func RenderMarkdown(src string) (string, error) {
	var b bytes.Buffer
	if err := goldmark.Convert([]byte(src), &b); err != nil {
		return "", fmt.Errorf("render markdown: %w", err)
	}
	p := bluemonday.UGCPolicy()
	p.RequireNoFollowOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(false)
	return strings.TrimSpace(p.Sanitize(b.String())), nil
}

// checkText validates free text written by a person: required or not, a
// byte limit, valid UTF-8 and no control characters other than newlines and tabs.
func checkText(field, text string, required bool, limit int) *FieldError {
	switch {
	case required && strings.TrimSpace(text) == "":
		return &FieldError{Field: field, Msg: "is required"}
	case len(text) > limit:
		return &FieldError{Field: field, Msg: fmt.Sprintf("is %d bytes; the limit is %d", len(text), limit)}
	case !utf8.ValidString(text):
		return &FieldError{Field: field, Msg: "is not valid UTF-8 text"}
	}
	for _, r := range text {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' || r == 0x7f {
			return &FieldError{Field: field, Msg: fmt.Sprintf("contains the control character %U", r)}
		}
	}
	return nil
}
