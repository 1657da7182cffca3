package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/candorhq/candor/internal/config"
)

// EmailChannel is the one channel of email subscribers: a delivery per
// public update, sent to every confirmed subscriber it concerns.
const EmailChannel = "email"

// Defaults of the email section.
const (
	DefaultSMTPPort    = 587
	DefaultSMTPTimeout = 30 * time.Second
)

// EmailConfig is the notify.email: section. Email is on when host and from
// are set.
//
//	notify:
//	  email:
//	    host: smtp.example.com
//	    port: 587                         # default 587
//	    starttls: true                    # default true: refuse a server without STARTTLS
//	    username: status@example.com      # optional: AUTH PLAIN, over TLS only (or loopback)
//	    password: ${SMTP_PASSWORD}
//	    from: "Example Status <status@example.com>"
//	    timeout: 30s                      # per SMTP command
type EmailConfig struct {
	Host     string          `yaml:"host"`
	Port     int             `yaml:"port"`
	StartTLS *bool           `yaml:"starttls"`
	Username string          `yaml:"username"`
	Password config.Secret   `yaml:"password"`
	From     string          `yaml:"from"`
	Timeout  config.Duration `yaml:"timeout"`
}

// Enabled reports whether email is configured.
func (e EmailConfig) Enabled() bool {
	return strings.TrimSpace(e.Host) != "" && strings.TrimSpace(e.From) != ""
}

func (e EmailConfig) withDefaults() EmailConfig {
	if e.Port <= 0 {
		e.Port = DefaultSMTPPort
	}
	if e.StartTLS == nil {
		t := true
		e.StartTLS = &t
	}
	e.Timeout = config.Dur(e.Timeout.Or(DefaultSMTPTimeout))
	return e
}

// checkEmail reports the problems of the email section at path.
func checkEmail(c *config.Checker, path string, e EmailConfig) {
	if !e.Enabled() {
		if e.Host != "" || e.From != "" || e.Username != "" || e.Password.IsSet() {
			c.Errorf(path, "email needs both host and from (for example from: \"Status <status@example.com>\")")
		}
		return
	}
	if strings.ContainsAny(e.Host, " /:@") {
		c.Errorf(path+".host", "host %q must be a host name or address, without port or scheme", e.Host)
	}
	if e.Port < 0 || e.Port > 65535 {
		c.Errorf(path+".port", "port %d is not a TCP port", e.Port)
	}
	if a, err := mail.ParseAddress(e.From); err != nil || strings.ContainsAny(e.From, "\r\n") || a.Address == "" {
		c.Errorf(path+".from", "from %q is not an email address such as \"Status <status@example.com>\"", e.From)
	}
	if e.Username != "" && !e.Password.IsSet() {
		c.Errorf(path+".password", "username is set but no password (for example ${SMTP_PASSWORD})")
	}
}

// smtpSender sends mail through the configured server.
type smtpSender struct {
	cfg  EmailConfig
	from *mail.Address
}

func newSMTPSender(cfg EmailConfig) (*smtpSender, error) {
	cfg = cfg.withDefaults()
	from, err := mail.ParseAddress(cfg.From)
	if err != nil || strings.ContainsAny(cfg.From, "\r\n") {
		return nil, fmt.Errorf("notify: email from %q is not an address", cfg.From)
	}
	return &smtpSender{cfg: cfg, from: from}, nil
}

// smtpSession is one connection to the server, for several messages.
type smtpSession struct {
	s    *smtpSender
	conn net.Conn
	c    *smtp.Client
}

// dial connects, says hello, starts TLS and authenticates.
func (s *smtpSender) dial(ctx context.Context) (*smtpSession, error) {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	d := &net.Dialer{Timeout: s.cfg.Timeout.D}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(s.cfg.Timeout.D))
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("smtp: greeting: %w", err)
	}
	ss := &smtpSession{s: s, conn: conn, c: c}
	if err := c.Hello(helloName(s.from.Address)); err != nil {
		ss.close()
		return nil, fmt.Errorf("smtp: hello: %w", err)
	}
	if *s.cfg.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			ss.close()
			return nil, &heldError{err: errors.New("smtp: the server does not offer STARTTLS (set notify.email.starttls: false to send in clear)")}
		}
		if err := c.StartTLS(&tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12}); err != nil {
			ss.close()
			return nil, fmt.Errorf("smtp: starttls: %w", err)
		}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password.Reveal(), s.cfg.Host)); err != nil {
			ss.close()
			var te *textproto.Error
			if errors.As(err, &te) && te.Code == 535 {
				// Wrong credentials: every message would fail the same way.
				return nil, &heldError{err: fmt.Errorf("smtp: authentication refused: %d", te.Code)}
			}
			return nil, fmt.Errorf("smtp: auth: %s", scrubSecret(err.Error(), s.cfg.Password.Reveal()))
		}
	}
	return ss, nil
}

func helloName(from string) string {
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		return from[i+1:]
	}
	return "localhost"
}

func scrubSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[secret]")
}

// errRecipientRejected: the server refused this recipient for good.
type errRecipientRejected struct{ err error }

func (e *errRecipientRejected) Error() string { return e.err.Error() }
func (e *errRecipientRejected) Unwrap() error { return e.err }

// send transmits one message. A 5xx to RCPT TO is errRecipientRejected
// (the session stays usable); any other failure ends the session.
func (ss *smtpSession) send(to string, msg []byte) error {
	_ = ss.conn.SetDeadline(time.Now().Add(ss.s.cfg.Timeout.D))
	if err := ss.c.Mail(ss.s.from.Address); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := ss.c.Rcpt(to); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 500 {
			if rerr := ss.c.Reset(); rerr != nil {
				return fmt.Errorf("smtp: RSET: %w", rerr)
			}
			return &errRecipientRejected{err: fmt.Errorf("smtp: recipient refused: %d %s", te.Code, redactAddress(te.Msg, to))}
		}
		return fmt.Errorf("smtp: RCPT TO: %s", redactAddress(err.Error(), to))
	}
	w, err := ss.c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: message refused: %s", redactAddress(err.Error(), to))
	}
	return nil
}

func (ss *smtpSession) close() {
	if ss.c != nil {
		_ = ss.c.Quit()
		_ = ss.c.Close()
	}
}

// redactAddress keeps an address out of errors, which reach logs and the
// console.
func redactAddress(s, addr string) string {
	if addr == "" {
		return s
	}
	s = strings.ReplaceAll(s, addr, "<subscriber>")
	if i := strings.IndexByte(addr, '@'); i > 0 {
		s = strings.ReplaceAll(s, addr[:i], "<subscriber>")
	}
	return s
}

// emailDest is the email channel.
type emailDest struct {
	r        *Relay
	s        *smtpSender
	perClaim int // subscribers one claim sends to at most (0: emailPerClaim)
}

// emailPerClaim bounds the subscribers one claim sends to; the rest get
// the next claim of the same delivery, at once.
const emailPerClaim = 200

func (e *emailDest) name() string { return EmailChannel }

// filter: public updates of public incidents, nothing else (an unpublished
// security incident is never mailed, its first public update is).
func (e *emailDest) filter() string {
	return `o.public and o.kind = 'update_posted' and coalesce((o.payload->'incident'->>'public')::boolean, false)`
}

// errMoreRecipients: the delivery's time budget ran out with subscribers
// left; it is claimed again at once, no attempt charged.
var errMoreRecipients = errors.New("email: more subscribers to send to")

// emailBudget bounds one claim's sending, below batchBudget, so that the
// claim's transaction never stays open long.
const emailBudget = 4 * time.Second

type recipient struct {
	id    int64
	addr  string
	token string
}

func (e *emailDest) limit() int {
	if e.perClaim > 0 {
		return e.perClaim
	}
	return emailPerClaim
}

func (e *emailDest) deliver(ctx context.Context, d *delivery) error {
	if d.Incident == nil {
		return nil
	}
	comps := d.Incident.Components
	if comps == nil {
		comps = []string{}
	}
	rows, err := e.r.pool.Query(ctx, `
		select s.id, s.address, s.unsubscribe_token from notify_email_subscribers s
		where s.state = 'confirmed' and s.confirmed_at <= $2
		  and (s.components = '{}' or s.components && $3::text[])
		  and not exists (select 1 from notify_email_sends x where x.delivery_id = $1 and x.subscriber_id = s.id)
		order by s.id limit $4`, d.ID, d.CreatedAt, comps, e.limit())
	if err != nil {
		return fmt.Errorf("email: subscribers: %w", err)
	}
	rcs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (recipient, error) {
		var rc recipient
		err := row.Scan(&rc.id, &rc.addr, &rc.token)
		return rc, err
	})
	if err != nil {
		return fmt.Errorf("email: subscribers: %w", err)
	}
	if len(rcs) == 0 {
		return nil
	}
	m := e.r.updateMail(d)
	start := time.Now()
	ss, err := e.s.dial(ctx)
	if err != nil {
		return err
	}
	defer ss.close()
	for _, rc := range rcs {
		if time.Since(start) > emailBudget {
			return errMoreRecipients
		}
		msg := e.r.composeMail(e.s.from, rc, m, fmt.Sprintf("d%d.s%d", d.ID, rc.id))
		outcome := "sent"
		if err := ss.send(rc.addr, msg); err != nil {
			var rej *errRecipientRejected
			if !errors.As(err, &rej) {
				return err
			}
			outcome = "rejected"
			e.r.log.Warn("notify: the mail server refused a subscriber", "subscriber", rc.id, "delivery", d.ID, "err", err)
		}
		if _, err := e.r.pool.Exec(ctx, `insert into notify_email_sends (delivery_id, subscriber_id, outcome, sent_at) values ($1, $2, $3, $4)
			on conflict do nothing`, d.ID, rc.id, outcome, e.r.utcNow()); err != nil {
			return fmt.Errorf("email: record: %w", err)
		}
	}
	if len(rcs) == e.limit() {
		return errMoreRecipients
	}
	return nil
}

// mailContent is a message's text, the same for every recipient.
type mailContent struct {
	Subject   string
	Heading   string
	Lines     []string // facts: status, components, time
	Body      string   // the update as written (plain text)
	Link      string
	LinkLabel string
	Footer    string
}

func (r *Relay) updateMail(d *delivery) mailContent {
	inc := d.Incident
	msg, _ := d.Event.Extra["message"].(string)
	status := capWords(string(inc.Status))
	m := mailContent{
		Subject:   oneLine(fmt.Sprintf("%s: %s", inc.Title, status)),
		Heading:   oneLine(inc.Title),
		Body:      msg,
		Link:      incidentURL(r.pageURL, inc.ID),
		LinkLabel: "Follow the incident on the status page",
		Footer:    "You get this because you subscribed to updates from " + r.pageURL + ".",
	}
	m.Lines = append(m.Lines, "Status: "+status)
	if len(inc.Components) > 0 {
		m.Lines = append(m.Lines, "Affected: "+strings.Join(inc.Components, ", "))
	}
	m.Lines = append(m.Lines, "Posted: "+d.Event.At.UTC().Format("2 Jan 2006 15:04 UTC"))
	if !inc.StartedAt.IsZero() {
		m.Lines = append(m.Lines, "Started: "+inc.StartedAt.UTC().Format("2 Jan 2006 15:04 UTC"))
	}
	return m
}

// capWords turns a status into words with a capital: "identified" → "Identified".
func capWords(s string) string {
	s = words(s)
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var mailHTML = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.M.Subject}}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #1a1a1a; max-width: 40em;">
<h1 style="font-size: 1.3em;">{{.M.Heading}}</h1>
<ul>{{range .M.Lines}}<li>{{.}}</li>{{end}}</ul>
{{range .Paragraphs}}<p>{{range $i, $l := .}}{{if $i}}<br>{{end}}{{$l}}{{end}}</p>
{{end}}{{if .M.Link}}<p><a href="{{.M.Link}}">{{.M.LinkLabel}}</a></p>{{end}}
<hr>
<p style="font-size: 0.9em; color: #555;">{{.M.Footer}}{{if .Unsubscribe}} <a href="{{.Unsubscribe}}">Unsubscribe</a>{{end}}</p>
</body></html>
`))

// paragraphs splits text at blank lines, and each paragraph into lines.
func paragraphs(s string) [][]string {
	var out [][]string
	for _, p := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.Split(p, "\n"))
		}
	}
	return out
}

func unsubscribeURL(pageURL, token string) string { return pageURL + "/unsubscribe/" + token }

// composeMail renders one recipient's message: headers (with RFC 8058
// one-click unsubscribe when rc has a token) and a multipart/alternative
// body, plain text then HTML, both quoted-printable.
func (r *Relay) composeMail(from *mail.Address, rc recipient, m mailContent, id string) []byte {
	m.Subject, m.Heading = oneLine(m.Subject), oneLine(m.Heading)
	unsub := ""
	if rc.token != "" {
		unsub = unsubscribeURL(r.pageURL, rc.token)
	}
	var text strings.Builder
	text.WriteString(m.Heading + "\n\n")
	for _, l := range m.Lines {
		text.WriteString(l + "\n")
	}
	if m.Body != "" {
		text.WriteString("\n" + strings.TrimSpace(m.Body) + "\n")
	}
	if m.Link != "" {
		text.WriteString("\n" + m.LinkLabel + ": " + m.Link + "\n")
	}
	text.WriteString("\n-- \n" + m.Footer + "\n")
	if unsub != "" {
		text.WriteString("Unsubscribe: " + unsub + "\n")
	}
	var html bytes.Buffer
	_ = mailHTML.Execute(&html, map[string]any{"M": m, "Paragraphs": paragraphs(m.Body), "Unsubscribe": unsub})

	var b [12]byte
	_, _ = rand.Read(b[:])
	boundary := "candor-" + hex.EncodeToString(b[:])
	var out bytes.Buffer
	hdr := func(k, v string) { out.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from.String())
	hdr("To", "<"+rc.addr+">")
	hdr("Subject", mime.QEncoding.Encode("utf-8", oneLine(m.Subject)))
	hdr("Date", r.utcNow().Format(time.RFC1123Z))
	hdr("Message-ID", "<candor."+id+"@"+helloName(from.Address)+">")
	hdr("MIME-Version", "1.0")
	hdr("Auto-Submitted", "auto-generated")
	if unsub != "" {
		hdr("List-Unsubscribe", "<"+unsub+">")
		hdr("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	hdr("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	out.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{{"text/plain", text.String()}, {"text/html", html.String()}} {
		out.WriteString("--" + boundary + "\r\n")
		hdr("Content-Type", part.ctype+"; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		out.WriteString("\r\n")
		qp := quotedprintable.NewWriter(&out)
		_, _ = qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(part.body, "\r\n", "\n"), "\n", "\r\n")))
		_ = qp.Close()
		out.WriteString("\r\n")
	}
	out.WriteString("--" + boundary + "--\r\n")
	return out.Bytes()
}

// oneLine keeps header text on one line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' || r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200])
	}
	return s
}
