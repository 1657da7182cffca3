// Package incidents turns probe results into incidents that people can trust,
// and records every fact about them with a UTC time.
//
// The rules are pure functions of (state, input, now): the [Detector] decides
// when a probe's failures open, extend, move to monitoring, resolve or reopen
// an incident; [Classify] decides security or not from the evidence; the
// [Policy] decides what is published and when on-call is reminded; and
// [ValidTransition] says which status changes make sense. The [Store] runs
// them inside PostgreSQL transactions and keeps the append-only timeline,
// the outbox rows that notify delivers, and the change notices the public
// site rebuilds on. Humans act only through the Store's methods
// ([Store.PostUpdate], [Store.Reclassify], [Store.CreateIncident], …), so every
// change reaches the timeline and the outbox the same way.
package incidents

import "fmt"

// Status is an incident's status, in Statuspage's vocabulary.
type Status string

// Incident statuses.
const (
	StatusInvestigating Status = "investigating"
	StatusIdentified    Status = "identified"
	StatusMonitoring    Status = "monitoring"
	StatusResolved      Status = "resolved"
	StatusPostmortem    Status = "postmortem"
)

// Open reports whether an incident with this status is still open.
func (s Status) Open() bool {
	return s == StatusInvestigating || s == StatusIdentified || s == StatusMonitoring
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusInvestigating, StatusIdentified, StatusMonitoring, StatusResolved, StatusPostmortem:
		return true
	}
	return false
}

// ComponentStatus is a component's status, in Statuspage's vocabulary.
type ComponentStatus string

// Component statuses.
const (
	Operational         ComponentStatus = "operational"
	DegradedPerformance ComponentStatus = "degraded_performance"
	PartialOutage       ComponentStatus = "partial_outage"
	MajorOutage         ComponentStatus = "major_outage"
	UnderMaintenance    ComponentStatus = "under_maintenance"
)

// Valid reports whether s is a known component status.
func (s ComponentStatus) Valid() bool { return s.rank() >= 0 }

// rank orders statuses by how bad they are for customers; maintenance ranks
// below any outage, since an outage during maintenance is still news.
func (s ComponentStatus) rank() int {
	switch s {
	case Operational:
		return 0
	case UnderMaintenance:
		return 1
	case DegradedPerformance:
		return 2
	case PartialOutage:
		return 3
	case MajorOutage:
		return 4
	}
	return -1
}

// worse returns the worse of two component statuses.
func worse(a, b ComponentStatus) ComponentStatus {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Impact is how bad an incident is for customers, in Statuspage's vocabulary.
type Impact string

// Impacts.
const (
	ImpactNone     Impact = "none"
	ImpactMinor    Impact = "minor"
	ImpactMajor    Impact = "major"
	ImpactCritical Impact = "critical"
)

// Valid reports whether i is a known impact.
func (i Impact) Valid() bool {
	switch i {
	case ImpactNone, ImpactMinor, ImpactMajor, ImpactCritical:
		return true
	}
	return false
}

// Classification says whether an incident is a security incident.
type Classification string

// Classifications.
const (
	Security     Classification = "security"
	NonSecurity  Classification = "non_security"
	Undetermined Classification = "undetermined"
)

// Valid reports whether c is a known classification.
func (c Classification) Valid() bool { return c.rank() >= 0 }

// rank orders classifications by caution: evidence only ever moves an
// automatic classification up this scale.
func (c Classification) rank() int {
	switch c {
	case NonSecurity:
		return 0
	case Undetermined:
		return 1
	case Security:
		return 2
	}
	return -1
}

// Visibility says who sees an update.
type Visibility string

// Visibilities.
const (
	Public   Visibility = "public"
	Internal Visibility = "internal"
)

// MaintenanceStatus is a scheduled maintenance's status.
type MaintenanceStatus string

// Maintenance statuses.
const (
	MaintenanceScheduled  MaintenanceStatus = "scheduled"
	MaintenanceInProgress MaintenanceStatus = "in_progress"
	MaintenanceVerifying  MaintenanceStatus = "verifying"
	MaintenanceCompleted  MaintenanceStatus = "completed"
)

// Valid reports whether s is a known maintenance status.
func (s MaintenanceStatus) Valid() bool {
	switch s {
	case MaintenanceScheduled, MaintenanceInProgress, MaintenanceVerifying, MaintenanceCompleted:
		return true
	}
	return false
}

// EventKind names a fact on an incident's timeline.
type EventKind string

// Timeline event kinds.
const (
	KindDetected              EventKind = "detected"               // the detector opened the incident
	KindCreated               EventKind = "created"                // a person opened it
	KindExtended              EventKind = "extended"               // new components, steps, probes or locations
	KindStepFailing           EventKind = "step_failing"           // a probe fails at a step (new step, class or signal)
	KindProbeRecovered        EventKind = "probe_recovered"        // a probe passes again in every location
	KindStatusChanged         EventKind = "status_changed"         // investigating → monitoring → resolved, reopened, …
	KindImpactChanged         EventKind = "impact_changed"         // a person set the impact
	KindComponentChanged      EventKind = "component_changed"      // a component's status changed
	KindClassificationChanged EventKind = "classification_changed" // by evidence, or by a person with a reason
	KindUpdatePosted          EventKind = "update_posted"          // a public or internal update
	KindNotified              EventKind = "notified"               // written by notify when a channel delivered
	KindReminderDue           EventKind = "reminder_due"           // no public update for a cadence
	KindRunbookAttached       EventKind = "runbook_attached"       // a runbook matched
	KindNoteDrafted           EventKind = "note_drafted"           // a new version of the post-incident note
	KindNotePublished         EventKind = "note_published"         // the note was published (status postmortem)
	KindLatencyDegraded       EventKind = "latency_degraded"       // a probe is slow in a quorum of locations
	KindLatencyRecovered      EventKind = "latency_recovered"      // and is fast again
	KindSuppressed            EventKind = "suppressed"             // failures during maintenance opened nothing
	KindMaintenanceScheduled  EventKind = "maintenance_scheduled"
	KindMaintenanceChanged    EventKind = "maintenance_changed"
)

// ValidTransition reports whether an incident may go from status from to
// status to, with an error that says why not. Follow-up updates keep the
// status (investigating → investigating); a resolved incident may be
// reopened; postmortem is reached only by publishing the post-incident note.
func ValidTransition(from, to Status) error {
	if !to.Valid() {
		return fmt.Errorf("unknown status %q (use investigating, identified, monitoring or resolved)", to)
	}
	switch {
	case from == StatusPostmortem:
		return fmt.Errorf("the incident is closed: its post-incident note is published")
	case to == StatusPostmortem:
		if from != StatusResolved {
			return fmt.Errorf("an incident must be resolved before its post-incident note is published")
		}
		return nil
	case from == StatusResolved && to == StatusResolved:
		return fmt.Errorf("the incident is already resolved")
	}
	return nil
}

// ValidMaintenanceTransition reports whether a maintenance may go from one
// status to another.
func ValidMaintenanceTransition(from, to MaintenanceStatus) error {
	if !to.Valid() {
		return fmt.Errorf("unknown maintenance status %q (use scheduled, in_progress, verifying or completed)", to)
	}
	ok := map[MaintenanceStatus][]MaintenanceStatus{
		MaintenanceScheduled:  {MaintenanceInProgress, MaintenanceCompleted},
		MaintenanceInProgress: {MaintenanceVerifying, MaintenanceCompleted},
		MaintenanceVerifying:  {MaintenanceInProgress, MaintenanceCompleted},
	}[from]
	for _, s := range ok {
		if s == to {
			return nil
		}
	}
	if from == MaintenanceCompleted {
		return fmt.Errorf("the maintenance is already completed")
	}
	return fmt.Errorf("a maintenance cannot go from %s to %s", from, to)
}
