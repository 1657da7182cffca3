package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/probes"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// jsonProfileConfig is the configuration written for the json profile, with
// names unlike the demo's.
const jsonProfileConfig = "../../cmd/candor/testdata/json-profile.yaml"

// defaultTarget is the address `candor demo-target` serves on by default,
// which jsonProfileConfig's probes name.
const defaultTarget = "http://127.0.0.1:8081"

// jsonProfileProbes reads the probes of jsonProfileConfig, checked as
// `candor check` checks them, each aimed at baseURL.
func jsonProfileProbes(t *testing.T, baseURL string) map[string]probes.Probe {
	t.Helper()
	data, err := os.ReadFile(jsonProfileConfig)
	if err != nil {
		t.Fatal(err)
	}
	// Aim the probes at baseURL instead of the json profile's default address.
	doc := strings.ReplaceAll(string(data), "target: "+defaultTarget+"\n", "target: "+baseURL+"\n")
	if strings.Contains(doc, defaultTarget) {
		t.Fatalf("%s names %s other than as a probe's target", jsonProfileConfig, defaultTarget)
	}
	src, err := config.Parse(jsonProfileConfig, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := config.NewChecker(src, func(string) (string, bool) { return "", false })
	var ps []probes.Probe
	c.Decode("$.probes", &ps)
	probes.Check(c, "$.probes", ps)
	if err := c.Err(); err != nil {
		t.Fatalf("%s has problems:\n%v", jsonProfileConfig, err)
	}
	out := map[string]probes.Probe{}
	for _, p := range ps {
		for _, st := range p.Steps {
			if !st.Role.Valid() || st.Role == probes.RoleOther {
				t.Errorf("%s step %s: role %q; every step of this configuration declares what it means", p.Name, st.Name, st.Role)
			}
		}
		out[p.Name] = p
	}
	if len(out) != 2 {
		t.Fatalf("got probes %v, want api-login and api-refusals", out)
	}
	return out
}

// jsonTarget serves the json profile on loopback with the fake clock.
func jsonTarget(t *testing.T) (*Target, *httptest.Server, *clock) {
	t.Helper()
	clk := newClock()
	target := New(Options{Now: clk.Now, Profile: ProfileJSON})
	srv := httptest.NewServer(target)
	t.Cleanup(func() { srv.Close(); target.Close() })
	return target, srv, clk
}

// postFault injects a fault the way a person does: POST /_fault from loopback.
func postFault(t *testing.T, baseURL string, f Fault) {
	t.Helper()
	body, _ := json.Marshal(f)
	resp, err := http.Post(baseURL+"/_fault", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /_fault %s: %d %s", body, resp.StatusCode, b)
	}
}

func TestJSONProfileFlowsPass(t *testing.T) {
	target, srv, clk := jsonTarget(t)
	r := probes.NewRunner(probes.RunnerOptions{Location: "test", Now: clk.Now, Sleep: clk.Sleep})
	defer r.Close()
	ps := jsonProfileProbes(t, srv.URL)
	for _, name := range []string{"api-login", "api-refusals"} {
		p := ps[name]
		res := r.Run(context.Background(), compile(t, p))
		if res.Outcome != probes.OutcomeOK || len(res.Steps) != len(p.Steps) {
			t.Errorf("got\n%s", describe(res))
		}
	}
	// The next code window: the account's new code is accepted, once.
	_ = clk.Sleep(context.Background(), TOTPPeriod*time.Second)
	if res := r.Run(context.Background(), compile(t, ps["api-login"])); res.Outcome != probes.OutcomeOK {
		t.Errorf("second run, next window: got\n%s", describe(res))
	}
	kinds := map[string]int{}
	for _, e := range target.Events() {
		kinds[e.Kind]++
	}
	if kinds["login"] != 3 || kinds["logout"] != 2 || kinds["password_failed"] != 1 || kinds["totp_failed"] != 2 {
		t.Errorf("login events %v", kinds)
	}
}

func TestJSONProfileFaultsFailTheFlowAtTheExpectedStep(t *testing.T) {
	for _, tc := range []struct {
		fault   Fault
		probe   string
		outcome probes.Outcome
		step    string
		status  int // the failed step's status; 0 when it had no answer
		class   probes.ErrorClass
		signal  probes.Signal
	}{
		// A storage failure behind the API: a slow 401 at the password step,
		// the same answer as a wrong password.
		{Fault{Mode: FaultEventsDown, MS: 300}, "api-login", probes.OutcomeFailed, "authenticate", 401, probes.ClassHTTPStatus, ""},
		{Fault{Mode: FaultRateLimited}, "api-login", probes.OutcomeFailed, "verify-otp", 429, probes.ClassRateLimited, ""},
		{Fault{Mode: FaultError, Step: "dashboard"}, "api-login", probes.OutcomeFailed, "whoami", 401, probes.ClassHTTPStatus, ""},
		{Fault{Mode: FaultError, Step: "logout"}, "api-login", probes.OutcomeFailed, "end-session", 401, probes.ClassHTTPStatus, ""},
		{Fault{Mode: FaultSlow, Step: "password", MS: 300}, "api-login", probes.OutcomeDegraded, "", 0, "", ""},
		{Fault{Mode: FaultSlow, Step: "totp", MS: 3000}, "api-login", probes.OutcomeFailed, "verify-otp", 0, probes.ClassTimeout, ""},
		{Fault{Mode: FaultHang, Step: "dashboard"}, "api-login", probes.OutcomeFailed, "whoami", 0, probes.ClassTimeout, ""},
		{Fault{Mode: FaultClockSkew, Seconds: 120}, "api-login", probes.OutcomeFailed, "verify-otp", 401, probes.ClassTOTPRejected, ""},
		{Fault{Mode: FaultSkip2SA}, "api-login", probes.OutcomeFailed, "authenticate", 200, probes.ClassSecurityCheck, probes.SignalSecondStepSkipped},
		{Fault{Mode: FaultSkip2SA}, "api-refusals", probes.OutcomeFailed, "authenticate", 200, probes.ClassSecurityCheck, probes.SignalSecondStepSkipped},
		{Fault{Mode: FaultAcceptAnyCode}, "api-refusals", probes.OutcomeFailed, "bad-otp", 200, probes.ClassSecurityCheck, probes.SignalWrongCodeAccepted},
	} {
		t.Run(tc.fault.Mode+"/"+tc.fault.Step+"/"+tc.probe, func(t *testing.T) {
			t.Parallel()
			_, srv, clk := jsonTarget(t)
			postFault(t, srv.URL, tc.fault)
			p := jsonProfileProbes(t, srv.URL)[tc.probe]
			p.DegradedAfter = config.Dur(200 * time.Millisecond)
			for i := range p.Steps {
				p.Steps[i].Timeout = config.Dur(time.Second)
			}
			r := probes.NewRunner(probes.RunnerOptions{Now: clk.Now, Sleep: clk.Sleep})
			defer r.Close()
			res := r.Run(context.Background(), compile(t, p))
			if res.Outcome != tc.outcome || res.FailedStep != tc.step || res.Class != tc.class {
				t.Fatalf("got\n%swant %s at %q with class %q", describe(res), tc.outcome, tc.step, tc.class)
			}
			if tc.step != "" {
				if got := res.Steps[len(res.Steps)-1]; got.Name != tc.step || got.Status != tc.status {
					t.Errorf("failed step %s answered %d, want %s answering %d", got.Name, got.Status, tc.step, tc.status)
				}
			}
			if tc.signal != "" && (len(res.Signals) != 1 || res.Signals[0] != tc.signal) {
				t.Errorf("signals %v, want [%s]", res.Signals, tc.signal)
			}
			if tc.signal == "" && len(res.Signals) != 0 {
				t.Errorf("signals %v, want none: an availability failure is not a security finding", res.Signals)
			}
			if strings.Contains(res.Message, Password) || strings.Contains(res.Message, TOTPSecret) {
				t.Errorf("the message leaks a secret: %s", res.Message)
			}
			// Where every refusal is the same 401, what the body said is
			// what tells a person more than the status does.
			if tc.status == http.StatusUnauthorized && !strings.Contains(res.Message, "Authentication failed") {
				t.Errorf("message %q does not say what the target answered (Authentication failed)", res.Message)
			}

			req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/_fault", nil)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE /_fault: %v %v", resp, err)
			}
			_ = clk.Sleep(context.Background(), time.Minute) // a fresh code, and the rate limit's minute over
			p.DegradedAfter = config.Duration{}
			if res := r.Run(context.Background(), compile(t, p)); res.Outcome != probes.OutcomeOK {
				t.Errorf("after clearing the fault, got\n%s", describe(res))
			}
		})
	}
}

// apiClient speaks to the json profile as an application would.
type apiClient struct {
	t    *testing.T
	base string
}

func (c apiClient) do(method, path, bearer string, in any) (int, http.Header, map[string]any) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			c.t.Fatalf("%s %s answered %d with a body that is not JSON: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, resp.Header, out
}

// mfaToken signs in with the password and returns the token for the code call.
func (c apiClient) mfaToken(email string) string {
	c.t.Helper()
	status, _, out := c.do(http.MethodPost, "/api/session", "", map[string]string{"email": email, "password": Password})
	tok, _ := out["mfa_token"].(string)
	if status != http.StatusOK || out["mfa_required"] != true || tok == "" {
		c.t.Fatalf("POST /api/session: %d %v", status, out)
	}
	return tok
}

func code(t *testing.T, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(TOTPSecret, at, totp.ValidateOpts{Period: TOTPPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJSONProfileAnswers(t *testing.T) {
	target, srv, clk := jsonTarget(t)
	api := apiClient{t, srv.URL}
	const email = "answers@example.com"
	authFailed := map[string]any{"error": "Authentication failed"}

	// Every refusal looks the same: a wrong password, an unknown account, a
	// body that is not JSON, a missing token.
	for _, in := range []any{
		map[string]string{"email": email, "password": "wrong"},
		map[string]string{"email": "someone@elsewhere.test", "password": Password},
		"not an object",
	} {
		if status, _, out := api.do(http.MethodPost, "/api/session", "", in); status != 401 || fmt.Sprint(out) != fmt.Sprint(authFailed) {
			t.Errorf("POST /api/session %v: %d %v, want 401 %v", in, status, out, authFailed)
		}
	}
	if status, _, out := api.do(http.MethodGet, "/api/me", "", nil); status != 401 || fmt.Sprint(out) != fmt.Sprint(authFailed) {
		t.Errorf("GET /api/me without a token: %d %v", status, out)
	}

	// A full login, a code used once.
	c := code(t, clk.Now())
	status, _, out := api.do(http.MethodPost, "/api/session/mfa", "", map[string]string{"mfa_token": api.mfaToken(email), "code": c})
	token, _ := out["token"].(string)
	if status != 200 || token == "" {
		t.Fatalf("POST /api/session/mfa: %d %v", status, out)
	}
	if status, _, out := api.do(http.MethodGet, "/api/me", token, nil); status != 200 || out["email"] != email {
		t.Errorf("GET /api/me: %d %v", status, out)
	}
	if status, _, out := api.do(http.MethodPost, "/api/session/mfa", "", map[string]string{"mfa_token": api.mfaToken(email), "code": c}); status != 401 || out["error"] != "code already used" {
		t.Errorf("the same code again: %d %v, want 401 code already used", status, out)
	}
	if status, _, _ := api.do(http.MethodDelete, "/api/session", token, nil); status != http.StatusNoContent {
		t.Errorf("DELETE /api/session: %d, want 204", status)
	}
	if status, _, _ := api.do(http.MethodGet, "/api/me", token, nil); status != 401 {
		t.Errorf("GET /api/me after signing out: %d, want 401", status)
	}

	// The code rate limit: after CodeFailuresPerMinute refused codes, even the
	// right code is answered 429 until the minute has passed. (A minute
	// first, so that the replay above no longer counts.)
	_ = clk.Sleep(context.Background(), time.Minute)
	for i := range CodeFailuresPerMinute {
		if status, _, _ := api.do(http.MethodPost, "/api/session/mfa", "", map[string]string{"mfa_token": api.mfaToken(email), "code": "000000"}); status != 401 {
			t.Fatalf("wrong code %d: %d, want 401", i+1, status)
		}
	}
	_ = clk.Sleep(context.Background(), TOTPPeriod*time.Second)
	tok := api.mfaToken(email)
	status, h, out := api.do(http.MethodPost, "/api/session/mfa", "", map[string]string{"mfa_token": tok, "code": code(t, clk.Now())})
	ra, err := strconv.Atoi(h.Get("Retry-After"))
	if status != http.StatusTooManyRequests || err != nil || ra < 1 || ra > 60 {
		t.Fatalf("a right code after %d wrong ones: %d Retry-After %q %v, want 429 with Retry-After in 1..60", CodeFailuresPerMinute, status, h.Get("Retry-After"), out)
	}
	_ = clk.Sleep(context.Background(), time.Duration(ra)*time.Second)
	if status, _, out := api.do(http.MethodPost, "/api/session/mfa", "", map[string]string{"mfa_token": tok, "code": code(t, clk.Now())}); status != 200 {
		t.Errorf("after Retry-After: %d %v, want 200", status, out)
	}

	// No form and no recovery codes in this shape.
	for _, path := range []string{"/login", "/2fa/recovery", "/dashboard"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404: the json profile has no form pages", path, resp.StatusCode)
		}
	}

	// A storage failure: the right password gets the wrong password's answer, late.
	if err := target.SetFault(Fault{Mode: FaultEventsDown, MS: 50}); err != nil {
		t.Fatal(err)
	}
	if status, _, out := api.do(http.MethodPost, "/api/session", "", map[string]string{"email": email, "password": Password}); status != 401 || fmt.Sprint(out) != fmt.Sprint(authFailed) {
		t.Errorf("right password with the events store down: %d %v, want 401 %v", status, out, authFailed)
	}
}

func TestFaultStepsFollowTheProfile(t *testing.T) {
	for _, tc := range []struct {
		profile string
		fault   string
		want    int
	}{
		{ProfileJSON, `{"mode":"error","step":"login_page"}`, http.StatusBadRequest},
		{ProfileJSON, `{"mode":"hang","step":"recovery"}`, http.StatusBadRequest},
		{ProfileJSON, `{"mode":"error","step":"totp"}`, http.StatusOK},
		{ProfileJSON, `{"mode":"events_down","ms":-1}`, http.StatusBadRequest},
		{ProfileJSON, `{"mode":"rate_limited"}`, http.StatusOK},
		{ProfileForm, `{"mode":"error","step":"login_page"}`, http.StatusOK},
		{ProfileForm, `{"mode":"rate_limited"}`, http.StatusOK},
	} {
		target := New(Options{Profile: tc.profile})
		req := httptest.NewRequest(http.MethodPost, "/_fault", strings.NewReader(tc.fault))
		req.RemoteAddr = "127.0.0.1:4444"
		w := httptest.NewRecorder()
		target.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("profile %s, POST /_fault %s: %d %s, want %d", tc.profile, tc.fault, w.Code, w.Body, tc.want)
		}
		target.Close()
	}
}

// The rate_limited fault is a fault of the code step in the form profile too.
func TestFormProfileRateLimitedFault(t *testing.T) {
	clk := newClock()
	target := New(Options{Now: clk.Now})
	defer target.Close()
	srv := httptest.NewServer(target)
	defer srv.Close()
	postFault(t, srv.URL, Fault{Mode: FaultRateLimited})
	r := probes.NewRunner(probes.RunnerOptions{Now: clk.Now, Sleep: clk.Sleep})
	defer r.Close()
	res := r.Run(context.Background(), compile(t, demoProbes(t, srv.URL)["login"]))
	if res.FailedStep != "totp" || res.Class != probes.ClassRateLimited || res.Steps[len(res.Steps)-1].Status != http.StatusTooManyRequests {
		t.Errorf("got\n%swant a 429 at totp, class rate_limited", describe(res))
	}
}
