package incidents

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/candorhq/candor/probes"
)

// TemplateData is what the policy's templates are rendered with. Times are
// UTC. Probe, Step, Locations, ErrorClass and What are for on-call texts
// and custom templates: the built-in public texts never use them, and speak
// of the failing role in customers' words (Headline, Problem, Past,
// Recovered, Advice) instead.
type TemplateData struct {
	Title          string
	Components     []string // affected components
	Probe          string   // the failing probe (never in public text)
	Step           string   // the failing step (for on-call only: never in public text)
	Role           string   // the failing step's role (probes.Role), e.g. "second_factor"
	RecoveryCodes  bool     // the target offers recovery codes (a probe has a recovery_code step, or the configuration says so)
	ErrorClass     string   // its error class (never in public text)
	What           string   // the error class in words, e.g. "HTTP errors"
	Classification string
	Confirmed      bool
	StartedAt      time.Time
	DetectedAt     time.Time
	Locations      []string // (never in public text)
	Cadence        time.Duration

	// Headline is the failure in a few words, for titles ("sign-in failing").
	Headline string
	// Problem is what customers meet, in the present tense, lower case:
	// "signing in fails after the password is entered".
	Problem string
	// Past is Problem in the past tense, for the resolution.
	Past string
	// Recovered says it works again: "signing in works again".
	Recovered string
	// Advice is what customers may do meanwhile, only when the target
	// offers it (recovery codes while the two-step code fails); or "".
	Advice string
	// EndedAt is when the probes saw it work again (monitoring, resolution).
	EndedAt time.Time
	// Duration is from StartedAt to EndedAt.
	Duration time.Duration
	// CertExpiresAt is when the target's certificate expires (or expired),
	// when the failure is an expired certificate.
	CertExpiresAt time.Time
}

// Publication is what the policy decided for an incident's first update.
type Publication struct {
	Title   string
	Message string     // markdown
	Publish bool       // post it as a public update now
	Why     string     // why it is or is not published, for the timeline
	Visible Visibility // public, or internal when not published
}

// FirstUpdate applies the publication policy to a newly detected (or
// reopened) incident: a non-security incident publishes its first update at
// once from the template; a security or undetermined one is never published
// automatically, and the same text is kept as an internal draft for on-call.
func (p Policy) FirstUpdate(d TemplateData) (Publication, error) {
	p = p.WithDefaults()
	d.Confirmed = false // automatic text never speaks for a person
	if d.Cadence == 0 {
		d.Cadence = p.Cadence.D
	}
	if d.What == "" {
		d.What = describeClass(d.ErrorClass)
	}
	d = d.withWords()
	title, err := render("title", p.Templates.Title, d)
	if err != nil {
		return Publication{}, err
	}
	title = strings.Join(strings.Fields(title), " ")
	if len(title) > MaxTitle {
		title = title[:MaxTitle]
	}
	d.Title = title
	msg, err := render("first_update", p.Templates.FirstUpdate, d)
	if err != nil {
		return Publication{}, err
	}
	if claim := unconfirmedClaim(msg); claim != "" {
		return Publication{}, fmt.Errorf("first update template says %q without a person's confirmation", claim)
	}
	pub := Publication{Title: title, Message: msg, Visible: Internal}
	switch {
	case probes.ErrorClass(d.ErrorClass).ProbeProblem():
		pub.Title = "Checks cannot complete: " + describeClass(d.ErrorClass)
		pub.Why = "probe problem (" + d.ErrorClass + "): " + describeClass(d.ErrorClass) +
			"; customers were not told, since no evidence shows them affected: on-call decides"
	case Classification(d.Classification) != NonSecurity:
		pub.Why = "an incident classified " + d.Classification + " is never published automatically: on-call decides"
	case p.AutoPublish != nil && !*p.AutoPublish:
		pub.Why = "automatic publication is off (incidents.auto_publish)"
	default:
		pub.Publish, pub.Visible = true, Public
		pub.Why = "non-security incidents are published at once"
	}
	return pub, nil
}

// AutomaticUpdate renders the automatic public update posted when an
// incident moves to to: monitoring or resolved, or investigating again
// (from the first update's template). The caller decides whether it is
// posted: only for a public, non-security incident.
func (p Policy) AutomaticUpdate(to Status, d TemplateData) (string, error) {
	p = p.WithDefaults()
	if to.Open() && to != StatusMonitoring {
		pub, err := p.FirstUpdate(d)
		return pub.Message, err
	}
	d.Confirmed = false
	if d.Cadence == 0 {
		d.Cadence = p.Cadence.D
	}
	d = d.withWords()
	name, text := "monitoring", p.Templates.Monitoring
	if to == StatusResolved {
		name, text = "resolved", p.Templates.Resolved
	}
	msg, err := render(name, text, d)
	if err != nil {
		return "", err
	}
	if claim := unconfirmedClaim(msg); claim != "" {
		return "", fmt.Errorf("%s template says %q without a person's confirmation", name, claim)
	}
	return msg, nil
}

// CorrectionDraft returns the public update a person is offered when an
// incident customers were told of has since been raised above non_security
// by the evidence (its timeline holds the alert, and no person has posted
// a public update since), or "". Its placeholder must be replaced before it
// can be posted: what to tell customers is a person's decision.
func (p Policy) CorrectionDraft(inc Incident, tl []TimelineEvent) string {
	if !inc.Public || inc.Classification == NonSecurity {
		return ""
	}
	alerted := false
	for _, te := range tl {
		switch {
		case te.Kind == KindReminderDue && te.Event().Extra["alert"] == AlertPublicNowSecurity:
			alerted = true
		case te.Kind == KindUpdatePosted && strings.HasPrefix(te.Actor, "person:") && te.Event().Extra["visibility"] == string(Public):
			alerted = false
		}
	}
	if !alerted {
		return ""
	}
	p = p.WithDefaults()
	affecting := ""
	if len(inc.Components) > 0 {
		affecting = " affecting **" + listText(inc.Components) + "**"
	}
	first := "**Update:** we are still investigating the problem" + affecting + ", and are reviewing what our checks now show."
	if inc.Classification == Security {
		first = "**Correction:** our earlier update said that we had no indication of a security incident. " +
			"We are now investigating a possible security problem" + affecting + "."
	}
	return first + "\n\n[What customers should know or do now, in one or two sentences.]\n\n" +
		"We will post an update within " + humanDuration(p.Cadence.D) + "."
}

// ReminderDue reports whether an open incident has gone a cadence without a
// public update (counting from detection when there has been none, and from
// the last reminder, so that reminders repeat at every cadence), and since
// when the public has heard nothing.
func (p Policy) ReminderDue(inc Incident, now time.Time) (bool, time.Time) {
	if !inc.Status.Open() {
		return false, time.Time{}
	}
	cadence := p.Cadence.Or(DefaultCadence)
	silent := inc.DetectedAt
	if inc.LastPublicAt.After(silent) {
		silent = inc.LastPublicAt
	}
	base := silent
	if inc.LastReminderAt.After(base) {
		base = inc.LastReminderAt
	}
	return !base.IsZero() && now.Sub(base) >= cadence, silent
}

func reminderReason(inc Incident, now, since time.Time) string {
	switch {
	case probeProblemSignature(inc.Signature) && !inc.Public:
		return "probe problem, not published: no evidence shows customers affected; resolve it once the probe works again"
	case inc.Status == StatusMonitoring && inc.Classification != NonSecurity && len(inc.FailingProbes) == 0:
		return "the probes pass again, but an incident classified " + string(inc.Classification) +
			" is never resolved automatically: a person must review and resolve it"
	}
	if !inc.Public {
		return "not published yet: customers have heard nothing for " + humanDuration(now.Sub(since)) + "; a person must decide what to publish"
	}
	return "no public update for " + humanDuration(now.Sub(since)) + ": customers last heard at " + since.UTC().Format("15:04 UTC")
}

// The claims only a person who confirmed the classification may make.
var claimRE = regexp.MustCompile(`(?i)\b(not\s+a\s+security\s+(incident|issue|problem)|no\s+(customer\s+|user\s+|personal\s+)?data\s+(was|were|has\s+been|have\s+been)\s+(compromised|accessed|exposed|leaked))`)

// unconfirmedClaim returns the first claim in text that needs a person's
// confirmation of a non-security classification, or "".
func unconfirmedClaim(text string) string {
	return claimRE.FindString(text)
}

// CheckClaims enforces the publication policy on a message: "this is not a
// security incident" and "no data was compromised" may only be said once a
// person has confirmed the incident as non-security.
func CheckClaims(message string, c Classification, confirmed bool) error {
	claim := unconfirmedClaim(message)
	if claim == "" || c == NonSecurity && confirmed {
		return nil
	}
	if c != NonSecurity {
		return fmt.Errorf("the message says %q, but the incident is classified %s", claim, c)
	}
	return fmt.Errorf("the message says %q, which needs a person to confirm the non-security classification first (reclassify with a reason); until then write \"we have no indication that this is a security incident\"", claim)
}

func render(name, text string, d TemplateData) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs()).Parse(text)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// templateFuncs are the functions templates may call: utc, duration, list,
// lower, sentence (first letter in upper case).
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"utc": func(t time.Time) (string, error) {
			if t.IsZero() {
				return "", errors.New("the time is not set")
			}
			return t.UTC().Format("2006-01-02 15:04 UTC"), nil
		},
		"duration": func(d time.Duration) string { return humanDuration(d) },
		"list":     listText,
		"lower":    strings.ToLower,
		"sentence": sentence,
	}
}

// humanDuration writes a duration for people: "10h 47m", "47m", "less than a minute".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return "less than a minute"
	}
	days, h, m := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	var parts []string
	if days > 0 {
		parts = append(parts, strconv.Itoa(days)+"d")
	}
	if h > 0 {
		parts = append(parts, strconv.Itoa(h)+"h")
	}
	if m > 0 {
		parts = append(parts, strconv.Itoa(m)+"m")
	}
	return strings.Join(parts, " ")
}

func listText(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// describeClass says what an error class means to a customer.
func describeClass(class string) string {
	switch class {
	case "dns":
		return "the address cannot be resolved"
	case "connect":
		return "connections are refused"
	case "tls":
		return "secure connections fail"
	case "timeout":
		return "requests time out"
	case "http_status":
		return "the service answers with errors"
	case "assertion":
		return "the service does not answer as expected"
	case "extraction":
		return "pages are incomplete"
	case "totp_rejected":
		return "valid two-step codes are rejected"
	case "security_check":
		return "a security check fails"
	case "cert_expired":
		return "the certificate has expired or is not valid yet"
	case "rate_limited":
		return "the target rate-limits the probe's account"
	case "code_window_taken":
		return "other runs on the same account took every one-time-code window the run could use"
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }
