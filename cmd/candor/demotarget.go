package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/candorhq/candor/probes/demo"
)

// cmdDemoTarget serves the demo login target until ctx is done.
func cmdDemoTarget(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-target", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to serve the demo login target on")
	profile := fs.String("profile", demo.ProfileForm, "shape of the login: "+strings.Join(demo.Profiles, " or ")+
		" (form: an HTML form with a CSRF field, a TOTP page and recovery codes; json: a JSON login API plus a TOTP call, every error a 401, no recovery codes, a code rate limit)")
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
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "candor demo-target: cannot listen on %s: %v\n", *listen, err)
		return 1
	}
	base := "http://" + ln.Addr().String()
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
	fmt.Fprintf(stdout, `  inject a fault (from this machine only):
    curl -X POST %[1]s/_fault -d '{"mode":"events_down"}'
    curl -X POST %[1]s/_fault -d '{"mode":"error","step":"totp"}'
    curl -X POST %[1]s/_fault -d '{"mode":"rate_limited"}'
    curl -X DELETE %[1]s/_fault
  modes: events_down (ms), error, slow (ms), hang, clock_skew (seconds), skip_2sa, accept_any_code, rate_limited
  steps: %[2]s
`, base, strings.Join(steps, ", "))
	if err := demo.ServeListenerWith(ctx, ln, demo.Options{Profile: *profile}); err != nil {
		fmt.Fprintf(stderr, "candor demo-target: %v\n", err)
		return 1
	}
	return 0
}
