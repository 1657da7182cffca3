package probes

import (
	"context"
	"crypto/x509"
	"encoding/base32"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// plans decodes YAML "probes:" and compiles every probe, failing the test on any problem.
func plans(t *testing.T, doc string, envv map[string]string) []*Plan {
	t.Helper()
	ps, c := decode(t, doc, envv)
	Check(c, "$.probes", ps)
	if err := c.Err(); err != nil {
		t.Fatalf("config problems:\n%v", err)
	}
	var out []*Plan
	for _, p := range ps {
		pl, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pl)
	}
	return out
}

func TestRFC6238AppendixB(t *testing.T) {
	seeds := map[otp.Algorithm]string{
		otp.AlgorithmSHA1:   "12345678901234567890",
		otp.AlgorithmSHA256: "12345678901234567890123456789012",
		otp.AlgorithmSHA512: "1234567890123456789012345678901234567890123456789012345678901234",
	}
	vectors := []struct {
		unix int64
		alg  otp.Algorithm
		code string
	}{
		{59, otp.AlgorithmSHA1, "94287082"}, {59, otp.AlgorithmSHA256, "46119246"}, {59, otp.AlgorithmSHA512, "90693936"},
		{1111111109, otp.AlgorithmSHA1, "07081804"}, {1111111109, otp.AlgorithmSHA256, "68084774"}, {1111111109, otp.AlgorithmSHA512, "25091201"},
		{1111111111, otp.AlgorithmSHA1, "14050471"}, {1111111111, otp.AlgorithmSHA256, "67062674"}, {1111111111, otp.AlgorithmSHA512, "99943326"},
		{1234567890, otp.AlgorithmSHA1, "89005924"}, {1234567890, otp.AlgorithmSHA256, "91819424"}, {1234567890, otp.AlgorithmSHA512, "93441116"},
		{2000000000, otp.AlgorithmSHA1, "69279037"}, {2000000000, otp.AlgorithmSHA256, "90698825"}, {2000000000, otp.AlgorithmSHA512, "38618901"},
		{20000000000, otp.AlgorithmSHA1, "65353130"}, {20000000000, otp.AlgorithmSHA256, "77737706"}, {20000000000, otp.AlgorithmSHA512, "47863826"},
	}
	for _, v := range vectors {
		seed := base32.StdEncoding.EncodeToString([]byte(seeds[v.alg]))
		got, err := TOTPCode(seed, time.Unix(v.unix, 0), TOTPParams{Algorithm: v.alg, Digits: 8, Period: 30 * time.Second})
		if err != nil || got != v.code {
			t.Errorf("%s at %d: got %q (%v), want %q", v.alg, v.unix, got, err, v.code)
		}
	}
}

// fakeClock is a clock that only moves when slept on.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func TestCodeWaitsForTheNextWindowWhenLessThanTwoSecondsRemain(t *testing.T) {
	seed := "JBSWY3DPEHPK3PXP"
	for _, tc := range []struct {
		offset time.Duration // into a 30 s window
		wait   bool
	}{
		{0, false}, {27 * time.Second, false}, {28*time.Second + 1, true}, {29*time.Second + 900*time.Millisecond, true},
	} {
		clk := &fakeClock{t: time.Unix(1_700_000_010, 0).Add(tc.offset)} // 1_700_000_010 is a window start
		code, waited, err := codeAtSubmission(context.Background(), seed, DefaultTOTP, clk.Now, clk.Sleep)
		if err != nil {
			t.Fatal(err)
		}
		if (waited > 0) != tc.wait {
			t.Errorf("offset %s: waited %s, want wait=%v", tc.offset, waited, tc.wait)
		}
		want, _ := TOTPCode(seed, clk.Now(), DefaultTOTP)
		if code != want {
			t.Errorf("offset %s: code %s is not the code of the moment of submission %s", tc.offset, code, want)
		}
		if tc.wait {
			next, _ := TOTPCode(seed, time.Unix(1_700_000_040, 0), DefaultTOTP)
			if code != next {
				t.Errorf("offset %s: got %s, want the next window's code %s", tc.offset, code, next)
			}
		}
	}
}

func TestBadTargetsFailWithTheRightClass(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 160 { // 10 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		fmt.Fprint(w, "END")
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		fmt.Fprintf(w, "you sent %s", r.PostForm.Get("password"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	garbage, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			// Read the request first, or the client sees an answer to nothing.
			buf := make([]byte, 4096)
			n := 0
			for !strings.Contains(string(buf[:n]), "\r\n\r\n") && n < len(buf) {
				k, err := c.Read(buf[n:])
				if err != nil {
					break
				}
				n += k
			}
			_, _ = c.Write([]byte("\x00\x01garbage garbage\r\n\r\n"))
			_ = c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	doc := fmt.Sprintf(`probes:
  - name: loop
    target: %[1]s
    steps: [{name: a, url: /loop}]
  - name: huge
    target: %[1]s
    max_body_bytes: 1024
    steps: [{name: a, url: /huge, expect: [{body: {contains: END}}]}]
  - name: hang
    target: %[1]s
    timeout: 2s
    interval: 5s
    steps: [{name: a, url: /hang, timeout: 200ms}]
  - name: garbage
    steps: [{name: a, url: "http://%[2]s/"}]
  - name: refused
    steps: [{name: a, url: "http://%[3]s/"}]
  - name: secret
    target: %[1]s
    secrets: {password: "${PW}"}
    steps:
      - name: a
        url: /echo
        form: {password: "{{ .password }}"}
        expect: [{body: {contains: "hello {{ .password }}"}}]
`, srv.URL, garbage.Addr(), closedAddr)
	want := map[string]ErrorClass{
		"loop": ClassHTTPStatus, "huge": ClassAssertion, "hang": ClassTimeout,
		"garbage": ClassHTTPStatus, "refused": ClassConnect, "secret": ClassAssertion,
	}
	r := NewRunner(RunnerOptions{})
	defer r.Close()
	for _, p := range plans(t, doc, map[string]string{"PW": "s3cr3t p@ss"}) {
		res := r.Run(context.Background(), p)
		if res.Outcome != OutcomeFailed || res.Class != want[p.Name()] || res.FailedStep != "a" || res.FailedIdx != 0 {
			t.Errorf("%s: got %s %q at %q/%d (%s), want failed %q at a/0", p.Name(), res.Outcome, res.Class, res.FailedStep, res.FailedIdx, res.Message, want[p.Name()])
		}
		if strings.Contains(res.Message, "s3cr3t") || strings.Contains(res.Message, "p%40ss") {
			t.Errorf("%s: message leaks the secret: %s", p.Name(), res.Message)
		}
		if p.Name() == "huge" && res.Steps[0].Bytes != 1024 {
			t.Errorf("huge: read %d bytes, want the cap of 1024", res.Steps[0].Bytes)
		}
		if p.Name() == "secret" && !strings.Contains(res.Message, "[redacted]") {
			t.Errorf("secret: message %q should show where the secret was redacted", res.Message)
		}
	}
}

func TestTLSCheck(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	doc := fmt.Sprintf(`probes:
  - name: tls
    target: %s
    steps: [{name: home, url: /}]
`, srv.URL)
	p := plans(t, doc, nil)[0]

	good := NewRunner(RunnerOptions{RootCAs: pool})
	defer good.Close()
	res := good.Run(context.Background(), p)
	if res.Outcome != OutcomeOK || res.CertNotAfter == nil {
		t.Fatalf("trusted: got %s %s (%s), cert %v", res.Outcome, res.Class, res.Message, res.CertNotAfter)
	}

	// httptest's certificate expires in 2084; a clock near that date must warn, then fail.
	for _, tc := range []struct {
		before  time.Duration
		outcome Outcome
	}{{10 * 24 * time.Hour, OutcomeDegraded}, {3 * 24 * time.Hour, OutcomeFailed}} {
		at := res.CertNotAfter.Add(-tc.before)
		r := NewRunner(RunnerOptions{RootCAs: pool, Now: func() time.Time { return at }})
		got := r.Run(context.Background(), p)
		r.Close()
		if got.Outcome != tc.outcome || len(got.Signals) != 0 {
			t.Errorf("%s before expiry: got %s %s %v (%s), want %s without signals", tc.before, got.Outcome, got.Class, got.Signals, got.Message, tc.outcome)
		}
	}

	untrusted := NewRunner(RunnerOptions{})
	defer untrusted.Close()
	res = untrusted.Run(context.Background(), p)
	if res.Outcome != OutcomeFailed || res.Class != ClassTLS || res.FailedStep != "tls" || len(res.Signals) != 1 || res.Signals[0] != SignalTLSInvalid {
		t.Errorf("untrusted: got %s %s at %s, signals %v (%s)", res.Outcome, res.Class, res.FailedStep, res.Signals, res.Message)
	}
}
