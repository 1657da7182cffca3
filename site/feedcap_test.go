package site

import (
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/candorhq/candor/incidents"
)

// TestFeedsHoldTheNewestUpdatesOnly: a page with more updates than a feed
// holds gets the newest MaxFeedItems in both formats, newest first.
func TestFeedsHoldTheNewestUpdatesOnly(t *testing.T) {
	m := fuzzModel("Login failures", "Body", "<p>Body</p>", "Login")
	in := &m.Incidents[0]
	in.Updates = nil
	const n = MaxFeedItems + 30
	for i := n; i >= 1; i-- { // newest first, as the model holds them
		in.Updates = append(in.Updates, update{PostedUpdate: incidents.PostedUpdate{ID: int64(i), Incident: in.ID,
			Status: incidents.StatusIdentified, BodyHTML: "<p>u</p>", CreatedAt: t0.Add(time.Duration(i) * time.Minute)}})
	}
	rss, atom, err := m.feed("History", "/history", "/history", t0, []*incident{in})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"rss": rss, "atom": atom} {
		f, err := gofeed.NewParser().ParseString(string(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(f.Items) != MaxFeedItems {
			t.Fatalf("%s: %d items, want %d", name, len(f.Items), MaxFeedItems)
		}
		newest, oldest := f.Items[0].PublishedParsed, f.Items[len(f.Items)-1].PublishedParsed
		if newest == nil || !newest.Equal(t0.Add(n*time.Minute)) || oldest == nil || !oldest.Equal(t0.Add((n-MaxFeedItems+1)*time.Minute)) {
			t.Errorf("%s: items from %v to %v, want the newest %d", name, newest, oldest, MaxFeedItems)
		}
	}
}
