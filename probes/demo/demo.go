// Package demo is a small, realistic login target for Candor's probes to walk,
// in two shapes (profiles) that fail differently.
//
// The form profile (the default): a login page with a CSRF token, a password
// check, a TOTP page (one step of tolerance, a code accepted once), "remember
// this device for 30 days", recovery codes, a dashboard behind a full login,
// logout, and a small JSON login API.
//
// The json profile: a JSON login API only, as many single-page applications
// and mobile back ends have it. POST /api/session {email, password} answers
// {mfa_required, mfa_token}; POST /api/session/mfa {mfa_token, code} answers
// {token}; GET /api/me with "Authorization: Bearer <token>" answers {email};
// DELETE /api/session ends the session (204). Every error is a 401
// {"error": "Authentication failed"}, whatever went wrong (a wrong password,
// a wrong code, a storage failure), except a code already used (401
// {"error": "code already used"}) and the code rate limit: more than
// [CodeFailuresPerMinute] refused codes for an account within a minute, and
// further codes are answered 429 with Retry-After. It has no recovery codes.
//
// Every login writes to a "login events" store — the kind of component
// whose failure kept customers out for eleven hours in the outage Candor is
// built against.
//
// Either profile may be served over HTTPS with certificates from a private
// CA ([NewCertificates], [Target.TLSConfig]), as internal login systems often
// are, so that a probe has to trust that CA (tls: {ca_file: …}).
//
// Faults are injected from loopback only, and apply to both profiles:
//
//	curl -X POST 127.0.0.1:8081/_fault -d '{"mode":"events_down"}'
//	curl -X POST 127.0.0.1:8081/_fault -d '{"mode":"error","step":"totp"}'
//	curl -X POST 127.0.0.1:8081/_fault -d '{"mode":"slow","step":"password","ms":3000}'
//	curl -X POST 127.0.0.1:8081/_fault -d '{"mode":"clock_skew","seconds":120}'
//	curl -X POST 127.0.0.1:8081/_fault -d '{"mode":"rate_limited"}'
//	curl --cacert ca.pem -X POST https://127.0.0.1:8081/_fault -d '{"mode":"cert_expired"}'
//	curl -X DELETE 127.0.0.1:8081/_fault
//
// Every address at example.com is an account with [Password] and [TOTPSecret];
// give each probe its own address, since a code is accepted once per account.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// The demo's fixed credentials. They are not secret: the demo configuration
// refers to them, and the target only ever runs for demonstrations and tests.
const (
	Domain     = "example.com"                  // every address @example.com is an account
	Password   = "correct-horse-battery-staple" // every account's password
	TOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	// TOTPPeriod is 15 s, not the usual 30 s, so that a probe running every
	// 15 s always gets a fresh code: a code is accepted only once per account.
	TOTPPeriod = 15
)

// Cookie names and lifetimes.
const (
	SessionCookie  = "session"
	RememberCookie = "remember_device"
	RememberFor    = 30 * 24 * time.Hour
)

// Profiles: the shapes of login the target can serve.
const (
	ProfileForm = "form" // an HTML form login with a CSRF field, a TOTP page and recovery codes (the default)
	ProfileJSON = "json" // a JSON login API plus a TOTP call; every error a 401; no recovery codes
)

// Profiles lists the profiles, the default first.
var Profiles = []string{ProfileForm, ProfileJSON}

// Steps are the fault-injection step names of the form profile, one per
// request of a login, named like the steps of the demo probes.
var Steps = []string{"login_page", "password", "totp_page", "totp", "recovery", "dashboard", "logout"}

// JSONSteps are the fault-injection step names of the json profile: password
// is POST /api/session, totp is POST /api/session/mfa, dashboard is
// GET /api/me and logout is DELETE /api/session. The names are those of the
// form profile's requests that do the same work, so that a fault means the
// same in both.
var JSONSteps = []string{"password", "totp", "dashboard", "logout"}

// CodeFailuresPerMinute is the json profile's code rate limit: after this
// many refused codes for one account within a minute, further code attempts
// for it are answered 429 until the oldest failure is a minute old.
const CodeFailuresPerMinute = 5

// EventsDownDelay is how long the json profile takes to answer when its
// login events store is down (unless the fault gives ms): a storage call
// that times out behind an authentication API looks like a slow 401.
const EventsDownDelay = 5 * time.Second

// Fault modes.
const (
	// FaultEventsDown: the login events store fails, so login fails at the
	// password check. The form profile answers 503 (after MS milliseconds, if
	// given); the json profile answers 401 after MS milliseconds (default
	// [EventsDownDelay]), as a storage failure behind an authentication API looks.
	FaultEventsDown    = "events_down"
	FaultError         = "error"           // Step fails at once: 500 in the form profile, 401 in the json profile
	FaultSlow          = "slow"            // MS milliseconds of delay at Step
	FaultHang          = "hang"            // Step never answers
	FaultClockSkew     = "clock_skew"      // the server clock (and Date header) is off by Seconds
	FaultSkip2SA       = "skip_2sa"        // the password alone completes the login
	FaultAcceptAnyCode = "accept_any_code" // any TOTP code is accepted
	FaultRateLimited   = "rate_limited"    // every code submission is answered 429 with Retry-After: 60
	// FaultCertExpired: over HTTPS ([Target.TLSConfig]), new connections get
	// a certificate from the same CA that expired a day ago.
	FaultCertExpired = "cert_expired"
)

var modes = []string{FaultEventsDown, FaultError, FaultSlow, FaultHang, FaultClockSkew, FaultSkip2SA, FaultAcceptAnyCode, FaultRateLimited, FaultCertExpired}

// Fault is the fault in effect; the zero value is none.
type Fault struct {
	Mode    string `json:"mode"`
	Step    string `json:"step,omitempty"`
	MS      int    `json:"ms,omitempty"`
	Seconds int    `json:"seconds,omitempty"`
}

// validate checks f against the fault steps of the target's profile.
func (f Fault) validate(steps []string) error {
	if !slices.Contains(modes, f.Mode) {
		return fmt.Errorf("unknown mode %q: use one of %s", f.Mode, strings.Join(modes, ", "))
	}
	switch f.Mode {
	case FaultError, FaultSlow, FaultHang:
		if !slices.Contains(steps, f.Step) {
			return fmt.Errorf("mode %s needs a step, one of %s", f.Mode, strings.Join(steps, ", "))
		}
	}
	if f.Mode == FaultSlow && (f.MS <= 0 || f.MS > 600_000) {
		return errors.New("mode slow needs ms between 1 and 600000")
	}
	if f.Mode == FaultEventsDown && (f.MS < 0 || f.MS > 600_000) {
		return errors.New("mode events_down takes ms between 0 and 600000")
	}
	if f.Mode == FaultClockSkew && f.Seconds == 0 {
		return errors.New("mode clock_skew needs seconds (negative for a clock behind)")
	}
	return nil
}

// Event is one entry of the login events store.
type Event struct {
	At    time.Time `json:"at"`
	Email string    `json:"email"`
	Kind  string    `json:"kind"` // password_failed, password_ok, totp_failed, login, recovery_login, logout
}

// ErrEventsDown is what the login events store answers under the events_down fault.
var ErrEventsDown = errors.New("login events store unavailable")

// Options configures a Target.
type Options struct {
	Now     func() time.Time // default time.Now
	Profile string           // one of Profiles; default ProfileForm
	// TLS, when set, makes ServeListenerWith serve HTTPS with these
	// certificates (see [Target.TLSConfig]).
	TLS *Certificates
}

// Target is the demo login application. It is an http.Handler.
type Target struct {
	now     func() time.Time
	profile string
	mux     *http.ServeMux
	done    chan struct{} // closed by Close: releases hanging requests

	mu       sync.Mutex
	fault    Fault
	sessions map[string]*session
	accounts map[string]*account
	devices  map[string]device // remember-device token → device
	tickets  map[string]ticket // JSON API: password ok, awaiting code
	events   []Event           // newest last, at most maxEvents
	closed   bool
}

type session struct {
	csrf    string
	email   string
	stage   int // 0 anonymous, 1 password checked, 2 fully signed in
	created time.Time
}

type account struct {
	lastCounter int64           // last TOTP counter accepted: a code is accepted once
	recovery    map[string]bool // unused recovery codes
	refused     []time.Time     // json profile: codes refused within the last minute, oldest first
}

type device struct {
	email   string
	expires time.Time
}

type ticket struct {
	email   string
	expires time.Time
}

const (
	maxEvents   = 1000
	maxSessions = 100_000
	maxAccounts = 10_000
	sessionLife = 30 * time.Minute
)

// New returns a demo Target. An unknown Options.Profile panics: callers take
// it from a flag and check it against [Profiles] first.
func New(o Options) *Target {
	if o.Profile == "" {
		o.Profile = ProfileForm
	}
	if !slices.Contains(Profiles, o.Profile) {
		panic(fmt.Sprintf("demo: unknown profile %q", o.Profile))
	}
	t := &Target{
		now:      o.Now,
		profile:  o.Profile,
		mux:      http.NewServeMux(),
		done:     make(chan struct{}),
		sessions: map[string]*session{},
		accounts: map[string]*account{},
		devices:  map[string]device{},
		tickets:  map[string]ticket{},
	}
	if t.now == nil {
		t.now = time.Now
	}
	m := t.mux
	m.HandleFunc("GET /_fault", t.loopback(t.getFault))
	m.HandleFunc("POST /_fault", t.loopback(t.postFault))
	m.HandleFunc("DELETE /_fault", t.loopback(t.deleteFault))
	m.HandleFunc("GET /_events", t.loopback(t.getEvents))
	if t.profile == ProfileJSON {
		t.routeJSON()
		return t
	}
	m.HandleFunc("GET /{$}", t.home)
	m.HandleFunc("GET /login", t.stepped("login_page", t.loginPage))
	m.HandleFunc("POST /login", t.stepped("password", t.password))
	m.HandleFunc("GET /2fa", t.stepped("totp_page", t.totpPage))
	m.HandleFunc("POST /2fa", t.stepped("totp", t.totp))
	m.HandleFunc("GET /2fa/recovery", t.stepped("totp_page", t.recoveryPage))
	m.HandleFunc("POST /2fa/recovery", t.stepped("recovery", t.recovery))
	m.HandleFunc("GET /dashboard", t.stepped("dashboard", t.dashboard))
	m.HandleFunc("POST /recovery-codes", t.newRecoveryCodes)
	m.HandleFunc("POST /logout", t.stepped("logout", t.logout))
	m.HandleFunc("POST /api/login", t.stepped("password", t.apiLogin))
	m.HandleFunc("POST /api/login/totp", t.stepped("totp", t.apiTOTP))
	m.HandleFunc("GET /api/me", t.stepped("dashboard", t.apiMe))
	return t
}

// ServeHTTP implements http.Handler. Every response carries the target's
// own Date, so that a skewed clock shows there as it would on a real server.
func (t *Target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Date", t.clock().UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	t.mux.ServeHTTP(w, r)
}

// Close releases requests held by the hang fault.
func (t *Target) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.done)
	}
}

// Profile returns the target's profile, one of [Profiles].
func (t *Target) Profile() string { return t.profile }

// FaultSteps returns the step names a fault may name in this target's
// profile: [Steps] or [JSONSteps].
func (t *Target) FaultSteps() []string {
	if t.profile == ProfileJSON {
		return slices.Clone(JSONSteps)
	}
	return slices.Clone(Steps)
}

// SetFault injects f (as POST /_fault does).
func (t *Target) SetFault(f Fault) error {
	if err := f.validate(t.FaultSteps()); err != nil {
		return err
	}
	t.mu.Lock()
	t.fault = f
	t.mu.Unlock()
	return nil
}

// ClearFault removes the fault (as DELETE /_fault does).
func (t *Target) ClearFault() {
	t.mu.Lock()
	t.fault = Fault{}
	t.mu.Unlock()
}

// Events returns the login events stored so far, oldest first.
func (t *Target) Events() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.events)
}

// Serve serves a Target on addr until ctx is done, then shuts down.
func Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo target: %w", err)
	}
	return ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller opened (so it knows the address).
func ServeListener(ctx context.Context, ln net.Listener) error {
	return ServeListenerWith(ctx, ln, Options{})
}

// ServeListenerWith is ServeListener for a Target built with o (e.g. the
// json profile). An unknown o.Profile is an error.
func ServeListenerWith(ctx context.Context, ln net.Listener, o Options) error {
	if o.Profile != "" && !slices.Contains(Profiles, o.Profile) {
		return fmt.Errorf("demo target: unknown profile %q (use one of %s)", o.Profile, strings.Join(Profiles, ", "))
	}
	t := New(o)
	srv := &http.Server{Handler: t, ReadHeaderTimeout: 10 * time.Second}
	if o.TLS != nil {
		srv.TLSConfig = t.TLSConfig(o.TLS)
	}
	errc := make(chan error, 1)
	go func() {
		if o.TLS != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("demo target: %w", err)
	case <-ctx.Done():
	}
	t.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

func (t *Target) clock() time.Time {
	t.mu.Lock()
	f := t.fault
	t.mu.Unlock()
	now := t.now()
	if f.Mode == FaultClockSkew {
		now = now.Add(time.Duration(f.Seconds) * time.Second)
	}
	return now
}

func (t *Target) currentFault() Fault {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fault
}

// stepped applies the error, slow, hang and rate_limited faults of step before h.
func (t *Target) stepped(step string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := t.currentFault()
		if f.Mode == FaultRateLimited && step == "totp" {
			t.tooManyAttempts(w, 60)
			return
		}
		if f.Step == step {
			switch f.Mode {
			case FaultError:
				if t.profile == ProfileJSON {
					authFailed(w)
					return
				}
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
				return
			case FaultSlow:
				if !t.wait(r, time.Duration(f.MS)*time.Millisecond) {
					return
				}
			case FaultHang:
				select {
				case <-r.Context().Done():
				case <-t.done:
				}
				return
			}
		}
		h(w, r)
	}
}

// wait waits for d, and reports false when the request or the target ended first.
func (t *Target) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-r.Context().Done():
	case <-t.done:
	}
	return false
}

// tooManyAttempts answers a code submission refused by a rate limit.
func (t *Target) tooManyAttempts(w http.ResponseWriter, retryAfter int) {
	w.Header().Set("Retry-After", fmt.Sprint(retryAfter))
	if t.profile == ProfileJSON {
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many attempts"})
		return
	}
	render(w, http.StatusTooManyRequests, "error", pageData{Title: "Too many attempts", Error: "Too many attempts. Please wait a minute and try again."})
}

// eventsDownDelay is how long a request waits before reporting that the
// login events store failed.
func (t *Target) eventsDownDelay() time.Duration {
	f := t.currentFault()
	if f.MS > 0 {
		return time.Duration(f.MS) * time.Millisecond
	}
	if t.profile == ProfileJSON {
		return EventsDownDelay
	}
	return 0
}

// unavailable answers a form request whose login event could not be stored.
func (t *Target) unavailable(w http.ResponseWriter, r *http.Request) {
	if !t.wait(r, t.eventsDownDelay()) {
		return
	}
	render(w, http.StatusServiceUnavailable, "error", pageData{Title: "Unavailable", Error: "Sign-in is temporarily unavailable. Please try again later."})
}

func (t *Target) loopback(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "faults can only be injected from loopback", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

func (t *Target) getFault(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, t.currentFault())
}

func (t *Target) postFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON such as {\"mode\": \"events_down\"}"})
		return
	}
	if err := t.SetFault(f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (t *Target) deleteFault(w http.ResponseWriter, r *http.Request) {
	t.ClearFault()
	w.WriteHeader(http.StatusNoContent)
}

func (t *Target) getEvents(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, t.Events())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// record appends to the login events store, which fails under events_down.
func (t *Target) record(email, kind string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fault.Mode == FaultEventsDown {
		return ErrEventsDown
	}
	if len(t.events) >= maxEvents {
		t.events = slices.Delete(t.events, 0, len(t.events)-maxEvents+1)
	}
	t.events = append(t.events, Event{At: t.now().UTC(), Email: email, Kind: kind})
	return nil
}

// validEmail reports whether email is a demo account.
func validEmail(email string) bool {
	local, domain, ok := strings.Cut(email, "@")
	return ok && local != "" && domain == Domain && len(email) <= 100 && !strings.ContainsAny(email, " <>\"'")
}

// accountLocked returns the account for email, creating it; t.mu must be held.
func (t *Target) accountLocked(email string) *account {
	a := t.accounts[email]
	if a == nil {
		if len(t.accounts) >= maxAccounts {
			clear(t.accounts) // a demo: forgetting replay state beats growing without bound
		}
		a = &account{recovery: map[string]bool{}}
		t.accounts[email] = a
	}
	return a
}

// session returns the request's session, or nil.
func (t *Target) session(r *http.Request) (string, *session) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessions[c.Value]
	if s == nil || t.now().Sub(s.created) > sessionLife {
		return "", nil
	}
	return c.Value, s
}

// newSession stores s under a fresh id and sets the cookie; it replaces
// oldID, so that an id seen before sign-in is useless after it.
func (t *Target) newSession(w http.ResponseWriter, r *http.Request, oldID string, s *session) {
	id := randomToken(16)
	s.created = t.now()
	t.mu.Lock()
	delete(t.sessions, oldID)
	if len(t.sessions) >= maxSessions {
		for k, v := range t.sessions {
			if t.now().Sub(v.created) > sessionLife {
				delete(t.sessions, k)
			}
		}
		if len(t.sessions) >= maxSessions {
			clear(t.sessions)
		}
	}
	t.sessions[id] = s
	t.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// codeCheck is the verdict on a submitted TOTP code.
type codeCheck int

const (
	codeWrong    codeCheck = iota // not a code of the current window or its neighbours
	codeAccepted                  // valid and not used before: now used
	codeReplayed                  // valid, but this window's code (or a later one) was used already
)

// checkCode validates a TOTP code with one step of tolerance, once per
// account; t.mu must not be held.
func (t *Target) checkCode(email, code string) codeCheck {
	if t.currentFault().Mode == FaultAcceptAnyCode {
		return codeAccepted
	}
	now := t.clock()
	counter := now.Unix() / TOTPPeriod
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.accountLocked(email)
	for _, c := range []int64{counter, counter - 1, counter + 1} {
		want, err := totp.GenerateCodeCustom(TOTPSecret, time.Unix(c*TOTPPeriod, 0), totp.ValidateOpts{Period: TOTPPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil || want != code {
			continue
		}
		if c <= a.lastCounter {
			return codeReplayed
		}
		a.lastCounter = c
		return codeAccepted
	}
	return codeWrong
}

func (t *Target) remembered(r *http.Request, email string) bool {
	c, err := r.Cookie(RememberCookie)
	if err != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.devices[c.Value]
	return ok && d.email == email && t.now().Before(d.expires)
}

func (t *Target) remember(w http.ResponseWriter, r *http.Request, email string) {
	token := randomToken(20)
	t.mu.Lock()
	if len(t.devices) >= maxSessions {
		clear(t.devices)
	}
	t.devices[token] = device{email: email, expires: t.now().Add(RememberFor)}
	t.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: RememberCookie, Value: token, Path: "/", MaxAge: int(RememberFor / time.Second), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// ---- pages ----

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Demo</title></head><body><main>{{end}}
{{define "foot"}}</main></body></html>{{end}}
{{define "login"}}{{template "head" .}}<h1>Sign in</h1>{{if .Error}}<p role="alert" class="error">{{.Error}}</p>{{end}}
<form method="post" action="/login" id="login">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label>Email <input type="email" name="email" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<button>Sign in</button></form>{{template "foot"}}{{end}}
{{define "totp"}}{{template "head" .}}<h1>Two-step authentication</h1>{{if .Error}}<p role="alert" class="error">{{.Error}}</p>{{end}}
<form method="post" action="/2fa" id="totp">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label>Enter the code from your authenticator app <input name="code" inputmode="numeric" autocomplete="one-time-code"></label>
<label><input type="checkbox" name="remember" value="on"> Remember this device for 30 days</label>
<button>Verify</button></form>
<p><a href="/2fa/recovery">Lost your phone? Use a recovery code</a></p>{{template "foot"}}{{end}}
{{define "recovery"}}{{template "head" .}}<h1>Use a recovery code</h1>{{if .Error}}<p role="alert" class="error">{{.Error}}</p>{{end}}
<form method="post" action="/2fa/recovery" id="recovery">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label>Recovery code <input name="code"></label><button>Verify</button></form>{{template "foot"}}{{end}}
{{define "dashboard"}}{{template "head" .}}<h1>Dashboard</h1><p>Welcome, <span id="user">{{.Email}}</span>.</p>
<form method="post" action="/recovery-codes"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button>New recovery codes</button></form>
<form method="post" action="/logout" id="logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button>Sign out</button></form>{{template "foot"}}{{end}}
{{define "codes"}}{{template "head" .}}<h1>Your recovery codes</h1><p>Each works once. Keep them somewhere safe.</p>
<ul>{{range .Codes}}<li class="recovery-code">{{.}}</li>{{end}}</ul><p><a href="/dashboard">Back</a></p>{{template "foot"}}{{end}}
{{define "error"}}{{template "head" .}}<h1>Something went wrong</h1><p>{{.Error}}</p>{{template "foot"}}{{end}}
`))

type pageData struct {
	Title, CSRF, Error, Email string
	Codes                     []string
}

func render(w http.ResponseWriter, status int, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, d)
}

func (t *Target) home(w http.ResponseWriter, r *http.Request) {
	if _, s := t.session(r); s != nil && s.stage == 2 {
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (t *Target) loginPage(w http.ResponseWriter, r *http.Request) {
	id, s := t.session(r)
	if s == nil {
		s = &session{csrf: randomToken(16)}
		t.newSession(w, r, id, s)
	}
	render(w, http.StatusOK, "login", pageData{Title: "Sign in", CSRF: s.csrf})
}

// form checks the CSRF token of a POST and returns the session.
func (t *Target) form(w http.ResponseWriter, r *http.Request) (string, *session, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	id, s := t.session(r)
	if err := r.ParseForm(); err != nil || s == nil || r.PostForm.Get("csrf_token") != s.csrf {
		render(w, http.StatusForbidden, "error", pageData{Title: "Expired", Error: "Your session expired or the form was tampered with. Go back and try again."})
		return "", nil, false
	}
	return id, s, true
}

func (t *Target) password(w http.ResponseWriter, r *http.Request) {
	id, s, ok := t.form(w, r)
	if !ok {
		return
	}
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
	if !validEmail(email) || r.PostForm.Get("password") != Password {
		if err := t.record(email, "password_failed"); err != nil {
			t.unavailable(w, r)
			return
		}
		render(w, http.StatusUnauthorized, "login", pageData{Title: "Sign in", CSRF: s.csrf, Error: "Invalid email or password."})
		return
	}
	if err := t.record(email, "password_ok"); err != nil {
		t.unavailable(w, r)
		return
	}
	next := &session{csrf: s.csrf, email: email, stage: 1}
	if t.remembered(r, email) || t.currentFault().Mode == FaultSkip2SA {
		next.stage = 2
	}
	t.newSession(w, r, id, next)
	if next.stage == 2 {
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/2fa", http.StatusSeeOther)
}

func (t *Target) totpPage(w http.ResponseWriter, r *http.Request) {
	_, s := t.session(r)
	if s == nil || s.stage != 1 {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	name, title := "totp", "Two-step authentication"
	if r.URL.Path == "/2fa/recovery" {
		name, title = "recovery", "Recovery code"
	}
	render(w, http.StatusOK, name, pageData{Title: title, CSRF: s.csrf})
}

func (t *Target) recoveryPage(w http.ResponseWriter, r *http.Request) { t.totpPage(w, r) }

func (t *Target) totp(w http.ResponseWriter, r *http.Request) {
	id, s, ok := t.form(w, r)
	if !ok {
		return
	}
	if s.stage != 1 {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if t.checkCode(s.email, strings.TrimSpace(r.PostForm.Get("code"))) != codeAccepted {
		if err := t.record(s.email, "totp_failed"); err != nil {
			t.unavailable(w, r)
			return
		}
		render(w, http.StatusUnauthorized, "totp", pageData{Title: "Two-step authentication", CSRF: s.csrf, Error: "That code is not valid."})
		return
	}
	t.complete(w, r, id, s, "login", r.PostForm.Get("remember") == "on")
}

func (t *Target) recovery(w http.ResponseWriter, r *http.Request) {
	id, s, ok := t.form(w, r)
	if !ok {
		return
	}
	if s.stage != 1 {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	t.mu.Lock()
	a := t.accountLocked(s.email)
	valid := a.recovery[code]
	delete(a.recovery, code)
	t.mu.Unlock()
	if !valid {
		render(w, http.StatusUnauthorized, "recovery", pageData{Title: "Recovery code", CSRF: s.csrf, Error: "That recovery code is not valid."})
		return
	}
	t.complete(w, r, id, s, "recovery_login", false)
}

// complete finishes a login: the event is stored first, or the login fails.
func (t *Target) complete(w http.ResponseWriter, r *http.Request, id string, s *session, kind string, remember bool) {
	if err := t.record(s.email, kind); err != nil {
		t.unavailable(w, r)
		return
	}
	t.newSession(w, r, id, &session{csrf: randomToken(16), email: s.email, stage: 2})
	if remember {
		t.remember(w, r, s.email)
	}
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

func (t *Target) dashboard(w http.ResponseWriter, r *http.Request) {
	_, s := t.session(r)
	if s == nil || s.stage != 2 {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	render(w, http.StatusOK, "dashboard", pageData{Title: "Dashboard", CSRF: s.csrf, Email: s.email})
}

func (t *Target) newRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	_, s, ok := t.form(w, r)
	if !ok {
		return
	}
	if s.stage != 2 {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	codes := make([]string, 8)
	t.mu.Lock()
	a := t.accountLocked(s.email)
	clear(a.recovery)
	for i := range codes {
		c := randomToken(5)
		codes[i] = c[:5] + "-" + c[5:]
		a.recovery[codes[i]] = true
	}
	t.mu.Unlock()
	render(w, http.StatusOK, "codes", pageData{Title: "Recovery codes", Codes: codes})
}

func (t *Target) logout(w http.ResponseWriter, r *http.Request) {
	id, s, ok := t.form(w, r)
	if !ok {
		return
	}
	t.mu.Lock()
	delete(t.sessions, id)
	t.mu.Unlock()
	_ = t.record(s.email, "logout")
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// ---- JSON API: POST /api/login {email, password} → {ticket};
// POST /api/login/totp {ticket, code} → {token}; GET /api/me with Bearer token.

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10))
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be a JSON object"})
		return false
	}
	return true
}

func (t *Target) apiLogin(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Password string }
	if !readJSON(w, r, &in) {
		return
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if !validEmail(email) || in.Password != Password {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_credentials"})
		return
	}
	if err := t.record(email, "password_ok"); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
		return
	}
	if t.currentFault().Mode == FaultSkip2SA {
		t.apiToken(w, email)
		return
	}
	tk := randomToken(16)
	t.mu.Lock()
	if len(t.tickets) >= maxSessions {
		clear(t.tickets)
	}
	t.tickets[tk] = ticket{email: email, expires: t.now().Add(5 * time.Minute)}
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "totp_required", "ticket": tk})
}

func (t *Target) apiTOTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ Ticket, Code string }
	if !readJSON(w, r, &in) {
		return
	}
	t.mu.Lock()
	tk, ok := t.tickets[in.Ticket]
	t.mu.Unlock()
	if !ok || t.now().After(tk.expires) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_ticket"})
		return
	}
	if t.checkCode(tk.email, strings.TrimSpace(in.Code)) != codeAccepted {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_code"})
		return
	}
	if err := t.record(tk.email, "login"); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
		return
	}
	t.mu.Lock()
	delete(t.tickets, in.Ticket)
	t.mu.Unlock()
	t.apiToken(w, tk.email)
}

func (t *Target) apiToken(w http.ResponseWriter, email string) {
	token := randomToken(20)
	t.mu.Lock()
	t.sessions["api:"+token] = &session{email: email, stage: 2, created: t.now()}
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "session": map[string]string{"token": token, "email": email}})
}

func (t *Target) apiMe(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	t.mu.Lock()
	s := t.sessions["api:"+token]
	t.mu.Unlock()
	if !ok || s == nil || s.stage != 2 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"email": s.email})
}
