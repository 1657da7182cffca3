package demo

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/probes"
)

// clock is a fake clock shared by the target and the runner; it moves only
// when the runner waits for a TOTP window.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	// One second into a TOTP window, so that no run has to wait.
	return &clock{t: time.Unix(1_800_000_000/TOTPPeriod*TOTPPeriod+1, 0)}
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return nil
}

// demoProbes parses the demo configuration for baseURL, as `candor check` would.
func demoProbes(t *testing.T, baseURL string) map[string]probes.Probe {
	t.Helper()
	doc := ProbesYAML(baseURL)
	src, err := config.Parse("demo.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := config.NewChecker(src, func(string) (string, bool) { return "", false })
	var ps []probes.Probe
	c.Decode("$.probes", &ps)
	probes.Check(c, "$.probes", ps)
	if err := c.Err(); err != nil {
		t.Fatalf("the demo configuration has problems:\n%v", err)
	}
	out := map[string]probes.Probe{}
	for _, p := range ps {
		// Words, runbooks and components follow roles: the demo declares
		// every step's, as it teaches.
		for _, st := range p.Steps {
			if st.Role == "" || !st.Role.Valid() {
				t.Errorf("%s step %s: role %q; every demo step declares one", p.Name, st.Name, st.Role)
			}
		}
		out[p.Name] = p
	}
	if len(out) != 3 {
		t.Fatalf("got probes %v, want login, login-remembered and login-security", out)
	}
	return out
}

func compile(t *testing.T, p probes.Probe) *probes.Plan {
	t.Helper()
	pl, err := probes.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func describe(r probes.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s at %q (%d) class %q signals %v: %s\n", r.Probe, r.Outcome, r.FailedStep, r.FailedIdx, r.Class, r.Signals, r.Message)
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "  %-24s %d %v %s\n", s.Name, s.Status, s.OK, s.Latency)
	}
	return b.String()
}

func TestDemoFlowsPass(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			clk := newClock()
			target := New(Options{Now: clk.Now})
			defer target.Close()
			var srv *httptest.Server
			opts := probes.RunnerOptions{Location: "test", Now: clk.Now, Sleep: clk.Sleep}
			if tls {
				srv = httptest.NewUnstartedServer(target)
				// The runner's test for old protocol versions is a refused
				// handshake, which the server would log.
				srv.Config.ErrorLog = log.New(io.Discard, "", 0)
				srv.StartTLS()
				pool := x509.NewCertPool()
				pool.AddCert(srv.Certificate())
				opts.RootCAs = pool
			} else {
				srv = httptest.NewServer(target)
			}
			defer srv.Close()
			r := probes.NewRunner(opts)
			defer r.Close()
			for _, name := range []string{"login", "login-remembered", "login-security"} {
				p := demoProbes(t, srv.URL)[name]
				res := r.Run(context.Background(), compile(t, p))
				if res.Outcome != probes.OutcomeOK || len(res.Steps) != len(p.Steps) {
					t.Errorf("got\n%s", describe(res))
				}
				if tls && res.CertNotAfter == nil {
					t.Errorf("%s: no TLS check over HTTPS", name)
				}
				if res.Location != "test" || res.Start.Location() != time.UTC {
					t.Errorf("%s: location %q, start %v: want test, UTC", name, res.Location, res.Start)
				}
			}
			kinds := map[string]int{}
			for _, e := range target.Events() {
				kinds[e.Kind]++
			}
			if kinds["login"] != 3 || kinds["recovery_login"] != 1 || kinds["password_failed"] != 1 || kinds["totp_failed"] != 2 {
				t.Errorf("login events %v", kinds)
			}
		})
	}
}

func TestEachFaultFailsTheFlowAtTheExpectedStep(t *testing.T) {
	for _, tc := range []struct {
		fault   Fault
		probe   string
		outcome probes.Outcome
		step    string
		class   probes.ErrorClass
		signal  probes.Signal
	}{
		{Fault{Mode: FaultEventsDown}, "login", probes.OutcomeFailed, "password", probes.ClassHTTPStatus, ""},
		{Fault{Mode: FaultError, Step: "totp"}, "login", probes.OutcomeFailed, "totp", probes.ClassHTTPStatus, ""},
		{Fault{Mode: FaultError, Step: "dashboard"}, "login", probes.OutcomeFailed, "dashboard", probes.ClassHTTPStatus, ""},
		{Fault{Mode: FaultError, Step: "recovery"}, "login-remembered", probes.OutcomeFailed, "recovery", probes.ClassHTTPStatus, ""},
		{Fault{Mode: FaultSlow, Step: "password", MS: 300}, "login", probes.OutcomeDegraded, "", "", ""},
		{Fault{Mode: FaultSlow, Step: "login_page", MS: 5000}, "login", probes.OutcomeFailed, "login_page", probes.ClassTimeout, ""},
		{Fault{Mode: FaultHang, Step: "totp_page"}, "login", probes.OutcomeFailed, "totp_page", probes.ClassTimeout, ""},
		{Fault{Mode: FaultClockSkew, Seconds: 120}, "login", probes.OutcomeFailed, "totp", probes.ClassTOTPRejected, ""},
		{Fault{Mode: FaultSkip2SA}, "login", probes.OutcomeFailed, "password", probes.ClassSecurityCheck, probes.SignalSecondStepSkipped},
		{Fault{Mode: FaultSkip2SA}, "login-security", probes.OutcomeFailed, "password", probes.ClassSecurityCheck, probes.SignalSecondStepSkipped},
		{Fault{Mode: FaultAcceptAnyCode}, "login-security", probes.OutcomeFailed, "wrong_code", probes.ClassSecurityCheck, probes.SignalWrongCodeAccepted},
	} {
		t.Run(tc.fault.Mode+"/"+tc.fault.Step+"/"+tc.probe, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			target := New(Options{Now: clk.Now})
			defer target.Close()
			srv := httptest.NewServer(target)
			defer srv.Close()
			// Inject the fault the way a person does: POST /_fault from loopback.
			body := fmt.Sprintf(`{"mode":%q,"step":%q,"ms":%d,"seconds":%d}`, tc.fault.Mode, tc.fault.Step, tc.fault.MS, tc.fault.Seconds)
			resp, err := http.Post(srv.URL+"/_fault", "application/json", strings.NewReader(body))
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /_fault: %v %v", resp, err)
			}
			resp.Body.Close()

			p := demoProbes(t, srv.URL)[tc.probe]
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
			if tc.signal != "" && (len(res.Signals) != 1 || res.Signals[0] != tc.signal) {
				t.Errorf("signals %v, want [%s]", res.Signals, tc.signal)
			}
			if tc.signal == "" && len(res.Signals) != 0 {
				t.Errorf("signals %v, want none: an availability failure is not a security finding", res.Signals)
			}
			if tc.class == probes.ClassTOTPRejected {
				if d := res.ClockOffset - 120*time.Second; d < -time.Second || d > time.Second {
					t.Errorf("clock offset %s, want about 2m0s", res.ClockOffset)
				}
				if !strings.Contains(res.Message, "2m0s ahead of ours") {
					t.Errorf("message %q should say the server's clock is 2m0s ahead", res.Message)
				}
			}
			if strings.Contains(res.Message, Password) || strings.Contains(res.Message, TOTPSecret) {
				t.Errorf("the message leaks a secret: %s", res.Message)
			}

			// Clearing the fault makes the flow pass again.
			req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/_fault", nil)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE /_fault: %v %v", resp, err)
			}
			_ = clk.Sleep(context.Background(), TOTPPeriod*time.Second) // a fresh code
			p.DegradedAfter = config.Duration{}
			if res := r.Run(context.Background(), compile(t, p)); res.Outcome != probes.OutcomeOK {
				t.Errorf("after clearing the fault, got\n%s", describe(res))
			}
		})
	}
}

func TestFaultsOnlyFromLoopback(t *testing.T) {
	target := New(Options{})
	defer target.Close()
	for _, method := range []string{http.MethodPost, http.MethodDelete, http.MethodGet} {
		req := httptest.NewRequest(method, "/_fault", strings.NewReader(`{"mode":"events_down"}`))
		req.RemoteAddr = "192.0.2.7:4444"
		w := httptest.NewRecorder()
		target.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden {
			t.Errorf("%s /_fault from 192.0.2.7: %d, want 403", method, w.Code)
		}
	}
	if target.currentFault().Mode != "" {
		t.Error("a fault was set from a non-loopback address")
	}
	for _, body := range []string{`{"mode":"nope"}`, `{"mode":"error"}`, `{"mode":"slow","step":"totp"}`, `not json`} {
		req := httptest.NewRequest(http.MethodPost, "/_fault", strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:4444"
		w := httptest.NewRecorder()
		target.ServeHTTP(w, req)
		if w.Code != http.StatusBadRequest {
			t.Errorf("POST /_fault %s: %d, want 400", body, w.Code)
		}
	}
}

// A JSON login API with a separate TOTP call needs no code, only configuration.
func TestJSONLoginAPIFlow(t *testing.T) {
	clk := newClock()
	target := New(Options{Now: clk.Now})
	defer target.Close()
	srv := httptest.NewServer(target)
	defer srv.Close()
	doc := fmt.Sprintf(`probes:
  - name: api-login
    target: %s
    vars: {email: api@example.com}
    secrets: {password: "${PW}", seed: "${SEED}"}
    steps:
      - name: password
        url: /api/login
        json: {email: "{{ .email }}", password: "{{ .password }}"}
        expect:
          - status: 200
          - body: {json: $.status, equals: totp_required}
        extract:
          - {var: ticket, json: $.ticket}
      - name: totp
        url: /api/login/totp
        json: {ticket: "{{ .ticket }}", code: "{{ totp .seed \"sha1\" 6 15 }}"}
        expect:
          - body: {json: $.session.email, equals: "{{ .email }}"}
        extract:
          - {var: token, json: "$.session[\"token\"]"}
      - name: me
        url: /api/me
        headers: {Authorization: "Bearer {{ .token }}"}
        expect:
          - header: {name: Content-Type, regex: "^application/json"}
          - body: {json: $.email, equals: "{{ .email }}"}
`, srv.URL)
	src, err := config.Parse("api.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := config.NewChecker(src, func(k string) (string, bool) {
		return map[string]string{"PW": Password, "SEED": TOTPSecret}[k], true
	})
	var ps []probes.Probe
	c.Decode("$.probes", &ps)
	probes.Check(c, "$.probes", ps)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	r := probes.NewRunner(probes.RunnerOptions{Now: clk.Now, Sleep: clk.Sleep})
	defer r.Close()
	if res := r.Run(context.Background(), compile(t, ps[0])); res.Outcome != probes.OutcomeOK {
		t.Fatalf("got\n%s", describe(res))
	}
	// The same code again is refused: the TOTP step fails as totp_rejected.
	if res := r.Run(context.Background(), compile(t, ps[0])); res.Class != probes.ClassTOTPRejected || res.FailedStep != "totp" {
		t.Fatalf("replay: got\n%s", describe(res))
	}
}
