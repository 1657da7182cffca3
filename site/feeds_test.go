package site

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/candorhq/candor/incidents"
)

// TestFeedsHoldEveryPublicUpdate reads /history.rss, /history.atom and the
// per-component feeds back with gofeed and finds every public update of
// every public incident, with its UTC time, status and link, and no
// internal update.
func TestFeedsHoldEveryPublicUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resolved, open := f.scenario(t)
	f.rebuild(t)
	srv := httptest.NewServer(f.site.Handler())
	defer srv.Close()

	type want struct {
		title, link string
		at          time.Time
	}
	wants := map[string][]want{} // feed path → entries
	for _, in := range []incidents.Incident{resolved, open} {
		full, err := f.store.Get(context.Background(), in.ID)
		if err != nil {
			t.Fatal(err)
		}
		us, err := f.store.Updates(context.Background(), in.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			w := want{title: fmt.Sprintf("%s: %s", statusWords[string(u.Status)], in.Title),
				link: fmt.Sprintf("https://status.example.com/incidents/%d#update-%d", in.ID, u.ID), at: u.CreatedAt}
			for _, p := range []string{"/history.rss", "/history.atom"} {
				wants[p] = append(wants[p], w)
			}
			for _, c := range full.Components {
				id := incidents.ComponentID(c)
				wants["/components/"+id+".rss"] = append(wants["/components/"+id+".rss"], w)
				wants["/components/"+id+".atom"] = append(wants["/components/"+id+".atom"], w)
			}
		}
	}
	wants["/components/api.rss"] = nil
	if len(wants["/history.rss"]) != 5 {
		t.Fatalf("the scenario has %d public updates, want 5", len(wants["/history.rss"]))
	}
	p := gofeed.NewParser()
	for path, ws := range wants {
		resp, body := get(t, srv, path, "Accept-Encoding", "gzip")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		feed, err := p.Parse(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		kind := "rss"
		if strings.HasSuffix(path, ".atom") {
			kind = "atom"
		}
		if feed.FeedType != kind {
			t.Errorf("%s: feed type %s", path, feed.FeedType)
		}
		if strings.Contains(string(body), "internal:") {
			t.Errorf("%s: an internal update is in the feed", path)
		}
		if len(feed.Items) != len(ws) {
			t.Errorf("%s: %d entries, want %d", path, len(feed.Items), len(ws))
		}
		for _, w := range ws {
			var found *gofeed.Item
			for _, it := range feed.Items {
				if it.Link == w.link {
					found = it
				}
			}
			if found == nil {
				t.Errorf("%s: no entry for %s", path, w.link)
				continue
			}
			if found.Title != w.title {
				t.Errorf("%s: title %q, want %q", path, found.Title, w.title)
			}
			got := found.PublishedParsed
			if kind == "atom" {
				got = found.UpdatedParsed
			}
			if got == nil || !got.Equal(w.at.Truncate(time.Second)) {
				t.Errorf("%s: %s dated %v, want %v", path, w.link, got, w.at)
				continue
			}
			if _, off := got.Zone(); off != 0 {
				t.Errorf("%s: %s dated %v, not UTC", path, w.link, got)
			}
			raw := found.Published
			if kind == "atom" {
				raw = found.Updated
			}
			if !strings.HasSuffix(raw, "Z") && !strings.HasSuffix(raw, "+0000") {
				t.Errorf("%s: date %q is not written in UTC", path, raw)
			}
		}
		// Newest first.
		for i := 1; i < len(feed.Items); i++ {
			a, b := feed.Items[i-1].PublishedParsed, feed.Items[i].PublishedParsed
			if kind == "atom" {
				a, b = feed.Items[i-1].UpdatedParsed, feed.Items[i].UpdatedParsed
			}
			if a.Before(*b) {
				t.Errorf("%s: entries out of order at %d", path, i)
			}
		}
	}
}
