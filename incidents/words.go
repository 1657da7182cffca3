package incidents

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/candorhq/candor/probes"
)

// roleWords is what a failure at a step of one role means to a customer:
// the words automatic public texts are written from, so that they follow
// what the flow means and never the names a configuration happened to give.
type roleWords struct {
	headline  string // for titles: "sign-in failing"
	problem   string // "signing in fails after the password is entered"
	past      string // "signing in failed after the password was entered"
	recovered string // "signing in works again"
}

var wordsByRole = map[probes.Role]roleWords{
	probes.RoleLoginPage: {"sign-in page not loading", "the sign-in page does not load",
		"the sign-in page did not load", "the sign-in page loads again"},
	probes.RolePassword: {"sign-in failing", "signing in fails after the password is entered",
		"signing in failed after the password was entered", "signing in works again"},
	probes.RoleSecondFactor: {"two-step verification failing", "signing in fails at the two-step verification code",
		"signing in failed at the two-step verification code", "signing in works again"},
	probes.RoleRecoveryCode: {"recovery-code sign-in failing", "signing in with a recovery code fails",
		"signing in with a recovery code failed", "signing in with a recovery code works again"},
	probes.RoleRememberedDevice: {"sign-in on remembered devices failing", "signing in on a remembered device fails",
		"signing in on a remembered device failed", "signing in on a remembered device works again"},
	probes.RoleSignedIn: {"pages after sign-in failing", "pages after sign-in fail to load",
		"pages after sign-in failed to load", "pages after sign-in load again"},
	probes.RoleLogout: {"sign-out failing", "signing out fails", "signing out failed", "signing out works again"},
	probes.RoleOther:  {"service problems", "some requests fail", "some requests failed", "requests succeed again"},
}

// recoveryAdvice is said only when the target offers recovery codes and the
// two-step code is what fails, so customers are never told to use something
// they do not have or that fails too.
const recoveryAdvice = "If you saved recovery codes, you can sign in with one of them meanwhile."

// withWords fills in the words of d that are not set yet from its role,
// error class and certificate expiry.
func (d TemplateData) withWords() TemplateData {
	role := probes.Role(d.Role).Or()
	w, ok := wordsByRole[role]
	if !ok {
		w = wordsByRole[probes.RoleOther]
	}
	if probes.ErrorClass(d.ErrorClass) == probes.ClassCertExpired {
		w = certWords(d.CertExpiresAt, d.StartedAt)
	}
	if d.Headline == "" {
		d.Headline = w.headline
	}
	if d.Problem == "" {
		d.Problem = w.problem
	}
	if d.Past == "" {
		d.Past = w.past
	}
	if d.Recovered == "" {
		d.Recovered = w.recovered
	}
	if d.Advice == "" && d.RecoveryCodes && role == probes.RoleSecondFactor && probes.ErrorClass(d.ErrorClass) != probes.ClassCertExpired {
		d.Advice = recoveryAdvice
	}
	if d.Duration == 0 && !d.EndedAt.IsZero() && !d.StartedAt.IsZero() {
		d.Duration = d.EndedAt.Sub(d.StartedAt)
	}
	return d
}

// certWords speak of an expired (or not yet valid) certificate, which every
// customer's browser refuses: customers see the date themselves, so it may
// be given.
func certWords(notAfter, started time.Time) roleWords {
	w := roleWords{headline: "secure connections failing", recovered: "secure connections work again",
		past: "secure connections failed because the site's certificate was not valid"}
	switch {
	case notAfter.IsZero():
		w.problem = "secure connections fail because the site's certificate has expired or is not valid yet"
	case started.IsZero() || !notAfter.After(started):
		w.headline = "certificate expired"
		w.problem = "secure connections fail because the site's certificate expired on " + notAfter.UTC().Format("2006-01-02 15:04 UTC")
		w.past = "secure connections failed because the site's certificate had expired on " + notAfter.UTC().Format("2006-01-02 15:04 UTC")
	default:
		w.problem = "secure connections fail because the site's certificate is not valid yet"
	}
	return w
}

// sentence returns s with its first letter in upper case.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// roleOfSignature returns the step role and error class of a failure
// signature ("failure:<role>:<class>:<probe>"), or "" for other signatures.
func roleOfSignature(sig string) (role, class string) {
	rest, ok := strings.CutPrefix(sig, "failure:")
	if !ok {
		return "", ""
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) < 3 {
		return "", ""
	}
	class, _, _ = strings.Cut(parts[1], "+")
	return parts[0], class
}

// failureSignature names one failure: the probe, the failing step's role
// and the error class, with "+security" when the run raised a security
// signal and "+probe" when it is a probe problem. Reopening needs the same
// signature; the same components are not enough.
func failureSignature(probe string, role probes.Role, class probes.ErrorClass, verdict Classification) string {
	c := string(class)
	if c == "" {
		c = "none"
	}
	switch {
	case class.ProbeProblem():
		c += "+probe"
	case verdict == Security:
		c += "+security"
	}
	return "failure:" + string(role.Or()) + ":" + c + ":" + probe
}

// probeProblemSignature reports whether sig names a probe problem.
func probeProblemSignature(sig string) bool {
	rest, ok := strings.CutPrefix(sig, "failure:")
	if !ok {
		return false
	}
	parts := strings.SplitN(rest, ":", 3)
	return len(parts) == 3 && strings.HasSuffix(parts[1], "+probe")
}
