package incidents

import (
	"maps"
	"slices"
	"time"

	"github.com/candorhq/candor/probes"
)

// NewIncidentID is the incident id events carry when they belong to the
// incident that the same batch of events opens (its id is not known yet).
const NewIncidentID int64 = -1

// Event is one fact the rules produced: a timeline event when Incident is
// set, a component-level fact (latency, suppression) when it is 0. Everything
// but Kind, At, Actor and Incident is its payload, kept as JSON. The fields
// that describe a failure (Components, Probe, Step, Class, Classification,
// Message) are what runbook matching needs.
type Event struct {
	Kind     EventKind `json:"-"`
	At       time.Time `json:"-"` // UTC
	Actor    string    `json:"-"` // "probe:login@eu-west", "system", "person:ada@example.com"
	Incident int64     `json:"-"` // 0: no incident; NewIncidentID: the one this batch opens

	Signature      string            `json:"signature,omitempty"`
	Title          string            `json:"title,omitempty"`
	Probe          string            `json:"probe,omitempty"`
	Location       string            `json:"location,omitempty"`
	Step           string            `json:"step,omitempty"`
	Class          string            `json:"error_class,omitempty"`
	Message        string            `json:"message,omitempty"`
	Signals        []probes.Signal   `json:"signals,omitempty"`
	Components     []string          `json:"components,omitempty"`
	ComponentState []ComponentChange `json:"component_status,omitempty"`
	Probes         []string          `json:"probes,omitempty"`
	Steps          []string          `json:"steps,omitempty"` // "probe/step"
	Locations      []string          `json:"locations,omitempty"`
	From           string            `json:"from,omitempty"` // status or classification before
	To             string            `json:"to,omitempty"`   // and after
	Classification Classification    `json:"classification,omitempty"`
	Confirmed      bool              `json:"confirmed,omitempty"`
	Evidence       []Evidence        `json:"evidence,omitempty"`
	StartedAt      *time.Time        `json:"started_at,omitempty"`
	Reason         string            `json:"reason,omitempty"`
	Runbook        *RunbookRef       `json:"runbook,omitempty"`
	Extra          map[string]any    `json:"extra,omitempty"` // kind-specific details (update id, runbook, …)
}

// ComponentChange is a component's status within an incident.
type ComponentChange struct {
	Component string          `json:"component"`
	Status    ComponentStatus `json:"status"`
}

// ProbeState is what the detector remembers about one probe between results.
type ProbeState struct {
	Probe     string                   `json:"probe"`
	Locations map[string]LocationState `json:"locations"`
	// Incident is the incident this probe's failures feed (open, or resolved
	// and within the cooldown); 0 when none.
	Incident int64 `json:"incident,omitempty"`
	// Failing says the probe is failing in a quorum of locations and feeds Incident.
	Failing bool `json:"failing,omitempty"`
	// Suppressed says the current failure was suppressed by maintenance.
	Suppressed bool `json:"suppressed,omitempty"`
	// SlowComponents are the components marked degraded by this probe's latency.
	SlowComponents []string `json:"slow_components,omitempty"`
}

// LocationState counts one location's recent runs of a probe.
type LocationState struct {
	Fails        int       `json:"fails"` // consecutive failed runs
	Good         int       `json:"good"`  // consecutive runs that did not fail
	Slow         int       `json:"slow"`  // consecutive degraded runs
	Fast         int       `json:"fast"`  // consecutive ok runs
	FailingSince time.Time `json:"failing_since,omitzero"`
	LastAt       time.Time `json:"last_at"`
	LastFailure  *Evidence `json:"last_failure,omitempty"` // of the current failure streak
	LastSlow     *Evidence `json:"last_slow,omitempty"`
}

// Incident is an incident as the rules see it and as readers get it. Times
// are UTC; a zero time means "not yet" and is left out of JSON.
type Incident struct {
	ID             int64                      `json:"id"`
	Signature      string                     `json:"signature,omitempty"` // "" for a person's incident
	Title          string                     `json:"title"`
	Status         Status                     `json:"status"`
	Impact         Impact                     `json:"impact"`
	Classification Classification             `json:"classification"`
	Confirmed      bool                       `json:"classification_confirmed"`
	Public         bool                       `json:"public"` // a public update was posted
	Components     []string                   `json:"components"`
	ComponentState map[string]ComponentStatus `json:"component_status"`
	Probes         []string                   `json:"probes"`
	FailingProbes  []string                   `json:"failing_probes"`
	Steps          []string                   `json:"steps"` // "probe/step"
	Locations      []string                   `json:"locations"`
	Signals        []probes.Signal            `json:"signals"`
	StartedAt      time.Time                  `json:"started_at"` // the first failed run
	DetectedAt     time.Time                  `json:"detected_at"`
	MonitoringAt   time.Time                  `json:"monitoring_at,omitzero"`
	ResolvedAt     time.Time                  `json:"resolved_at,omitzero"`
	FirstPublicAt  time.Time                  `json:"first_public_at,omitzero"`
	LastPublicAt   time.Time                  `json:"last_public_at,omitzero"`
	LastReminderAt time.Time                  `json:"last_reminder_at,omitzero"`
	LastFailureAt  time.Time                  `json:"last_failure_at,omitzero"`
	UpdatedAt      time.Time                  `json:"updated_at,omitzero"`
}

// World is what the detector sees besides one probe's own state.
type World struct {
	// Incidents are the open incidents and those resolved within the cooldown.
	Incidents []Incident
	// Maintenance names the components under maintenance now.
	Maintenance []string
	// Locations are the probe's configured locations; nil means every
	// location that reports.
	Locations []string
}

func (w World) incident(id int64) *Incident {
	for i := range w.Incidents {
		if w.Incidents[i].ID == id {
			return &w.Incidents[i]
		}
	}
	return nil
}

// Detector turns probe results into incident events. It is pure: Observe
// and Tick are functions of their arguments.
type Detector struct {
	policy Policy
	comps  componentMap
}

// NewDetector returns a Detector for the configured components and policy
// (defaults filled in).
func NewDetector(components []Component, policy Policy) *Detector {
	return &Detector{policy: policy.WithDefaults(), comps: newComponentMap(components)}
}

// Policy returns the policy with its defaults.
func (d *Detector) Policy() Policy { return d.policy }

// Observe takes one probe result and returns the probe's new state and the
// events it produced. now is when the result is observed (the detection time);
// the result's own Start is when the run happened.
func (d *Detector) Observe(st ProbeState, w World, r probes.Result, now time.Time) (ProbeState, []Event) {
	now = now.UTC()
	st = st.clone()
	if st.Probe == "" {
		st.Probe = r.Probe
	}
	if len(w.Locations) > 0 && !slices.Contains(w.Locations, r.Location) {
		return st, nil // not a location that runs this probe
	}
	stale := d.policy.StaleAfter.D
	loc := st.Locations[r.Location]
	start := r.Start.UTC()
	// A result older than the last one seen from its location arrived late
	// (a buffer flushed after a database outage): counting it would break the
	// streaks. A much older one means the clock went back: start afresh.
	if !loc.LastAt.IsZero() && !start.After(loc.LastAt) {
		if loc.LastAt.Sub(start) < stale {
			return st, nil
		}
		loc = LocationState{}
	}
	ev := evidenceOf(r)
	switch r.Outcome {
	case probes.OutcomeFailed:
		if loc.Fails == 0 {
			loc.FailingSince = start
		}
		loc.Fails++
		loc.Good, loc.Slow, loc.Fast = 0, 0, 0
		loc.LastFailure = &ev
	case probes.OutcomeDegraded:
		loc.Fails, loc.FailingSince, loc.LastFailure = 0, time.Time{}, nil
		loc.Good++
		loc.Slow++
		loc.Fast = 0
		loc.LastSlow = &ev
	default:
		loc.Fails, loc.FailingSince, loc.LastFailure = 0, time.Time{}, nil
		loc.Good++
		loc.Fast++
		loc.Slow, loc.LastSlow = 0, nil
	}
	loc.LastAt = start
	st.Locations[r.Location] = loc

	fresh := d.freshLocations(st, w, r.Location, now)
	n := len(fresh)
	if len(w.Locations) > 0 {
		n = len(w.Locations)
	}
	q := d.policy.quorum(n)
	k, m := d.policy.OpenAfter, d.policy.RecoverAfter

	var failing, slow []string
	allGood, allFast := true, true
	for _, name := range fresh {
		l := st.Locations[name]
		if l.Fails >= k {
			failing = append(failing, name)
		}
		if l.Slow >= k {
			slow = append(slow, name)
		}
		if l.Good < m {
			allGood = false
		}
		if l.Fast < m {
			allFast = false
		}
	}
	actor := "probe:" + r.Probe + "@" + r.Location
	var events []Event

	// Latency marks components degraded, without an incident.
	if len(st.SlowComponents) == 0 && len(slow) >= q {
		comps := d.comps.forStep(r.Probe, ev.Step)
		if len(comps) == 0 {
			comps = d.comps.forProbe(r.Probe)
		}
		if len(comps) > 0 {
			st.SlowComponents = comps
			events = append(events, Event{Kind: KindLatencyDegraded, At: now, Actor: actor, Probe: r.Probe,
				Step: ev.Step, Components: comps, Locations: slow, Message: ev.Message})
		}
	} else if len(st.SlowComponents) > 0 && (allFast || r.Outcome == probes.OutcomeFailed && len(failing) >= q) {
		events = append(events, Event{Kind: KindLatencyRecovered, At: now, Actor: actor, Probe: r.Probe, Components: st.SlowComponents})
		st.SlowComponents = nil
	}

	inc := w.incident(st.Incident)
	if inc != nil && !inc.Status.Open() {
		inc = nil
	}

	switch {
	case r.Outcome == probes.OutcomeFailed && st.Failing && inc != nil:
		events = append(events, d.extend(st, *inc, r, ev, failing, n, actor, now)...)
		if inc.Status == StatusMonitoring && len(failing) >= q {
			events = append(events, Event{Kind: KindStatusChanged, At: now, Actor: actor, Incident: inc.ID,
				From: string(inc.Status), To: string(StatusInvestigating), Probe: r.Probe,
				Reason: "the probe " + r.Probe + " is failing again"})
		}

	case r.Outcome == probes.OutcomeFailed && len(failing) >= q:
		evs, ok := d.open(&st, w, r, failing, n, actor, now)
		events = append(events, evs...)
		if ok {
			st.Failing = true
		}

	case r.Outcome != probes.OutcomeFailed && allGood:
		st.Suppressed = false
		if st.Failing {
			st.Failing = false
			if inc != nil {
				events = append(events, Event{Kind: KindProbeRecovered, At: now, Actor: actor, Incident: inc.ID,
					Probe: r.Probe, Locations: fresh,
					Reason: "every location passed " + itoa(m) + " runs in a row"})
				rest := slices.DeleteFunc(slices.Clone(inc.FailingProbes), func(p string) bool { return p == r.Probe })
				if len(rest) == 0 && inc.Status != StatusMonitoring {
					events = append(events, Event{Kind: KindStatusChanged, At: now, Actor: "system", Incident: inc.ID,
						From: string(inc.Status), To: string(StatusMonitoring), Components: inc.Components,
						Reason: "every failing probe passes again"})
				}
			}
		}
	}
	return st, d.publish(events, r)
}

// publish applies the publication policy to the incidents these events open
// or reopen: a non-security one gets its first public update at once, from
// the template; any other is left for a person (the detected event says why).
func (d *Detector) publish(events []Event, r probes.Result) []Event {
	out := events[:0:0]
	for _, e := range events {
		opened := e.Kind == KindDetected || e.Kind == KindStatusChanged && e.From == string(StatusResolved) && e.To == string(StatusInvestigating)
		if !opened {
			out = append(out, e)
			continue
		}
		class := e.Classification
		if e.Kind != KindDetected {
			// A reopened incident keeps its classification unless the new
			// evidence is more cautious (and a person's confirmation stands
			// against anything but a security signal).
			if ev := evidenceFor(events, e.Incident); len(ev) > 0 {
				if c := Classify(ev); c.rank() > class.rank() && (!e.Confirmed || c == Security) {
					class = c
				}
			}
		}
		data := TemplateData{
			Components: e.Components, Probe: e.Probe, Step: e.Step, ErrorClass: e.Class,
			Classification: string(class), DetectedAt: e.At, Locations: e.Locations,
		}
		if e.StartedAt != nil {
			data.StartedAt = *e.StartedAt
		} else {
			data.StartedAt = r.Start.UTC()
		}
		pub, err := d.policy.FirstUpdate(data)
		if e.Extra == nil {
			e.Extra = map[string]any{}
		}
		if err != nil {
			e.Extra["publication"] = "not published: " + err.Error()
			out = append(out, e)
			continue
		}
		if e.Kind == KindDetected {
			e.Title = pub.Title
		}
		e.Extra["publication"] = pub.Why
		out = append(out, e)
		if pub.Publish {
			out = append(out, Event{Kind: KindUpdatePosted, At: e.At, Actor: "system", Incident: e.Incident,
				To: string(StatusInvestigating), Reason: pub.Why,
				Extra: map[string]any{"visibility": string(Public), "message": pub.Message, "automatic": true}})
		}
	}
	return out
}

// evidenceFor collects the evidence the events carry for one incident.
func evidenceFor(events []Event, incident int64) []Evidence {
	var ev []Evidence
	for _, e := range events {
		if e.Incident == incident {
			ev = append(ev, e.Evidence...)
		}
	}
	return ev
}

// open handles a probe that just reached the quorum of failing locations
// and feeds no open incident: it joins an open incident on the same
// components, reopens one resolved within the cooldown, or opens a new one.
func (d *Detector) open(st *ProbeState, w World, r probes.Result, failing []string, n int, actor string, now time.Time) ([]Event, bool) {
	var evidence []Evidence
	var comps, steps []string
	started := time.Time{}
	for _, name := range failing {
		l := st.Locations[name]
		if l.LastFailure != nil {
			evidence = append(evidence, *l.LastFailure)
			comps = appendUnique(comps, d.comps.forStep(r.Probe, l.LastFailure.Step)...)
			steps = appendUnique(steps, r.Probe+"/"+l.LastFailure.Step)
		}
		if started.IsZero() || l.FailingSince.Before(started) {
			started = l.FailingSince
		}
	}
	comps = d.comps.sorted(comps)
	class := Classify(evidence)

	// Maintenance suppresses availability incidents on its components;
	// security evidence is never suppressed.
	if class == NonSecurity && len(comps) > 0 {
		var left []string
		for _, c := range comps {
			if !slices.Contains(w.Maintenance, c) {
				left = append(left, c)
			}
		}
		if len(left) == 0 {
			if st.Suppressed {
				return nil, false
			}
			st.Suppressed = true
			return []Event{{Kind: KindSuppressed, At: now, Actor: actor, Probe: r.Probe, Step: r.FailedStep,
				Components: comps, Locations: failing, Reason: "every affected component is under maintenance"}}, false
		}
		comps = left
	}
	st.Suppressed = false

	status := PartialOutage
	if len(failing) >= n {
		status = MajorOutage
	}
	states := make([]ComponentChange, len(comps))
	for i, c := range comps {
		states[i] = ComponentChange{Component: c, Status: status}
	}
	sig := d.signature(r.Probe, comps)

	// Join an open incident: the one with this signature, else one that
	// shares a component, the oldest first.
	var join *Incident
	for i := range w.Incidents {
		in := &w.Incidents[i]
		if !in.Status.Open() {
			continue
		}
		if in.Signature == sig {
			join = in
			break
		}
		if join == nil && overlaps(in.Components, comps) {
			join = in
		}
	}
	reason := "the probe " + r.Probe + " fails on the same components"
	if join == nil {
		// Failures that began together are one fault: join the automatic
		// incident (it has a signature) whose first failure is closest.
		within := d.policy.CorrelateWithin.D
		for i := range w.Incidents {
			in := &w.Incidents[i]
			gap := in.StartedAt.Sub(started).Abs()
			if in.Status.Open() && in.Signature != "" && in.Classification == class && within > 0 && gap <= within &&
				(join == nil || gap < join.StartedAt.Sub(started).Abs()) {
				join = in
			}
		}
		if join != nil {
			reason = "the probe " + r.Probe + " began failing " + humanDuration(join.StartedAt.Sub(started).Abs()) +
				" apart from this incident's first failure (correlate_within " + within.String() + ")"
		}
	}
	if join != nil {
		st.Incident = join.ID
		evs := joinEvents(*join, r, evidence, states, failing, actor, now, reason)
		if join.Status == StatusMonitoring {
			evs = append(evs, Event{Kind: KindStatusChanged, At: now, Actor: actor, Incident: join.ID,
				From: string(join.Status), To: string(StatusInvestigating), Probe: r.Probe, ComponentState: states,
				Reason: "the probe " + r.Probe + " is failing"})
		}
		return evs, true
	}

	// Reopen one resolved within the cooldown (flap protection).
	var reopen *Incident
	for i := range w.Incidents {
		in := &w.Incidents[i]
		if in.Status == StatusResolved && in.Signature == sig && now.Sub(in.ResolvedAt) <= d.policy.Cooldown.D &&
			(reopen == nil || in.ResolvedAt.After(reopen.ResolvedAt)) {
			reopen = in
		}
	}
	if reopen != nil {
		st.Incident = reopen.ID
		evs := []Event{{Kind: KindStatusChanged, At: now, Actor: actor, Incident: reopen.ID,
			From: string(StatusResolved), To: string(StatusInvestigating), Probe: r.Probe, Step: r.FailedStep,
			Class: string(r.Class), Message: r.Message, Components: comps, ComponentState: states, Signature: sig,
			Classification: reopen.Classification, Confirmed: reopen.Confirmed, Locations: slices.Clone(failing), StartedAt: &started,
			Evidence: evidence,
			Reason:   "the same failure returned " + humanDuration(now.Sub(reopen.ResolvedAt)) + " after it was resolved"}}
		evs = append(evs, joinEvents(*reopen, r, evidence, states, failing, actor, now, "reopened")...)
		return evs, true
	}

	st.Incident = NewIncidentID
	s := started
	return []Event{{
		Kind: KindDetected, At: now, Actor: actor, Incident: NewIncidentID, Signature: sig,
		Probe: r.Probe, Location: r.Location, Step: r.FailedStep, Class: string(r.Class), Message: r.Message,
		Signals: collectSignals(evidence), Components: comps, ComponentState: states, Probes: []string{r.Probe},
		Steps: steps, Locations: slices.Clone(failing), Classification: class, Evidence: evidence, StartedAt: &s,
		Reason: itoa(d.policy.OpenAfter) + " failed runs in a row in " + itoa(len(failing)) + " of " + itoa(n) + " locations",
	}}, true
}

// extend returns the events for another failure of a probe that feeds inc:
// new steps, components, locations and signals, and a classification that
// the new evidence raises.
func (d *Detector) extend(st ProbeState, inc Incident, r probes.Result, ev Evidence, failing []string, n int, actor string, now time.Time) []Event {
	var events []Event
	step := r.Probe + "/" + r.FailedStep
	newSignals := slices.DeleteFunc(slices.Clone(r.Signals), func(s probes.Signal) bool { return slices.Contains(inc.Signals, s) })
	if !slices.Contains(inc.Steps, step) || len(newSignals) > 0 {
		events = append(events, Event{Kind: KindStepFailing, At: now, Actor: actor, Incident: inc.ID,
			Probe: r.Probe, Location: r.Location, Step: r.FailedStep, Class: string(r.Class), Message: r.Message,
			Signals: slices.Clone(r.Signals), Steps: []string{step}, Evidence: []Evidence{ev}})
	}
	var newComps []string
	for _, c := range d.comps.forStep(r.Probe, r.FailedStep) {
		if !slices.Contains(inc.Components, c) {
			newComps = append(newComps, c)
		}
	}
	var newLocs []string
	if slices.Contains(failing, r.Location) && !slices.Contains(inc.Locations, r.Location) {
		newLocs = append(newLocs, r.Location)
	}
	if len(newComps) > 0 || len(newLocs) > 0 {
		status := PartialOutage
		if len(failing) >= n {
			status = MajorOutage
		}
		states := make([]ComponentChange, len(newComps))
		for i, c := range newComps {
			states[i] = ComponentChange{Component: c, Status: status}
		}
		events = append(events, Event{Kind: KindExtended, At: now, Actor: actor, Incident: inc.ID,
			Probe: r.Probe, Step: r.FailedStep, Components: newComps, ComponentState: states, Locations: newLocs})
	}
	events = append(events, classificationEvents(inc, []Evidence{ev}, actor, now)...)
	return events
}

// joinEvents returns the events for a probe that starts feeding an open (or
// reopened) incident: its new steps, then one extension with the probe, new
// components and locations, then a classification its evidence raises.
func joinEvents(inc Incident, r probes.Result, evidence []Evidence, states []ComponentChange, failing []string, actor string, now time.Time, reason string) []Event {
	var events []Event
	for _, e := range evidence {
		step := e.Probe + "/" + e.Step
		if !slices.Contains(inc.Steps, step) {
			inc.Steps = append(inc.Steps, step)
			events = append(events, Event{Kind: KindStepFailing, At: now, Actor: actor, Incident: inc.ID,
				Probe: e.Probe, Location: e.Location, Step: e.Step, Class: e.Class, Message: e.Message,
				Signals: e.Signals, Steps: []string{step}, Evidence: []Evidence{e}})
		}
	}
	ext := Event{Kind: KindExtended, At: now, Actor: actor, Incident: inc.ID, Probe: r.Probe,
		Probes: []string{r.Probe}, Reason: reason}
	for _, st := range states {
		if !slices.Contains(inc.Components, st.Component) || inc.ComponentState[st.Component] != st.Status {
			if !slices.Contains(inc.Components, st.Component) {
				ext.Components = append(ext.Components, st.Component)
			}
			ext.ComponentState = append(ext.ComponentState, st)
		}
	}
	for _, l := range failing {
		if !slices.Contains(inc.Locations, l) {
			ext.Locations = append(ext.Locations, l)
		}
	}
	events = append(events, ext)
	return append(events, classificationEvents(inc, evidence, actor, now)...)
}

// classificationEvents raises an incident's classification when new evidence
// is more cautious than it. A person's confirmation stands against
// undetermined evidence, but not against a security signal.
func classificationEvents(inc Incident, ev []Evidence, actor string, now time.Time) []Event {
	c := Classify(ev)
	if c.rank() <= inc.Classification.rank() || inc.Confirmed && c != Security {
		return nil
	}
	var decisive []Evidence
	for _, e := range ev {
		if e.Verdict == c {
			decisive = append(decisive, e)
		}
	}
	return []Event{{Kind: KindClassificationChanged, At: now, Actor: actor, Incident: inc.ID,
		From: string(inc.Classification), To: string(c), Classification: c, Evidence: decisive,
		Signals: collectSignals(decisive), Reason: decisive[0].Why}}
}

// Tick returns the events that time alone produces for an incident:
// resolution after the quiet period in monitoring, and reminders when the
// public has heard nothing for a cadence.
func (d *Detector) Tick(inc Incident, now time.Time) []Event {
	now = now.UTC()
	var events []Event
	if inc.Status == StatusMonitoring && inc.Signature != "" && len(inc.FailingProbes) == 0 {
		quietSince := inc.MonitoringAt
		if inc.LastFailureAt.After(quietSince) {
			quietSince = inc.LastFailureAt
		}
		if !quietSince.IsZero() && now.Sub(quietSince) >= d.policy.QuietPeriod.D {
			return append(events, Event{Kind: KindStatusChanged, At: now, Actor: "system", Incident: inc.ID,
				From: string(StatusMonitoring), To: string(StatusResolved), Components: inc.Components,
				Reason: "no failure for " + humanDuration(now.Sub(quietSince)) + " while monitoring"})
		}
	}
	if due, since := d.policy.ReminderDue(inc, now); due {
		events = append(events, Event{Kind: KindReminderDue, At: now, Actor: "system", Incident: inc.ID,
			Extra:  map[string]any{"public": inc.Public, "silent_since": since.UTC().Format(time.RFC3339), "cadence": d.policy.Cadence.D.String()},
			Reason: reminderReason(inc, now, since)})
	}
	return events
}

// signature names the failure an incident is about, for "at most one open
// incident per signature": its first affected component in configuration
// order, or the probe when no component is mapped.
func (d *Detector) signature(probe string, comps []string) string {
	if len(comps) > 0 {
		return "component:" + ComponentID(comps[0])
	}
	return "probe:" + probe
}

// freshLocations returns, sorted, the locations that reported within the
// stale period (the reporting one always), limited to the configured ones.
func (d *Detector) freshLocations(st ProbeState, w World, reporting string, now time.Time) []string {
	var out []string
	for name, l := range st.Locations {
		if len(w.Locations) > 0 && !slices.Contains(w.Locations, name) {
			continue
		}
		if name == reporting || now.Sub(l.LastAt) <= d.policy.StaleAfter.D {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (st ProbeState) clone() ProbeState {
	c := st
	c.Locations = maps.Clone(st.Locations)
	if c.Locations == nil {
		c.Locations = map[string]LocationState{}
	}
	c.SlowComponents = slices.Clone(st.SlowComponents)
	return c
}

func collectSignals(ev []Evidence) []probes.Signal {
	var out []probes.Signal
	for _, e := range ev {
		for _, s := range e.Signals {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
