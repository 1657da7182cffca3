package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/probes/demo"
)

// configError prints every configuration problem, one per line, and returns
// exit status 2.
func configError(err error, stderr io.Writer) error {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(stderr, p.String())
		}
		fmt.Fprintf(stderr, "candor: the configuration has %d problem(s); nothing was started\n", len(ps))
		return errQuiet(2)
	}
	return exitError{2, err}
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newFlags("check", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(o)
	if err != nil {
		return configError(err, stderr)
	}
	name := o.configPath
	if o.demo() {
		name = "the built-in demo configuration"
	}
	for _, w := range cfg.warnings {
		fmt.Fprintln(stderr, w.String())
	}
	fmt.Fprintf(stdout, "%s is valid: %d components\n", name, len(cfg.Components()))
	return nil
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newFlags("migrate", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	db, err := openDatabase(ctx, o, newLogger(stderr), true)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := migrate.Apply(ctx, db.Pool)
	if err != nil {
		return err
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m.Name)
	}
	fmt.Fprintf(stdout, "database at schema version %d\n", migrate.Latest())
	return nil
}

func cmdDemoConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newFlags("demo-config", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, err := io.WriteString(stdout, demoConfig(o.demoListen))
	return err
}

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "candor %s\n", version())
	return nil
}

// version is the module version, or the VCS revision for a development build.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
}

func cmdRunbooks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "lint" {
		return exitError{2, errors.New("usage: candor runbooks lint [flags] [DIR]")}
	}
	fs, o := newFlags("runbooks lint", stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return errQuiet(2)
	}
	if fs.NArg() > 1 {
		return exitError{2, fmt.Errorf("runbooks lint: unexpected argument %q", fs.Arg(1))}
	}
	cfg, err := loadConfig(o)
	if err != nil {
		return configError(err, stderr)
	}
	dir := cfg.Runbooks.Dir
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if code := cmdRunbooksLint(dir, runbookKnown(cfg), stdout); code != 0 {
		return errQuiet(code)
	}
	return nil
}

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return exitError{2, errors.New("usage: candor probe run [flags] NAME")}
	}
	fs, o := newFlags("probe run", stderr)
	// Accept NAME before or after the flags.
	rest := args[1:]
	var name string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return errQuiet(2)
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" || fs.NArg() > 1 || (fs.NArg() == 1 && name != fs.Arg(0)) {
		return exitError{2, errors.New("usage: candor probe run [flags] NAME")}
	}
	cfg, err := loadConfig(o)
	if err != nil {
		return configError(err, stderr)
	}
	if o.demo() {
		// Without a running `candor serve`, start the demo target here so the
		// demo probes have something to walk.
		if ln, err := net.Listen("tcp", o.demoListen); err == nil {
			fmt.Fprintf(stdout, "(no demo login target at %s: started one in this process)\n", o.demoListen)
			tctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { _ = demo.ServeListener(tctx, ln); close(done) }()
			defer func() { cancel(); <-done }()
		}
	}
	var claims *probes.Claims
	if slices.ContainsFunc(cfg.Probes, func(p probes.Probe) bool { return p.Name == name }) {
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if db := probeDatabase(ctx, o, log, stdout); db != nil {
			defer db.Close()
			claims = probes.NewClaims(probes.ClaimsOptions{Pool: db.Pool, Holder: claimHolder(cfg.Location, "probe-run"), Logger: log})
		}
	}
	if code := cmdProbeRun(ctx, cfg.Probes, name, cfg.Location, claims, stdout); code != 0 {
		return errQuiet(code)
	}
	return nil
}

// probeDatabase opens the database that `candor serve` shares, for the
// one-time-code claims of a run by hand: DATABASE_URL, else the cluster of
// a candor running in the data directory, else that cluster started here
// (and stopped when the run ends). When none can be reached it prints one
// line and returns nil: the probe still runs, without cluster-wide claims.
func probeDatabase(ctx context.Context, o *options, log *slog.Logger, stdout io.Writer) *database {
	db, err := openDatabase(ctx, o, log, true)
	if err == nil {
		if _, err = migrate.Apply(ctx, db.Pool); err != nil {
			db.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stdout, "(no database reachable, so one-time codes are not claimed cluster-wide: another run on the same account in the same code window can make one of them fail; %v)\n", err)
		return nil
	}
	return db
}

// claimHolder names this process in the one-time-code claims, for diagnosis.
func claimHolder(location, what string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s/%s", host, os.Getpid(), location, what)
}

func cmdDemoTargetCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if code := cmdDemoTarget(ctx, args, stdout, stderr); code != 0 {
		return errQuiet(code)
	}
	return nil
}
