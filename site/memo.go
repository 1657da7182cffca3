package site

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math"
	"time"
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
	var b [8]byte
	for _, v := range vs {
		switch v := v.(type) {
		case string:
			binary.LittleEndian.PutUint64(b[:], uint64(len(v)))
			k.h.Write(b[:])
			io.WriteString(k.h, v)
		case int:
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			k.h.Write(b[:])
		case int64:
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			k.h.Write(b[:])
		case float64:
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
			k.h.Write(b[:])
		case bool:
			if v {
				b[0] = 1
			} else {
				b[0] = 0
			}
			k.h.Write(b[:1])
		case time.Time:
			binary.LittleEndian.PutUint64(b[:], uint64(v.UnixNano()))
			k.h.Write(b[:])
		case []string:
			k.add(len(v))
			for _, x := range v {
				k.add(x)
			}
		case fmt.Stringer:
			k.add(v.String())
		default:
			fmt.Fprintf(k.h, "%T:%v\x00", v, v)
		}
	}
	return k
}

func (k keyer) incident(in *incident) keyer {
	return k.add(in.ID, in.Title, string(in.Status), string(in.Impact), string(in.Classification), in.Confirmed, in.StartedAt, in.DetectedAt,
		in.MonitoringAt, in.ResolvedAt, in.UpdatedAt, in.LastPublicAt, len(in.Updates), in.Comps)
}

// updates adds what is shown of an incident's updates.
func (k keyer) updates(in *incident) keyer {
	for _, u := range in.Updates {
		k.add(u.ID, string(u.Status), u.CreatedAt, u.Body, u.BodyHTML, len(u.Affected))
		for _, a := range u.Affected {
			k.add(a.Code, a.Name, a.OldStatus, a.NewStatus)
		}
	}
	return k
}

// modelKey is a hash of everything a snapshot shows: when it equals the
// previous snapshot's, nothing needs rendering at all (the hourly rebuild,
// a notice about something not public).
func modelKey(m *model, a assets) string {
	k := newKey(m, a, "model").add(m.UpdatedAt, m.Status.Indicator, m.Status.Description, len(m.Groups))
	for _, g := range m.Groups {
		k.add(g.ID, g.Name, string(g.Status), g.Position, g.CreatedAt, g.UpdatedAt, len(g.Components))
		for _, c := range g.Components {
			k.component(c).add(c.Position, c.CreatedAt, c.GroupID)
		}
	}
	k.add(len(m.Incidents))
	for i := range m.Incidents {
		k.incident(&m.Incidents[i]).updates(&m.Incidents[i])
	}
	k.add(len(m.Maint))
	for _, mt := range m.Maint {
		k.add(mt.ID, mt.Title, string(mt.Status), mt.Body, mt.BodyHTML, mt.StartsAt, mt.EndsAt, mt.CreatedAt, mt.UpdatedAt, mt.Comps)
	}
	return k.String()
}

func (k keyer) component(c *component) keyer {
	k.add(c.ID, c.Name, c.Group, c.Description, string(c.Status), c.UpdatedAt, c.Uptime, len(c.Days))
	for _, d := range c.Days {
		k.add(d.Day, d.Runs, d.Failed, d.Uptime, len(d.Incidents))
		for _, in := range d.Incidents {
			k.add(in.ID, in.Title)
		}
	}
	k.add(len(c.Incidents))
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
