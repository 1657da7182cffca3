package incidents

import (
	"regexp"
	"strings"
	"testing"
)

// activeHTML is what must never survive sanitising: elements and attributes
// that run script or load active content, and script URLs.
var activeHTML = regexp.MustCompile(`(?i)<\s*(script|iframe|object|embed|style|form|svg|math)\b|<[^>]*\son[a-z]+\s*=|<[^>]*(href|src)\s*=\s*["']?\s*(javascript|vbscript|data):`)

// FuzzRenderMarkdown feeds hostile markdown to the update renderer: whatever
// comes in, what goes out has nothing that can run in a reader's browser.
func FuzzRenderMarkdown(f *testing.F) {
	for _, s := range []string{
		"**Investigating** login failures since 08:12 UTC.",
		"<script>alert(1)</script>",
		"[click](javascript:alert(1))",
		"[x](JaVaScRiPt:alert(1))",
		"<img src=x onerror=alert(1)>",
		"![a](data:text/html;base64,PHNjcmlwdD4=)",
		"<a href=\"vbscript:msgbox\">x</a>",
		"```\n<script>\n```",
		"<svg onload=alert(1)>",
		"<iframe src=//evil>",
		"[a](<javascript:alert(1)>)",
		"<<script>script>alert(1)<</script>/script>",
		"]]> </description> \x00\x1b[31m",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > MaxMessage {
			return
		}
		html, err := RenderMarkdown(src)
		if err != nil {
			return
		}
		if m := activeHTML.FindString(html); m != "" {
			t.Errorf("rendered %q to %q, which keeps %q", src, html, m)
		}
		if strings.ContainsRune(html, 0) {
			t.Errorf("rendered %q with a NUL byte", src)
		}
	})
}
