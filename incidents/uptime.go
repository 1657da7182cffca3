package incidents

import (
	"context"
	"fmt"
	"time"
)

// DefaultUptimeDays is how many days of uptime the public page shows.
const DefaultUptimeDays = 90

// DayUptime is one component's uptime on one UTC day.
type DayUptime struct {
	Day    time.Time `json:"day"`    // midnight UTC
	Runs   int       `json:"runs"`   // probe runs that day (every location)
	Failed int       `json:"failed"` // of which failed; degraded runs count as up
	// Uptime is the share of runs that did not fail, from 0 to 1; -1 when
	// no probe ran that day.
	Uptime float64 `json:"uptime"`
}

// ComponentUptime is a component's uptime per day, oldest first.
type ComponentUptime struct {
	Component string      `json:"component"`
	ID        string      `json:"id"`
	Days      []DayUptime `json:"days"`
}

// probesOf returns the probes whose runs measure a component: those it
// lists, and those named in its probe/step entries.
func probesOf(c Component) []string {
	out := appendUnique(nil, c.Probes...)
	for _, s := range c.Steps {
		if p, _, ok := cut(s); ok {
			out = appendUnique(out, p)
		}
	}
	return out
}

// Uptime returns each configured component's uptime for the last days UTC
// days (today included), from the probes' daily rollups: it reads at most
// one row per probe, location and day, never the raw results. A component
// measured by no probe has no data.
func (s *Store) Uptime(ctx context.Context, days int) ([]ComponentUptime, error) {
	if days <= 0 {
		days = DefaultUptimeDays
	}
	today := s.now().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(days - 1))
	var all []string
	for _, c := range s.comps {
		all = appendUnique(all, probesOf(c)...)
	}
	type key struct {
		probe string
		day   int
	}
	sums := map[key][2]int{}
	if len(all) > 0 {
		rows, err := s.pool.Query(ctx, `select probe, bucket, sum(runs)::int, sum(failed)::int from probe_rollups_daily
			where probe = any($1) and bucket >= $2 and bucket <= $3 group by probe, bucket`, all, from, today)
		if err != nil {
			return nil, fmt.Errorf("uptime: %w", err)
		}
		for rows.Next() {
			var probe string
			var bucket time.Time
			var runs, failed int
			if err := rows.Scan(&probe, &bucket, &runs, &failed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("uptime: %w", err)
			}
			d := int(bucket.UTC().Sub(from) / (24 * time.Hour))
			sums[key{probe, d}] = [2]int{runs, failed}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("uptime: %w", err)
		}
	}
	out := make([]ComponentUptime, 0, len(s.comps))
	for _, c := range s.comps {
		cu := ComponentUptime{Component: c.Name, ID: c.ID(), Days: make([]DayUptime, days)}
		ps := probesOf(c)
		for d := range days {
			du := DayUptime{Day: from.AddDate(0, 0, d), Uptime: -1}
			for _, p := range ps {
				v := sums[key{p, d}]
				du.Runs += v[0]
				du.Failed += v[1]
			}
			if du.Runs > 0 {
				du.Uptime = float64(du.Runs-du.Failed) / float64(du.Runs)
			}
			cu.Days[d] = du
		}
		out = append(out, cu)
	}
	return out, nil
}
