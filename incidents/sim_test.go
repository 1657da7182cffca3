package incidents

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/candorhq/candor/probes"
)

// sim drives the pure rules the way the Store does, without a database:
// probe states, incidents updated by Apply, and the World built from them.
type sim struct {
	t      testing.TB
	d      *Detector
	states map[string]ProbeState
	incs   map[int64]Incident
	maint  []string
	locs   map[string][]string
	next   int64
	log    []Event
}

func newSim(t testing.TB, pol Policy) *sim {
	return &sim{t: t, d: NewDetector(demoComponents(), pol), states: map[string]ProbeState{},
		incs: map[int64]Incident{}, locs: map[string][]string{}}
}

// demoComponents maps the demo probes' steps the way the demo configuration does.
func demoComponents() []Component {
	return []Component{
		{Name: "Login", Group: "Sign-in", Probes: []string{"login", "login-remembered", "login-security"},
			Steps: []string{"login_page", "password", "wrong_password", "remembered_login_page", "remembered_password",
				"new_device_login_page", "new_device_password", "replay_login_page", "replay_password", "logout"}},
		{Name: "Two-step authentication", Group: "Sign-in",
			Steps: []string{"totp_page", "totp", "wrong_code", "replayed_code", "recovery", "recovery_codes", "protected_page"}},
		{Name: "API", Group: "Platform"},
		{Name: "Dashboard", Group: "Platform", Steps: []string{"dashboard", "dashboard_again", "remembered_dashboard", "recovered_dashboard"}},
	}
}

func (s *sim) world(probe string, now time.Time) World {
	w := World{Maintenance: s.maint, Locations: s.locs[probe]}
	ids := make([]int64, 0, len(s.incs))
	for id := range s.incs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		inc := s.incs[id]
		if inc.Status.Open() || inc.Status == StatusResolved && now.Sub(inc.ResolvedAt) <= s.d.policy.Cooldown.D {
			w.Incidents = append(w.Incidents, inc)
		}
	}
	return w
}

func (s *sim) observe(r probes.Result, now time.Time) []Event {
	st, evs := s.d.Observe(s.states[r.Probe], s.world(r.Probe, now), r, now)
	if st.Incident == NewIncidentID {
		s.next++
		st.Incident = s.next
	}
	for i := range evs {
		if evs[i].Incident == NewIncidentID {
			evs[i].Incident = s.next
		}
	}
	s.applyAll(evs)
	if inc, ok := s.incs[st.Incident]; ok && r.Failed() && inc.Status.Open() {
		inc.LastFailureAt = r.Start
		s.incs[st.Incident] = inc
	}
	s.states[r.Probe] = st
	return evs
}

func (s *sim) applyAll(evs []Event) {
	for _, e := range evs {
		if e.At.Location() != time.UTC {
			s.t.Errorf("event %s at %v is not UTC", e.Kind, e.At)
		}
		s.log = append(s.log, e)
		if e.Incident > 0 {
			s.incs[e.Incident] = Apply(s.incs[e.Incident], e)
			inc := s.incs[e.Incident]
			inc.ID = e.Incident
			s.incs[e.Incident] = inc
		}
	}
}

func (s *sim) tick(now time.Time) []Event {
	var all []Event
	for _, inc := range s.sorted() {
		evs := s.d.Tick(inc, now)
		s.applyAll(evs)
		all = append(all, evs...)
	}
	return all
}

func (s *sim) sorted() []Incident {
	var out []Incident
	for _, inc := range s.incs {
		out = append(out, inc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *sim) open() []Incident {
	var out []Incident
	for _, inc := range s.sorted() {
		if inc.Status.Open() {
			out = append(out, inc)
		}
	}
	return out
}

// person changes an incident's status as a person would through PostUpdate.
func (s *sim) person(id int64, to Status, now time.Time) {
	s.applyAll([]Event{{Kind: KindUpdatePosted, At: now, Actor: "person:test", Incident: id, To: string(to),
		Extra: map[string]any{"visibility": string(Public)}}})
}

func kinds(evs []Event) []EventKind {
	out := make([]EventKind, len(evs))
	for i, e := range evs {
		out[i] = e.Kind
	}
	return out
}

func count(evs []Event, k EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// result builders for the demo probes' failures.
func ok(probe, loc string, at time.Time) probes.Result {
	return probes.Result{Probe: probe, Location: loc, Start: at, Duration: 300 * time.Millisecond, Outcome: probes.OutcomeOK, FailedIdx: -1,
		Steps: []probes.StepResult{{Name: "login_page", OK: true, Latency: 100 * time.Millisecond}, {Name: "password", OK: true, Latency: 200 * time.Millisecond}}}
}

func slow(probe, loc string, at time.Time) probes.Result {
	r := ok(probe, loc, at)
	r.Outcome = probes.OutcomeDegraded
	r.Steps[1].Latency = 3 * time.Second
	return r
}

func fail(probe, loc string, at time.Time, step string, class probes.ErrorClass, signals ...probes.Signal) probes.Result {
	return probes.Result{Probe: probe, Location: loc, Start: at, Duration: time.Second, Outcome: probes.OutcomeFailed,
		FailedStep: step, FailedIdx: 1, FailedRole: demoRoles[step], Class: class, Signals: signals,
		Message: "step \"" + step + "\" (POST /login): answered 500 Internal Server Error"}
}

// demoRoles are the roles the demo configuration gives its steps.
var demoRoles = map[string]probes.Role{
	"login_page": probes.RoleLoginPage, "tls": probes.RoleLoginPage, "password": probes.RolePassword,
	"wrong_password": probes.RolePassword, "totp_page": probes.RoleSecondFactor, "totp": probes.RoleSecondFactor,
	"wrong_code": probes.RoleSecondFactor, "replayed_code": probes.RoleSecondFactor, "recovery": probes.RoleRecoveryCode,
	"dashboard": probes.RoleSignedIn, "protected_page": probes.RoleSignedIn, "logout": probes.RoleLogout,
}
