package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/candorhq/candor/probes/demo"
)

// cmdDemoTarget serves the demo login target until ctx is done.
func cmdDemoTarget(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-target", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to serve the demo login target on")
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
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "candor demo-target: cannot listen on %s: %v\n", *listen, err)
		return 1
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, `demo login target on %[1]s
  sign in at %[1]s/login as any address @%[2]s, password %[3]s,
  TOTP seed %[4]s (SHA1, 6 digits, %[5]d s)
  inject a fault (from this machine only):
    curl -X POST %[1]s/_fault -d '{"mode":"events_down"}'
    curl -X POST %[1]s/_fault -d '{"mode":"error","step":"totp"}'
    curl -X DELETE %[1]s/_fault
  modes: events_down, error, slow (ms), hang, clock_skew (seconds), skip_2sa, accept_any_code
  steps: login_page, password, totp_page, totp, recovery, dashboard, logout
`, base, demo.Domain, demo.Password, demo.TOTPSecret, demo.TOTPPeriod)
	if err := demo.ServeListener(ctx, ln); err != nil {
		fmt.Fprintf(stderr, "candor demo-target: %v\n", err)
		return 1
	}
	return 0
}
