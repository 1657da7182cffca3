package probes

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// codeTarget answers a TOTP step in the way each path names, with a Date
// header from clk so that its clock agrees with the probe's.
func codeTarget(t *testing.T, clk *fakeClock) *httptest.Server {
	t.Helper()
	date := func(w http.ResponseWriter) { w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat)) }
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rate-limited", func(w http.ResponseWriter, r *http.Request) {
		date(w)
		w.Header().Set("Retry-After", "30")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error": "too many attempts"}`)
	})
	mux.HandleFunc("POST /retry-after-401", func(w http.ResponseWriter, r *http.Request) {
		date(w)
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("POST /used", func(w http.ResponseWriter, r *http.Request) {
		date(w)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error": {"code": 40102, "message": "This code was already used"}}`)
	})
	mux.HandleFunc("POST /refused", func(w http.ResponseWriter, r *http.Request) {
		date(w)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, "<html><head><title>Authentication failed</title></head><body>Try again</body></html>")
	})
	mux.HandleFunc("POST /refused-late-clock", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", clk.Now().Add(-2*time.Minute).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("POST /accepted-other-page", func(w http.ResponseWriter, r *http.Request) {
		date(w)
		fmt.Fprint(w, "<title>Storage unavailable</title><p>We could not load your account</p>")
	})
	mux.HandleFunc("POST /invalid-code-page", func(w http.ResponseWriter, r *http.Request) {
		date(w)
		fmt.Fprint(w, "<title>Two-step verification</title><p class=error>Invalid code. Try again.</p>")
	})
	mux.HandleFunc("POST /unavailable", func(w http.ResponseWriter, r *http.Request) {
		date(w)
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /page-rate-limited", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestARefusedCodeSaysWhatTheEvidencePointsTo(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_010, 0)} // the start of a code window
	srv := codeTarget(t, clk)
	for _, tc := range []struct {
		path    string
		expect  string // the step's expect, YAML
		class   ErrorClass
		says    []string
		notSays []string
	}{
		{path: "/rate-limited", expect: "[{status: 200}]", class: ClassRateLimited,
			says: []string{`answered 429 "too many attempts"`, "the target's rate limit refused the code before checking it (Retry-After: 30 s)"}, notSays: []string{"seed"}},
		{path: "/retry-after-401", expect: "[{status: 200}]", class: ClassRateLimited, says: []string{"Retry-After: 60 s"}},
		{path: "/used", expect: "[{status: 200}]", class: ClassTOTPRejected,
			says: []string{`answered 401 "This code was already used"`, "it says the code was already used"}, notSays: []string{"seed"}},
		{path: "/refused", expect: "[{status: 303}]", class: ClassTOTPRejected,
			says: []string{`expected status 303; answered 401 "Authentication failed" after`, "its clock agrees with ours", "suspect the seed or the code check"}},
		{path: "/refused-late-clock", expect: "[{status: 200}]", class: ClassTOTPRejected,
			says: []string{"its clock is about 2m0s behind ours"}, notSays: []string{"suspect the seed"}},
		{path: "/accepted-other-page", expect: "[{body: {contains: Welcome}}]", class: ClassAssertion,
			says: []string{`the body does not contain "Welcome"; answered 200 "Storage unavailable"`}, notSays: []string{"TOTP", "seed"}},
		{path: "/invalid-code-page", expect: "[{body: {contains: Welcome}}]", class: ClassTOTPRejected,
			says: []string{`answered 200 "Two-step verification"`, "suspect the seed or the code check"}},
		{path: "/unavailable", expect: "[{status: 200}]", class: ClassHTTPStatus, says: []string{"answered 503"}},
	} {
		doc := fmt.Sprintf(`probes:
  - name: code
    target: %s
    secrets: {seed: "${SEED}"}
    steps:
      - name: verify
        role: second_factor
        url: %s
        form: {code: "{{ totp .seed }}"}
        expect: %s
`, srv.URL, tc.path, tc.expect)
		p := plans(t, doc, map[string]string{"SEED": "JBSWY3DPEHPK3PXP"})[0]
		r := NewRunner(RunnerOptions{Now: clk.Now, Sleep: clk.Sleep})
		res := r.Run(context.Background(), p)
		r.Close()
		if res.Class != tc.class || res.FailedRole != RoleSecondFactor {
			t.Errorf("%s: got %s at role %q (%s), want %s at second_factor", tc.path, res.Class, res.FailedRole, res.Message, tc.class)
		}
		for _, want := range tc.says {
			if !strings.Contains(res.Message, want) {
				t.Errorf("%s: message %q does not say %q", tc.path, res.Message, want)
			}
		}
		for _, not := range tc.notSays {
			if strings.Contains(res.Message, not) {
				t.Errorf("%s: message %q says %q", tc.path, res.Message, not)
			}
		}
	}
}

func TestATargetAnswering429AnywhereIsRateLimited(t *testing.T) {
	srv := codeTarget(t, &fakeClock{t: time.Now()})
	p := plans(t, fmt.Sprintf(`probes:
  - name: page
    target: %s
    steps: [{name: start, role: login_page, url: /page-rate-limited, expect: [{status: 200}]}]
`, srv.URL), nil)[0]
	r := NewRunner(RunnerOptions{})
	defer r.Close()
	res := r.Run(context.Background(), p)
	if res.Class != ClassRateLimited || !res.Class.ProbeProblem() || len(res.Signals) != 0 {
		t.Errorf("got %s %v (%s), want rate_limited, a probe problem, no signal", res.Class, res.Signals, res.Message)
	}
	if !strings.Contains(res.Message, "the target is limiting the probe's requests") {
		t.Errorf("message %q does not say the probe is rate-limited", res.Message)
	}
}

func TestFailureMessagesSayWhatTheTargetAnsweredAndHowLong(t *testing.T) {
	var failing atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("POST /session", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if failing.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			// A target that echoes what it was sent: the password must not show.
			fmt.Fprintf(w, `{"message": "Authentication failed for %s"}`, r.PostForm.Get("password"))
			return
		}
		fmt.Fprint(w, `{"ok": true}`)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p := plans(t, fmt.Sprintf(`probes:
  - name: api
    target: %s
    secrets: {password: "${PW}"}
    steps:
      - name: sign_in
        role: password
        url: /session
        form: {password: "{{ .password }}"}
        expect: [{status: 200}]
  - name: slow
    target: %s
    steps: [{name: page, role: login_page, url: /slow, timeout: 200ms}]
`, srv.URL, srv.URL), map[string]string{"PW": "correct horse"})
	r := NewRunner(RunnerOptions{})
	defer r.Close()

	failing.Store(true)
	res := r.Run(context.Background(), p[0])
	if strings.Contains(res.Message, "usually") {
		t.Errorf("before any success the usual latency is unknown, yet: %s", res.Message)
	}
	failing.Store(false)
	for range minLatencySamples {
		if res := r.Run(context.Background(), p[0]); res.Outcome != OutcomeOK {
			t.Fatalf("a good run failed: %s", res.Message)
		}
	}
	failing.Store(true)
	res = r.Run(context.Background(), p[0])
	for _, want := range []string{
		`step "sign_in" (POST /session): expected status 200; answered 401 "Authentication failed for [redacted]" after `,
		" (limit 10 s); usually ",
	} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message %q does not say %q", res.Message, want)
		}
	}
	if strings.Contains(res.Message, "correct") || strings.Contains(res.Message, "horse") {
		t.Errorf("message leaks the password: %s", res.Message)
	}
	if res.Class != ClassHTTPStatus || res.FailedRole != RolePassword || res.Steps[0].Role != RolePassword {
		t.Errorf("got %s, role %q, step role %q; want http_status at password", res.Class, res.FailedRole, res.Steps[0].Role)
	}

	res = r.Run(context.Background(), p[1])
	if want := `step "page" (GET /slow): timed out after 0.2 s, the step's limit`; res.Class != ClassTimeout || !strings.Contains(res.Message, want) {
		t.Errorf("got %s (%s), want timeout saying %q", res.Class, res.Message, want)
	}
}

func TestEachLocationSignsInWithItsOwnAccount(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got.Store(r.PostForm.Get("user") + " " + r.PostForm.Get("password"))
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "wrong password %s for %s", r.PostForm.Get("password"), r.PostForm.Get("user"))
	}))
	defer srv.Close()
	p := plans(t, fmt.Sprintf(`probes:
  - name: login
    target: %s
    vars: {user: default@example.com}
    secrets: {password: "${PW}"}
    locations:
      - name: eu-west
        vars: {user: eu@example.com}
        secrets: {password: "${EU_PW}"}
      - us-east
    steps: [{name: sign_in, role: password, url: /, form: {user: "{{ .user }}", password: "{{ .password }}"}}]
`, srv.URL), map[string]string{"PW": "us-secret-pw", "EU_PW": "eu-secret-pw"})[0]
	if !p.RunsAt("eu-west") || !p.RunsAt("us-east") || p.RunsAt("ap-south") {
		t.Errorf("RunsAt: the probe runs at exactly eu-west and us-east")
	}
	for _, tc := range []struct{ location, sent string }{
		{"eu-west", "eu@example.com eu-secret-pw"},
		{"us-east", "default@example.com us-secret-pw"},
	} {
		r := NewRunner(RunnerOptions{Location: tc.location})
		res := r.Run(context.Background(), p)
		r.Close()
		if s, _ := got.Load().(string); s != tc.sent {
			t.Errorf("%s sent %q, want %q", tc.location, s, tc.sent)
		}
		if strings.Contains(res.Message, "secret-pw") || !strings.Contains(res.Message, "[redacted]") {
			t.Errorf("%s: message %q should show where the password was redacted", tc.location, res.Message)
		}
	}
}

func TestSaid(t *testing.T) {
	long := strings.Repeat("word ", 40)
	for _, tc := range []struct {
		contentType, body, want string
	}{
		{"text/html", "<html><head><title> Sign in \n to Acme </title></head><body>x</body></html>", "Sign in to Acme"},
		{"text/html", "<html><head><script>var x=1</script></head><body><h1>Bad\tgateway</h1></body></html>", "Bad gateway"},
		{"application/json", `{"error": "invalid_grant", "error_description": "Code expired"}`, "Code expired"},
		{"application/json", `{"errors": [{"code": 1}], "error": {"message": "Account locked"}}`, "Account locked"},
		{"application/json", `{"errors": ["first"], "detail": "second"}`, "second"},
		{"", `{"status": "down"}`, `{"status": "down"}`},
		{"text/plain", "  upstream\x00 connect error  ", "upstream connect error"},
		{"text/plain", long, strings.TrimSpace(long)[:saidLimit] + "…"},
		{"text/html", "", ""},
	} {
		if got := said(tc.contentType, []byte(tc.body)); got != tc.want {
			t.Errorf("said(%q, %q) = %q, want %q", tc.contentType, tc.body, got, tc.want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{5020 * time.Millisecond, "5.02 s"}, {900 * time.Millisecond, "0.9 s"}, {10 * time.Second, "10 s"},
		{14500 * time.Millisecond, "14.5 s"}, {3 * time.Millisecond, "0.003 s"}, {0, "0.001 s"},
	} {
		if got := seconds(tc.d); got != tc.want {
			t.Errorf("seconds(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestCodeRefusal(t *testing.T) {
	for _, tc := range []struct {
		status        int
		body          string
		refused, used bool
	}{
		{401, "", true, false},
		{403, "Forbidden", true, false},
		{422, `{"error":"otp_reused"}`, true, false},
		{400, `{"message":"This code has already been used"}`, true, true},
		{401, "Replay detected", true, true},
		{200, "Welcome back", false, false},
		{200, "Invalid code, try again", true, false},
		{200, "The code you entered is incorrect", true, false},
		{303, "", false, false},
		{404, "Not found", false, false},
		{200, "Enter the code from your app", false, false},
	} {
		if got := codeRefused(tc.status, []byte(tc.body)); got != tc.refused {
			t.Errorf("codeRefused(%d, %q) = %v, want %v", tc.status, tc.body, got, tc.refused)
		}
		if got := codeUsedText.MatchString(tc.body); got != tc.used {
			t.Errorf("used(%q) = %v, want %v", tc.body, got, tc.used)
		}
	}
}
