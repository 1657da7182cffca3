package console

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/pgtest"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/runbooks"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	t      *testing.T
	public http.Handler // what serves paths outside /admin and /api/v1, if anything
	pool   *pgxpool.Pool
	store  *incidents.Store
	c      *Console
	srv    *httptest.Server
	clk    *clock
}

const testPageID = "p4g3id"

var testComponents = []incidents.Component{
	{Name: "Login", Group: "Sign-in", Probes: []string{"login"}, Steps: []string{"login_page", "password"}},
	{Name: "Two-step authentication", Group: "Sign-in", Steps: []string{"totp_page", "totp"}},
}

func newEnv(t *testing.T, opts ...func(*Options)) *env {
	t.Helper()
	t.Parallel()
	pool := pgtest.New(t)
	// Real time, moved to 5 s into a TOTP step so that a test's own steps
	// are predictable; enrolment links made by AddUser use the real clock.
	now := time.Now().UTC().Truncate(30 * time.Second).Add(5 * time.Second)
	clk := &clock{t: now}
	store := incidents.NewStore(pool, incidents.Config{Components: testComponents}, incidents.Options{Now: clk.Now})
	if err := store.SyncComponents(context.Background()); err != nil {
		t.Fatal(err)
	}
	rbs, err := runbooks.Load("")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pool: pool, store: store, clk: clk}
	var h http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.public != nil && !strings.HasPrefix(r.URL.Path, "/admin/") && !strings.HasPrefix(r.URL.Path, "/api/v1/") {
			e.public.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	o := Options{Pool: pool, Incidents: store, Runbooks: rbs, BaseURL: e.srv.URL, PageID: testPageID,
		Probes: probes.NewStore(pool), Now: clk.Now}
	for _, f := range opts {
		f(&o)
	}
	e.c, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	h = e.c.Handler()
	return e
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each step.
type browser struct {
	e  *env
	cl *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, cl: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) resp {
	b.e.t.Helper()
	res, err := b.cl.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: string(body), location: res.Header.Get("Location"), header: res.Header}
}

func (b *browser) get(path string) resp {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) resp {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit gets the page at page, takes its CSRF token and posts form to path.
func (b *browser) submit(page, path string, form url.Values) resp {
	b.e.t.Helper()
	r := b.get(page)
	tok := csrfOf(r.body)
	if tok == "" {
		b.e.t.Fatalf("GET %s: %d, no CSRF token in the page:\n%s", page, r.status, r.body)
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", tok)
	return b.post(path, form)
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.cl.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var (
	csrfRE     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	secretRE   = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)
	recoveryRE = regexp.MustCompile(`<code class="recovery-code">([a-z2-7-]+)</code>`)
)

func csrfOf(body string) string {
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// code is the TOTP code of secret at the clock's time plus offset steps.
func (e *env) code(secret string, steps int) string {
	e.t.Helper()
	c, err := totp.GenerateCodeCustom(secret, e.clk.Now().Add(time.Duration(steps)*30*time.Second),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

type operator struct {
	email, password, secret string
	recovery                []string
}

const testPassword = "correct horse battery staple"

// enrol adds an operator with AddUser and enrols them through the pages,
// as a person would; the browser is signed in afterwards.
func (e *env) enrol(b *browser, email string, role Role) operator {
	e.t.Helper()
	link, err := AddUser(context.Background(), e.pool, email, string(role), e.srv.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	path := strings.TrimPrefix(link, e.srv.URL)
	page := b.get(path)
	if page.status != 200 {
		e.t.Fatalf("GET %s: %d\n%s", path, page.status, page.body)
	}
	m := secretRE.FindStringSubmatch(page.body)
	if m == nil {
		e.t.Fatalf("no secret on the enrolment page:\n%s", page.body)
	}
	op := operator{email: email, password: testPassword, secret: m[1]}
	r := b.post(path, url.Values{"csrf": {csrfOf(page.body)}, "password": {op.password}, "password_again": {op.password}, "code": {e.code(op.secret, 0)}})
	if r.status != 200 {
		e.t.Fatalf("enrol: %d\n%s", r.status, r.body)
	}
	for _, m := range recoveryRE.FindAllStringSubmatch(r.body, -1) {
		op.recovery = append(op.recovery, m[1])
	}
	if len(op.recovery) != recoveryCodes {
		e.t.Fatalf("enrol: got %d recovery codes, want %d", len(op.recovery), recoveryCodes)
	}
	return op
}

// password posts the first step and returns the answer.
func (b *browser) password(email, password string) resp {
	b.e.t.Helper()
	return b.submit("/admin/login", "/admin/login", url.Values{"email": {email}, "password": {password}})
}

// secondStep posts the code form.
func (b *browser) secondStep(form url.Values) resp {
	b.e.t.Helper()
	return b.submit("/admin/login/code", "/admin/login/code", form)
}

// signIn signs op in with a fresh TOTP code (moving the clock one step on so
// that the code has not been used).
func (b *browser) signIn(op operator) {
	b.e.t.Helper()
	b.e.clk.Add(30 * time.Second)
	r := b.password(op.email, op.password)
	if r.status != http.StatusSeeOther || r.location != "/admin/login/code" {
		b.e.t.Fatalf("password step: %d %q\n%s", r.status, r.location, r.body)
	}
	r = b.secondStep(url.Values{"code": {b.e.code(op.secret, 0)}})
	if r.status != http.StatusSeeOther || r.location != "/admin/incidents" {
		b.e.t.Fatalf("code step: %d %q\n%s", r.status, r.location, r.body)
	}
}

func (b *browser) signOut() {
	b.e.t.Helper()
	r := b.submit("/admin/account", "/admin/logout", nil)
	if r.status != http.StatusSeeOther {
		b.e.t.Fatalf("sign out: %d\n%s", r.status, r.body)
	}
}

func (e *env) auditCount(action, target string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `select count(*) from audit_log where action = $1 and ($2 = '' or target = $2)`, action, target).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}
