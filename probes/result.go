package probes

import "time"

// Outcome is how a probe run ended.
type Outcome string

// Outcomes of a run.
const (
	OutcomeOK       Outcome = "ok"
	OutcomeDegraded Outcome = "degraded" // every step passed, but slower than the latency threshold
	OutcomeFailed   Outcome = "failed"
)

// ErrorClass says what kind of failure stopped a run.
type ErrorClass string

// Error classes of a failed run.
const (
	ClassNone          ErrorClass = ""
	ClassDNS           ErrorClass = "dns"
	ClassConnect       ErrorClass = "connect"
	ClassTLS           ErrorClass = "tls"
	ClassTimeout       ErrorClass = "timeout"
	ClassHTTPStatus    ErrorClass = "http_status"
	ClassAssertion     ErrorClass = "assertion"
	ClassExtraction    ErrorClass = "extraction"
	ClassTOTPRejected  ErrorClass = "totp_rejected"
	ClassSecurityCheck ErrorClass = "security_check"
	// ClassCertExpired: the target's certificate is expired or not yet
	// valid. Every customer is locked out, so it is an availability failure
	// (public, non-security), not a security signal.
	ClassCertExpired ErrorClass = "cert_expired"
	// ClassRateLimited: the target refused the probe for sending too much
	// (429, or a Retry-After). A probe problem: on-call hears of it,
	// customers do not.
	ClassRateLimited ErrorClass = "rate_limited"
	// ClassCodeWindowTaken: every one-time-code window the run could use
	// within its timeout was already claimed by another run on the same
	// account. A probe problem, never a failure of the target.
	ClassCodeWindowTaken ErrorClass = "code_window_taken"
)

// ProbeProblem reports whether a failure of this class says something about
// the probe (its account rate-limited or its code windows taken) rather than
// about what customers get: on-call hears of it, customers do not, unless
// other evidence shows customers affected.
func (c ErrorClass) ProbeProblem() bool {
	return c == ClassRateLimited || c == ClassCodeWindowTaken
}

// Role is what a step means in a login flow. Public words, runbook matching,
// component mapping and classification read roles, never step names.
type Role string

// Roles a step may declare (role: in the configuration).
const (
	RoleLoginPage        Role = "login_page"        // the page with the sign-in form
	RolePassword         Role = "password"          // submitting the password (or the first factor)
	RoleSecondFactor     Role = "second_factor"     // a two-step code (TOTP) and its page
	RoleRecoveryCode     Role = "recovery_code"     // signing in with a recovery code instead
	RoleRememberedDevice Role = "remembered_device" // signing in on a remembered device, skipping the code
	RoleSignedIn         Role = "signed_in"         // a page only a signed-in customer sees
	RoleLogout           Role = "logout"            // signing out
	RoleOther            Role = "other"             // anything else (the default)
)

// Roles lists every role, in flow order.
var Roles = []Role{RoleLoginPage, RolePassword, RoleSecondFactor, RoleRecoveryCode,
	RoleRememberedDevice, RoleSignedIn, RoleLogout, RoleOther}

// Valid reports whether r is one of [Roles].
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Or returns r, or RoleOther when r is empty.
func (r Role) Or() Role {
	if r == "" {
		return RoleOther
	}
	return r
}

// Signal is evidence that something is wrong with the target's security,
// as opposed to its availability. Any signal makes an incident a security incident.
type Signal string

// Security signals a run can raise.
const (
	SignalTLSInvalid             Signal = "tls_invalid"              // bad chain, hostname, expired, or protocol below TLS 1.2
	SignalWrongPasswordAccepted  Signal = "wrong_password_accepted"  // a wrong password let the probe in
	SignalWrongCodeAccepted      Signal = "wrong_code_accepted"      // a wrong TOTP code was accepted
	SignalReplayedCodeAccepted   Signal = "replayed_code_accepted"   // the same TOTP code was accepted twice
	SignalSecondStepSkipped      Signal = "second_step_skipped"      // login completed without the second step
	SignalProtectedPageReachable Signal = "protected_page_reachable" // a protected page answered without a full login
	SignalCookieFlagsWeak        Signal = "cookie_flags_weak"        // session cookie lacks Secure (over HTTPS) or HttpOnly
)

// Result is the record of one run of one probe at one location.
type Result struct {
	Probe      string        `json:"probe"`
	Location   string        `json:"location"`
	Start      time.Time     `json:"start"` // UTC
	Duration   time.Duration `json:"duration"`
	Outcome    Outcome       `json:"outcome"`
	FailedStep string        `json:"failed_step,omitempty"` // name of the step that failed ("tls" for the TLS check); "" when none did
	FailedIdx  int           `json:"failed_index"`          // index of that step, -1 when none did (or the TLS check did)
	FailedRole Role          `json:"failed_role,omitempty"` // the role of that step ("" when none failed; the TLS check is login_page)
	Class      ErrorClass    `json:"error_class,omitempty"`
	Message    string        `json:"message,omitempty"` // redacted: never holds a secret
	Signals    []Signal      `json:"signals,omitempty"`
	Steps      []StepResult  `json:"steps"`

	// ClockOffset is the target's clock minus ours, estimated from its Date
	// header when it rejected a valid TOTP code (class totp_rejected); 0 otherwise.
	ClockOffset time.Duration `json:"clock_offset,omitempty"`
	// CertNotAfter is when the target's TLS certificate expires (HTTPS targets).
	CertNotAfter *time.Time `json:"cert_not_after,omitempty"`
}

// StepResult is what one step of a run did.
type StepResult struct {
	Name    string        `json:"name"`
	Role    Role          `json:"role,omitempty"` // the step's declared role (other when none)
	Status  int           `json:"status"`         // HTTP status, 0 when there was no response
	Latency time.Duration `json:"latency"`
	Bytes   int64         `json:"bytes"`
	OK      bool          `json:"ok"`
	Method  string        `json:"method,omitempty"`
	Path    string        `json:"path,omitempty"` // the request's URL path, without query
}

// Failed reports whether the run failed.
func (r Result) Failed() bool { return r.Outcome == OutcomeFailed }
