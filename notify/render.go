package notify

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/candorhq/candor/incidents"
)

// Escape escapes text for Slack's mrkdwn: &, < and > are the only
// characters Slack treats as control characters.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

var (
	mdBold = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
	// A link's URL has no '|': Slack would read it as the end of the URL.
	mdLink = regexp.MustCompile(`\[([^\]\n]+)\]\((https?://[^)\s|]+)\)`)
)

// maxReply is how much of an update's text goes into one Slack message;
// the rest is on the status page.
const maxReply = 3000

// mrkdwn turns an update's markdown into Slack mrkdwn: escaped, with bold
// and links in Slack's syntax.
func mrkdwn(md string) string {
	s := Escape(strings.TrimSpace(md))
	s = mdLink.ReplaceAllStringFunc(s, func(m string) string {
		sub := mdLink.FindStringSubmatch(m)
		return "<" + sub[2] + "|" + strings.ReplaceAll(sub[1], "|", "¦") + ">"
	})
	s = mdBold.ReplaceAllString(s, "*$1*")
	if len(s) > maxReply {
		cut := maxReply
		for cut > 0 && (s[cut]&0xC0) == 0x80 {
			cut--
		}
		// Never cut inside a link (<url|text>) or an entity (&amp;).
		if i := strings.LastIndexByte(s[:cut], '<'); i >= 0 && strings.IndexByte(s[i:cut], '>') < 0 {
			cut = i
		}
		if i := strings.LastIndexByte(s[:cut], '&'); i >= 0 && strings.IndexByte(s[i:cut], ';') < 0 {
			cut = i
		}
		s = s[:cut] + "… (the rest is on the status page)"
	}
	return s
}

func words(s string) string { return strings.ReplaceAll(s, "_", " ") }

func title(s string) string {
	s = words(s)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var statusEmoji = map[incidents.Status]string{
	incidents.StatusInvestigating: ":red_circle:",
	incidents.StatusIdentified:    ":large_orange_circle:",
	incidents.StatusMonitoring:    ":large_yellow_circle:",
	incidents.StatusResolved:      ":white_check_mark:",
	incidents.StatusPostmortem:    ":memo:",
}

// classificationWords says what is known about security without claiming
// more than a person confirmed.
func classificationWords(inc incidents.Incident) string {
	switch inc.Classification {
	case incidents.Security:
		if inc.Confirmed {
			return "Security incident (confirmed)"
		}
		return "Suspected security incident"
	case incidents.NonSecurity:
		if inc.Confirmed {
			return "Not a security incident (confirmed)"
		}
		return "No indication of a security incident"
	default:
		return "Not yet determined"
	}
}

func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// incidentURL is the incident's public page.
func incidentURL(pageURL string, id int64) string {
	if pageURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/incidents/%d", pageURL, id)
}

// renderRoot is an incident's root message: title, status, classification,
// impact, affected components, start in UTC and the link to its page.
// With buttons (Slack interactivity configured), an open incident's
// on-call root has an Acknowledge button.
func renderRoot(inc incidents.Incident, pageURL string, oncall, buttons bool) (string, []slack.Block) {
	t := inc.Title
	if len([]rune(t)) > 140 {
		t = string([]rune(t)[:140]) + "…"
	}
	status := statusEmoji[inc.Status] + " " + title(string(inc.Status))
	if inc.Status == incidents.StatusResolved && !inc.ResolvedAt.IsZero() {
		status += " at " + utc(inc.ResolvedAt)
	}
	var comps []string
	for _, c := range inc.Components {
		if st, ok := inc.ComponentState[c]; ok {
			comps = append(comps, Escape(c)+": "+words(string(st)))
		} else {
			comps = append(comps, Escape(c))
		}
	}
	if len(comps) == 0 {
		comps = []string{"—"}
	}
	compText := strings.Join(comps, "\n")
	if len(compText) > 1900 {
		compText = compText[:1900] + "…"
	}
	field := func(name, value string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, "*"+name+"*\n"+value, false, false)
	}
	fields := []*slack.TextBlockObject{field("Status", status)}
	// The public hears of security only in the words a person published:
	// its root says no more than "no indication of a security incident"
	// (the policy's own words) or a person's "not a security incident", and
	// drops even that once the classification changes.
	if oncall || inc.Classification == incidents.NonSecurity {
		fields = append(fields, field("Classification", classificationWords(inc)))
	}
	fields = append(fields, field("Impact", title(string(inc.Impact))), field("Started", utc(inc.StartedAt)),
		field("Affected components", compText))
	if oncall && !inc.Public && inc.Status.Open() {
		fields = append(fields, field("Public", "Nothing published yet"))
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, t, true, false)),
		slack.NewSectionBlock(nil, fields, nil),
	}
	link := fmt.Sprintf("Incident #%d", inc.ID)
	if u := incidentURL(pageURL, inc.ID); u != "" {
		link = fmt.Sprintf("<%s|Incident #%d on the status page>", u, inc.ID)
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, link, false, false)))
	if oncall && buttons && inc.Status.Open() {
		ack := slack.NewButtonBlockElement(ActionAcknowledge, strconv.FormatInt(inc.ID, 10),
			slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", false, false))
		blocks = append(blocks, slack.NewActionBlock("candor_actions", ack))
	}
	text := fmt.Sprintf("%s [%s] %s", statusEmoji[inc.Status], words(string(inc.Status)), Escape(t))
	return text, blocks
}

// who names an actor for on-call; the public channel never shows who.
func who(actor string) string {
	a := strings.TrimPrefix(actor, "person:")
	if a == "system" || a == "" {
		return "Candor"
	}
	return Escape(a)
}

// renderReply is the thread reply an event gets in a channel, or "" when
// the event only changes the root.
func renderReply(d *delivery, pageURL string, oncall bool) string {
	e := d.Event
	inc := incidents.Incident{}
	if d.Incident != nil {
		inc = *d.Incident
	}
	extra := func(k string) string {
		s, _ := e.Extra[k].(string)
		return s
	}
	switch e.Kind {
	case incidents.KindUpdatePosted:
		msg := mrkdwn(extra("message"))
		status := e.To
		if status == "" {
			status = string(inc.Status)
		}
		if extra("visibility") == string(incidents.Internal) {
			if !oncall {
				return ""
			}
			return fmt.Sprintf(":lock: *Internal note* by %s:\n%s", who(e.Actor), msg)
		}
		head := "*" + title(status) + "*"
		if oncall {
			head += fmt.Sprintf(" (public update by %s)", who(e.Actor))
		}
		return head + "\n" + msg
	case incidents.KindStatusChanged:
		s := fmt.Sprintf("%s Status: *%s* → *%s*", statusEmoji[incidents.Status(e.To)], words(e.From), words(e.To))
		if oncall && e.Reason != "" {
			s += ": " + Escape(e.Reason)
		}
		return s
	case incidents.KindImpactChanged:
		return fmt.Sprintf("Impact: *%s* → *%s*", words(e.From), words(e.To))
	case incidents.KindNotePublished:
		s := "The post-incident note is published."
		if u := incidentURL(pageURL, inc.ID); u != "" {
			s = fmt.Sprintf("The post-incident note is published: <%s|read it>.", u)
		}
		return s
	}
	if !oncall {
		return ""
	}
	switch e.Kind {
	case incidents.KindDetected:
		var b strings.Builder
		fmt.Fprintf(&b, ":rotating_light: *Detected*: %s", Escape(e.Reason))
		if e.Step != "" {
			fmt.Fprintf(&b, "\nFailing step: `%s/%s`", Escape(e.Probe), Escape(e.Step))
			if e.Location != "" {
				fmt.Fprintf(&b, " in %s", Escape(e.Location))
			}
			if e.Class != "" {
				fmt.Fprintf(&b, " (%s)", words(e.Class))
			}
		}
		if e.Message != "" {
			fmt.Fprintf(&b, "\nError: %s", Escape(e.Message))
		}
		if len(e.Signals) > 0 {
			var ss []string
			for _, s := range e.Signals {
				ss = append(ss, words(string(s)))
			}
			fmt.Fprintf(&b, "\nSecurity signals: %s", Escape(strings.Join(ss, ", ")))
		}
		if p := extra("publication"); p != "" {
			fmt.Fprintf(&b, "\nPublication: %s", Escape(p))
		}
		return b.String()
	case incidents.KindCreated:
		return fmt.Sprintf(":rotating_light: *Opened* by %s.", who(e.Actor))
	case incidents.KindStepFailing:
		s := fmt.Sprintf(":warning: *Step failing*: `%s/%s`", Escape(e.Probe), Escape(e.Step))
		if e.Location != "" {
			s += " in " + Escape(e.Location)
		}
		if e.Message != "" {
			s += "\nError: " + Escape(e.Message)
		}
		return s
	case incidents.KindExtended:
		var parts []string
		if len(e.Components) > 0 {
			parts = append(parts, "components "+Escape(strings.Join(e.Components, ", ")))
		}
		if len(e.Locations) > 0 {
			parts = append(parts, "locations "+Escape(strings.Join(e.Locations, ", ")))
		}
		if len(e.Probes) > 0 {
			parts = append(parts, "probes "+Escape(strings.Join(e.Probes, ", ")))
		}
		if len(parts) == 0 {
			return ""
		}
		return "*Extended* to " + strings.Join(parts, "; ")
	case incidents.KindProbeRecovered:
		return fmt.Sprintf(":large_green_circle: `%s` passes again in every location", Escape(e.Probe))
	case incidents.KindClassificationChanged:
		s := fmt.Sprintf(":shield: Classification: *%s* → *%s*", words(e.From), words(e.To))
		if e.Confirmed {
			s += " by " + who(e.Actor)
		}
		if e.Reason != "" {
			s += ": " + Escape(e.Reason)
		}
		return s
	case incidents.KindRunbookAttached:
		if e.Runbook == nil {
			return ""
		}
		s := fmt.Sprintf(":book: *Runbook*: %s (`%s`)", Escape(e.Runbook.Title), Escape(e.Runbook.ID))
		if len(e.Runbook.Reasons) > 0 {
			s += ": " + Escape(strings.Join(e.Runbook.Reasons, "; "))
		}
		return s
	case incidents.KindReminderDue:
		return reminderText(e, inc)
	}
	return ""
}

// reminderText is the on-call nag: how long the public has heard nothing
// and what they last heard.
func reminderText(e incidents.Event, inc incidents.Incident) string {
	silent := inc.LastPublicAt
	if s, ok := e.Extra["silent_since"].(string); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			silent = t
		}
	}
	if silent.IsZero() {
		silent = inc.DetectedAt
	}
	for_ := humanDuration(e.At.Sub(silent))
	if c, ok := e.Extra["cadence"].(string); ok {
		if d, err := time.ParseDuration(c); err == nil && d > 0 && e.At.Sub(silent) < d+time.Minute {
			for_ = humanDuration(d)
		}
	}
	var last string
	if inc.Public && !inc.LastPublicAt.IsZero() {
		last = fmt.Sprintf("customers last heard from us at %s (%s ago)", utc(inc.LastPublicAt), humanDuration(e.At.Sub(inc.LastPublicAt)))
	} else {
		last = fmt.Sprintf("customers have heard nothing since it was detected at %s", utc(inc.DetectedAt))
	}
	return fmt.Sprintf(":alarm_clock: No public update for %s: %s. Post an update.", for_, last)
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d == time.Minute:
		return "1 minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	s := fmt.Sprintf("%d hour", h)
	if h > 1 {
		s += "s"
	}
	switch {
	case m == 1:
		s += " 1 minute"
	case m > 1:
		s += fmt.Sprintf(" %d minutes", m)
	}
	return s
}
