package incidents

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ProbeImpact is what the probes measured of an incident's customer impact.
type ProbeImpact struct {
	Runs         int           // runs of the incident's probes between start and resolution
	Failed       int           // of which failed
	Locations    []string      // locations that saw a failure
	Longest      time.Duration // longest continuous failure at one location
	LongestFrom  time.Time     // its first failed run
	LongestUntil time.Time     // the first good run after it (or the end of the window)
	LongestAt    string        // its location
}

// NoteInput is everything a post-incident note draft is written from.
type NoteInput struct {
	Incident Incident
	Timeline []TimelineEvent
	Evidence []Evidence
	Impact   ProbeImpact
	Now      time.Time // for an incident not resolved yet
}

const noteTime = "2006-01-02 15:04:05 UTC"

func utcText(t time.Time) string {
	if t.IsZero() {
		return "not yet"
	}
	return t.UTC().Format(noteTime)
}

func span(from, to time.Time) string {
	if from.IsZero() || to.IsZero() {
		return "n/a"
	}
	d := to.Sub(from)
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	}
	return humanDuration(d)
}

// DraftNote writes a post-incident note draft in markdown for executives,
// from the timeline: title, summary, the key times in UTC and the durations
// between them, components and steps, the impact the probes measured, the
// classification with its evidence, a timeline table, and headings for
// people to fill in. It is pure: the same input gives the same text.
func DraftNote(in NoteInput) string {
	inc := in.Incident
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	end := inc.ResolvedAt
	w("# Post-incident note: %s\n\n", mdEscape(inc.Title))

	w("## Summary\n\n")
	comps := "no mapped component"
	if len(inc.Components) > 0 {
		comps = listText(inc.Components)
	}
	if end.IsZero() {
		w("Since %s, customers have been affected: %s (%s so far). ", utcText(inc.StartedAt), mdEscape(comps), span(inc.StartedAt, in.Now))
	} else {
		w("From %s to %s, customers were affected for %s: %s. ", utcText(inc.StartedAt), utcText(end), span(inc.StartedAt, end), mdEscape(comps))
	}
	if steps := stepNames(inc.Steps); len(steps) > 0 {
		w("Our probes failed at the %s step%s. ", mdEscape(listText(steps)), plural(len(steps)))
	}
	w("%s\n\n", classificationSentence(inc))

	w("## Key times (UTC)\n\n")
	w("| Moment | Time (UTC) | Since the start |\n|---|---|---|\n")
	w("| Started (first failed run) | %s | |\n", utcText(inc.StartedAt))
	w("| Detected (incident opened) | %s | %s |\n", utcText(inc.DetectedAt), span(inc.StartedAt, inc.DetectedAt))
	w("| First public update | %s | %s |\n", utcText(inc.FirstPublicAt), span(inc.StartedAt, inc.FirstPublicAt))
	if !inc.MonitoringAt.IsZero() {
		w("| Probes passing again (monitoring) | %s | %s |\n", utcText(inc.MonitoringAt), span(inc.StartedAt, inc.MonitoringAt))
	}
	w("| Resolved | %s | %s |\n\n", utcText(end), span(inc.StartedAt, end))
	w("- Time to detect: %s\n", span(inc.StartedAt, inc.DetectedAt))
	w("- Time from detection to the first public update: %s\n", span(inc.DetectedAt, inc.FirstPublicAt))
	w("- Time from the first public update to resolution: %s\n", span(inc.FirstPublicAt, end))
	w("- Total duration: %s\n\n", span(inc.StartedAt, end))

	w("## Affected components and steps\n\n")
	if len(inc.Components) == 0 {
		w("- No component was mapped to the failing steps.\n")
	}
	for _, c := range inc.Components {
		w("- %s\n", mdEscape(c))
	}
	for _, s := range inc.Steps {
		w("- Step `%s`\n", strings.ReplaceAll(s, "`", "'"))
	}
	w("\n## Customer impact measured by the probes\n\n")
	im := in.Impact
	if im.Runs == 0 {
		w("No probe results are kept for this period.\n\n")
	} else {
		w("- %d of %d probe runs failed (%.1f%%)", im.Failed, im.Runs, 100*float64(im.Failed)/float64(im.Runs))
		w(" between %s and %s.\n", utcText(inc.StartedAt), utcText(orNow(end, in.Now)))
		if len(im.Locations) > 0 {
			w("- Locations that saw failures: %s.\n", mdEscape(listText(im.Locations)))
		}
		if im.Longest > 0 {
			w("- Longest continuous failure: %s at %s, from %s to %s.\n", span(im.LongestFrom, im.LongestUntil), mdEscape(im.LongestAt), utcText(im.LongestFrom), utcText(im.LongestUntil))
		}
		w("\n")
	}

	w("## Classification\n\n%s\n\n", classificationSentence(inc))
	if len(in.Evidence) > 0 {
		w("Evidence:\n\n")
		for _, e := range in.Evidence {
			sig := ""
			if len(e.Signals) > 0 {
				names := make([]string, len(e.Signals))
				for i, s := range e.Signals {
					names[i] = string(s)
				}
				sig = ", signals " + strings.Join(names, ", ")
			}
			w("- %s: probe %s at %s, step %s, %s%s: %s (%s)\n", utcText(e.At), mdEscape(e.Probe), mdEscape(e.Location),
				mdEscape(e.Step), mdEscape(orDash(e.Class)), sig, e.Verdict, mdEscape(e.Why))
		}
		w("\n")
	}
	for _, t := range in.Timeline {
		if t.Kind == KindClassificationChanged {
			e := t.Event()
			if e.Confirmed {
				w("- %s: %s set the classification to %s: %s\n", utcText(t.At), mdEscape(t.Actor), e.To, mdEscape(e.Reason))
			}
		}
	}

	w("\n## Timeline\n\n| Time (UTC) | Event | Who | Details |\n|---|---|---|---|\n")
	for _, t := range in.Timeline {
		if t.Kind == KindNotified || t.Kind == KindNoteDrafted {
			continue
		}
		w("| %s | %s | %s | %s |\n", utcText(t.At), t.Kind, cell(t.Actor), cell(describeEvent(t.Event())))
	}
	w("\n## Root cause\n\n_To be written._\n\n## Remediation\n\n_To be written._\n\n## Follow-ups\n\n- [ ] _To be written._\n")
	return b.String()
}

func classificationSentence(inc Incident) string {
	switch {
	case inc.Classification == NonSecurity && inc.Confirmed:
		return "This was not a security incident: a person confirmed the classification after reviewing the evidence."
	case inc.Classification == NonSecurity:
		return "We have no indication that this was a security incident: the probes saw availability failures only. No person has confirmed the classification yet."
	case inc.Classification == Security:
		sigs := make([]string, len(inc.Signals))
		for i, s := range inc.Signals {
			sigs[i] = string(s)
		}
		if len(sigs) == 0 {
			return "This was classified as a security incident."
		}
		return "This was classified as a security incident: the probes raised " + strings.Join(sigs, ", ") + "."
	}
	return "Whether this was a security incident is undetermined: the service answered, but not as expected."
}

func describeEvent(e Event) string {
	var parts []string
	if e.From != "" || e.To != "" {
		parts = append(parts, e.From+" → "+e.To)
	}
	if e.Probe != "" {
		p := "probe " + e.Probe
		if e.Location != "" {
			p += " at " + e.Location
		}
		if e.Step != "" {
			p += ", step " + e.Step
		}
		if e.Class != "" {
			p += " (" + e.Class + ")"
		}
		parts = append(parts, p)
	}
	if len(e.Components) > 0 {
		parts = append(parts, "components "+listText(e.Components))
	}
	if e.Runbook != nil {
		parts = append(parts, "runbook "+e.Runbook.Title)
	}
	if v, ok := e.Extra["visibility"].(string); ok {
		parts = append(parts, v+" update")
	}
	if e.Reason != "" {
		parts = append(parts, e.Reason)
	}
	return strings.Join(parts, "; ")
}

func stepNames(steps []string) []string {
	var out []string
	for _, s := range steps {
		_, step, _ := cut(s)
		out = appendUnique(out, step)
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// mdEscape keeps configured or probe-written text from being read as markdown.
func mdEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "|", `\|`, "#", `\#`)
	return r.Replace(strings.Join(strings.Fields(s), " "))
}

func cell(s string) string { return mdEscape(s) }

// NoteVersion is one saved version of an incident's post-incident note.
type NoteVersion struct {
	Incident    int64     `json:"incident_id"`
	Version     int       `json:"version"`
	Body        string    `json:"body"`
	Author      string    `json:"author"`
	CreatedAt   time.Time `json:"created_at"`
	PublishedAt time.Time `json:"published_at,omitzero"`
}

// DraftNote generates the post-incident note draft of an incident from its
// timeline, evidence and the probes' results (not saved: see SaveNote).
func (s *Store) DraftNote(ctx context.Context, id int64) (string, error) {
	inc, err := s.Get(ctx, id)
	if err != nil {
		return "", err
	}
	tl, err := s.Timeline(ctx, id)
	if err != nil {
		return "", err
	}
	ev, err := s.Evidence(ctx, id)
	if err != nil {
		return "", err
	}
	now := s.now()
	im, err := s.probeImpact(ctx, inc, orNow(inc.ResolvedAt, now))
	if err != nil {
		return "", err
	}
	return DraftNote(NoteInput{Incident: inc, Timeline: tl, Evidence: ev, Impact: im, Now: now}), nil
}

// probeImpact measures an incident's impact from the raw probe results of
// its probes between its start and end (at most a few thousand rows).
func (s *Store) probeImpact(ctx context.Context, inc Incident, end time.Time) (ProbeImpact, error) {
	var im ProbeImpact
	if len(inc.Probes) == 0 {
		return im, nil
	}
	rows, err := s.pool.Query(ctx, `select location, started_at, outcome = 'failed' from probe_results
		where probe = any($1) and started_at >= $2 and started_at <= $3 order by location, started_at`, inc.Probes, inc.StartedAt, end)
	if err != nil {
		return im, fmt.Errorf("probe impact: %w", err)
	}
	defer rows.Close()
	var curLoc string
	var runFrom time.Time
	inRun := false
	closeRun := func(until time.Time) {
		if inRun && until.Sub(runFrom) > im.Longest {
			im.Longest, im.LongestFrom, im.LongestUntil, im.LongestAt = until.Sub(runFrom), runFrom, until, curLoc
		}
		inRun = false
	}
	for rows.Next() {
		var loc string
		var at time.Time
		var failed bool
		if err := rows.Scan(&loc, &at, &failed); err != nil {
			return im, fmt.Errorf("probe impact: %w", err)
		}
		at = at.UTC()
		if loc != curLoc {
			closeRun(end)
			curLoc = loc
		}
		im.Runs++
		if failed {
			im.Failed++
			if !slices.Contains(im.Locations, loc) {
				im.Locations = append(im.Locations, loc)
			}
			if !inRun {
				inRun, runFrom = true, at
			}
		} else {
			closeRun(at)
		}
	}
	closeRun(end)
	return im, rows.Err()
}

// SaveNote stores a new version of an incident's post-incident note.
func (s *Store) SaveNote(ctx context.Context, id int64, body, actor string) (NoteVersion, error) {
	var errs FieldErrors
	errs.add(checkActor(actor))
	errs.add(checkText("body", body, true, MaxNote))
	if len(errs) > 0 {
		return NoteVersion{}, errs
	}
	if _, err := RenderMarkdown(body); err != nil {
		return NoteVersion{}, err
	}
	var out NoteVersion
	err := s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		inc, err := s.lockIncident(ctx, tx, id)
		if err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `insert into incident_notes (incident_id, version, body, author, created_at)
			select $1, coalesce(max(version), 0) + 1, $2, $3, $4 from incident_notes where incident_id = $1 returning version`,
			id, body, actor, now).Scan(&v); err != nil {
			return fmt.Errorf("save note: %w", err)
		}
		out = NoteVersion{Incident: id, Version: v, Body: body, Author: actor, CreatedAt: now}
		_, err = s.record(ctx, tx, map[int64]Incident{id: inc}, []Event{{Kind: KindNoteDrafted, At: now, Actor: actor, Incident: id,
			Extra: map[string]any{"version": v}}}, now)
		return err
	})
	return out, err
}

// Notes returns every version of an incident's note, oldest first.
func (s *Store) Notes(ctx context.Context, id int64) ([]NoteVersion, error) {
	rows, err := s.pool.Query(ctx, `select incident_id, version, body, author, created_at, published_at from incident_notes where incident_id = $1 order by version`, id)
	if err != nil {
		return nil, fmt.Errorf("notes: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (NoteVersion, error) {
		var n NoteVersion
		var pub *time.Time
		err := row.Scan(&n.Incident, &n.Version, &n.Body, &n.Author, &n.CreatedAt, &pub)
		n.CreatedAt, n.PublishedAt = n.CreatedAt.UTC(), utcOrZero(pub)
		return n, err
	})
}

// PublishNote publishes a saved version of the note: the incident must be
// resolved (or already have a published note, which this one replaces); its
// status becomes postmortem and the timeline gets note_published.
func (s *Store) PublishNote(ctx context.Context, id int64, version int, actor string) (Incident, error) {
	var errs FieldErrors
	errs.add(checkActor(actor))
	if len(errs) > 0 {
		return Incident{}, errs
	}
	var out Incident
	err := s.transact(ctx, func(tx pgx.Tx) error {
		now := s.now()
		inc, err := s.lockIncident(ctx, tx, id)
		if err != nil {
			return err
		}
		if inc.Status != StatusResolved && inc.Status != StatusPostmortem {
			return FieldErrors{{Field: "status", Msg: "an incident must be resolved before its post-incident note is published"}}
		}
		tag, err := tx.Exec(ctx, `update incident_notes set published_at = $3 where incident_id = $1 and version = $2`, id, version, now)
		if err != nil {
			return fmt.Errorf("publish note: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return FieldErrors{{Field: "version", Msg: fmt.Sprintf("incident %d has no note version %d", id, version)}}
		}
		incs := map[int64]Incident{id: inc}
		_, err = s.record(ctx, tx, incs, []Event{{Kind: KindNotePublished, At: now, Actor: actor, Incident: id,
			From: string(inc.Status), To: string(StatusPostmortem), Extra: map[string]any{"version": version}}}, now)
		out = incs[id]
		return err
	})
	return out, err
}
