package notify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtpd "github.com/emersion/go-smtp"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/config"
)

// mailServer is a real SMTP server on loopback that records every message
// it accepts, and fails on demand.
type mailServer struct {
	t    *testing.T
	addr string

	failMail atomic.Int32 // answer 451 to MAIL FROM this many times
	failData atomic.Int32 // answer 554 after DATA this many times
	reject   atomic.Value // string: a recipient refused with 550
	password atomic.Value // string: when set, AUTH PLAIN as "status" with it is required

	mu   sync.Mutex
	srv  *smtpd.Server
	got  []gotMail
	down bool
}

type gotMail struct {
	From, To string
	Header   mail.Header
	Text     string
	HTML     string
	Raw      string
}

func newMailServer(t *testing.T) *mailServer {
	t.Helper()
	ms := &mailServer{t: t}
	ms.reject.Store("")
	ms.password.Store("")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = l.Addr().String()
	ms.serve(l)
	t.Cleanup(func() { ms.stop() })
	return ms
}

func (ms *mailServer) serve(l net.Listener) {
	s := smtpd.NewServer(ms)
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.ErrorLog = nopLogger{}
	s.AllowInsecureAuth = true // on loopback, as net/smtp allows too
	ms.mu.Lock()
	ms.srv, ms.down = s, false
	ms.mu.Unlock()
	go func() { _ = s.Serve(l) }()
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// stop closes the listener: connections are refused until start.
func (ms *mailServer) stop() {
	ms.mu.Lock()
	s := ms.srv
	ms.srv, ms.down = nil, true
	ms.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}

// start listens again on the same address.
func (ms *mailServer) start() {
	ms.t.Helper()
	var l net.Listener
	var err error
	if !poll(wait, func() bool { l, err = net.Listen("tcp", ms.addr); return err == nil }) {
		ms.t.Fatalf("listen again on %s: %v", ms.addr, err)
	}
	ms.serve(l)
}

func (ms *mailServer) host() (string, int) {
	h, p, _ := net.SplitHostPort(ms.addr)
	n := 0
	for _, c := range p {
		n = n*10 + int(c-'0')
	}
	return h, n
}

func (ms *mailServer) mails() []gotMail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]gotMail(nil), ms.got...)
}

func (ms *mailServer) mailsTo(addr string) []gotMail {
	var out []gotMail
	for _, m := range ms.mails() {
		if m.To == addr {
			out = append(out, m)
		}
	}
	return out
}

func (ms *mailServer) NewSession(*smtpd.Conn) (smtpd.Session, error) {
	return &mailSession{ms: ms}, nil
}

type mailSession struct {
	ms       *mailServer
	from, to string
	authed   bool
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if want := s.ms.password.Load().(string); want == "" || user != "status" || pass != want {
			return &smtpd.SMTPError{Code: 535, EnhancedCode: smtpd.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.authed = true
		return nil
	}), nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", "" }
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Mail(from string, _ *smtpd.MailOptions) error {
	if s.ms.password.Load().(string) != "" && !s.authed {
		return &smtpd.SMTPError{Code: 530, EnhancedCode: smtpd.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	if s.ms.failMail.Add(-1) >= 0 {
		return &smtpd.SMTPError{Code: 451, EnhancedCode: smtpd.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.from = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtpd.RcptOptions) error {
	if r := s.ms.reject.Load().(string); r != "" && r == to {
		return &smtpd.SMTPError{Code: 550, EnhancedCode: smtpd.EnhancedCode{5, 1, 1}, Message: "no such user " + to}
	}
	s.to = to
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.ms.failData.Add(-1) >= 0 {
		return &smtpd.SMTPError{Code: 554, EnhancedCode: smtpd.EnhancedCode{5, 3, 0}, Message: "transaction failed"}
	}
	m, err := parseMail(raw)
	if err != nil {
		s.ms.t.Errorf("unparseable mail: %v\n%s", err, raw)
		return err
	}
	m.From, m.To = s.from, s.to
	s.ms.mu.Lock()
	s.ms.got = append(s.ms.got, m)
	s.ms.mu.Unlock()
	return nil
}

// parseMail reads a multipart/alternative message as a mail client would.
func parseMail(raw []byte) (gotMail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return gotMail{}, err
	}
	g := gotMail{Header: msg.Header, Raw: string(raw)}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		return g, errors.New("not multipart/alternative: " + msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return g, err
		}
		body, err := io.ReadAll(p) // multipart decodes quoted-printable
		if err != nil {
			return g, err
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			g.Text = string(body)
		case "text/html":
			g.HTML = string(body)
		}
	}
	if g.Text == "" || g.HTML == "" {
		return g, errors.New("a part is missing")
	}
	return g, nil
}

func (e *env) emailConfig(ms *mailServer) Config {
	h, p := ms.host()
	off := false
	c := e.config()
	c.Slack = SlackConfig{}
	c.Email = EmailConfig{Host: h, Port: p, StartTLS: &off, From: "Example Status <status@example.com>", Timeout: config.Dur(10 * time.Second)}
	return c
}

func (e *env) subscriptions() *Subscriptions {
	s, err := NewSubscriptions(SubscriptionOptions{Pool: e.pool, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// confirmed signs addr up and confirms it at once, as its owner would
// with the link, so that no confirmation mail is sent.
func (e *env) confirmed(s *Subscriptions, addr string, comps ...string) string {
	e.t.Helper()
	ctx := context.Background()
	if err := s.Subscribe(ctx, addr, comps, ""); err != nil {
		e.t.Fatal(err)
	}
	var tok, unsub string
	if err := e.pool.QueryRow(ctx, `select confirm_token, unsubscribe_token from notify_email_subscribers where address = lower($1)`, addr).Scan(&tok, &unsub); err != nil {
		e.t.Fatal(err)
	}
	ok, err := s.Confirm(ctx, tok)
	if err != nil || !ok {
		e.t.Fatalf("confirm: %v %v", ok, err)
	}
	return unsub
}

// emailIdle waits until every outbox row has its email delivery (or is
// not for email) and none is pending.
func (e *env) emailIdle() {
	e.t.Helper()
	eventually(e.t, wait, "the relay to mail everything", func() bool {
		var pending, missing int
		err := e.pool.QueryRow(context.Background(), `select
			(select count(*) from notify_deliveries where state = 'pending'),
			(select count(*) from outbox o where o.public and o.kind = 'update_posted' and not exists
				(select 1 from notify_deliveries d where d.outbox_id = o.id and d.channel = 'email'))`).Scan(&pending, &missing)
		if err != nil {
			e.t.Fatal(err)
		}
		return pending == 0 && missing == 0
	})
}

var linkRE = regexp.MustCompile(`https://status\.example\.com/(subscribe/confirm|unsubscribe)/([0-9a-f]{64})`)

func TestEmailDoubleOptInUpdatesAndUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ms := newMailServer(t)
	r, _ := e.relay(func(o *Options) { o.Config = e.emailConfig(ms); o.Updates = e.store })
	subs := e.subscriptions()
	e.start(r)

	const addr = "reader@example.net"
	if err := subs.Subscribe(ctx, "  Reader@Example.NET ", nil, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	// Stored once, normalised: a second sign-up with other case is the same row.
	if err := subs.Subscribe(ctx, "reader@example.net", nil, "192.0.2.11"); err != nil {
		t.Fatal(err)
	}
	other := e.confirmed(subs, "2fa-only@example.net", "Two-step authentication")
	_ = other

	eventually(t, wait, "the confirmation mail", func() bool { return len(ms.mailsTo(addr)) >= 1 })
	conf := ms.mailsTo(addr)[0]
	if conf.Header.Get("List-Unsubscribe") != "" {
		t.Errorf("a confirmation mail carries List-Unsubscribe: nobody is subscribed yet")
	}
	contains(t, "confirmation subject", conf.Header.Get("Subject"), "Confirm")
	m := linkRE.FindStringSubmatch(conf.Text)
	if m == nil || m[1] != "subscribe/confirm" {
		t.Fatalf("no confirmation link in:\n%s", conf.Text)
	}
	contains(t, "confirmation html", conf.HTML, m[0])
	// Nothing is mailed before confirmation.
	id := e.openIncident()
	e.post(id, incidents.Update{Message: "Before confirmation."})
	ok, err := subs.Confirm(ctx, m[2])
	if err != nil || !ok {
		t.Fatalf("confirm: %v %v", ok, err)
	}
	if ok, _ := subs.Confirm(ctx, strings.Repeat("ab", 32)); ok {
		t.Error("an unknown token confirmed something")
	}

	e.post(id, incidents.Update{Status: incidents.StatusIdentified, Message: "We found the <b>cause</b> & fixed it.\n\nSecond paragraph."})
	e.post(id, incidents.Update{Message: "Internal: do not mail.", Visibility: incidents.Internal})
	eventually(t, wait, "the update mail", func() bool { return len(ms.mailsTo(addr)) >= 2 })
	e.emailIdle()
	got := ms.mailsTo(addr)
	if len(got) != 2 {
		t.Fatalf("%d mails to the subscriber, want the confirmation and one update", len(got))
	}
	up := got[1]
	contains(t, "subject", up.Header.Get("Subject"), "Identified")
	contains(t, "text", up.Text, "We found the <b>cause</b> & fixed it.", "UTC", "https://status.example.com/incidents/")
	contains(t, "html", up.HTML, "We found the &lt;b&gt;cause&lt;/b&gt; &amp; fixed it.", "UTC")
	if strings.Contains(up.Text+up.HTML, "Before confirmation") || strings.Contains(up.Text+up.HTML, "Internal") {
		t.Errorf("mailed what came before confirmation or an internal update:\n%s", up.Text)
	}
	lu := up.Header.Get("List-Unsubscribe")
	um := linkRE.FindStringSubmatch(lu)
	if um == nil || um[1] != "unsubscribe" || lu != "<"+um[0]+">" {
		t.Fatalf("List-Unsubscribe = %q", lu)
	}
	if got := up.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	contains(t, "text", up.Text, um[0])
	contains(t, "html", up.HTML, um[0])
	if up.Header.Get("Message-ID") == "" || up.Header.Get("Date") == "" {
		t.Errorf("headers: %v", up.Header)
	}
	// The subscriber of another component heard nothing of the login incident.
	if n := len(ms.mailsTo("2fa-only@example.net")); n != 0 {
		t.Errorf("a subscriber of another component got %d mails", n)
	}

	if err := subs.Unsubscribe(ctx, um[2]); err != nil {
		t.Fatal(err)
	}
	e.post(id, incidents.Update{Status: incidents.StatusResolved, Message: "Resolved."})
	e.emailIdle()
	if n := len(ms.mailsTo(addr)); n != 2 {
		t.Errorf("%d mails after unsubscribing, want still 2", n)
	}
	var left int
	if err := e.pool.QueryRow(ctx, `select count(*) from notify_email_subscribers where address = $1`, addr).Scan(&left); err != nil || left != 0 {
		t.Errorf("the address is still stored (%d, %v)", left, err)
	}
	if strings.Contains(e.logs.String(), "reader@") {
		t.Errorf("an address reached the log")
	}
}

func TestEmailSMTPFailuresThenRecoveryDeliverOnceInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ms := newMailServer(t)
	const addr = "ops@example.org"
	const refused = "gone@example.org"
	ms.reject.Store(refused)
	r, _ := e.relay(func(o *Options) { o.Config = e.emailConfig(ms) })
	subs := e.subscriptions()
	e.confirmed(subs, addr)
	e.confirmed(subs, refused)
	ms.stop() // connection refused
	e.start(r)

	id := e.openIncident()
	for _, msg := range []string{"one", "two", "three"} {
		e.post(id, incidents.Update{Message: "Update " + msg + "."})
	}
	eventually(t, wait, "attempts against a server that refuses connections", func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `select coalesce(max(attempts), 0) from notify_deliveries where channel = 'email'`).Scan(&n)
		return n >= 2
	})
	ms.failMail.Store(2) // then 451 twice
	ms.failData.Store(1) // then 554 once
	ms.start()
	if !poll(wait, func() bool { return len(ms.mailsTo(addr)) >= 4 }) {
		ds, _ := r.Deliveries(ctx, DeliveryFilter{})
		t.Fatalf("timed out waiting for four mails: %d\n%+v\n%s", len(ms.mailsTo(addr)), ds, e.logs.String())
	}
	e.emailIdle()
	// The detector's first public update, then the three.
	var want int
	if err := e.pool.QueryRow(ctx, `select count(*) from outbox where public and kind = 'update_posted'`).Scan(&want); err != nil || want != 4 {
		t.Fatalf("%d public updates (%v), want 4", want, err)
	}
	got := ms.mailsTo(addr)
	if len(got) != want {
		t.Fatalf("%d mails, want %d", len(got), want)
	}
	for i, w := range []string{"one", "two", "three"} {
		contains(t, "mail", got[i+1].Text, "Update "+w+".")
	}
	if ms.failMail.Load() > 0 || ms.failData.Load() > 0 {
		t.Errorf("the failures were not all met: %d %d", ms.failMail.Load(), ms.failData.Load())
	}
	var delivered, rejected int
	if err := e.pool.QueryRow(ctx, `select count(*) filter (where d.state = 'delivered'), (select count(*) from notify_email_sends where outcome = 'rejected')
		from notify_deliveries d where d.channel = 'email'`).Scan(&delivered, &rejected); err != nil {
		t.Fatal(err)
	}
	if delivered != want || rejected != want {
		t.Errorf("delivered %d, rejected %d; want %d and %d", delivered, rejected, want, want)
	}
	ds, err := r.Deliveries(ctx, DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if strings.Contains(d.LastError, "@example.org") || strings.Contains(d.LastError, "gone") {
			t.Errorf("a delivery's error names an address: %q", d.LastError)
		}
	}
	if l := e.logs.String(); strings.Contains(l, "@example.org") || strings.Contains(l, "gone@") {
		t.Errorf("an address reached the log:\n%s", l)
	}
}

func TestEmailSecurityIncidentOnlyOncePublic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ms := newMailServer(t)
	r, _ := e.relay(func(o *Options) { o.Config = e.emailConfig(ms) })
	e.confirmed(e.subscriptions(), "sec@example.org")
	e.start(r)
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Suspicious sign-ins", Message: "Investigating internally.",
		Visibility: incidents.Internal, Classification: incidents.Security, Actor: "person:ada@example.com",
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.DegradedPerformance}}})
	if err != nil {
		t.Fatal(err)
	}
	e.post(inc.ID, incidents.Update{Message: "Still internal.", Visibility: incidents.Internal})
	e.emailIdle()
	if n := len(ms.mails()); n != 0 {
		t.Fatalf("%d mails about an unpublished security incident", n)
	}
	e.post(inc.ID, incidents.Update{Message: "We are investigating unusual sign-ins."})
	eventually(t, wait, "the published update", func() bool { return len(ms.mails()) >= 1 })
	e.emailIdle()
	got := ms.mails()
	if len(got) != 1 || strings.Contains(got[0].Text, "internal") {
		t.Fatalf("%d mails: %q", len(got), got[0].Text)
	}
}

func TestSignUpRateLimitsAndAddresses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	subs := e.subscriptions()
	for _, bad := range []string{"", "no-at", "a@b", "Name <a@example.com>", "a@example.com\r\nBcc: x@example.com", "a b@example.com", "a@example.com."} {
		if err := subs.Subscribe(ctx, bad, nil, "198.51.100.1"); !errors.Is(err, ErrBadAddress) {
			t.Errorf("Subscribe(%q) = %v, want ErrBadAddress", bad, err)
		}
	}
	// Per client IP: a burst of 5, then refused.
	for i := range 6 {
		err := subs.Subscribe(ctx, "ip"+string(rune('a'+i))+"@example.com", nil, "203.0.113.7")
		if want := i < DefaultIPBurst; (err == nil) != want {
			t.Errorf("sign-up %d from one IP: %v", i+1, err)
		}
	}
	// Per address, whatever the IP: a burst of 2.
	for i := range 3 {
		err := subs.Subscribe(ctx, "Same@Example.com", nil, "203.0.113."+string(rune('1'+i)))
		if want := i < DefaultAddressBurst; (err == nil) != want {
			t.Errorf("sign-up %d of one address: %v", i+1, err)
		}
	}
	var n int
	if err := e.pool.QueryRow(ctx, `select count(*) from notify_email_subscribers where address = 'same@example.com'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the address is stored %d times (%v)", n, err)
	}
}

func TestComposeMailEscapesAndKeepsHeadersOnOneLine(t *testing.T) {
	r := &Relay{pageURL: "https://status.example.com", now: time.Now}
	from, _ := mail.ParseAddress("Status <status@example.com>")
	m := mailContent{Subject: "Login <script>\r\nBcc: victim@example.com", Heading: `<img src=x onerror="alert(1)">`,
		Lines: []string{"Status: <b>x</b>"}, Body: "</p><script>alert(1)</script>\n\nÜnïcode & more", Link: "https://status.example.com/incidents/1",
		LinkLabel: "Follow", Footer: "Footer"}
	raw := r.composeMail(from, recipient{id: 1, addr: "a@example.com", token: strings.Repeat("0", 64)}, m, "t1")
	g, err := parseMail(raw)
	if err != nil {
		t.Fatal(err)
	}
	if g.Header.Get("Bcc") != "" || strings.Contains(string(raw), "\nBcc:") {
		t.Errorf("header injection:\n%s", raw)
	}
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(g.Header.Get("Subject"))
	if err != nil || !strings.Contains(subj, "Login <script>") {
		t.Errorf("subject %q (%v)", subj, err)
	}
	for _, bad := range []string{"<script>", "<img", "<b>x"} {
		if strings.Contains(g.HTML, bad) {
			t.Errorf("html contains %q:\n%s", bad, g.HTML)
		}
	}
	contains(t, "html", g.HTML, "&lt;script&gt;", "Ünïcode &amp; more", "&lt;img src=x")
	contains(t, "text", g.Text, "</p><script>alert(1)</script>", "Ünïcode & more")
}

func TestEmailBadCredentialsOrNoSTARTTLSHoldDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ms := newMailServer(t)
	const password = "s3cret-smtp-pass"
	ms.password.Store(password)
	subs := e.subscriptions()
	e.confirmed(subs, "held@example.org")
	if err := subs.Subscribe(ctx, "pending@example.org", nil, ""); err != nil { // a confirmation mail to send
		t.Fatal(err)
	}
	id := e.openIncident()
	e.post(id, incidents.Update{Message: "Held, then sent."})

	for _, c := range []struct {
		name     string
		mut      func(*EmailConfig)
		wantHeld string
	}{
		{"wrong password", func(c *EmailConfig) { c.Username, c.Password = "status", config.NewSecret("wrong-pass") }, "authentication refused"},
		{"no STARTTLS", func(c *EmailConfig) { on := true; c.StartTLS = &on }, "STARTTLS"},
	} {
		r, _ := e.relay(func(o *Options) { o.Config = e.emailConfig(ms); c.mut(&o.Config.Email) })
		stop := e.start(r)
		eventually(t, wait, c.name+" reported in Health", func() bool { return strings.Contains(r.Health()[EmailChannel], c.wantHeld) })
		stop()
		var attempts, confirmAttempts int
		if err := e.pool.QueryRow(ctx, `select coalesce(max(attempts), 0), (select confirm_attempts from notify_email_subscribers where address = 'pending@example.org')
			from notify_deliveries where channel = 'email'`).Scan(&attempts, &confirmAttempts); err != nil || attempts != 0 || confirmAttempts != 0 {
			t.Errorf("%s: held, yet charged %d delivery and %d confirmation attempts (%v)", c.name, attempts, confirmAttempts, err)
		}
		// The next relay (the fixed configuration) must not wait out this one's hold.
		if _, err := e.pool.Exec(ctx, `update notify_deliveries set next_attempt_at = now() where state = 'pending'`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, `update notify_email_subscribers set confirm_due_at = now() where confirm_due_at is not null`); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(ms.mails()); n != 0 {
		t.Fatalf("%d mails sent without credentials", n)
	}
	r, _ := e.relay(func(o *Options) {
		o.Config = e.emailConfig(ms)
		o.Config.Email.Username, o.Config.Email.Password = "status", config.NewSecret(password)
	})
	e.start(r)
	eventually(t, wait, "the mails once the password is right", func() bool {
		return len(ms.mailsTo("held@example.org")) >= 2 && len(ms.mailsTo("pending@example.org")) == 1
	})
	e.emailIdle()
	if strings.Contains(e.logs.String(), password) || strings.Contains(e.logs.String(), "wrong-pass") {
		t.Errorf("a password reached the log")
	}
}

func TestEmailConfigCheck(t *testing.T) {
	env := map[string]string{"SMTP_PASSWORD": "smtp-secret-1"}
	for _, c := range []struct {
		yaml string
		want string
	}{
		{"notify:\n  email:\n    host: smtp.example.com\n", "both host and from"},
		{"notify:\n  email:\n    host: smtp.example.com:587\n    from: status@example.com\n", "without port"},
		{"notify:\n  email:\n    host: smtp.example.com\n    from: not an address\n", "not an email address"},
		{"notify:\n  email:\n    host: smtp.example.com\n    from: a@example.com\n    username: u\n", "no password"},
		{"notify:\n  email:\n    host: smtp.example.com\n    from: a@example.com\n    startls: true\n", "startls"},
		{`notify:
  email:
    host: smtp.example.com
    port: 587
    starttls: false
    username: status@example.com
    password: ${SMTP_PASSWORD}
    from: "Example Status <status@example.com>"
    timeout: 20s
`, ""},
	} {
		src, err := config.Parse("candor.yaml", []byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		ck := config.NewChecker(src, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		var cfg Config
		if ck.Decode("$.notify", &cfg) {
			Check(ck, "$.notify", &cfg)
		}
		got := ck.Err()
		if c.want == "" {
			if got != nil || cfg.Email.StartTLS == nil || *cfg.Email.StartTLS || cfg.Email.Password.Reveal() != "smtp-secret-1" {
				t.Errorf("%s: %v %+v", c.yaml, got, cfg.Email)
			}
			continue
		}
		if got == nil || !strings.Contains(got.Error(), c.want) || strings.Contains(got.Error(), "smtp-secret-1") {
			t.Errorf("%s: %v, want %q", c.yaml, got, c.want)
		}
	}
}

// TestEmailManySubscribersAcrossClaims: a delivery to more subscribers than
// one claim takes goes out in several claims, once to each, no attempt or
// failure charged.
func TestEmailManySubscribersAcrossClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ms := newMailServer(t)
	r, reg := e.relay(func(o *Options) { o.Config = e.emailConfig(ms) })
	for _, ch := range r.channels {
		if ed, ok := ch.(*emailDest); ok {
			ed.perClaim = 2
		}
	}
	subs := e.subscriptions()
	var addrs []string
	for i := range 7 {
		a := "many" + strconv.Itoa(i) + "@example.org"
		addrs = append(addrs, a)
		e.confirmed(subs, a)
	}
	e.start(r)
	id := e.openIncident()
	e.post(id, incidents.Update{Message: "To everyone."})
	e.emailIdle()
	for _, a := range addrs {
		got := ms.mailsTo(a)
		if len(got) != 2 { // the detector's first public update, and this one
			t.Errorf("%s got %d mails, want 2", a, len(got))
		}
	}
	var attempts int
	if err := e.pool.QueryRow(ctx, `select coalesce(max(attempts), 0) from notify_deliveries where channel = 'email'`).Scan(&attempts); err != nil || attempts != 0 {
		t.Errorf("attempts %d (%v)", attempts, err)
	}
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() == "candor_notify_failed_total" {
			for _, m := range f.GetMetric() {
				if v := m.GetCounter().GetValue(); v != 0 {
					t.Errorf("failed_total %v = %v", m.GetLabel(), v)
				}
			}
		}
	}
}
