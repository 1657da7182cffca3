package demo

import (
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
	"time"
)

// Certificates are a private CA and two server certificates it issued for
// the demo target: one valid, and one that expired a day before it was
// made, served under the cert_expired fault. A probe trusts the CA with
// tls: {ca_file: …}, as it would a company's internal CA.
type Certificates struct {
	// CAPEM is the CA's certificate in PEM, the contents of a ca_file.
	CAPEM   []byte
	CA      *x509.Certificate
	Valid   tls.Certificate
	Expired tls.Certificate
}

// NewCertificates makes a private CA and the target's certificates for
// hosts (names or IP addresses), valid from now; the expired certificate's
// validity ended a day before now.
func NewCertificates(now time.Time, hosts ...string) (*Certificates, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demo CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Candor demo private CA"},
		NotBefore:             now.Add(-400 * 24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("demo CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("demo CA certificate: %w", err)
	}
	c := &Certificates{CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), CA: ca}
	if c.Valid, err = leaf(ca, caKey, hosts, now.Add(-time.Hour), now.Add(90*24*time.Hour)); err != nil {
		return nil, err
	}
	if c.Expired, err = leaf(ca, caKey, hosts, now.Add(-91*24*time.Hour), now.Add(-24*time.Hour)); err != nil {
		return nil, err
	}
	return c, nil
}

// Pool returns a pool holding the CA alone.
func (c *Certificates) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.CA)
	return p
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func leaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, notBefore, notAfter time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "Candor demo login target"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("demo server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key, Leaf: cert}, nil
}

// TLSConfig returns the server configuration that serves c for t: the
// valid certificate, or the expired one while the cert_expired fault is in
// effect. It is chosen at each handshake, so the fault shows on the next
// new connection.
func (t *Target) TLSConfig(c *Certificates) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert := c.Valid
			if t.currentFault().Mode == FaultCertExpired {
				cert = c.Expired
			}
			return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
		},
	}
}
