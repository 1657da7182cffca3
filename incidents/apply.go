package incidents

import (
	"maps"
	"slices"
	"time"
)

// Apply returns inc after the event e: the one place that says what each
// event does to an incident, used by the Store to update its rows and by
// tests to drive outages without a database.
func Apply(inc Incident, e Event) Incident {
	inc = inc.clone()
	switch e.Kind {
	case KindDetected, KindCreated:
		inc.Signature = e.Signature
		if e.Title != "" {
			inc.Title = e.Title
		}
		inc.Status = StatusInvestigating
		if e.To != "" {
			inc.Status = Status(e.To)
		}
		inc.Classification = e.Classification
		inc.Confirmed = e.Confirmed
		inc.Impact = ImpactNone
		if e.Extra != nil {
			if im, ok := e.Extra["impact"].(string); ok {
				inc.Impact = Impact(im)
			}
		}
		inc.Probes = slices.Clone(e.Probes)
		inc.FailingProbes = slices.Clone(e.Probes)
		inc.Steps = slices.Clone(e.Steps)
		inc.Locations = slices.Clone(e.Locations)
		inc.Signals = slices.Clone(e.Signals)
		inc.DetectedAt = e.At
		inc.StartedAt = e.At
		if e.StartedAt != nil {
			inc.StartedAt = e.StartedAt.UTC()
		}
		if e.Kind == KindDetected {
			inc.LastFailureAt = e.At
		}
		inc.Components = nil
		inc.ComponentState = map[string]ComponentStatus{}
		inc = setComponents(inc, e)
		if inc.Impact == ImpactNone && e.Kind == KindDetected {
			inc.Impact = impactOf(inc.ComponentState)
		}
	case KindExtended:
		inc.Probes = appendUnique(inc.Probes, e.Probes...)
		inc.FailingProbes = appendUnique(inc.FailingProbes, e.Probes...)
		inc.Locations = appendUnique(inc.Locations, e.Locations...)
		inc = setComponents(inc, e)
	case KindStepFailing:
		inc.Steps = appendUnique(inc.Steps, e.Steps...)
		for _, s := range e.Signals {
			if !slices.Contains(inc.Signals, s) {
				inc.Signals = append(inc.Signals, s)
			}
		}
		if e.Location != "" {
			inc.Locations = appendUnique(inc.Locations, e.Location)
		}
	case KindProbeRecovered:
		inc.FailingProbes = slices.DeleteFunc(inc.FailingProbes, func(p string) bool { return p == e.Probe })
	case KindStatusChanged:
		from, to := inc.Status, Status(e.To)
		inc.Status = to
		switch {
		case to == StatusMonitoring:
			inc.MonitoringAt = e.At
			inc = allComponents(inc, Operational)
		case to == StatusResolved:
			inc.ResolvedAt = e.At
			inc.FailingProbes = nil
			inc = allComponents(inc, Operational)
		case to.Open() && (from == StatusMonitoring || from == StatusResolved):
			inc.MonitoringAt = time.Time{}
			inc.ResolvedAt = time.Time{}
			if e.Probe != "" {
				inc.FailingProbes = appendUnique(inc.FailingProbes, e.Probe)
				inc.LastFailureAt = e.At
			}
			if len(e.ComponentState) == 0 {
				inc = allComponents(inc, PartialOutage)
			}
		}
		inc = setComponents(inc, e)
	case KindComponentChanged:
		inc = setComponents(inc, e)
	case KindImpactChanged:
		inc.Impact = Impact(e.To)
	case KindClassificationChanged:
		inc.Classification = Classification(e.To)
		inc.Confirmed = e.Confirmed
	case KindUpdatePosted:
		if e.Extra != nil && e.Extra["visibility"] == string(Public) {
			inc.Public = true
			inc.LastPublicAt = e.At
			if inc.FirstPublicAt.IsZero() {
				inc.FirstPublicAt = e.At
			}
		}
		if e.To != "" && Status(e.To) != inc.Status {
			inc = Apply(inc, Event{Kind: KindStatusChanged, At: e.At, To: e.To, ComponentState: e.ComponentState})
		} else {
			inc = setComponents(inc, e)
		}
	case KindReminderDue:
		inc.LastReminderAt = e.At
	case KindNotePublished:
		inc.Status = StatusPostmortem
	}
	return inc
}

// setComponents adds the event's components and applies its component statuses.
func setComponents(inc Incident, e Event) Incident {
	inc.Components = appendUnique(inc.Components, e.Components...)
	if inc.ComponentState == nil {
		inc.ComponentState = map[string]ComponentStatus{}
	}
	for _, c := range e.ComponentState {
		inc.Components = appendUnique(inc.Components, c.Component)
		inc.ComponentState[c.Component] = c.Status
	}
	return inc
}

func allComponents(inc Incident, s ComponentStatus) Incident {
	for _, c := range inc.Components {
		inc.ComponentState[c] = s
	}
	return inc
}

func (inc Incident) clone() Incident {
	c := inc
	c.Components = slices.Clone(inc.Components)
	c.ComponentState = maps.Clone(inc.ComponentState)
	if c.ComponentState == nil {
		c.ComponentState = map[string]ComponentStatus{}
	}
	c.Probes = slices.Clone(inc.Probes)
	c.FailingProbes = slices.Clone(inc.FailingProbes)
	c.Steps = slices.Clone(inc.Steps)
	c.Locations = slices.Clone(inc.Locations)
	c.Signals = slices.Clone(inc.Signals)
	return c
}

// impactOf derives an automatic incident's impact from its components.
func impactOf(states map[string]ComponentStatus) Impact {
	worst := Operational
	for _, s := range states {
		worst = worse(worst, s)
	}
	switch worst {
	case MajorOutage:
		return ImpactMajor
	case PartialOutage, DegradedPerformance:
		return ImpactMinor
	}
	return ImpactNone
}
