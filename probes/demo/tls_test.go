package demo

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/probes"
)

// tlsTarget serves t over HTTPS with certs, as `candor demo-target --tls-ca`
// does.
func tlsTarget(t *testing.T, target *Target, certs *Certificates) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(target)
	srv.TLS = target.TLSConfig(certs)
	// Handshakes the target refuses (old protocol versions) are expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(func() { srv.Close(); target.Close() })
	return srv
}

func TestPrivateCAAndExpiredCertificate(t *testing.T) {
	// The handshake checks validity against the real clock, so the
	// certificates are made from it; the runner's fake clock moves only TOTP.
	certs, err := NewCertificates(time.Now(), "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if block := string(certs.CAPEM); !strings.HasPrefix(block, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("CAPEM is not a PEM certificate: %.40q", block)
	}
	for _, tc := range []struct {
		name, profile, probe string
		probes               func(*testing.T, string) map[string]probes.Probe
	}{
		{"form", ProfileForm, "login", demoProbes},
		{"json", ProfileJSON, "api-login", jsonProfileProbes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			target := New(Options{Now: clk.Now, Profile: tc.profile})
			srv := tlsTarget(t, target, certs)
			p := tc.probes(t, srv.URL)[tc.probe]

			// Trusting the private CA (and nothing else), the login passes.
			r := probes.NewRunner(probes.RunnerOptions{Now: clk.Now, Sleep: clk.Sleep, RootCAs: certs.Pool()})
			defer r.Close()
			res := r.Run(context.Background(), compile(t, p))
			if res.Outcome != probes.OutcomeOK || res.CertNotAfter == nil {
				t.Fatalf("with the private CA trusted, got\n%s(certificate expiry %v)", describe(res), res.CertNotAfter)
			}

			// Without it, the certificate is untrusted: a security signal.
			untrusting := probes.NewRunner(probes.RunnerOptions{Now: clk.Now, Sleep: clk.Sleep, RootCAs: x509.NewCertPool()})
			defer untrusting.Close()
			_ = clk.Sleep(context.Background(), TOTPPeriod*time.Second)
			res = untrusting.Run(context.Background(), compile(t, p))
			if res.Outcome != probes.OutcomeFailed || len(res.Signals) != 1 || res.Signals[0] != probes.SignalTLSInvalid {
				t.Errorf("without the CA, got\n%swant a failure with signal tls_invalid", describe(res))
			}

			// An expired certificate from the trusted CA locks everyone out:
			// not a security signal, and the message says when it expired.
			if err := target.SetFault(Fault{Mode: FaultCertExpired}); err != nil {
				t.Fatal(err)
			}
			_ = clk.Sleep(context.Background(), TOTPPeriod*time.Second)
			res = r.Run(context.Background(), compile(t, p))
			expiry := certs.Expired.Leaf.NotAfter.UTC().Format("2006-01-02")
			if res.Outcome != probes.OutcomeFailed || res.Class != probes.ClassCertExpired || len(res.Signals) != 0 || !strings.Contains(res.Message, expiry) {
				t.Errorf("expired certificate: got\n%swant class cert_expired, no signal, and the expiry date %s in the message", describe(res), expiry)
			}

			target.ClearFault()
			_ = clk.Sleep(context.Background(), TOTPPeriod*time.Second)
			if res := r.Run(context.Background(), compile(t, p)); res.Outcome != probes.OutcomeOK {
				t.Errorf("after the fault is cleared, got\n%s", describe(res))
			}
		})
	}
}
