package site

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/feeds"
)

// statusWords names an incident update's status in a feed entry's title.
var statusWords = map[string]string{
	"investigating": "Investigating",
	"identified":    "Identified",
	"monitoring":    "Monitoring",
	"resolved":      "Resolved",
	"postmortem":    "Postmortem",
}

// feed renders the entries of the incidents in incs as RSS 2.0 and Atom 1.0:
// one entry per public update, newest first, dated in UTC, titled with the
// status and linking to the incident. Text goes through encoding/xml, which
// escapes it (and replaces characters XML cannot carry), so "]]>" or a
// script tag in an update is inert.
func (m *model) feed(title, link, selfPath string, updated time.Time, incs []*incident) (rss, atom []byte, err error) {
	host := "candor"
	if u, err := url.Parse(m.Page.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	f := &feeds.Feed{
		Title:       title,
		Link:        &feeds.Link{Href: m.url(link)},
		Description: "Incident history of " + m.Page.Name,
		Id:          m.url(selfPath + ".atom"),
		Updated:     updated.UTC(),
		Created:     updated.UTC(),
	}
	for _, in := range incs {
		for _, u := range in.Updates {
			at := u.CreatedAt.UTC()
			f.Items = append(f.Items, &feeds.Item{
				Title:       fmt.Sprintf("%s: %s", statusWords[string(u.Status)], in.Title),
				Link:        &feeds.Link{Href: m.url(fmt.Sprintf("%s#update-%d", incidentPath(in.ID), u.ID))},
				Id:          fmt.Sprintf("tag:%s,%s:incident/%d/update/%d", host, in.StartedAt.UTC().Format("2006-01-02"), in.ID, u.ID),
				Description: u.BodyHTML,
				Created:     at,
				Updated:     at,
			})
		}
	}
	sortItems(f.Items)
	if len(f.Items) > MaxFeedItems {
		f.Items = f.Items[:MaxFeedItems]
	}
	if len(f.Items) > 0 {
		f.Updated = f.Items[0].Updated
	}
	r, err := f.ToRss()
	if err != nil {
		return nil, nil, err
	}
	a, err := f.ToAtom()
	if err != nil {
		return nil, nil, err
	}
	return []byte(r), []byte(a), nil
}

// MaxFeedItems is how many of the newest updates a feed holds. Readers poll
// for what is new; a bound keeps each rebuild's cost independent of how
// much history the page has (the whole history stays on /history).
const MaxFeedItems = 100

// sortItems puts the newest entries first (stable for equal times).
func sortItems(items []*feeds.Item) {
	slices.SortStableFunc(items, func(a, b *feeds.Item) int { return b.Created.Compare(a.Created) })
}

func (b *builder) addFeeds(m *model, a assets) error {
	all := make([]*incident, len(m.Incidents))
	for i := range m.Incidents {
		all[i] = &m.Incidents[i]
	}
	if err := b.feedPair(m, a, "/history", m.Page.Name+" status history", m.UpdatedAt, all); err != nil {
		return err
	}
	for i := range m.Components {
		c := &m.Components[i]
		if err := b.feedPair(m, a, componentPath(c.ID), strings.TrimSpace(m.Page.Name+" status history: "+c.Name), c.UpdatedAt, c.Incidents); err != nil {
			return err
		}
	}
	return nil
}

// feedPair adds base.rss and base.atom, rendered again only when one of
// their entries changed.
func (b *builder) feedPair(m *model, a assets, base, title string, updated time.Time, incs []*incident) error {
	k := newKey(m, a, "feed").add(base, title, updated, len(incs))
	for _, in := range incs {
		k.incident(in).updates(in)
	}
	key := k.String()
	var rss, atom []byte
	renderBoth := func() error {
		if rss != nil {
			return nil
		}
		var err error
		rss, atom, err = m.feed(title, base, base, updated, incs)
		return err
	}
	if err := b.memo(base+".rss", typeRSS, key, func() ([]byte, error) { err := renderBoth(); return rss, err }); err != nil {
		return err
	}
	return b.memo(base+".atom", typeAtom, key, func() ([]byte, error) { err := renderBoth(); return atom, err })
}
