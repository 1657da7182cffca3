package probes

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/internal/pgtest"
	"github.com/candorhq/candor/probes/demo"
	"github.com/pquerna/otp"
)

// windowAt is the start of a demo code window (15 s) well inside the test's
// fake time.
var windowAt = time.Unix(1_700_000_010, 0).UTC() // a multiple of 15 s

func TestAccountKey(t *testing.T) {
	const seed = "JBSWY3DPEHPK3PXP"
	base := accountKey(seed, DefaultTOTP, map[string]string{"email": "a@example.com", "tenant": "x"})
	if strings.Contains(base, seed) || len(base) != 64 {
		t.Fatalf("got key %q, want 64 hex digits that do not hold the seed", base)
	}
	if got := accountKey(seed, DefaultTOTP, map[string]string{"tenant": "x", "email": "a@example.com"}); got != base {
		t.Errorf("the order of the variables changed the key: got %s, want %s", got, base)
	}
	sha256Params := TOTPParams{Algorithm: otp.AlgorithmSHA256, Digits: 6, Period: 30 * time.Second}
	for name, other := range map[string]string{
		"another seed":    accountKey("JBSWY3DPEHPK3PXQ", DefaultTOTP, map[string]string{"email": "a@example.com", "tenant": "x"}),
		"another account": accountKey(seed, DefaultTOTP, map[string]string{"email": "b@example.com", "tenant": "x"}),
		"8 digits":        accountKey(seed, TOTPParams{Algorithm: DefaultTOTP.Algorithm, Digits: 8, Period: 30 * time.Second}, map[string]string{"email": "a@example.com", "tenant": "x"}),
		"60 s period":     accountKey(seed, TOTPParams{Algorithm: DefaultTOTP.Algorithm, Digits: 6, Period: time.Minute}, map[string]string{"email": "a@example.com", "tenant": "x"}),
		"another hash":    accountKey(seed, sha256Params, map[string]string{"email": "a@example.com", "tenant": "x"}),
		// A value that ends where the next name begins must not collide.
		"shifted": accountKey(seed, DefaultTOTP, map[string]string{"email": "a@example.com\x00tenant=x"}),
	} {
		if other == base {
			t.Errorf("%s: got the same key %s", name, other)
		}
	}
}

func TestClaimsGiveEachWindowToOneProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	// Two claimers on one database are two processes (replicas, locations
	// or `candor probe run` beside `candor serve`).
	a := NewClaims(ClaimsOptions{Pool: pool, Holder: "a"})
	b := NewClaims(ClaimsOptions{Pool: pool, Holder: "b"})
	const acct, other = "account-1", "account-2"
	w0, w1, w2 := windowAt, windowAt.Add(15*time.Second), windowAt.Add(30*time.Second)

	steps := []struct {
		who     string
		c       *Claims
		account string
		window  time.Time
		want    bool
	}{
		{"a takes window 0", a, acct, w0, true},
		{"a again in window 0 (in-process guard)", a, acct, w0, false},
		{"b in window 0 (the database)", b, acct, w0, false},
		{"b in window 0 of another account", b, other, w0, true},
		{"b takes window 1", b, acct, w1, true},
		{"a in window 1", a, acct, w1, false},
		{"a takes window 2", a, acct, w2, true},
		// A target that accepted a later code refuses an older one.
		{"a fresh process in window 1, behind window 2", NewClaims(ClaimsOptions{Pool: pool, Holder: "c"}), acct, w1, false},
	}
	for _, s := range steps {
		if got := s.c.Claim(ctx, s.account, s.window); got != s.want {
			t.Errorf("%s: got %v, want %v", s.who, got, s.want)
		}
	}
	var holders string
	if err := pool.QueryRow(ctx, `select string_agg(claimed_by, ',' order by window_start) from totp_claims where account = $1`, acct).Scan(&holders); err != nil {
		t.Fatal(err)
	}
	if holders != "a,b,a" {
		t.Errorf("claims of %s held by %q, want a,b,a", acct, holders)
	}
}

func TestClaimsWithoutADatabaseGuardThisProcess(t *testing.T) {
	c := NewClaims(ClaimsOptions{})
	if !c.Claim(context.Background(), "acct", windowAt) {
		t.Fatal("the first claim of a window was refused")
	}
	if c.Claim(context.Background(), "acct", windowAt) {
		t.Error("two runs in one process shared a window")
	}
	if !c.Claim(context.Background(), "acct", windowAt.Add(15*time.Second)) {
		t.Error("the next window was refused")
	}
}

func TestClaimsDeleteOldClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	c := NewClaims(ClaimsOptions{Pool: pool})
	day0 := windowAt
	for i := range 5 { // five windows on day 0
		if !c.Claim(ctx, "old", day0.Add(time.Duration(i)*15*time.Second)) {
			t.Fatalf("claim %d refused", i)
		}
	}
	recent := day0.Add(2 * time.Hour)
	if !c.Claim(ctx, "recent", recent) {
		t.Fatal("claim refused")
	}
	// A day and an hour later, the next claim deletes what is older than a day.
	later := day0.Add(25 * time.Hour)
	if !c.Claim(ctx, "now", later) {
		t.Fatal("claim refused")
	}
	rows, err := pool.Query(ctx, `select account from totp_claims order by window_start`)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		left = append(left, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(left, ","); got != "recent,now" {
		t.Errorf("claims left: got %s, want recent,now", got)
	}
}

func TestClaimsAreBestEffortWhenTheDatabaseIsAway(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	var logs bytes.Buffer
	c := NewClaims(ClaimsOptions{Pool: pool, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	pool.Close()
	const seed = "JBSWY3DPEHPK3PXP"
	acct := accountKey(seed, DefaultTOTP, nil)
	if !c.Claim(context.Background(), acct, windowAt) {
		t.Fatal("a claim that could not be stored stopped the run: it must be submitted all the same")
	}
	if c.Claim(context.Background(), acct, windowAt) {
		t.Error("without the database, two runs in one process shared a window")
	}
	if !strings.Contains(logs.String(), "without a cluster-wide claim") {
		t.Errorf("log %q does not say the claim was not stored", logs.String())
	}
	if strings.Contains(logs.String(), seed) {
		t.Errorf("log %q holds the seed", logs.String())
	}
}

// demoPlan compiles the demo probe name against the demo target at url.
func demoPlan(t *testing.T, url, name string, timeout time.Duration) *Plan {
	t.Helper()
	for _, p := range plans(t, demo.ProbesYAML(url), nil) {
		if p.Probe.Name == name {
			if timeout > 0 {
				p.Probe.Timeout = config.Dur(timeout)
				pl, err := Compile(p.Probe)
				if err != nil {
					t.Fatal(err)
				}
				return pl
			}
			return p
		}
	}
	t.Fatalf("no demo probe %s", name)
	return nil
}

// demoTarget serves a demo login target on the fake clock: it accepts each
// code once per account, as real targets do.
func demoTarget(t *testing.T, clk *fakeClock) string {
	t.Helper()
	target := demo.New(demo.Options{Now: clk.Now})
	srv := httptest.NewServer(target)
	t.Cleanup(func() { srv.Close(); target.Close() })
	return srv.URL
}

func TestBackToBackRunsOfOneAccount(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	for _, tc := range []struct {
		name   string
		claims func() *Claims // one per run: two processes
		second ErrorClass
	}{
		// Without claims the second run sends the code the first one used,
		// and the target refuses it: a false totp_rejected.
		{"without claims", func() *Claims { return nil }, ClassTOTPRejected},
		{"with claims", func() *Claims { return NewClaims(ClaimsOptions{Pool: pool}) }, ClassNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 8 s into a 15 s window: the next one is within the demo's 14 s timeout.
			clk := &fakeClock{t: windowAt.Add(8 * time.Second)}
			url := demoTarget(t, clk)
			plan := demoPlan(t, url, "login", 0)
			var got []Result
			for range 2 {
				r := NewRunner(RunnerOptions{Now: clk.Now, Sleep: clk.Sleep, Claims: tc.claims()})
				got = append(got, r.Run(context.Background(), plan))
				r.Close()
			}
			if got[0].Failed() {
				t.Fatalf("first run: got %s at %q: %s", got[0].Class, got[0].FailedStep, got[0].Message)
			}
			if got[1].Class != tc.second {
				t.Fatalf("second run: got class %q at %q (%s), want %q", got[1].Class, got[1].FailedStep, got[1].Message, tc.second)
			}
			if tc.second == ClassNone && !clk.Now().After(windowAt.Add(15*time.Second)) {
				t.Errorf("the second run passed at %s without waiting for the next window (from %s)", clk.Now(), windowAt.Add(15*time.Second))
			}
		})
	}
}

func TestConcurrentRunsOfOneAccountTakeTurns(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	clk := &fakeClock{t: windowAt.Add(8 * time.Second)}
	url := demoTarget(t, clk)
	plan := demoPlan(t, url, "login-security", 0)
	// The run that loses the window sleeps until the winner is done, then
	// the fake clock moves on to the next window: as on a real clock, the
	// winner submits within its window before the loser's window begins.
	firstDone := make(chan struct{})
	var once sync.Once
	sleep := func(ctx context.Context, d time.Duration) error {
		select {
		case <-firstDone:
		case <-ctx.Done():
			return ctx.Err()
		}
		return clk.Sleep(ctx, d)
	}
	results := make(chan Result, 2)
	for _, loc := range []string{"eu", "us"} {
		r := NewRunner(RunnerOptions{Location: loc, Now: clk.Now, Sleep: sleep, Claims: NewClaims(ClaimsOptions{Pool: pool, Holder: loc})})
		defer r.Close()
		go func() {
			res := r.Run(context.Background(), plan)
			once.Do(func() { close(firstDone) })
			results <- res
		}()
	}
	for range 2 {
		if res := <-results; res.Failed() {
			t.Errorf("%s: got %s at %q: %s", res.Location, res.Class, res.FailedStep, res.Message)
		}
	}
}

func TestAWindowTakenBeyondTheTimeoutIsAProbeProblem(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	clk := &fakeClock{t: windowAt.Add(time.Second)}
	url := demoTarget(t, clk)
	first := NewRunner(RunnerOptions{Now: clk.Now, Sleep: clk.Sleep, Claims: NewClaims(ClaimsOptions{Pool: pool, Holder: "serve"})})
	defer first.Close()
	if res := first.Run(context.Background(), demoPlan(t, url, "login", 0)); res.Failed() {
		t.Fatalf("first run: got %s at %q: %s", res.Class, res.FailedStep, res.Message)
	}
	// The next window is 14 s away; a run with 5 s to live cannot wait for it.
	second := NewRunner(RunnerOptions{Now: clk.Now, Sleep: clk.Sleep, Claims: NewClaims(ClaimsOptions{Pool: pool, Holder: "probe-run"})})
	defer second.Close()
	res := second.Run(context.Background(), demoPlan(t, url, "login", 5*time.Second))
	if res.Class != ClassCodeWindowTaken || res.FailedStep != "totp" {
		t.Fatalf("got class %q at %q (%s), want code_window_taken at totp", res.Class, res.FailedStep, res.Message)
	}
	if !res.Class.ProbeProblem() {
		t.Error("code_window_taken is not a probe problem")
	}
	next := windowAt.Add(15 * time.Second).Format("2006-01-02 15:04:05")
	if !strings.Contains(res.Message, "another run") || !strings.Contains(res.Message, next+" UTC") {
		t.Errorf("message %q should say another run used the window and that the next starts at %s UTC", res.Message, next)
	}
	if s := res.Steps[len(res.Steps)-1]; s.Status != 0 {
		t.Errorf("the code step was sent (status %d): a taken window must not reach the target", s.Status)
	}
	if clk.Now().After(windowAt.Add(2 * time.Second)) {
		t.Errorf("the run waited (clock at %s) although the wait could not fit", clk.Now())
	}
}

func TestPlanCodePeriod(t *testing.T) {
	url := "http://127.0.0.1:1"
	if got := demoPlan(t, url, "login", 0).CodePeriod(); got != 15*time.Second {
		t.Errorf("demo login: got %s, want 15s", got)
	}
	const doc = `probes:
  - name: plain
    target: https://app.example.com
    steps:
      - name: page
        url: /login
  - name: json
    target: https://app.example.com
    secrets: {seed: JBSWY3DPEHPK3PXP}
    steps:
      - name: code
        url: /api/totp
        json: {factors: [{code: "{{ totp .seed \"sha1\" 6 60 }}"}]}
`
	for i, want := range []time.Duration{0, time.Minute} {
		if got := plans(t, doc, nil)[i].CodePeriod(); got != want {
			t.Errorf("probe %d: got %s, want %s", i, got, want)
		}
	}
}
