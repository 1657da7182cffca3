package console

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEnrolmentActivatesOnlyAfterACorrectCode(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	link, err := AddUser(context.Background(), e.pool, "Ada@Example.com", "admin", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, e.srv.URL+"/admin/enrol/") {
		t.Fatalf("link %q", link)
	}
	path := strings.TrimPrefix(link, e.srv.URL)
	page := b.get(path)
	for _, want := range []string{`src="data:image/png;base64,`, "otpauth://totp/Candor:ada@example.com?", "secret="} {
		if !strings.Contains(page.body, want) {
			t.Errorf("enrolment page lacks %q", want)
		}
	}
	secret := secretRE.FindStringSubmatch(page.body)[1]
	// Reloading shows the same secret: the phone has already scanned it.
	if again := secretRE.FindStringSubmatch(b.get(path).body)[1]; again != secret {
		t.Errorf("secret changed on reload")
	}
	// A wrong code, a short password, or passwords that differ: nothing is activated.
	for _, form := range []url.Values{
		{"password": {testPassword}, "password_again": {testPassword}, "code": {"000000"}},
		{"password": {"short"}, "password_again": {"short"}, "code": {e.code(secret, 0)}},
		{"password": {testPassword}, "password_again": {testPassword + "x"}, "code": {e.code(secret, 0)}},
	} {
		form.Set("csrf", csrfOf(page.body))
		if r := b.post(path, form); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("bad enrolment: got %d, want 422", r.status)
		}
	}
	var enrolled bool
	if err := e.pool.QueryRow(context.Background(), `select enrolled_at is not null from operators where email = 'ada@example.com'`).Scan(&enrolled); err != nil || enrolled {
		t.Fatalf("enrolled after bad attempts: %v %v", enrolled, err)
	}
	// A code one step old is still accepted (clock tolerance).
	r := b.post(path, url.Values{"csrf": {csrfOf(page.body)}, "password": {testPassword}, "password_again": {testPassword}, "code": {e.code(secret, -1)}})
	if r.status != http.StatusOK || len(recoveryRE.FindAllString(r.body, -1)) != recoveryCodes {
		t.Fatalf("enrol: %d\n%s", r.status, r.body)
	}
	// Signed in now, and the link is spent.
	if r := b.get("/admin/incidents"); r.status != http.StatusOK {
		t.Fatalf("after enrolment: %d", r.status)
	}
	if r := e.browser().get(path); r.status != http.StatusNotFound || !strings.Contains(r.body, "not valid") {
		t.Fatalf("spent link: %d", r.status)
	}
	if _, err := AddUser(context.Background(), e.pool, "ada@example.com", "viewer", e.srv.URL); !errors.Is(err, ErrExists) {
		t.Fatalf("AddUser of an enrolled operator: %v", err)
	}
	if e.auditCount("operator.enrolled", "ada@example.com") != 1 || e.auditCount("operator.added", "ada@example.com") != 1 {
		t.Error("audit lacks operator.added or operator.enrolled")
	}
	// Nothing secret is stored in the clear.
	var hash, pending string
	if err := e.pool.QueryRow(context.Background(), `select password_hash, totp_pending from operators`).Scan(&hash, &pending); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$") || strings.Contains(hash, testPassword) || pending != "" {
		t.Errorf("stored hash %q, pending %q", hash, pending)
	}
}

func TestAddUserTwiceBeforeEnrolmentReplacesTheLink(t *testing.T) {
	e := newEnv(t)
	first, err := AddUser(context.Background(), e.pool, "bo@example.com", "viewer", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	second, err := AddUser(context.Background(), e.pool, "bo@example.com", "responder", e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	if r := b.get(strings.TrimPrefix(first, e.srv.URL)); r.status != http.StatusNotFound {
		t.Errorf("replaced link: %d", r.status)
	}
	if r := b.get(strings.TrimPrefix(second, e.srv.URL)); r.status != http.StatusOK {
		t.Errorf("new link: %d", r.status)
	}
	for _, bad := range [][2]string{{"not-an-email", "admin"}, {"x@example.com", "root"}} {
		if _, err := AddUser(context.Background(), e.pool, bad[0], bad[1], e.srv.URL); err == nil {
			t.Errorf("AddUser(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

func TestSignInWithTOTPAndCookieFlags(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Admin)
	b.signOut()
	if r := b.get("/admin/incidents"); r.status != http.StatusSeeOther || r.location != "/admin/login" {
		t.Fatalf("signed out: %d %q", r.status, r.location)
	}
	e.clk.Add(30 * time.Second)
	r := b.password(op.email, op.password)
	if r.status != http.StatusSeeOther || r.location != "/admin/login/code" {
		t.Fatalf("password: %d %q", r.status, r.location)
	}
	pending := b.cookie(sessionCookie).Value
	// Between the steps the console is closed.
	if r := b.get("/admin/incidents"); r.status != http.StatusSeeOther {
		t.Fatalf("half signed in: %d", r.status)
	}
	r = b.secondStep(url.Values{"code": {e.code(op.secret, 0)}})
	if r.status != http.StatusSeeOther || r.location != "/admin/incidents" {
		t.Fatalf("code: %d %q\n%s", r.status, r.location, r.body)
	}
	// A new session, not the one from before the second step.
	if b.cookie(sessionCookie).Value == pending {
		t.Error("session not rotated at sign-in")
	}
	var setCookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, sessionCookie+"=") {
			setCookie = c
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("session cookie %q lacks %s", setCookie, want)
		}
	}
	if r := b.get("/admin/incidents"); r.status != http.StatusOK {
		t.Fatalf("signed in: %d", r.status)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	} {
		if got := r.header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s: %q", h, got)
		}
	}
	if e.auditCount("signin", op.email) != 1 {
		t.Error("no signin audit event")
	}
	// Idle timeout: two hours without a request ends the session.
	e.clk.Add(2*time.Hour + time.Minute)
	if r := b.get("/admin/incidents"); r.status != http.StatusSeeOther {
		t.Fatalf("idle session still open: %d", r.status)
	}
}

func TestCookiesAreSecureUnlessPlainHTTPOnLoopback(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		base   string
		secure bool
	}{
		{"https://status.example.com", true},
		{"http://status.example.com", true},
		{"", true},
		{"http://127.0.0.1:8080", false},
		{"http://localhost:8080/", false},
		{"http://[::1]:8080", false},
	} {
		c, err := New(Options{Pool: e.pool, Incidents: e.store, BaseURL: tc.base, Now: e.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		c.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/admin/login", nil))
		sc := w.Header().Get("Set-Cookie")
		if strings.Contains(sc, "; Secure") != tc.secure || !strings.Contains(sc, "HttpOnly") {
			t.Errorf("BaseURL %q: cookie %q", tc.base, sc)
		}
		if (w.Header().Get("Strict-Transport-Security") != "") != tc.secure {
			t.Errorf("BaseURL %q: HSTS %q", tc.base, w.Header().Get("Strict-Transport-Security"))
		}
	}
}

func TestReplayedAndStaleCodesAreRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Responder)
	b.signOut()
	e.clk.Add(30 * time.Second)
	code := e.code(op.secret, 0)
	b.password(op.email, op.password)
	if r := b.secondStep(url.Values{"code": {code}}); r.status != http.StatusSeeOther {
		t.Fatalf("first use: %d", r.status)
	}
	b.signOut()
	// The same code again, within its step: refused as used.
	b.password(op.email, op.password)
	r := b.secondStep(url.Values{"code": {code}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "already been used") {
		t.Fatalf("replay: %d\n%s", r.status, r.body)
	}
	if e.auditCount("signin.code_replayed", op.email) != 1 {
		t.Error("replay not audited")
	}
	// The step before the last accepted one: refused too.
	if r := b.secondStep(url.Values{"code": {e.code(op.secret, -1)}}); r.status != http.StatusUnauthorized {
		t.Fatalf("older code: %d", r.status)
	}
	// One step ahead (a phone whose clock runs fast) is accepted...
	if r := b.secondStep(url.Values{"code": {e.code(op.secret, 1)}}); r.status != http.StatusSeeOther {
		t.Fatalf("next step's code: %d\n%s", r.status, r.body)
	}
	b.signOut()
	// ...but two steps ahead is not.
	e.clk.Add(60 * time.Second)
	b.password(op.email, op.password)
	if r := b.secondStep(url.Values{"code": {e.code(op.secret, 2)}}); r.status != http.StatusUnauthorized {
		t.Fatalf("code two steps ahead: %d", r.status)
	}
	if r := b.secondStep(url.Values{"code": {e.code(op.secret, 0)}}); r.status != http.StatusSeeOther {
		t.Fatalf("current code: %d", r.status)
	}
}

func TestRecoveryCodesWorkOnce(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Viewer)
	b.signOut()
	b.password(op.email, op.password)
	rc := strings.ToUpper(strings.ReplaceAll(op.recovery[3], "-", " ")) // typed loosely
	if r := b.secondStep(url.Values{"recovery": {rc}}); r.status != http.StatusSeeOther {
		t.Fatalf("recovery code: %d\n%s", r.status, r.body)
	}
	if r := b.get("/admin/account"); !strings.Contains(r.body, "9 unused recovery codes") {
		t.Errorf("account page does not count 9 codes left")
	}
	b.signOut()
	b.password(op.email, op.password)
	if r := b.secondStep(url.Values{"recovery": {op.recovery[3]}}); r.status != http.StatusUnauthorized {
		t.Fatalf("spent recovery code: %d", r.status)
	}
	if r := b.secondStep(url.Values{"recovery": {"aaaa-bbbb-cccc-dddd"}}); r.status != http.StatusUnauthorized {
		t.Fatalf("unknown recovery code: %d", r.status)
	}
	if e.auditCount("signin.failed", op.email) != 2 {
		t.Errorf("failed recovery codes not audited")
	}
	// New codes replace the old ones.
	if r := b.secondStep(url.Values{"recovery": {op.recovery[0]}}); r.status != http.StatusSeeOther {
		t.Fatal("second recovery code refused")
	}
	// A session alone does not make new codes: a fresh authenticator code does.
	for _, code := range []string{"", "000000", e.code(op.secret, 2)} {
		r := b.submit("/admin/account", "/admin/account/recovery-codes", url.Values{"code": {code}})
		if r.status != http.StatusUnprocessableEntity || len(recoveryRE.FindAllStringSubmatch(r.body, -1)) != 0 ||
			!strings.Contains(r.body, "current 6-digit code") {
			t.Fatalf("new codes with code %q: %d\n%s", code, r.status, r.body)
		}
	}
	if e.auditCount("recovery_codes.refused", op.email) != 3 || e.auditCount("recovery_codes.regenerated", "") != 0 {
		t.Error("refused regenerations not audited")
	}
	e.clk.Add(30 * time.Second)
	code := e.code(op.secret, 0)
	r := b.submit("/admin/account", "/admin/account/recovery-codes", url.Values{"code": {code}})
	fresh := recoveryRE.FindAllStringSubmatch(r.body, -1)
	if len(fresh) != recoveryCodes {
		t.Fatalf("new codes: %d", len(fresh))
	}
	// The same code again is a replay.
	if r := b.submit("/admin/account", "/admin/account/recovery-codes", url.Values{"code": {code}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("replayed code: %d", r.status)
	}
	// Those wrong codes counted towards the lock-out; let it pass.
	e.clk.Add(16 * time.Minute)
	b.signOut()
	b.password(op.email, op.password)
	if r := b.secondStep(url.Values{"recovery": {op.recovery[5]}}); r.status != http.StatusUnauthorized {
		t.Fatal("an old code works after regeneration")
	}
	if r := b.secondStep(url.Values{"recovery": {fresh[5][1]}}); r.status != http.StatusSeeOther {
		t.Fatal("a new code is refused")
	}
}

func TestRememberedDeviceSkipsTheSecondStepUntilExpiredOrRevoked(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Responder)
	b.signOut()
	admin := e.browser()
	adminOp := e.enrol(admin, "root@example.com", Admin)
	// Not remembered unless asked.
	e.clk.Add(30 * time.Second)
	b.password(op.email, op.password)
	b.secondStep(url.Values{"code": {e.code(op.secret, 0)}})
	if b.cookie(deviceCookie) != nil {
		t.Fatal("device remembered without being asked")
	}
	b.signOut()
	e.clk.Add(30 * time.Second)
	b.password(op.email, op.password)
	r := b.secondStep(url.Values{"code": {e.code(op.secret, 0)}, "remember": {"on"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("remember: %d", r.status)
	}
	var dc string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, deviceCookie+"=") {
			dc = c
		}
	}
	if !strings.Contains(dc, "Max-Age=2592000") || !strings.Contains(dc, "HttpOnly") || !strings.Contains(dc, "SameSite=Strict") {
		t.Errorf("device cookie %q", dc)
	}
	b.signOut()
	// The password alone now signs in.
	if r := b.password(op.email, op.password); r.location != "/admin/incidents" {
		t.Fatalf("remembered device: %d %q", r.status, r.location)
	}
	// The device shows in the list; another operator's password with this
	// cookie still needs a code.
	if r := b.get("/admin/account"); !strings.Contains(r.body, "Go-http-client") {
		t.Errorf("device list lacks the browser:\n%s", r.body)
	}
	b.signOut()
	// After 30 days the device is forgotten.
	e.clk.Add(30*24*time.Hour + time.Minute)
	if r := b.password(op.email, op.password); r.location != "/admin/login/code" {
		t.Fatalf("expired device: %d %q", r.status, r.location)
	}
	// Revoking one device: the next sign-in needs a code again.
	b.secondStep(url.Values{"code": {e.code(op.secret, 0)}, "remember": {"on"}})
	page := b.get("/admin/account").body
	id := regexpFind(`/admin/account/devices/(\d+)/revoke`, page)
	if r := b.post("/admin/account/devices/"+id+"/revoke", url.Values{"csrf": {csrfOf(page)}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	b.signOut()
	if r := b.password(op.email, op.password); r.location != "/admin/login/code" {
		t.Fatalf("revoked device still skips the code: %q", r.location)
	}
	if e.auditCount("device.revoked", op.email) != 1 {
		t.Error("revocation not audited")
	}
	// An admin forgetting the operator's devices has the same effect.
	e.clk.Add(30 * time.Second)
	b.secondStep(url.Values{"code": {e.code(op.secret, 0)}, "remember": {"on"}})
	b.signOut()
	admin.signIn(adminOp)
	var opID string
	_ = e.pool.QueryRow(context.Background(), `select id::text from operators where email = $1`, op.email).Scan(&opID)
	// The admin sees the operator's devices.
	if r := admin.get("/admin/operators"); !strings.Contains(r.body, `href="/admin/operators/`+opID+`"`) {
		t.Errorf("operators page does not link the devices:\n%s", r.body)
	}
	if r := admin.get("/admin/operators/" + opID); r.status != http.StatusOK || strings.Count(r.body, `<tr class="device">`) != 1 ||
		!strings.Contains(r.body, "Go-http-client") || !strings.Contains(r.body, "Devices of "+op.email) {
		t.Errorf("admin's device list: %d\n%s", r.status, r.body)
	}
	if r := admin.submit("/admin/operators", "/admin/operators/"+opID+"/devices/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("admin revoke: %d", r.status)
	}
	if r := b.password(op.email, op.password); r.location != "/admin/login/code" {
		t.Fatalf("device revoked by an admin still skips the code: %q", r.location)
	}
}

func TestLockOutAndNoAccountEnumeration(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Viewer)
	b.signOut()

	known := b.password(op.email, "wrong password!")
	unknown := b.password("nobody@example.com", "wrong password!")
	if known.status != http.StatusUnauthorized || unknown.status != known.status {
		t.Fatalf("statuses: known %d, unknown %d", known.status, unknown.status)
	}
	if normalized(known.body, op.email) != normalized(unknown.body, "nobody@example.com") {
		t.Errorf("a wrong password and an unknown account answer differently:\n%s\n---\n%s", known.body, unknown.body)
	}
	// Five failures lock the account for 15 minutes, even with the right password.
	for range 4 {
		b.password(op.email, "wrong password!")
	}
	r := b.password(op.email, op.password)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed attempts") {
		t.Fatalf("locked: %d\n%s", r.status, r.body)
	}
	// An unknown account locks the same way.
	for range 4 {
		b.password("nobody@example.com", "wrong password!")
	}
	if r := b.password("nobody@example.com", "x"); r.status != http.StatusTooManyRequests {
		t.Fatalf("unknown account not locked: %d", r.status)
	}
	if e.auditCount("signin.locked", op.email) != 1 || e.auditCount("signin.failed", op.email) != 5 {
		t.Errorf("audit: locked %d, failed %d", e.auditCount("signin.locked", op.email), e.auditCount("signin.failed", op.email))
	}
	e.clk.Add(16 * time.Minute)
	b.signIn(op)
	// Wrong codes count too.
	b.signOut()
	e.clk.Add(30 * time.Second)
	b.password(op.email, op.password)
	for range 5 {
		b.secondStep(url.Values{"code": {"000000"}})
	}
	if r := b.secondStep(url.Values{"code": {e.code(op.secret, 0)}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("code step after 5 wrong codes: %d", r.status)
	}
}

func TestAddressLockOut(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for i := range addressLimit {
		if r := b.password("user"+strconv.Itoa(i)+"@example.com", "x"); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	if r := b.password("another@example.com", "x"); r.status != http.StatusTooManyRequests {
		t.Fatalf("address not locked: %d", r.status)
	}
}

func TestCSRFAndForgedCookies(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.enrol(b, "ada@example.com", Admin)
	// No token, a wrong token: refused and audited.
	if r := b.post("/admin/tokens", url.Values{"name": {"x"}, "role": {"viewer"}}); r.status != http.StatusForbidden {
		t.Fatalf("no token: %d", r.status)
	}
	if r := b.post("/admin/tokens", url.Values{"name": {"x"}, "role": {"viewer"}, "csrf": {"forged"}}); r.status != http.StatusForbidden {
		t.Fatalf("forged token: %d", r.status)
	}
	// A cross-site post is refused before anything else.
	page := b.get("/admin/tokens").body
	req, _ := http.NewRequest("POST", e.srv.URL+"/admin/tokens", strings.NewReader(url.Values{"csrf": {csrfOf(page)}, "name": {"x"}, "role": {"viewer"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := b.do(req); r.status != http.StatusForbidden {
		t.Fatalf("cross-site: %d", r.status)
	}
	// An old browser without Sec-Fetch-Site, posting from the page URL's
	// origin through a proxy that rewrote Host, is let through to the token check.
	req, _ = http.NewRequest("POST", e.srv.URL+"/admin/tokens", strings.NewReader(url.Values{"csrf": {csrfOf(page)}, "name": {"via-proxy"}, "role": {"viewer"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.srv.URL)
	req.Host = "candor.internal:8080"
	req.AddCookie(b.cookie(sessionCookie)) // the jar matches cookies to the Host header
	if r := b.do(req); r.status != http.StatusOK {
		t.Fatalf("same origin through a proxy: %d\n%s", r.status, r.body)
	}
	req, _ = http.NewRequest("POST", e.srv.URL+"/admin/tokens", strings.NewReader(url.Values{"csrf": {csrfOf(page)}, "name": {"x"}, "role": {"viewer"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if r := b.do(req); r.status != http.StatusForbidden {
		t.Fatalf("foreign origin: %d", r.status)
	}
	// The sign-in form needs its token too.
	if r := e.browser().post("/admin/login", url.Values{"email": {"ada@example.com"}, "password": {"x"}}); r.status != http.StatusForbidden {
		t.Fatalf("login without token: %d", r.status)
	}
	if n := e.auditCount("csrf.refused", ""); n != 5 {
		t.Errorf("csrf.refused events: %d, want 5", n)
	}
	// A tampered session cookie is no session.
	u, _ := url.Parse(e.srv.URL)
	b.cl.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: b.cookie(sessionCookie).Value + "x", Path: "/"}})
	if r := b.get("/admin/incidents"); r.status != http.StatusSeeOther {
		t.Fatalf("tampered cookie: %d", r.status)
	}
}

func TestAdminResetsTwoStep(t *testing.T) {
	e := newEnv(t)
	admin := e.browser()
	e.enrol(admin, "root@example.com", Admin)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Responder)
	var id string
	_ = e.pool.QueryRow(context.Background(), `select id::text from operators where email = $1`, op.email).Scan(&id)
	r := admin.submit("/admin/operators", "/admin/operators/"+id+"/reset", nil)
	link := regexpFind(`<code class="enrol-link">([^<]+)</code>`, r.body)
	if r.status != http.StatusOK || link == "" {
		t.Fatalf("reset: %d\n%s", r.status, r.body)
	}
	// The operator's session ended, and the old password no longer works.
	if r := b.get("/admin/incidents"); r.status != http.StatusSeeOther {
		t.Fatalf("session after reset: %d", r.status)
	}
	if r := b.password(op.email, op.password); r.status != http.StatusUnauthorized {
		t.Fatalf("old password after reset: %d", r.status)
	}
	if e.auditCount("operator.2sa_reset", op.email) != 1 {
		t.Error("reset not audited")
	}
	// The new link enrols a new authenticator.
	page := b.get(strings.TrimPrefix(link, e.srv.URL))
	secret := secretRE.FindStringSubmatch(page.body)[1]
	if secret == op.secret {
		t.Fatal("same secret after reset")
	}
}

func TestRoleChangeEndsSessions(t *testing.T) {
	e := newEnv(t)
	admin := e.browser()
	e.enrol(admin, "root@example.com", Admin)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Viewer)
	var id string
	_ = e.pool.QueryRow(context.Background(), `select id::text from operators where email = $1`, op.email).Scan(&id)
	if r := admin.submit("/admin/operators", "/admin/operators/"+id+"/role", url.Values{"role": {"responder"}}); r.status != http.StatusSeeOther {
		t.Fatalf("set role: %d", r.status)
	}
	if r := b.get("/admin/incidents"); r.status != http.StatusSeeOther {
		t.Fatalf("session survived a role change: %d", r.status)
	}
	b.signIn(op)
	if r := b.get("/admin/incidents/new"); r.status != http.StatusOK {
		t.Fatalf("new role not in force: %d", r.status)
	}
	if e.auditCount("operator.role_changed", op.email) != 1 {
		t.Error("role change not audited")
	}
}

func regexpFind(re, s string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestDisabledOperatorCannotSignIn(t *testing.T) {
	e := newEnv(t)
	admin := e.browser()
	e.enrol(admin, "root@example.com", Admin)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Viewer)
	var id string
	_ = e.pool.QueryRow(context.Background(), `select id::text from operators where email = $1`, op.email).Scan(&id)
	if r := admin.submit("/admin/operators", "/admin/operators/"+id+"/access", url.Values{"disabled": {"true"}}); r.status != http.StatusSeeOther {
		t.Fatalf("disable: %d", r.status)
	}
	if r := b.get("/admin/incidents"); r.status != http.StatusSeeOther {
		t.Fatalf("disabled operator's session: %d", r.status)
	}
	unknown := b.password("nobody@example.com", op.password)
	r := b.password(op.email, op.password)
	if r.status != http.StatusUnauthorized || normalized(r.body, op.email) != normalized(unknown.body, "nobody@example.com") {
		t.Fatalf("disabled operator: %d\n%s", r.status, r.body)
	}
	if r := admin.submit("/admin/operators", "/admin/operators/"+id+"/access", url.Values{"disabled": {"false"}}); r.status != http.StatusSeeOther {
		t.Fatalf("enable: %d", r.status)
	}
	b.signIn(op)
	if e.auditCount("operator.disabled", op.email) != 1 || e.auditCount("operator.enabled", op.email) != 1 {
		t.Error("not audited")
	}
}

// normalized is a page without its CSRF token and with the email typed
// replaced, to compare what two sign-in attempts answered.
func normalized(body, email string) string {
	return strings.ReplaceAll(csrfRE.ReplaceAllString(body, ""), email, "EMAIL")
}

func TestForwardedForIsTrustedOnlyWhenConfigured(t *testing.T) {
	for _, trust := range []bool{false, true} {
		c := &Console{o: Options{TrustForwardedFor: trust}}
		r := httptest.NewRequest("GET", "/admin/login", nil)
		r.RemoteAddr = "10.0.0.1:5555"
		r.Header.Add("X-Forwarded-For", "1.1.1.1, 192.0.2.7")
		want := "10.0.0.1"
		if trust {
			want = "192.0.2.7"
		}
		if got := c.address(r); got != want {
			t.Errorf("trust %v: got %q, want %q", trust, got, want)
		}
	}
}

func TestStaticFilesAndNotFound(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	if r := b.get("/admin/static/console.js"); r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "javascript") {
		t.Errorf("console.js: %d %q", r.status, r.header.Get("Content-Type"))
	}
	if r := b.get("/admin/static/console.css"); r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("console.css: %d %q", r.status, r.header.Get("Content-Type"))
	}
	for _, p := range []string{"/admin/static/", "/admin/static/nope.js", "/admin/nowhere"} {
		if r := b.get(p); r.status != http.StatusNotFound || strings.Contains(r.body, `href="console.js"`) {
			t.Errorf("%s: %d", p, r.status)
		}
	}
}

func TestSessionLimits(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Viewer)
	// Active every hour, the session still ends 12 hours after sign-in.
	for range 11 {
		e.clk.Add(time.Hour)
		if r := b.get("/admin/incidents"); r.status != http.StatusOK {
			t.Fatalf("active session ended early: %d", r.status)
		}
	}
	e.clk.Add(time.Hour)
	if r := b.get("/admin/incidents"); r.status != http.StatusSeeOther {
		t.Fatalf("session past 12 hours: %d", r.status)
	}
	// Between the steps, five minutes at most.
	e.clk.Add(30 * time.Second)
	b.password(op.email, op.password)
	e.clk.Add(5*time.Minute + time.Second)
	r := b.submit("/admin/login", "/admin/login/code", url.Values{"code": {e.code(op.secret, 0)}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "took too long") {
		t.Fatalf("late second step: %d\n%s", r.status, r.body)
	}
}
