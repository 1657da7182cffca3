package site

import (
	"encoding/json"
	"fmt"
	"html"
	"unicode/utf8"
)

// badge colours by overall indicator, readable with white text (WCAG AA for
// the 11px bold text of a badge).
var badgeColours = map[string][2]string{ // svg fill, shields colour name
	"none":        {"#1a7f37", "brightgreen"},
	"minor":       {"#9a6700", "yellow"},
	"major":       {"#bc4c00", "orange"},
	"critical":    {"#cf222e", "red"},
	"maintenance": {"#0969da", "blue"},
}

// badgeMessages are the badge's short words for the overall status.
var badgeMessages = map[string]string{
	"none":        "operational",
	"minor":       "minor outage",
	"major":       "partial outage",
	"critical":    "major outage",
	"maintenance": "maintenance",
}

// badgeSVG draws a flat status badge. Widths are estimated from the text
// length (about 7 px per character of Verdana 11px), good enough for the
// few words it ever shows.
func badgeSVG(label, message, colour string) []byte {
	lw := 10 + 7*utf8.RuneCountInString(label)
	mw := 10 + 7*utf8.RuneCountInString(message)
	w := lw + mw
	l, m := html.EscapeString(label), html.EscapeString(message)
	return fmt.Appendf(nil, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`+
		`<title>%s: %s</title>`+
		`<rect width="%d" height="20" rx="3" fill="#444d56"/><rect x="%d" width="%d" height="20" rx="3" fill="%s"/><rect x="%d" width="4" height="20" fill="%s"/>`+
		`<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" font-weight="bold">`+
		`<text x="%d" y="14">%s</text><text x="%d" y="14">%s</text></g></svg>`,
		w, l, m, l, m, w, lw, mw, colour, lw, colour, lw/2, l, lw+mw/2, m)
}

// addBadges renders /badge.svg and the shields.io endpoint /badge.json
// (https://shields.io/badges/endpoint-badge).
func (b *builder) addBadges(m *model) error {
	ind := m.Status.Indicator
	msg, col := badgeMessages[ind], badgeColours[ind]
	b.add("/badge.svg", typeSVG, badgeSVG("status", msg, col[0]))
	body, err := json.Marshal(map[string]any{"schemaVersion": 1, "label": "status", "message": msg, "color": col[1]})
	if err != nil {
		return err
	}
	b.add("/badge.json", typeJSON, body)
	return nil
}
