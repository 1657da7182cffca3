package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// options are the flags and environment shared by the commands that read the
// configuration or the database. A flag beats its environment variable, which
// beats the default.
type options struct {
	configPath   string        // --config, CANDOR_CONFIG; "" runs the built-in demo configuration
	dataDir      string        // --data-dir, CANDOR_DATA_DIR
	listen       string        // --listen
	demoListen   string        // --demo-listen: where demo mode serves its login target
	demoInterval time.Duration // --demo-interval: how often demo mode probes it
	location     string        // --location, CANDOR_LOCATION: this replica's probe location
	databaseURL  string        // DATABASE_URL: use that server and start no cluster
}

// demo reports whether the built-in demo configuration is in use.
func (o *options) demo() bool { return o.configPath == "" }

// newFlags returns a flag set for a command, with the shared options bound.
// Errors from Parse are returned (not printed and exited) so tests can call run.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *options) {
	fs := flag.NewFlagSet("candor "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.configPath, "config", os.Getenv("CANDOR_CONFIG"), "configuration `file` (env CANDOR_CONFIG); without it Candor runs its built-in demo")
	fs.StringVar(&o.dataDir, "data-dir", envOr("CANDOR_DATA_DIR", "./candor-data"), "data `directory` for the embedded PostgreSQL cluster and local state (env CANDOR_DATA_DIR)")
	fs.StringVar(&o.listen, "listen", envOr("CANDOR_LISTEN", "127.0.0.1:8080"), "`address` the public site and console listen on (env CANDOR_LISTEN)")
	fs.StringVar(&o.demoListen, "demo-listen", "127.0.0.1:8081", "`address` of the demo login target in demo mode")
	fs.DurationVar(&o.demoInterval, "demo-interval", 15*time.Second, "probe `interval` in demo mode")
	fs.StringVar(&o.location, "location", os.Getenv("CANDOR_LOCATION"), "this replica's probe `location` name (env CANDOR_LOCATION; default from the config, else \"local\")")
	o.databaseURL = os.Getenv("DATABASE_URL")
	return fs, o
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// parseFlags parses args and refuses stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return errQuiet(0)
		}
		return errQuiet(2)
	}
	if fs.NArg() > 0 {
		return exitError{2, fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}
