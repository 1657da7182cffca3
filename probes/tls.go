package probes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// checkTLS checks the target's certificate chain and host name, its days to
// expiry, and that it speaks at least TLS 1.2 and refuses anything older.
// An invalid chain, host name or protocol is a security signal; a
// certificate close to expiry fails (critical) or degrades (warning) the run
// without one, since nothing is wrong with it yet.
func (x *run) checkTLS() {
	p := x.p
	host := p.target.Hostname()
	port := p.target.Port()
	if port == "" {
		port = "443"
	}
	addr := net.JoinHostPort(host, port)
	ctx, cancel := context.WithTimeout(x.ctx, DefaultStepTimeout)
	defer cancel()

	d := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: x.r.roots, MinVersion: tls.VersionTLS10}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
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
	old := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: x.r.roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}
	if oc, err := old.DialContext(ctx, "tcp", addr); err == nil {
		v := oc.(*tls.Conn).ConnectionState().Version
		_ = oc.Close()
		x.signal(SignalTLSInvalid)
		x.fail(-1, "tls", ClassTLS, "TLS check of %s: the server accepts %s; it must refuse anything below TLS 1.2", addr, tls.VersionName(v))
		return
	} else if errors.Is(err, context.DeadlineExceeded) {
		x.fail(-1, "tls", ClassTimeout, "TLS check of %s: no answer within %s", addr, DefaultStepTimeout)
		return
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
