package site

import (
	"crypto/sha256"
	"fmt"
	"hash"
)

// A rebuild renders again only what its inputs changed. Each memoised
// response carries a key: a hash of everything it is rendered from. When
// the previous snapshot has the same key at the same path, its file is
// kept without rendering. The home page, the API and the badges depend on
// everything and are always rendered; unchanged bytes are still reused by
// hash (builder.make).

// keyer hashes the inputs of one response.
type keyer struct{ h hash.Hash }

func newKey(m *model, a assets, kind string) keyer {
	k := keyer{sha256.New()}
	k.add(kind, m.Page.ID, m.Page.Name, m.Page.URL, a.CSS, a.JS)
	return k
}

func (k keyer) add(vs ...any) keyer {
	for _, v := range vs {
		fmt.Fprintf(k.h, "%v\x00", v)
	}
	return k
}

func (k keyer) incident(in *incident) keyer {
	return k.add(in.ID, in.Title, in.Status, in.Impact, in.Classification, in.StartedAt.UnixNano(), in.ResolvedAt.UnixNano(),
		in.UpdatedAt.UnixNano(), in.LastPublicAt.UnixNano(), len(in.Updates), in.Comps)
}

func (k keyer) component(c *component) keyer {
	k.add(c.ID, c.Name, c.Group, c.Description, c.Status, c.UpdatedAt.UnixNano(), c.Uptime)
	for _, d := range c.Days {
		k.add(d.Day.Unix(), d.Runs, d.Failed, len(d.Incidents))
		for _, in := range d.Incidents {
			k.add(in.ID, in.Title)
		}
	}
	for _, in := range c.Incidents {
		k.incident(in)
	}
	return k
}

func (k keyer) String() string { return string(k.h.Sum(nil)) }

// memo adds the response at path, rendering it only when its key differs
// from the previous snapshot's.
func (b *builder) memo(path, ctype, key string, render func() ([]byte, error)) error {
	if b.prev != nil {
		if old := b.prev.files[path]; old != nil && old.key == key {
			b.files[path] = old
			return nil
		}
	}
	body, err := render()
	if err != nil {
		return fmt.Errorf("render %s: %w", path, err)
	}
	f := b.add(path, ctype, body)
	if f.key != key {
		nf := *f // f may be the previous snapshot's: never write to it
		nf.key = key
		b.files[path] = &nf
	}
	return nil
}
