package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/candorhq/candor/probes/demo"
)

// cmdDemoTarget serves the demo login target until ctx is done.
func cmdDemoTarget(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-target", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to serve the demo login target on")
	profile := fs.String("profile", demo.ProfileForm, "shape of the login: "+strings.Join(demo.Profiles, " or ")+
		" (form: an HTML form with a CSRF field, a TOTP page and recovery codes; json: a JSON login API plus a TOTP call, every error a 401, no recovery codes, a code rate limit)")
	tlsCA := fs.String("tls-ca", "", "serve HTTPS with a private CA made at start, and write the CA's certificate (PEM) to this file, for a probe's tls: {ca_file: …}")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "candor demo-target: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if !slices.Contains(demo.Profiles, *profile) {
		fmt.Fprintf(stderr, "candor demo-target: unknown --profile %q: use one of %s\n", *profile, strings.Join(demo.Profiles, ", "))
		return 2
	}
	opts := demo.Options{Profile: *profile}
	scheme := "http"
	if *tlsCA != "" {
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if h, _, err := net.SplitHostPort(*listen); err == nil && h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
		certs, err := demo.NewCertificates(time.Now(), hosts...)
		if err != nil {
			fmt.Fprintf(stderr, "candor demo-target: %v\n", err)
			return 1
		}
		if err := os.WriteFile(*tlsCA, certs.CAPEM, 0o644); err != nil {
			fmt.Fprintf(stderr, "candor demo-target: cannot write the CA certificate: %v\n", err)
			return 1
		}
		opts.TLS, scheme = certs, "https"
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "candor demo-target: cannot listen on %s: %v\n", *listen, err)
		return 1
	}
	base := scheme + "://" + ln.Addr().String()
	if *tlsCA != "" {
		fmt.Fprintf(stdout, "HTTPS with a private CA: its certificate is in %s (a probe trusts it with tls: {ca_file: %s});\n  the fault cert_expired serves an expired certificate from the same CA\n", *tlsCA, *tlsCA)
	}
	if *profile == demo.ProfileJSON {
		fmt.Fprintf(stdout, `demo login API (profile json) on %[1]s
  POST   %[1]s/api/session      {"email": any address @%[2]s, "password": %[3]q}
         → {"mfa_required": true, "mfa_token": "…"}
  POST   %[1]s/api/session/mfa  {"mfa_token": "…", "code": "123456"}
         → {"token": "…"}   TOTP seed %[4]s (SHA1, 6 digits, %[5]d s); each code once per account
  GET    %[1]s/api/me           Authorization: Bearer <token> → {"email": "…"}
  DELETE %[1]s/api/session      Authorization: Bearer <token> → 204
  every error is 401 {"error": "Authentication failed"}; a code used before is 401 {"error": "code already used"};
  more than %[6]d refused codes for an account within a minute: 429 with Retry-After
`, base, demo.Domain, demo.Password, demo.TOTPSecret, demo.TOTPPeriod, demo.CodeFailuresPerMinute)
	} else {
		fmt.Fprintf(stdout, `demo login target on %[1]s
  sign in at %[1]s/login as any address @%[2]s, password %[3]s,
  TOTP seed %[4]s (SHA1, 6 digits, %[5]d s)
`, base, demo.Domain, demo.Password, demo.TOTPSecret, demo.TOTPPeriod)
	}
	steps := demo.Steps
	if *profile == demo.ProfileJSON {
		steps = demo.JSONSteps
	}
	curl := "curl"
	if *tlsCA != "" {
		curl = "curl --cacert " + *tlsCA
	}
	fmt.Fprintf(stdout, `  inject a fault (from this machine only):
    %[3]s -X POST %[1]s/_fault -d '{"mode":"events_down"}'
    %[3]s -X POST %[1]s/_fault -d '{"mode":"error","step":"totp"}'
    %[3]s -X POST %[1]s/_fault -d '{"mode":"rate_limited"}'
    %[3]s -X DELETE %[1]s/_fault
  modes: events_down (ms), error, slow (ms), hang, clock_skew (seconds), skip_2sa, accept_any_code, rate_limited,
         cert_expired (over HTTPS; while it is in effect, only curl -k reaches /_fault)
  steps: %[2]s
`, base, strings.Join(steps, ", "), curl)
	if err := demo.ServeListenerWith(ctx, ln, opts); err != nil {
		fmt.Fprintf(stderr, "candor demo-target: %v\n", err)
		return 1
	}
	return 0
}
