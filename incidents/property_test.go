package incidents

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/candorhq/candor/probes"
)

// drive interprets ops as an interleaving of probe results, clock moves,
// ticks, people's status changes and maintenance, and checks after each
// step that no signature has two open incidents and no duration is negative.
func drive(t testing.TB, ops []byte) {
	s := newSim(t, Policy{})
	now := t0
	locs := []string{"a", "b", "c"}
	steps := []string{"password", "totp", "dashboard", "wrong_code", "login_page", "nowhere"}
	next := func(i *int) byte {
		if *i >= len(ops) {
			return 0
		}
		b := ops[*i]
		*i++
		return b
	}
	checked := 0
	for i := 0; i < len(ops); {
		op := next(&i)
		arg := next(&i)
		switch op % 8 {
		case 0, 1, 2, 3: // a result
			probe := demoProbes[int(arg)%len(demoProbes)]
			loc := locs[int(arg/4)%len(locs)]
			now = now.Add(time.Duration(next(&i)%20) * time.Second)
			var r probes.Result
			switch kind := next(&i) % 6; kind {
			case 0, 1:
				r = ok(probe, loc, now)
			case 2:
				r = slow(probe, loc, now)
			case 3:
				r = fail(probe, loc, now, steps[int(arg/16)%len(steps)], probes.ClassHTTPStatus)
			case 4:
				r = fail(probe, loc, now, steps[int(arg/16)%len(steps)], probes.ClassAssertion)
			default:
				r = fail(probe, loc, now, steps[int(arg/16)%len(steps)], probes.ClassSecurityCheck, probes.SignalWrongCodeAccepted)
			}
			s.observe(r, now)
		case 4: // time passes
			now = now.Add(time.Duration(arg) * 10 * time.Second)
			s.tick(now)
		case 5: // a person changes a status
			open := s.open()
			if len(open) > 0 {
				inc := open[int(arg)%len(open)]
				to := []Status{StatusIdentified, StatusMonitoring, StatusResolved}[int(arg/8)%3]
				if ValidTransition(inc.Status, to) == nil {
					s.person(inc.ID, to, now)
				}
			}
		case 6: // maintenance starts or ends
			if len(s.maint) == 0 {
				s.maint = []string{"Login"}
			} else {
				s.maint = nil
			}
		case 7: // the clock jumps back a little
			now = now.Add(-time.Duration(arg%30) * time.Second)
		}
		// Nothing said or decided by the system mixes security in: no
		// security or undetermined incident is resolved or spoken for
		// automatically, and no security signal alone puts a component in
		// an outage.
		for _, e := range s.log[checked:] {
			inc := s.incs[e.Incident]
			switch {
			case e.Actor != "system" || e.Incident <= 0:
			case e.Kind == KindStatusChanged && e.To == string(StatusResolved) && !autoResolvable(inc):
				t.Fatalf("incident %d (%s) resolved by itself (after %d ops)", inc.ID, inc.Classification, i)
			case e.Kind == KindUpdatePosted && e.Extra["visibility"] == string(Public) && inc.Classification != NonSecurity:
				t.Fatalf("incident %d (%s) got an automatic public update (after %d ops)", inc.ID, inc.Classification, i)
			}
			if e.Kind == KindDetected && e.Classification == Security {
				for _, c := range e.ComponentState {
					if c.Status != Operational && !slices.ContainsFunc(e.Evidence, func(ev Evidence) bool { return ev.Verdict != Security }) {
						t.Fatalf("a security signal alone put %s in %s (after %d ops)", c.Component, c.Status, i)
					}
				}
			}
		}
		checked = len(s.log)
		seen := map[string]int64{}
		for _, inc := range s.open() {
			if other, dup := seen[inc.Signature]; dup && inc.Signature != "" {
				t.Fatalf("incidents %d and %d are both open for %q (after %d ops)", other, inc.ID, inc.Signature, i)
			}
			seen[inc.Signature] = inc.ID
			if inc.DetectedAt.Before(inc.StartedAt) {
				t.Fatalf("incident %d detected at %v before it started at %v", inc.ID, inc.DetectedAt, inc.StartedAt)
			}
		}
	}
}

func TestNoInterleavingOpensTwoIncidentsForOneSignature(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		ops := make([]byte, 50+rng.IntN(400))
		for i := range ops {
			ops[i] = byte(rng.UintN(256))
		}
		drive(t, ops)
	}
}

func FuzzNoTwoOpenIncidentsPerSignature(f *testing.F) {
	f.Add([]byte{0, 0, 1, 3, 0, 4, 1, 3, 0, 8, 1, 3, 0, 0, 1, 3, 0, 4, 1, 3, 0, 8, 1, 3})
	f.Add([]byte{6, 0, 0, 0, 1, 3, 0, 0, 1, 3, 6, 0, 0, 0, 1, 3, 5, 16, 4, 200, 0, 0, 1, 3, 0, 0, 1, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4000 {
			return
		}
		drive(t, ops)
	})
}
