package probes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// oldTLSInterval is how often a target is tested for TLS 1.0 and 1.1. A
// target that refuses them logs a failed handshake for every test, so a
// refusal is trusted for a day; a target found accepting them is tested
// every run, so that the run passes as soon as it stops.
const oldTLSInterval = 24 * time.Hour

// oldTLSCheck is the last test of one host:port for old protocols.
type oldTLSCheck struct {
	at       time.Time
	accepted uint16 // the old version it accepted; 0 when it refused them
}

// oldTLSDue reports whether addr should be tested for old protocols now.
func (r *Runner) oldTLSDue(addr string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.oldTLSSeen[addr]
	return !ok || c.accepted != 0 || now.Sub(c.at) >= oldTLSInterval || now.Before(c.at)
}

func (r *Runner) oldTLSTested(addr string, c oldTLSCheck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.oldTLSSeen == nil {
		r.oldTLSSeen = map[string]oldTLSCheck{}
	}
	r.oldTLSSeen[addr] = c
}

// checkTLS checks the target's certificate chain and host name, its days to
// expiry, and that it speaks at least TLS 1.2 and refuses anything older.
// An untrusted chain, a wrong host name or a weak protocol is a security
// signal. An expired (or not yet valid) certificate is not: it locks every
// customer out, an availability failure with the date it expired. A
// certificate close to expiry fails (critical) or degrades (warning) the run
// without a signal, since nothing is wrong with it yet.
func (x *run) checkTLS() {
	p := x.p
	host := p.target.Hostname()
	port := p.target.Port()
	if port == "" {
		port = "443"
	}
	addr := net.JoinHostPort(host, port)
	name := host
	if x.tls.ServerName != "" {
		name = x.tls.ServerName
	}
	ctx, cancel := context.WithTimeout(x.ctx, DefaultStepTimeout)
	defer cancel()

	// The version is read from this, the normal handshake: offering every
	// version from TLS 1.0 up makes no target log an error.
	cfg := x.tls.Clone()
	cfg.ServerName = name
	cfg.MinVersion = tls.VersionTLS10
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if exp, ok := x.expiredCert(err, name); ok {
			x.failExpired(-1, "tls", "TLS check of "+addr, exp)
			return
		}
		class, msg := classify(err, ctx, x.ctx)
		if class == ClassTLS {
			x.signal(SignalTLSInvalid)
		}
		x.fail(-1, "tls", class, "TLS check of %s: %s", addr, msg)
		return
	}
	state := conn.(*tls.Conn).ConnectionState()
	_ = conn.Close()
	if state.Version < tls.VersionTLS12 {
		x.signal(SignalTLSInvalid)
		x.fail(-1, "tls", ClassTLS, "TLS check of %s: the server negotiated %s; at least TLS 1.2 is required", addr, tls.VersionName(state.Version))
		return
	}
	// A server that still accepts TLS 1.1 or older is weak even if it prefers newer.
	if now := x.r.now(); x.r.oldTLSDue(addr, now) {
		old := cfg.Clone()
		old.MaxVersion = tls.VersionTLS11
		od := tls.Dialer{Config: old}
		oc, err := od.DialContext(ctx, "tcp", addr)
		switch {
		case err == nil:
			v := oc.(*tls.Conn).ConnectionState().Version
			_ = oc.Close()
			x.r.oldTLSTested(addr, oldTLSCheck{at: now, accepted: v})
			x.signal(SignalTLSInvalid)
			x.fail(-1, "tls", ClassTLS, "TLS check of %s: the server accepts %s; it must refuse anything below TLS 1.2", addr, tls.VersionName(v))
			return
		case errors.Is(err, context.DeadlineExceeded):
			x.fail(-1, "tls", ClassTimeout, "TLS check of %s: no answer within %s", addr, seconds(DefaultStepTimeout))
			return
		default:
			x.r.oldTLSTested(addr, oldTLSCheck{at: now})
		}
	}
	if len(state.PeerCertificates) == 0 {
		return
	}
	notAfter := state.PeerCertificates[0].NotAfter.UTC()
	for _, c := range state.VerifiedChains {
		for _, cert := range c {
			if cert.NotAfter.Before(notAfter) {
				notAfter = cert.NotAfter.UTC()
			}
		}
	}
	x.res.CertNotAfter = &notAfter
	left := notAfter.Sub(x.r.now())
	days := int(left.Hours() / 24)
	warn, crit := p.Probe.TLS.WarnDays, p.Probe.TLS.CriticalDays
	if warn == 0 {
		warn = DefaultWarnDays
	}
	if crit == 0 {
		crit = DefaultCriticalDays
	}
	switch {
	case days < crit:
		x.fail(-1, "tls", ClassTLS, "TLS check of %s: the certificate expires in %d days (%s), under the critical threshold of %d days", addr, days, notAfter.Format(time.RFC3339), crit)
	case days < warn:
		x.res.Outcome = OutcomeDegraded
		x.res.Message = fmt.Sprintf("TLS check of %s: the certificate expires in %d days (%s), under the warning threshold of %d days", addr, days, notAfter.Format(time.RFC3339), warn)
	}
}

// certExpiry is a certificate that failed verification only because of its dates.
type certExpiry struct {
	host   string
	cert   *x509.Certificate // the certificate out of its validity
	leaf   bool              // cert is the server's own, not one of its issuers
	notYet bool              // not valid yet, rather than expired
}

// expiredCert reports whether err is a certificate that is out of its
// validity period and otherwise good: trusted, and for host. A certificate
// that is expired and also untrusted or for another name is not: that stays
// a security matter.
func (x *run) expiredCert(err error, host string) (certExpiry, bool) {
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &cv) || len(cv.UnverifiedCertificates) == 0 {
		return certExpiry{}, false
	}
	var ci x509.CertificateInvalidError
	if !errors.As(cv.Err, &ci) || ci.Reason != x509.Expired {
		return certExpiry{}, false
	}
	if x.tls.ServerName != "" {
		host = x.tls.ServerName
	}
	chain := cv.UnverifiedCertificates
	now := time.Now() // the handshake verified against the real clock
	exp := certExpiry{host: host}
	for i, c := range chain {
		if now.After(c.NotAfter) || now.Before(c.NotBefore) {
			exp.cert, exp.leaf, exp.notYet = c, i == 0, now.Before(c.NotBefore)
			break
		}
	}
	if exp.cert == nil {
		exp.cert, exp.leaf = chain[0], true
		exp.notYet = now.Before(chain[0].NotBefore)
	}
	// Verify again at a moment every certificate of the chain was valid:
	// if that passes, the dates are the only thing wrong.
	from, until := chain[0].NotBefore, chain[0].NotAfter
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	if from.After(until) {
		return certExpiry{}, false
	}
	at := until.Add(-time.Second)
	if at.Before(from) {
		at = from
	}
	opts := x509.VerifyOptions{Roots: x.tls.RootCAs, Intermediates: inter, DNSName: host, CurrentTime: at}
	if _, err := chain[0].Verify(opts); err != nil {
		return certExpiry{}, false
	}
	return exp, true
}

// failExpired records an expired or not yet valid certificate: class
// cert_expired, no security signal, and the date in UTC.
func (x *run) failExpired(i int, step, where string, exp certExpiry) {
	whose := "the certificate of " + exp.host
	if !exp.leaf {
		whose = fmt.Sprintf("the certificate of %s's issuer %q", exp.host, exp.cert.Subject.CommonName)
	}
	now := x.r.now()
	if exp.notYet {
		nb := exp.cert.NotBefore.UTC()
		x.fail(i, step, ClassCertExpired, "%s: %s is not valid until %s (%s from now), so browsers refuse it", where, whose, nb.Format(time.RFC3339), ago(nb.Sub(now)))
	} else {
		na := exp.cert.NotAfter.UTC()
		x.fail(i, step, ClassCertExpired, "%s: %s expired at %s (%s ago), so browsers refuse it", where, whose, na.Format(time.RFC3339), ago(now.Sub(na)))
	}
	na := exp.cert.NotAfter.UTC()
	x.res.CertNotAfter = &na
}

// ago writes a span as a person says it: "3 days", "1 day", "5h20m0s".
func ago(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 24*time.Hour:
		return "1 day"
	case d < time.Minute:
		return "under a minute"
	}
	return d.Round(time.Minute).String()
}
