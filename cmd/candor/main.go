// Command candor is a self-hosted status page and outage-communication
// service: synthetic login probes, automatic incidents with a UTC timeline,
// a public status site, Slack and webhooks, runbooks and post-incident notes.
//
// Run it with no arguments for a demo on http://127.0.0.1:8080/ backed by a
// private PostgreSQL cluster in ./candor-data. `candor help` lists the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: its name as typed, a line of help, and what it does.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// exitError carries a specific exit status to main (1 is the default).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// errQuiet is an exit status whose explanation was already printed.
type errQuiet int

func (e errQuiet) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func commands() []command {
	return []command{
		{"serve", "run Candor: probes, incidents, public site, console (the default)", cmdServe},
		{"check", "validate the configuration and exit; lists every problem as file:line:col", cmdCheck},
		{"migrate", "apply pending database migrations and exit", cmdMigrate},
		{"probe", "probe run NAME: run one probe once and print each step; exit 1 on failure", cmdProbe},
		{"export", "export DIR: write the public site (pages, feeds, JSON) as static files", cmdExport},
		{"user", "user add --email E --role R | user reset --email E: one-time enrolment link for an operator", cmdUser},
		{"incident", "incident list|show|update|resolve: work on incidents through the API (CANDOR_URL, CANDOR_TOKEN)", cmdIncident},
		{"token", "token create --role R --name N: print a new API token", cmdToken},
		{"demo-target", "serve the demo login target (with fault injection) on --listen", cmdDemoTargetCommand},
		{"runbooks", "runbooks lint [DIR]: check runbooks against the configuration; file:line problems", cmdRunbooks},
		{"demo-config", "print the built-in demo configuration as YAML to start your own from", cmdDemoConfig},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args, stdout, stderr)
		return exitCode(err, stderr)
	}
	fmt.Fprintf(stderr, "candor: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var q errQuiet
	if errors.As(err, &q) {
		return int(q)
	}
	fmt.Fprintf(stderr, "candor: %v\n", err)
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: candor [command] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'candor COMMAND -h' for the flags of a command.")
}
