package site

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mmcdole/gofeed"

	"github.com/candorhq/candor/incidents"
)

// fuzzModel is a model with outside text in every place a rebuild takes
// text from, built without a database, as load would clean it.
func fuzzModel(titleText, body, bodyHTML, compName string) *model {
	m := &model{Page: Page{ID: "p", Name: "Status", URL: "https://status.example.com"}, Built: t0, UpdatedAt: t0}
	m.Components = []component{{ComponentInfo: incidents.ComponentInfo{ID: "c", Name: title(compName), Group: title(compName),
		Description: clean(body, 2000), Status: incidents.PartialOutage, CreatedAt: t0, UpdatedAt: t0}, GroupID: "group-c", Uptime: -1}}
	c := &m.Components[0]
	m.Groups = []group{{ID: "group-c", Name: c.Group, Status: c.Status, Components: []*component{c}, Position: 1, CreatedAt: t0, UpdatedAt: t0}}
	m.Incidents = []incident{{Incident: incidents.Incident{ID: 7, Title: titleText, Status: incidents.StatusInvestigating, Impact: incidents.ImpactMajor,
		StartedAt: t0, DetectedAt: t0, UpdatedAt: t0}, Title: title(titleText), Comps: []string{"c"}}}
	in := &m.Incidents[0]
	in.Updates = []update{{PostedUpdate: incidents.PostedUpdate{ID: 9, Incident: 7, Status: incidents.StatusInvestigating,
		Body: clean(body, 0), BodyHTML: clean(sanitizer().Sanitize(bodyHTML), 0), CreatedAt: t0}}}
	c.Incidents = []*incident{in}
	for d := range 3 {
		c.Days = append(c.Days, day{Day: t0.AddDate(0, 0, d-2).Truncate(24 * time.Hour), Runs: 10, Failed: d, Uptime: float64(10-d) / 10, Incidents: []*incident{in}})
	}
	m.Maint = []maintenance{{Maintenance: incidents.Maintenance{ID: 3, Status: incidents.MaintenanceInProgress, Body: body,
		BodyHTML: clean(sanitizer().Sanitize(bodyHTML), 0), StartsAt: t0, EndsAt: t0.Add(time.Hour), CreatedAt: t0, UpdatedAt: t0}, Title: title(titleText), Comps: []string{"c"}}}
	m.Status = overall(m)
	return m
}

var (
	fuzzScript  = regexp.MustCompile(`(?i)<script[^>]*>[^<]*alert`)
	fuzzJSLink  = regexp.MustCompile(`(?i)<[a-z][^<>]*\s(href|src|action)\s*=\s*["']?\s*javascript:`)
	fuzzHandler = regexp.MustCompile(`(?i)<[a-z][^>]*\son[a-z]+\s*=`)
)

// FuzzSnapshot renders a whole snapshot from outside text and checks every
// output: valid JSON without a raw '<', well-formed feeds that parse, no
// script, javascript: link or event handler in HTML, no control bytes.
func FuzzSnapshot(f *testing.F) {
	f.Add(hostileTitle, hostileMessage, `<p onclick="alert(1)">x</p><script>alert(2)</script>`, "Login")
	f.Add("]]>\x00\x1b", "]]><![CDATA[", `<a href="javascript:alert(1)">x</a>`, "<b>")
	f.Add(strings.Repeat("é", 300), "\u2028\u2029\ufffe", `<img src=x onerror=alert(1)>`, "\xff\xfe")
	a, err := loadAssets()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, titleText, body, bodyHTML, compName string) {
		snap, err := build(fuzzModel(titleText, body, bodyHTML, compName), a, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range snap.Paths() {
			out, _ := snap.Body(p)
			s := string(out)
			if !utf8.Valid(out) {
				t.Fatalf("%s: invalid UTF-8", p)
			}
			for _, b := range out {
				if b < 0x20 && b != '\n' && b != '\t' && b != '\r' || b == 0x7f {
					t.Fatalf("%s: control byte %#x", p, b)
				}
			}
			switch {
			case strings.HasSuffix(p, ".json"):
				if !json.Valid(out) || strings.Contains(s, "<") {
					t.Fatalf("%s: bad JSON %q", p, s)
				}
			case strings.HasSuffix(p, ".rss"), strings.HasSuffix(p, ".atom"):
				if err := wellFormed(out); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				feed, err := gofeed.NewParser().Parse(bytes.NewReader(out))
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				// What a feed reader renders: the entries' HTML.
				for _, it := range feed.Items {
					for _, h := range []string{it.Description, it.Content} {
						if m := fuzzScript.FindString(h) + fuzzJSLink.FindString(h) + fuzzHandler.FindString(h); m != "" {
							t.Fatalf("%s: entry HTML carries %q", p, m)
						}
					}
				}
			case strings.HasSuffix(p, ".svg"):
				if err := wellFormed(out); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
			case strings.HasSuffix(p, ".css"), strings.HasSuffix(p, ".js"):
			default:
				if m := fuzzScript.FindString(s); m != "" {
					t.Fatalf("%s: script %q", p, m)
				}
				if m := fuzzJSLink.FindString(s); m != "" {
					t.Fatalf("%s: javascript link %q", p, m)
				}
				if m := fuzzHandler.FindString(s); m != "" {
					t.Fatalf("%s: event handler %q", p, m)
				}
				if n := strings.Count(s, "<script"); n != 1 {
					t.Fatalf("%s: %d script elements", p, n)
				}
			}
		}
	})
}
