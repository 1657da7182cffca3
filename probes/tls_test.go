package probes

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a private certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) (*testCA, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-5 * 365 * 24 * time.Hour), // older than the leaves it signs
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, pool
}

// leaf issues a server certificate for names (host names or IP addresses)
// valid from notBefore to notAfter.
func (ca *testCA) leaf(t *testing.T, notBefore, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tpl.IPAddresses = append(tpl.IPAddresses, ip)
		} else {
			tpl.DNSNames = append(tpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsServer serves "ok" over TLS with cert.
func tlsServer(t *testing.T, cert tls.Certificate, cfg *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<title>Sign in</title>ok")
	}))
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.Certificates = []tls.Certificate{cert}
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func writeCA(t *testing.T, ca *testCA) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func tlsProbe(t *testing.T, url, tlsOpts string) *Plan {
	t.Helper()
	return plans(t, fmt.Sprintf(`probes:
  - name: private
    target: %s
    tls: %s
    steps: [{name: home, role: login_page, url: /, expect: [{body: {contains: ok}}]}]
`, url, tlsOpts), nil)[0]
}

func TestAPrivateCAIsTrustedForItsProbeOnly(t *testing.T) {
	ca, _ := newTestCA(t, "Candor Test Private CA")
	now := time.Now()
	srv := tlsServer(t, ca.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "127.0.0.1", "login.internal"), nil)
	caFile := writeCA(t, ca)

	r := NewRunner(RunnerOptions{})
	defer r.Close()
	with := tlsProbe(t, srv.URL, fmt.Sprintf("{ca_file: %s}", caFile))
	if res := r.Run(context.Background(), with); res.Outcome != OutcomeOK || res.CertNotAfter == nil {
		t.Errorf("with ca_file: got %s %s (%s), want ok with the certificate's expiry", res.Outcome, res.Class, res.Message)
	}
	// The same runner, a probe without the CA file: the CA is not trusted there.
	without := tlsProbe(t, srv.URL, "{}")
	res := r.Run(context.Background(), without)
	if res.Outcome != OutcomeFailed || res.Class != ClassTLS || len(res.Signals) != 1 || res.Signals[0] != SignalTLSInvalid {
		t.Errorf("without ca_file: got %s %s %v (%s), want tls with tls_invalid", res.Outcome, res.Class, res.Signals, res.Message)
	}
	if res.FailedRole != RoleLoginPage {
		t.Errorf("the TLS check failed with role %q, want login_page", res.FailedRole)
	}
	// The steps use the probe's trust too, not only the TLS check.
	skip := tlsProbe(t, srv.URL, fmt.Sprintf("{ca_file: %s, skip: true}", caFile))
	if res := r.Run(context.Background(), skip); res.Outcome != OutcomeOK {
		t.Errorf("steps with ca_file, TLS check skipped: got %s %s (%s)", res.Outcome, res.Class, res.Message)
	}
	// server_name: the certificate is for login.internal, the target an address.
	named := tlsProbe(t, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), fmt.Sprintf("{ca_file: %s, server_name: login.internal}", caFile))
	if res := r.Run(context.Background(), named); res.Outcome != OutcomeOK {
		t.Errorf("server_name: got %s %s (%s)", res.Outcome, res.Class, res.Message)
	}
	wrongName := tlsProbe(t, srv.URL, fmt.Sprintf("{ca_file: %s, server_name: other.internal}", caFile))
	if res := r.Run(context.Background(), wrongName); res.Class != ClassTLS || len(res.Signals) != 1 {
		t.Errorf("a name the certificate is not for: got %s %s %v (%s), want tls with a signal", res.Outcome, res.Class, res.Signals, res.Message)
	}
}

func TestAnExpiredCertificateIsAnOutageWithItsDate(t *testing.T) {
	ca, _ := newTestCA(t, "Candor Test Private CA")
	now := time.Now()
	expiredAt := now.Add(-3 * 24 * time.Hour).Truncate(time.Second)
	srv := tlsServer(t, ca.leaf(t, now.Add(-90*24*time.Hour), expiredAt, "127.0.0.1"), nil)
	caFile := writeCA(t, ca)
	r := NewRunner(RunnerOptions{})
	defer r.Close()

	for _, tc := range []struct {
		name, opts string
	}{
		{"TLS check", fmt.Sprintf("{ca_file: %s}", caFile)},
		{"step", fmt.Sprintf("{ca_file: %s, skip: true}", caFile)},
	} {
		res := r.Run(context.Background(), tlsProbe(t, srv.URL, tc.opts))
		if res.Outcome != OutcomeFailed || res.Class != ClassCertExpired || len(res.Signals) != 0 {
			t.Errorf("%s: got %s %s %v (%s), want cert_expired without any signal", tc.name, res.Outcome, res.Class, res.Signals, res.Message)
		}
		want := "the certificate of 127.0.0.1 expired at " + expiredAt.UTC().Format(time.RFC3339) + " (3 days ago)"
		if !strings.Contains(res.Message, want) {
			t.Errorf("%s: message %q does not say %q", tc.name, res.Message, want)
		}
		if res.CertNotAfter == nil || !res.CertNotAfter.Equal(expiredAt) {
			t.Errorf("%s: CertNotAfter %v, want %s", tc.name, res.CertNotAfter, expiredAt)
		}
		if res.FailedRole == "" {
			t.Errorf("%s: no failed role", tc.name)
		}
	}

	// Expired and untrusted (no CA file): a security matter, not only dates.
	res := r.Run(context.Background(), tlsProbe(t, srv.URL, "{}"))
	if res.Class != ClassTLS || len(res.Signals) != 1 {
		t.Errorf("expired and untrusted: got %s %v (%s), want tls with tls_invalid", res.Class, res.Signals, res.Message)
	}

	// Not yet valid: the same, with the date it starts.
	from := now.Add(48 * time.Hour).Truncate(time.Second)
	early := tlsServer(t, ca.leaf(t, from, from.Add(90*24*time.Hour), "127.0.0.1"), nil)
	res = r.Run(context.Background(), tlsProbe(t, early.URL, fmt.Sprintf("{ca_file: %s}", caFile)))
	if res.Class != ClassCertExpired || len(res.Signals) != 0 || !strings.Contains(res.Message, "is not valid until "+from.UTC().Format(time.RFC3339)) {
		t.Errorf("not yet valid: got %s %v (%s)", res.Class, res.Signals, res.Message)
	}
}

func TestOldProtocolsAreTestedAtMostDaily(t *testing.T) {
	ca, _ := newTestCA(t, "Candor Test Private CA")
	now := time.Now()
	var oldHellos atomic.Int32
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			if !slicesContainsAtLeast(h.SupportedVersions, tls.VersionTLS12) {
				oldHellos.Add(1) // a handshake the target logs as an error
			}
			return nil, nil
		},
	}
	srv := tlsServer(t, ca.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "127.0.0.1"), cfg)
	clk := &fakeClock{t: now}
	r := NewRunner(RunnerOptions{Now: clk.Now, Sleep: clk.Sleep})
	defer r.Close()
	p := tlsProbe(t, srv.URL, fmt.Sprintf("{ca_file: %s}", writeCA(t, ca)))
	for i := range 3 {
		if res := r.Run(context.Background(), p); res.Outcome != OutcomeOK {
			t.Fatalf("run %d: %s %s (%s)", i, res.Outcome, res.Class, res.Message)
		}
	}
	if got := oldHellos.Load(); got != 1 {
		t.Errorf("3 runs in a day made %d handshakes with old protocols, want 1", got)
	}
	_ = clk.Sleep(context.Background(), 25*time.Hour)
	r.Run(context.Background(), p)
	if got := oldHellos.Load(); got != 2 {
		t.Errorf("a day later: %d handshakes with old protocols, want 2", got)
	}
}

func slicesContainsAtLeast(vs []uint16, min uint16) bool {
	for _, v := range vs {
		if v >= min {
			return true
		}
	}
	return false
}
