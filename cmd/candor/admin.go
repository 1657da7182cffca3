package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/site"
	"github.com/candorhq/candor/site/console"
)

// withDatabase loads the configuration, opens the database (beside a running
// candor serve if there is one), migrates it and calls fn.
func withDatabase(ctx context.Context, o *options, stderr io.Writer, fn func(cfg *appConfig, db *database) error) error {
	cfg, err := loadConfig(o)
	if err != nil {
		return configError(err, stderr)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := openDatabase(ctx, o, log, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := migrate.Apply(ctx, db.Pool); err != nil {
		return fmt.Errorf("migrate the database: %w", err)
	}
	return fn(cfg, db)
}

// subcommand checks that args start with the verb and returns the rest.
func subcommand(args []string, verb, usage string) ([]string, error) {
	if len(args) == 0 || args[0] != verb {
		return nil, exitError{2, errors.New("usage: " + usage)}
	}
	return args[1:], nil
}

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newFlags("export", stderr)
	var dir string
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		dir, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if dir == "" {
		return exitError{2, errors.New("usage: candor export DIR [flags]")}
	}
	return withDatabase(ctx, o, stderr, func(cfg *appConfig, db *database) error {
		store, err := newIncidentStore(ctx, db.Pool, cfg, nil, nil)
		if err != nil {
			return err
		}
		pub, err := site.New(site.Options{Store: store, Pool: db.Pool,
			Page: site.Page{ID: cfg.Page.ID, Name: cfg.Page.Name, URL: publicURL(cfg, o.listen)}})
		if err != nil {
			return err
		}
		if err := pub.Export(ctx, dir); err != nil {
			return fmt.Errorf("export the public site: %w", err)
		}
		fmt.Fprintf(stdout, "exported the public site to %s\n", dir)
		return nil
	})
}

func cmdUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reset" {
		return cmdUserReset(ctx, args[1:], stdout, stderr)
	}
	const usage = "candor user add --email E --role viewer|exec|responder|admin\n       candor user reset --email E"
	rest, err := subcommand(args, "add", usage)
	if err != nil {
		return err
	}
	fs, o := newFlags("user add", stderr)
	email := fs.String("email", "", "the operator's `email` address")
	role := fs.String("role", "", "viewer, exec, responder or admin")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *email == "" || *role == "" {
		return exitError{2, errors.New("usage: " + usage)}
	}
	if _, err := console.ParseRole(*role); err != nil {
		return exitError{2, err}
	}
	return withDatabase(ctx, o, stderr, func(cfg *appConfig, db *database) error {
		link, err := console.AddUser(ctx, db.Pool, *email, *role, publicURL(cfg, o.listen))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s (%s). Send them this one-time enrolment link; they set a password and an authenticator app there:\n%s\n", *email, *role, link)
		return nil
	})
}

func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "candor token create --role viewer|exec|responder|admin --name NAME"
	rest, err := subcommand(args, "create", usage)
	if err != nil {
		return err
	}
	fs, o := newFlags("token create", stderr)
	role := fs.String("role", "", "viewer, exec, responder or admin")
	name := fs.String("name", "", "what the token is for, e.g. `deploy-bot`")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *name == "" || *role == "" {
		return exitError{2, errors.New("usage: " + usage)}
	}
	if _, err := console.ParseRole(*role); err != nil {
		return exitError{2, err}
	}
	return withDatabase(ctx, o, stderr, func(cfg *appConfig, db *database) error {
		tok, err := console.CreateToken(ctx, db.Pool, *role, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", tok)
		fmt.Fprintf(stderr, "token %q (%s) created; it is shown once. Use it as: Authorization: Bearer <token>\n", *name, *role)
		return nil
	})
}

// cmdUserReset resets an operator's password and two-step authentication
// and prints a new enrolment link: for an admin locked out of the console.
func cmdUserReset(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newFlags("user reset", stderr)
	email := fs.String("email", "", "the operator's `email` address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" {
		return exitError{2, errors.New("usage: candor user reset --email E")}
	}
	return withDatabase(ctx, o, stderr, func(cfg *appConfig, db *database) error {
		link, err := console.ResetTwoStep(ctx, db.Pool, *email, publicURL(cfg, o.listen))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reset %s: their sessions, devices, password and authenticator are gone. Send them this one-time link to enrol again:\n%s\n", *email, link)
		return nil
	})
}

// cmdIncident works on incidents through the write API of a running Candor.
func cmdIncident(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := console.IncidentCommand(ctx, args, os.Getenv, stdout, stderr)
	var ue *console.UsageError
	if errors.As(err, &ue) {
		return exitError{2, err}
	}
	return err
}
