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
// that describe a failure (Components, Probe, Step, Role, Class,
// Classification, Message) are what runbook matching needs; words and
// decisions read Role, never Step.
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
	Role           string            `json:"role,omitempty"` // the failing step's role (probes.Role)
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
		comps := d.comps.forStep(r.Probe, ev.Step, ev.Role)
		if len(comps) == 0 {
			comps = d.comps.forProbe(r.Probe)
		}
		if len(comps) > 0 {
			st.SlowComponents = comps
			events = append(events, Event{Kind: KindLatencyDegraded, At: now, Actor: actor, Probe: r.Probe,
				Step: ev.Step, Role: ev.Role, Components: comps, Locations: slow, Message: ev.Message})
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
	case r.Outcome == probes.OutcomeFailed && st.Failing && inc != nil && d.fedDifferently(*inc, ev) && kindCount(st, failing, ev) >= q:
		// The probe now fails, in a quorum of locations, in another way
		// that must not be mixed into its incident (a security signal into
		// a non-security one, a customer-facing failure into a probe
		// problem): it stops feeding that incident, and its failure is a
		// failure of its own. Below the quorum the run is only recorded.
		events = append(events, d.leave(*inc, r.Probe, fresh, actor, now,
			"the probe "+r.Probe+" now fails differently ("+string(probes.Role(ev.Role).Or())+", "+ev.Class+"): recorded as a failure of its own")...)
		st.Failing, st.Incident = false, 0
		if len(failing) >= q {
			w = w.withIncident(applyAll(*inc, events))
			evs, ok := d.open(&st, w, r, failing, n, actor, now)
			events = append(events, evs...)
			st.Failing = ok
		}

	case r.Outcome == probes.OutcomeFailed && st.Failing && inc != nil:
		events = append(events, d.extend(st, *inc, r, ev, failing, n, actor, now)...)
		if inc.Status == StatusMonitoring && len(failing) >= q && !frozen(*inc) {
			// Its components take the status this failure means (a
			// security signal alone leaves them operational).
			status := outageStatus([]Evidence{ev}, len(failing) >= n)
			var states []ComponentChange
			for _, c := range inc.Components {
				states = append(states, ComponentChange{Component: c, Status: status})
			}
			events = append(events, Event{Kind: KindStatusChanged, At: now, Actor: actor, Incident: inc.ID,
				From: string(inc.Status), To: string(StatusInvestigating), Probe: r.Probe, ComponentState: states,
				Reason: "the probe " + r.Probe + " is failing again"})
			events = append(events, d.automaticUpdate(applyAll(*inc, events), StatusInvestigating, now)...)
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
				events = append(events, d.leave(*inc, r.Probe, fresh, actor, now, "every location passed "+itoa(m)+" runs in a row")...)
			}
		}
	}
	return st, d.publish(events, r)
}

// leave returns the events for a probe that stops feeding inc (it passes
// again, or fails in another way): probe_recovered, and when no probe of
// the incident fails any more, the move to monitoring with its automatic
// public update, or at once to resolved when the quiet period is 0. An
// incident that is public but not classified non_security is left as it is
// for a person: nothing public changes by itself.
func (d *Detector) leave(inc Incident, probe string, locs []string, actor string, now time.Time, why string) []Event {
	rest := slices.DeleteFunc(slices.Clone(inc.FailingProbes), func(p string) bool { return p == probe })
	if len(rest) == 0 && frozen(inc) && inc.Status != StatusMonitoring {
		why += "; the incident is public and classified " + string(inc.Classification) + ": its status and public text stay as they are until a person acts"
	}
	events := []Event{{Kind: KindProbeRecovered, At: now, Actor: actor, Incident: inc.ID, Probe: probe, Locations: locs, Reason: why}}
	if len(rest) > 0 || inc.Status == StatusMonitoring || frozen(inc) {
		return events
	}
	events = append(events, Event{Kind: KindStatusChanged, At: now, Actor: "system", Incident: inc.ID,
		From: string(inc.Status), To: string(StatusMonitoring), Components: inc.Components,
		Reason: "every failing probe passes again"})
	inc = Apply(inc, events[len(events)-1])
	if d.policy.QuietPeriod.D == 0 && autoResolvable(inc) {
		events = append(events, d.resolve(inc, now, "every failing probe passes again and the quiet period is 0")...)
		return events
	}
	return append(events, d.automaticUpdate(inc, StatusMonitoring, now)...)
}

// resolve returns the events that resolve inc at now, with the automatic
// resolution update when customers were told of it.
func (d *Detector) resolve(inc Incident, now time.Time, why string) []Event {
	e := Event{Kind: KindStatusChanged, At: now, Actor: "system", Incident: inc.ID,
		From: string(inc.Status), To: string(StatusResolved), Components: inc.Components, Reason: why}
	return append([]Event{e}, d.automaticUpdate(Apply(inc, e), StatusResolved, now)...)
}

// automaticUpdate returns the public update posted when an incident moves
// to monitoring or resolved by itself, so that customers who were told of
// it hear that it works again within the promised cadence, or back to
// investigating when it fails again after they heard so. Only a public,
// non-security incident gets one (and only with auto_publish on): any other
// waits for a person.
func (d *Detector) automaticUpdate(inc Incident, to Status, now time.Time) []Event {
	if !inc.Public || inc.Classification != NonSecurity || d.policy.AutoPublish != nil && !*d.policy.AutoPublish {
		return nil
	}
	data := d.templateData(inc)
	data.EndedAt = inc.MonitoringAt
	if data.EndedAt.IsZero() || data.EndedAt.After(now) {
		data.EndedAt = now
	}
	msg, err := d.policy.AutomaticUpdate(to, data)
	if err != nil {
		return []Event{{Kind: KindReminderDue, At: now, Actor: "system", Incident: inc.ID,
			Extra:  map[string]any{"public": inc.Public},
			Reason: "the automatic " + string(to) + " update could not be written (" + err.Error() + "): post one by hand"}}
	}
	return []Event{{Kind: KindUpdatePosted, At: now, Actor: "system", Incident: inc.ID, To: string(to),
		Reason: "automatic " + string(to) + " update of a public non-security incident",
		Extra:  map[string]any{"visibility": string(Public), "message": msg, "automatic": true}}}
}

// applyAll returns inc after the events among evs that are about it.
func applyAll(inc Incident, evs []Event) Incident {
	for _, e := range evs {
		if e.Incident == inc.ID {
			inc = Apply(inc, e)
		}
	}
	return inc
}

// templateData returns what automatic texts about inc are written from:
// its components and the role and class of the failure it was opened for.
func (d *Detector) templateData(inc Incident) TemplateData {
	role, class := roleOfSignature(inc.Signature)
	return TemplateData{Title: inc.Title, Components: inc.Components, Probe: first(inc.Probes), Role: role,
		RecoveryCodes: d.policy.RecoveryCodes != nil && *d.policy.RecoveryCodes, ErrorClass: class,
		What: describeClass(class), Classification: string(inc.Classification), Confirmed: inc.Confirmed,
		StartedAt: inc.StartedAt, DetectedAt: inc.DetectedAt, Locations: inc.Locations, Cadence: d.policy.Cadence.D}
}

// frozen reports whether inc is public but not classified non_security:
// nothing public about it changes automatically, a person decides.
func frozen(inc Incident) bool { return inc.Public && inc.Classification != NonSecurity }

// autoResolvable reports whether inc may be resolved without a person: a
// non-security incident, or a probe problem customers never heard of. A
// security or undetermined incident waits in monitoring for a person.
func autoResolvable(inc Incident) bool {
	return inc.Signature != "" && (inc.Classification == NonSecurity ||
		probeProblemSignature(inc.Signature) && !inc.Public && inc.Classification == Undetermined)
}

// mixes reports whether a failure classified c must not join inc, an
// incident classified otherwise: an incident is one failure. Only two
// joins are allowed across classifications, both towards security and both
// private: a security signal joining an unpublished undetermined incident
// (it raises it), and an undetermined failure joining a security incident
// (the same fault seen by a probe without a signal).
func mixes(inc Incident, c Classification) bool {
	switch {
	case c == inc.Classification:
		return false
	case c == Security && inc.Classification == Undetermined && !inc.Public:
		return false
	case c == Undetermined && inc.Classification == Security:
		return false
	}
	return true
}

// fedDifferently reports whether a probe feeding inc now fails in a way
// that is a failure of its own: one that mixes security with non-security,
// or a failure customers see while inc is a probe problem. A probe problem
// during a customer-facing incident is only recorded.
func (d *Detector) fedDifferently(inc Incident, ev Evidence) bool {
	if ev.ProbeProblem() || inc.Signature == "" {
		return false
	}
	// An undetermined failure of a probe feeding a non-security incident
	// stays with it (customers may still be affected) and raises it.
	return probeProblemSignature(inc.Signature) ||
		ev.Verdict == Security && mixes(inc, Security) ||
		ev.Verdict == NonSecurity && inc.Classification == Security
}

// withIncident returns w with inc in place of the incident of the same id.
func (w World) withIncident(inc Incident) World {
	out := w
	out.Incidents = slices.Clone(w.Incidents)
	for i := range out.Incidents {
		if out.Incidents[i].ID == inc.ID {
			out.Incidents[i] = inc
		}
	}
	return out
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
			Components: e.Components, Probe: e.Probe, Step: e.Step, Role: e.Role, ErrorClass: e.Class,
			Classification: string(class), DetectedAt: e.At, Locations: e.Locations,
			RecoveryCodes: d.policy.RecoveryCodes != nil && *d.policy.RecoveryCodes,
		}
		for _, ev := range e.Evidence {
			if ev.CertNotAfter != nil && ev.Class == e.Class {
				data.CertExpiresAt = *ev.CertNotAfter
			}
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
	for _, name := range failing {
		if l := st.Locations[name]; l.LastFailure != nil {
			evidence = append(evidence, *l.LastFailure)
		}
	}
	class := Classify(evidence)
	// The failure this is: the run that decided the classification (a
	// probe problem only when nothing else failed), this run when it did.
	rep := evidenceOf(r)
	if rep.ProbeProblem() || rep.Verdict != class {
		for _, e := range evidence {
			if e.Verdict == class && !e.ProbeProblem() {
				rep = e
				break
			}
		}
	}
	probeProblem := rep.ProbeProblem()
	// An incident is one failure: runs of another kind at other locations
	// (an availability failure still reported where a security signal now
	// shows, a rate limit beside an outage) are not its evidence.
	var comps, steps []string
	started := time.Time{}
	mine := evidence[:0:0]
	for _, name := range failing {
		l := st.Locations[name]
		if l.LastFailure == nil || failureKind(*l.LastFailure) != failureKind(rep) {
			continue
		}
		mine = append(mine, *l.LastFailure)
		comps = appendUnique(comps, d.comps.forStep(r.Probe, l.LastFailure.Step, l.LastFailure.Role)...)
		steps = appendUnique(steps, r.Probe+"/"+l.LastFailure.Step)
		if started.IsZero() || l.FailingSince.Before(started) {
			started = l.FailingSince
		}
	}
	if len(mine) > 0 {
		evidence = mine
		class = Classify(evidence)
	}
	if started.IsZero() || started.After(now) {
		started = now // the clock went back: never start after detection
	}
	comps = d.comps.sorted(comps)

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

	status := outageStatus(evidence, len(failing) >= n)
	states := make([]ComponentChange, len(comps))
	for i, c := range comps {
		states[i] = ComponentChange{Component: c, Status: status}
	}
	sig := failureSignature(r.Probe, probes.Role(rep.Role), probes.ErrorClass(rep.Class), rep.Verdict)

	// Join an open incident: the one with this signature, else one that
	// shares a component, the oldest first; never mixing security with
	// non-security, nor probe problems with what customers see.
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
		if join == nil && overlaps(in.Components, comps) && !mixes(*in, class) &&
			probeProblemSignature(in.Signature) == probeProblem && !(probeProblem && in.Signature == "") {
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
			if in.Status.Open() && in.Signature != "" && in.Classification == class && !mixes(*in, class) &&
				probeProblemSignature(in.Signature) == probeProblem && within > 0 && gap <= within &&
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
		if join.Status == StatusMonitoring && !frozen(*join) {
			evs = append(evs, Event{Kind: KindStatusChanged, At: now, Actor: actor, Incident: join.ID,
				From: string(join.Status), To: string(StatusInvestigating), Probe: r.Probe, ComponentState: states,
				Reason: "the probe " + r.Probe + " is failing"})
			evs = append(evs, d.automaticUpdate(applyAll(*join, evs), StatusInvestigating, now)...)
		}
		return evs, true
	}

	// Reopen one resolved within the cooldown (flap protection), only for
	// the same failure: the same components are not enough.
	var reopen *Incident
	for i := range w.Incidents {
		in := &w.Incidents[i]
		if in.Status == StatusResolved && in.Signature == sig && now.Sub(in.ResolvedAt) < d.policy.Cooldown.D && !frozen(*in) &&
			(reopen == nil || in.ResolvedAt.After(reopen.ResolvedAt)) {
			reopen = in
		}
	}
	if reopen != nil {
		st.Incident = reopen.ID
		evs := []Event{{Kind: KindStatusChanged, At: now, Actor: actor, Incident: reopen.ID,
			From: string(StatusResolved), To: string(StatusInvestigating), Probe: r.Probe, Step: rep.Step, Role: rep.Role,
			Class: rep.Class, Message: rep.Message, Components: comps, ComponentState: states, Signature: sig,
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
		Probe: r.Probe, Location: rep.Location, Step: rep.Step, Role: rep.Role, Class: rep.Class, Message: rep.Message,
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
			Probe: r.Probe, Location: r.Location, Step: r.FailedStep, Role: ev.Role, Class: string(r.Class), Message: r.Message,
			Signals: slices.Clone(r.Signals), Steps: []string{step}, Evidence: []Evidence{ev}})
	}
	var newComps []string
	for _, c := range d.comps.forStep(r.Probe, r.FailedStep, ev.Role) {
		if !slices.Contains(inc.Components, c) {
			newComps = append(newComps, c)
		}
	}
	var newLocs []string
	if slices.Contains(failing, r.Location) && !slices.Contains(inc.Locations, r.Location) {
		newLocs = append(newLocs, r.Location)
	}
	if len(newComps) > 0 || len(newLocs) > 0 {
		status := outageStatus([]Evidence{ev}, len(failing) >= n)
		states := make([]ComponentChange, len(newComps))
		for i, c := range newComps {
			states[i] = ComponentChange{Component: c, Status: status}
		}
		events = append(events, Event{Kind: KindExtended, At: now, Actor: actor, Incident: inc.ID,
			Probe: r.Probe, Step: r.FailedStep, Components: newComps, ComponentState: states, Locations: newLocs})
	}
	if !d.fedDifferently(inc, ev) {
		events = append(events, classificationEvents(inc, []Evidence{ev}, actor, now)...)
	}
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
				Probe: e.Probe, Location: e.Location, Step: e.Step, Role: e.Role, Class: e.Class, Message: e.Message,
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
// undetermined evidence, but not against a security signal. A probe problem
// raises nothing (it says nothing about customers) unless the incident is one.
//
// An incident customers were told of that gains a security signal all the
// same stops speaking by itself at once (see frozen), and on-call is
// alerted: the public page still says what was last posted, and only a
// person may correct it.
func classificationEvents(inc Incident, ev []Evidence, actor string, now time.Time) []Event {
	if !probeProblemSignature(inc.Signature) {
		ev = slices.DeleteFunc(slices.Clone(ev), Evidence.ProbeProblem)
		if len(ev) == 0 {
			return nil
		}
	}
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
	events := []Event{{Kind: KindClassificationChanged, At: now, Actor: actor, Incident: inc.ID,
		From: string(inc.Classification), To: string(c), Classification: c, Evidence: decisive,
		Signals: collectSignals(decisive), Reason: decisive[0].Why}}
	if inc.Public {
		events = append(events, Event{Kind: KindReminderDue, At: now, Actor: "system", Incident: inc.ID,
			Signals: collectSignals(decisive),
			Extra:   map[string]any{"public": true, "alert": AlertPublicNowSecurity},
			Reason: "the incident is public and is now classified " + string(c) + " (" + decisive[0].Why +
				"): automatic public updates have stopped; the public page still says what was last posted: review it and post a correction"})
	}
	return events
}

// AlertPublicNowSecurity marks the reminder sent when an incident customers
// were told of gains a security signal (Extra["alert"]); the Store adds
// what the public page says (Extra["public_page"]).
const AlertPublicNowSecurity = "public_incident_now_security"

// kindCount returns how many failing locations last failed in the same
// kind of way as ev.
func kindCount(st ProbeState, failing []string, ev Evidence) int {
	n := 0
	for _, name := range failing {
		if l := st.Locations[name]; l.LastFailure != nil && failureKind(*l.LastFailure) == failureKind(ev) {
			n++
		}
	}
	return n
}

// failureKind sorts failures that must not share an incident: probe
// problems, security signals, and what customers meet.
func failureKind(e Evidence) string {
	switch {
	case e.ProbeProblem():
		return "probe"
	case e.Verdict == Security:
		return "security"
	}
	return "customer"
}

// outageStatus is the status the components of a failure take: an outage
// (major when every location fails) when the evidence shows customers
// unable to do something; operational when it is a security signal alone
// (logins work, but insecurely) or a probe problem, which must never move
// a component customers see.
func outageStatus(ev []Evidence, all bool) ComponentStatus {
	for _, e := range ev {
		if e.Verdict != Security && !e.ProbeProblem() {
			if all {
				return MajorOutage
			}
			return PartialOutage
		}
	}
	return Operational
}

// Tick returns the events that time alone produces for an incident:
// resolution after the quiet period in monitoring, and reminders when the
// public has heard nothing for a cadence.
func (d *Detector) Tick(inc Incident, now time.Time) []Event {
	now = now.UTC()
	var events []Event
	if inc.Status == StatusMonitoring && len(inc.FailingProbes) == 0 && autoResolvable(inc) && !frozen(inc) {
		quietSince := inc.MonitoringAt
		if inc.LastFailureAt.After(quietSince) {
			quietSince = inc.LastFailureAt
		}
		if !quietSince.IsZero() && now.Sub(quietSince) >= d.policy.QuietPeriod.D {
			return d.resolve(inc, now, "no failure for "+humanDuration(now.Sub(quietSince))+" while monitoring")
		}
	}
	if due, since := d.policy.ReminderDue(inc, now); due {
		events = append(events, Event{Kind: KindReminderDue, At: now, Actor: "system", Incident: inc.ID,
			Extra:  map[string]any{"public": inc.Public, "silent_since": since.UTC().Format(time.RFC3339), "cadence": d.policy.Cadence.D.String()},
			Reason: reminderReason(inc, now, since)})
	}
	return events
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
