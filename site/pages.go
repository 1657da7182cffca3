package site

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
)

//go:embed assets/site.css assets/local.js
var assetFS embed.FS

// assets are the stylesheet and script, served under names that carry a
// hash of their content so that browsers may keep them for a year.
type assets struct {
	CSS, JS string
	css, js []byte
}

func loadAssets() (assets, error) {
	css, err := assetFS.ReadFile("assets/site.css")
	if err != nil {
		return assets{}, err
	}
	js, err := assetFS.ReadFile("assets/local.js")
	if err != nil {
		return assets{}, err
	}
	return assets{CSS: "/assets/site." + short(css) + ".css", JS: "/assets/local." + short(js) + ".js", css: css, js: js}, nil
}

func short(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// view is what a page is rendered with.
type view struct {
	m *model
	a assets
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
func fmtUTC(t time.Time) string  { return t.UTC().Format("2 Jan 2006 15:04 UTC") }
func itoa(n int64) string        { return strconv.FormatInt(n, 10) }

// words turns a status into words: "partial_outage" → "Partial outage".
func words(s string) string {
	s = strings.ReplaceAll(s, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func classWords(c string) string {
	switch c {
	case "security":
		return "Security incident"
	case "non_security":
		return "Not a security incident"
	}
	return ""
}

func pct(u float64) string {
	if u < 0 {
		return "No data"
	}
	return strconv.FormatFloat(u*100, 'f', 2, 64) + "%"
}

func dayUptime(d day) string {
	if d.Uptime < 0 {
		return "No data"
	}
	return pct(d.Uptime) + " uptime (" + strconv.Itoa(d.Runs-d.Failed) + " of " + strconv.Itoa(d.Runs) + " checks passed)"
}

// dayClass colours a day: no data, fine, or how bad.
func dayClass(d day) string {
	switch {
	case d.Uptime < 0 && len(d.Incidents) == 0:
		return "u-none"
	case d.Uptime >= 0 && d.Uptime < 0.95:
		return "u-critical"
	case d.Uptime >= 0 && d.Uptime < 0.99:
		return "u-major"
	case len(d.Incidents) > 0 || (d.Uptime >= 0 && d.Uptime < 1):
		return "u-minor"
	}
	return "u-ok"
}

type month struct {
	Key, Name string
	Incidents []*incident
}

// months groups the public incidents by the UTC month they started in,
// newest first.
func months(m *model) []month {
	var out []month
	for i := range m.Incidents {
		in := &m.Incidents[i]
		k := in.StartedAt.UTC().Format("2006-01")
		n := len(out)
		j := -1
		for x := range n {
			if out[x].Key == k {
				j = x
			}
		}
		if j < 0 {
			out = append(out, month{Key: k, Name: in.StartedAt.UTC().Format("January 2006")})
			j = n
		}
		out[j].Incidents = append(out[j].Incidents, in)
	}
	// Open incidents come first in the model; order months newest first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Key > out[j-1].Key; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// historyMonths is how many of the newest months /history shows in full.
const historyMonths = 3

func monthPath(key string) string { return "/history/" + key }

func incidentCount(n int) string {
	if n == 1 {
		return "1 incident"
	}
	return strconv.Itoa(n) + " incidents"
}

// periodIncidents returns a component's incidents that overlap the days its
// uptime bars show, and how many older ones there are: a component page's
// size does not grow with history.
func periodIncidents(m *model, c *component) (shown []*incident, older int) {
	from := m.Built.Truncate(24*time.Hour).AddDate(0, 0, -(uptimeDays - 1))
	for _, in := range c.Incidents {
		if overlaps(in.Incident, from, m.Built) {
			shown = append(shown, in)
		} else {
			older++
		}
	}
	return shown, older
}

func render(c templ.Component) ([]byte, error) {
	var b bytes.Buffer
	if err := c.Render(context.Background(), &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// addPages renders the HTML pages and their assets.
func (b *builder) addPages(m *model, a assets) error {
	v := view{m: m, a: a}
	css := b.make(a.CSS, 200, typeCSS, cacheImmutable, a.css)
	b.files[a.CSS] = css
	b.files[a.JS] = b.make(a.JS, 200, typeJS, cacheImmutable, a.js)
	page := func(path string, c templ.Component) error {
		body, err := render(c)
		if err != nil {
			return fmt.Errorf("render %s: %w", path, err)
		}
		b.add(path, typeHTML, body)
		return nil
	}
	if err := page("/", home(v)); err != nil {
		return err
	}
	// /history shows the newest historyMonths months; every month has its
	// own page. An update re-renders /history and its month's page only.
	ms := months(m)
	recent, earlier := ms[:min(historyMonths, len(ms))], ms[min(historyMonths, len(ms)):]
	hk := newKey(m, a, "history").add(len(m.Incidents), len(recent))
	for _, mo := range recent {
		hk.add(mo.Key)
		for _, in := range mo.Incidents {
			hk.incident(in)
		}
	}
	for _, mo := range earlier {
		hk.add(mo.Key, len(mo.Incidents))
	}
	if err := b.memo("/history", typeHTML, hk.String(), func() ([]byte, error) { return render(historyPage(v, recent, earlier)) }); err != nil {
		return err
	}
	for i, mo := range ms {
		var newer, older *month
		k := newKey(m, a, "month").add(mo.Key)
		if i > 0 {
			newer = &ms[i-1]
			k.add("newer", newer.Key)
		}
		if i+1 < len(ms) {
			older = &ms[i+1]
			k.add("older", older.Key)
		}
		for _, in := range mo.Incidents {
			k.incident(in)
		}
		if err := b.memo(monthPath(mo.Key), typeHTML, k.String(), func() ([]byte, error) { return render(monthPage(v, mo, newer, older)) }); err != nil {
			return err
		}
	}
	for i := range m.Incidents {
		in := &m.Incidents[i]
		k := newKey(m, a, "incident").incident(in)
		for _, id := range in.Comps {
			if c := m.componentByID(id); c != nil {
				k.add(c.ID, c.Name)
			}
		}
		k.updates(in)
		if err := b.memo(incidentPath(in.ID), typeHTML, k.String(), func() ([]byte, error) { return render(incidentPage(v, in)) }); err != nil {
			return err
		}
	}
	for i := range m.Components {
		c := &m.Components[i]
		k := newKey(m, a, "component").component(c)
		if err := b.memo(componentPath(c.ID), typeHTML, k.String(), func() ([]byte, error) { return render(componentPage(v, c)) }); err != nil {
			return err
		}
	}
	body, err := render(notFoundPage(v))
	if err != nil {
		return err
	}
	b.notFound = b.make("/404.html", 404, typeHTML, cacheNotFound, body)
	return nil
}

func axisUptime(u float64) string {
	if u < 0 {
		return "No data yet"
	}
	return pct(u) + " uptime"
}
