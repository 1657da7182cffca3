package incidents

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/candorhq/candor/probes"
)

// Evidence is one probe run that decided or changed an incident's
// classification, as kept with the incident.
type Evidence struct {
	At       time.Time       `json:"at"` // the run's start, UTC
	Probe    string          `json:"probe"`
	Location string          `json:"location"`
	Step     string          `json:"step,omitempty"`
	Role     string          `json:"role,omitempty"` // the step's role (probes.Role)
	Class    string          `json:"error_class,omitempty"`
	Outcome  string          `json:"outcome"`
	Signals  []probes.Signal `json:"signals,omitempty"`
	Message  string          `json:"message,omitempty"` // redacted by the probe runner
	Verdict  Classification  `json:"verdict"`           // what this run alone says
	Why      string          `json:"why"`               // the rule that gave the verdict
	// CertNotAfter is when the target's certificate expires, for an
	// expired or not yet valid certificate.
	CertNotAfter *time.Time `json:"cert_not_after,omitempty"`
}

// ProbeProblem reports whether the run failed for a reason that says
// something about the probe, not about what customers get.
func (e Evidence) ProbeProblem() bool { return probes.ErrorClass(e.Class).ProbeProblem() }

// evidenceOf turns a failed or slow run into evidence.
func evidenceOf(r probes.Result) Evidence {
	e := Evidence{
		At: r.Start.UTC(), Probe: r.Probe, Location: r.Location, Step: r.FailedStep, Role: string(r.FailedRole),
		Class: string(r.Class), Outcome: string(r.Outcome), Signals: slices.Clone(r.Signals), Message: r.Message,
	}
	if e.Step == "" && r.Outcome == probes.OutcomeDegraded {
		e.Step, e.Role = slowestStep(r)
	}
	if e.Step != "" && e.Role == "" {
		e.Role = string(probes.RoleOther)
	}
	if r.Class == probes.ClassCertExpired && r.CertNotAfter != nil {
		t := r.CertNotAfter.UTC()
		e.CertNotAfter = &t
	}
	e.Verdict, e.Why = classifyRun(r.Outcome, r.Class, r.Signals)
	return e
}

// classifyRun is the classification rule for one run:
//
//   - any security signal (TLS invalid, a wrong or replayed code accepted, the
//     second step skipped, a protected page reachable, weak cookie flags) is
//     security;
//   - a failure that says the service is unavailable or slow (DNS, connection,
//     timeout, an HTTP status, an extraction from a broken page, a valid TOTP
//     code rejected, a slow run) is non_security;
//   - an expired or not yet valid certificate is non_security: every
//     customer's browser refuses the connection, so it is an outage all
//     customers see, not a sign of an attack (a TLS signal it carries is
//     the same fact and does not make it security);
//   - a probe problem (the target rate-limits the probe's account, or other
//     runs took its one-time-code windows) is undetermined and says why: it
//     is never published automatically, and customers hear of it only
//     through other evidence that shows them affected;
//   - anything else (an assertion about what the page said, a failed security
//     check or TLS problem without a signal) is undetermined: the service
//     answered, but not as it should, and only a person can say why.
func classifyRun(outcome probes.Outcome, class probes.ErrorClass, signals []probes.Signal) (Classification, string) {
	if class == probes.ClassCertExpired {
		signals = slices.DeleteFunc(slices.Clone(signals), func(s probes.Signal) bool { return s == probes.SignalTLSInvalid })
	}
	if len(signals) > 0 {
		names := make([]string, len(signals))
		for i, s := range signals {
			names[i] = string(s)
		}
		return Security, "security signal " + strings.Join(names, ", ")
	}
	if outcome == probes.OutcomeDegraded {
		return NonSecurity, "slower than the latency threshold"
	}
	switch class {
	case probes.ClassDNS, probes.ClassConnect, probes.ClassTimeout, probes.ClassHTTPStatus,
		probes.ClassExtraction, probes.ClassTOTPRejected:
		return NonSecurity, "availability failure (" + string(class) + ")"
	case probes.ClassCertExpired:
		return NonSecurity, "availability failure (cert_expired): every customer's browser refuses the certificate"
	case probes.ClassRateLimited:
		return Undetermined, "probe problem: the target rate-limits the probe's account"
	case probes.ClassCodeWindowTaken:
		return Undetermined, "probe problem: other runs on the probe's account took every one-time-code window it could use"
	case probes.ClassTLS, probes.ClassSecurityCheck:
		return Undetermined, "security-relevant failure (" + string(class) + ") without a signal"
	}
	if class == probes.ClassNone {
		return Undetermined, "failed without an error class"
	}
	return Undetermined, "the service answered, but not as expected (" + string(class) + ")"
}

// Classify returns the classification a set of evidence supports: the most
// cautious verdict of any run (security over undetermined over non_security).
// Probe problems count only when they are all there is: a rate-limited
// probe says nothing about what customers get. No evidence is undetermined.
func Classify(ev []Evidence) Classification {
	if len(ev) == 0 {
		return Undetermined
	}
	if slices.ContainsFunc(ev, func(e Evidence) bool { return !e.ProbeProblem() }) {
		ev = slices.DeleteFunc(slices.Clone(ev), Evidence.ProbeProblem)
	}
	c := NonSecurity
	for _, e := range ev {
		if e.Verdict.rank() > c.rank() {
			c = e.Verdict
		}
	}
	return c
}

// CheckReclassification validates a person's reclassification: a known
// classification and a reason, which goes on the timeline.
func CheckReclassification(to Classification, reason string) error {
	var errs FieldErrors
	if !to.Valid() {
		errs = append(errs, FieldError{Field: "classification", Msg: fmt.Sprintf("unknown classification %q (use security, non_security or undetermined)", to)})
	}
	switch r := strings.TrimSpace(reason); {
	case r == "":
		errs = append(errs, FieldError{Field: "reason", Msg: "a reclassification needs a reason, for the timeline"})
	case len(r) > MaxReason:
		errs = append(errs, FieldError{Field: "reason", Msg: fmt.Sprintf("the reason is %d bytes; the limit is %d", len(r), MaxReason)})
	default:
		if fe := checkText("reason", r, true, MaxReason); fe != nil {
			errs = append(errs, *fe)
		}
	}
	return errs.err()
}

// slowestStep names the step that took longest in a run, and its role.
func slowestStep(r probes.Result) (string, string) {
	name, role, max := "", "", time.Duration(-1)
	for _, s := range r.Steps {
		if s.Latency > max {
			name, role, max = s.Name, string(s.Role.Or()), s.Latency
		}
	}
	return name, role
}

func signalOf(s string) probes.Signal { return probes.Signal(s) }
