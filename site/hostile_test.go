package site

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/mmcdole/gofeed"

	"github.com/candorhq/candor/incidents"
)

const hostileTitle = `<script>alert(1)</script> ]]> "q" 'a' & <b onmouseover=alert(2)>x</b> javascript:alert(3)`

const hostileMessage = "<script>alert(4)</script>\n\n[click](javascript:alert(5)) ]]> <img src=x onerror=alert(6)>\n\n" +
	"<a href=\"javascript:alert(7)\">a</a> <iframe src=//evil.example></iframe> ]]><![CDATA[ x"

// TestHostileTextIsInert puts script tags, javascript: links, "]]>",
// control characters and a 100 KB title in incidents, updates and
// maintenance (through the Store, and where the Store refuses, straight
// into the database as a row written some other way would be) and checks
// every output of the snapshot.
func TestHostileTextIsInert(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()

	// Upstream: the Store refuses a 100 KB title and control characters.
	huge := strings.Repeat("A", 100<<10)
	_, err := f.store.CreateIncident(ctx, incidents.NewIncident{Title: huge, Message: "x", Actor: "person:ada@example.com"})
	var fe incidents.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("100 KB title: %v", err)
	}
	if _, err := f.store.CreateIncident(ctx, incidents.NewIncident{Title: "bell\x07", Message: "x", Actor: "person:ada@example.com"}); !errors.As(err, &fe) {
		t.Fatalf("control character: %v", err)
	}

	in := f.incident(t, incidents.NewIncident{Title: hostileTitle, Message: hostileMessage, Impact: incidents.ImpactMajor,
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.MajorOutage}}})
	f.update(t, in.ID, incidents.Update{Status: incidents.StatusIdentified, Message: hostileMessage + " ]]>"})
	if _, err := f.store.ScheduleMaintenance(ctx, incidents.NewMaintenance{Title: hostileTitle, Message: hostileMessage,
		Components: []string{"API"}, StartsAt: t0.Add(-30 * 60e9), EndsAt: t0.Add(3600e9), Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	// Rows the Store would never write: a 100 KB title with control
	// characters, raw HTML in body_html.
	bad := "\x00\x01\x0b\x1b[31m" + hostileTitle + huge + "\x7f\u2028"
	if _, err := f.pool.Exec(ctx, `update incidents set title = $2 where id = $1`, in.ID, strings.ReplaceAll(bad, "\x00", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `update incident_updates set body = $2, body_html = $3 where incident_id = $1`, in.ID,
		"body\x01\x0c"+hostileMessage, `<p onclick="alert(8)">x</p><script>alert(9)</script><a href="javascript:alert(10)">y</a>`+"\x02"); err != nil {
		t.Fatal(err)
	}
	f.rebuild(t)
	snap := f.site.Snapshot()
	srv := httptest.NewServer(f.site.Handler())
	defer srv.Close()

	scriptTag := regexp.MustCompile(`(?i)<script[^>]*>[^<]*alert`)
	jsLink := regexp.MustCompile(`(?i)(href|src)\s*=\s*("|&#34;|&quot;|')?\s*javascript:`)
	handler := regexp.MustCompile(`(?i)<[^>]+\son(error|click|mouseover)\s*=`)
	paths := append(snap.Paths(), "/no-such-page")
	for _, p := range paths {
		_, body := get(t, srv, p, "Accept-Encoding", "gzip")
		s := string(body)
		if m := scriptTag.FindString(s); m != "" {
			t.Errorf("%s: script %q", p, m)
		}
		if m := jsLink.FindString(s); m != "" {
			t.Errorf("%s: javascript link %q", p, m)
		}
		if m := handler.FindString(s); m != "" {
			t.Errorf("%s: event handler %q", p, m)
		}
		if strings.Contains(s, "<iframe") {
			t.Errorf("%s: an iframe", p)
		}
		for _, b := range body {
			if b < 0x20 && b != '\n' && b != '\t' && b != '\r' || b == 0x7f {
				t.Errorf("%s: control byte %#x", p, b)
				break
			}
		}
		if strings.Contains(s, strings.Repeat("A", 1000)) {
			t.Errorf("%s: carries the 100 KB title (%d bytes)", p, len(body))
		}
		switch {
		case strings.HasSuffix(p, ".json"):
			if !json.Valid(body) {
				t.Errorf("%s: invalid JSON", p)
			}
			if strings.Contains(s, "<") {
				t.Errorf("%s: an unescaped < in JSON", p)
			}
		case strings.HasSuffix(p, ".rss"), strings.HasSuffix(p, ".atom"), strings.HasSuffix(p, ".svg"):
			if err := wellFormed(body); err != nil {
				t.Errorf("%s: not well-formed XML: %v", p, err)
			}
			if strings.HasSuffix(p, ".svg") {
				continue
			}
			feed, err := gofeed.NewParser().Parse(bytes.NewReader(body))
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			for _, it := range feed.Items {
				if !strings.Contains(it.Title, "<script>alert(1)</script> ]]>") {
					t.Errorf("%s: the title lost its text: %q", p, it.Title)
				}
				if len(it.Title) > 1000 {
					t.Errorf("%s: a %d-byte title", p, len(it.Title))
				}
			}
		}
	}
	// The title is shown as text, escaped, on the incident page.
	_, page := get(t, srv, "/incidents/"+itoa(in.ID))
	if !strings.Contains(string(page), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the incident page does not show the title as text")
	}
}

func wellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}
