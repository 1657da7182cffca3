package site

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	smtpd "github.com/emersion/go-smtp"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/notify"
)

// inbox is a real SMTP server on loopback that keeps what it is sent.
type inbox struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	got  []inMail
}

type inMail struct {
	To         string
	Header     mail.Header
	Text, HTML string
}

func newInbox(t *testing.T) *inbox {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &inbox{t: t, addr: l.Addr().String()}
	s := smtpd.NewServer(in)
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return in
}

func (in *inbox) NewSession(*smtpd.Conn) (smtpd.Session, error) { return &inSession{in: in}, nil }

func (in *inbox) mails() []inMail {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]inMail(nil), in.got...)
}

type inSession struct {
	in *inbox
	to string
}

func (s *inSession) Reset()                                     {}
func (s *inSession) Logout() error                              { return nil }
func (s *inSession) Mail(string, *smtpd.MailOptions) error      { return nil }
func (s *inSession) Rcpt(to string, _ *smtpd.RcptOptions) error { s.to = to; return nil }
func (s *inSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	m := inMail{To: s.to, Header: msg.Header}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(p)
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			m.HTML = string(b)
		} else {
			m.Text = string(b)
		}
	}
	s.in.mu.Lock()
	s.in.got = append(s.in.got, m)
	s.in.mu.Unlock()
	return nil
}

type subEnv struct {
	f    *fixture
	srv  *httptest.Server
	in   *inbox
	subs *notify.Subscriptions
}

func newSubEnv(t *testing.T) *subEnv {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t)
	if err := f.site.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	in := newInbox(t)
	host, port, _ := net.SplitHostPort(in.addr)
	p, _ := strconv.Atoi(port)
	off := false
	relay, err := notify.NewRelay(notify.Options{Pool: f.pool, PageURL: testPage.URL, Now: f.clk.Now, Config: notify.Config{
		Email:    notify.EmailConfig{Host: host, Port: p, StartTLS: &off, From: "Example Status <status@example.com>"},
		Delivery: notify.DeliveryConfig{PollInterval: config.Dur(100 * time.Millisecond)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = relay.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	subs, err := notify.NewSubscriptions(notify.SubscriptionOptions{Pool: f.pool, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", f.site.Handler())
	h := f.site.SubscribeHandler(SubscribeOptions{Subscriptions: subs})
	mux.Handle("/subscribe", h)
	mux.Handle("/subscribe/", h)
	mux.Handle("/unsubscribe/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &subEnv{f: f, srv: srv, in: in, subs: subs}
}

func (e *subEnv) do(t *testing.T, method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// mailWait bounds the waits for the relay: generous for a loaded machine.
const mailWait = 60 * time.Second

var mailLink = regexp.MustCompile(`https://status\.example\.com(/(?:subscribe/confirm|unsubscribe)/[0-9a-f]{64})`)

func TestSubscribeConfirmMailUnsubscribeOverHTTP(t *testing.T) {
	t.Parallel()
	e := newSubEnv(t)
	ctx := context.Background()
	const addr = "reader@example.net"

	resp, home := e.do(t, "GET", "/", nil)
	if !strings.Contains(home, `href="/subscribe"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'none'") {
		t.Errorf("home: no subscribe link, or its CSP changed: %q", resp.Header.Get("Content-Security-Policy"))
	}
	resp, form := e.do(t, "GET", "/subscribe", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "unsafe-inline") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /subscribe: %d, CSP %q, Cache-Control %q", resp.StatusCode, csp, resp.Header.Get("Cache-Control"))
	}
	login := incidents.ComponentID("Login")
	for _, want := range []string{`<form method="post" action="/subscribe">`, `value="` + login + `"`, "Two-step authentication", `<link rel="stylesheet"`} {
		if !strings.Contains(form, want) {
			t.Errorf("the form lacks %q", want)
		}
	}
	if strings.Contains(form, "style=") || strings.Contains(form, "<script>") {
		t.Errorf("inline style or script on the form page")
	}

	// A browser POST from another site is refused.
	if resp, _ := e.do(t, "POST", "/subscribe", url.Values{"email": {"x@example.net"}}, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
	resp, page := e.do(t, "POST", "/subscribe", url.Values{"email": {"Reader@Example.NET"}, "component": {login}})
	if resp.StatusCode != 200 || !strings.Contains(page, "Check your inbox") || strings.Contains(strings.ToLower(page), addr) {
		t.Fatalf("POST /subscribe: %d\n%s", resp.StatusCode, page)
	}
	if resp, page := e.do(t, "POST", "/subscribe", url.Values{"email": {"not an address"}}); resp.StatusCode != 400 || !strings.Contains(page, "not an email address") {
		t.Errorf("a bad address: %d", resp.StatusCode)
	}

	waitFor(t, "the confirmation mail", mailWait, func() bool { return len(e.in.mails()) >= 1 })
	conf := e.in.mails()[0]
	m := mailLink.FindStringSubmatch(conf.Text)
	if conf.To != addr || m == nil || !strings.HasPrefix(m[1], "/subscribe/confirm/") {
		t.Fatalf("confirmation to %q:\n%s", conf.To, conf.Text)
	}
	// GET only asks (link scanners fetch links); the button confirms.
	if resp, page := e.do(t, "GET", m[1], nil); resp.StatusCode != 200 || !strings.Contains(page, `<form method="post">`) ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("GET confirm: %d\n%s", resp.StatusCode, page)
	}
	if resp, page := e.do(t, "POST", m[1], url.Values{}); resp.StatusCode != 200 || !strings.Contains(page, "You are subscribed") {
		t.Fatalf("POST confirm: %d\n%s", resp.StatusCode, page)
	}

	// An incident on another component is not mailed; one on Login is, once.
	e.f.clk.Set(t0.Add(time.Minute))
	if _, err := e.f.store.CreateIncident(ctx, incidents.NewIncident{Title: "API slow", Message: "Looking.", Actor: "person:ada@example.com",
		Components: []incidents.ComponentUpdate{{Component: "API", Status: incidents.DegradedPerformance}}}); err != nil {
		t.Fatal(err)
	}
	inc, err := e.f.store.CreateIncident(ctx, incidents.NewIncident{Title: "Login errors", Message: "We are looking into <failed> sign-ins.",
		Actor: "person:ada@example.com", Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.MajorOutage}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the update mail", mailWait, func() bool { return len(e.in.mails()) >= 2 })
	e.settled(t)
	ms := e.in.mails()
	if len(ms) != 2 {
		t.Fatalf("%d mails, want the confirmation and one update", len(ms))
	}
	up := ms[1]
	if !strings.Contains(up.Text, "We are looking into <failed> sign-ins.") || !strings.Contains(up.HTML, "&lt;failed&gt;") || !strings.Contains(up.Text, "UTC") {
		t.Errorf("update mail:\n%s\n%s", up.Text, up.HTML)
	}
	lu := mailLink.FindStringSubmatch(up.Header.Get("List-Unsubscribe"))
	if lu == nil || !strings.HasPrefix(lu[1], "/unsubscribe/") || up.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers: List-Unsubscribe %q, List-Unsubscribe-Post %q", up.Header.Get("List-Unsubscribe"), up.Header.Get("List-Unsubscribe-Post"))
	}

	// The mail provider's one-click POST (RFC 8058).
	if resp, page := e.do(t, "POST", lu[1], url.Values{"List-Unsubscribe": {"One-Click"}}); resp.StatusCode != 200 || !strings.Contains(page, "You are unsubscribed") {
		t.Fatalf("one-click unsubscribe: %d\n%s", resp.StatusCode, page)
	}
	if _, err := e.f.store.PostUpdate(ctx, inc.ID, incidents.Update{Status: incidents.StatusResolved, Message: "Fixed.", Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	e.settled(t)
	if n := len(e.in.mails()); n != 2 {
		t.Errorf("%d mails after unsubscribing, want still 2", n)
	}

	// The address is nowhere the public can read.
	if err := e.f.site.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	snap := e.f.site.Snapshot()
	for _, p := range snap.Paths() {
		if b, _ := snap.Body(p); bytes.Contains(bytes.ToLower(b), []byte("reader@")) {
			t.Errorf("%s shows a subscriber's address", p)
		}
	}
}

// settled waits until every public update has its email delivery and
// none is pending.
func (e *subEnv) settled(t *testing.T) {
	t.Helper()
	waitFor(t, "the relay to settle", mailWait, func() bool {
		var pending, missing int
		err := e.f.pool.QueryRow(context.Background(), `select
			(select count(*) from notify_deliveries where state = 'pending'),
			(select count(*) from outbox o where o.public and o.kind = 'update_posted' and not exists
				(select 1 from notify_deliveries d where d.outbox_id = o.id and d.channel = 'email'))`).Scan(&pending, &missing)
		return err == nil && pending == 0 && missing == 0
	})
}

func TestSubscribeIsRateLimitedPerClient(t *testing.T) {
	t.Parallel()
	e := newSubEnv(t)
	var codes []int
	for i := range notify.DefaultIPBurst + 1 {
		resp, page := e.do(t, "POST", "/subscribe", url.Values{"email": {"n" + strconv.Itoa(i) + "@example.net"}})
		codes = append(codes, resp.StatusCode)
		if strings.Contains(page, "@example.net") {
			t.Errorf("a page shows the address")
		}
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	if codes[len(codes)-1] != http.StatusTooManyRequests || codes[0] != http.StatusOK {
		t.Errorf("status codes %v, want 200s then 429", codes)
	}
}

func TestSubscribePagesWithoutEmail(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.site.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := f.site.SubscribeHandler(SubscribeOptions{})
	for _, c := range []struct {
		method, path string
		code         int
	}{{"GET", "/subscribe", 200}, {"POST", "/subscribe", 404}, {"PUT", "/subscribe", 405}, {"GET", "/subscribe/nope", 404}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, strings.NewReader("email=a%40example.com")))
		if rec.Code != c.code || rec.Header().Get("Content-Security-Policy") != subscribeCSP {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.code)
		}
	}
}
