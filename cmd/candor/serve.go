package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/candorhq/candor/internal/migrate"
	"github.com/candorhq/candor/internal/pgcluster"
	"github.com/candorhq/candor/notify"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/probes/demo"
	"github.com/candorhq/candor/runbooks"
	"github.com/candorhq/candor/site"
	"github.com/candorhq/candor/site/console"
)

// incidentTick is how often the time-driven incident rules run: resolving
// after the quiet period, reminders, maintenance windows.
const incidentTick = 5 * time.Second

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, o := newFlags("serve", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := newLogger(stderr)
	cfg, err := loadConfig(o)
	if err != nil {
		return configError(err, stderr)
	}
	set, err := runbooks.Load(cfg.Runbooks.Dir)
	if err != nil {
		return configError(err, stderr)
	}
	// Bind before starting anything so a port in use fails fast and plainly.
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return listenError(o.listen, err)
	}
	defer ln.Close()

	db, err := openDatabase(ctx, o, log, false)
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := migrate.Apply(ctx, db.Pool)
	if err != nil {
		return fmt.Errorf("migrate the database: %w", err)
	}
	for _, m := range applied {
		log.Info("applied migration", "name", m.Name)
	}

	// Background work runs until bg is cancelled, after the HTTP server has
	// drained and before the database closes.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bgWork sync.WaitGroup
	defer bgWork.Wait()
	defer stopBackground()

	if o.demo() {
		demoLn, err := net.Listen("tcp", o.demoListen)
		if err != nil {
			return listenError(o.demoListen, err)
		}
		bgWork.Go(func() {
			if err := demo.ServeListener(bg, demoLn); err != nil {
				log.Error("demo login target stopped", "err", err)
			}
		})
		log.Info("demo login target is serving", "url", "http://"+demoLn.Addr().String()+"/login")
	}
	store, err := newIncidentStore(ctx, db.Pool, cfg, set, nil)
	if err != nil {
		return err
	}
	bgWork.Go(func() { tickIncidents(bg, store, incidentTick, log) })
	obs := newObserver(store, log)
	bgWork.Go(func() { obs.Run(bg) })

	plans, err := compilePlans(cfg.Probes)
	if err != nil {
		return err
	}
	// One code, one use, cluster-wide: every replica, location and `candor
	// probe run` on this database claims a code's window before sending it.
	claims := probes.NewClaims(probes.ClaimsOptions{Pool: db.Pool, Holder: claimHolder(cfg.Location, "serve"), Logger: log})
	runner := probes.NewRunner(probes.RunnerOptions{Location: cfg.Location, Claims: claims})
	defer runner.Close()
	sched, err := probes.NewScheduler(plans, probes.SchedulerOptions{
		Runner:   runner,
		Pool:     db.Pool,
		Store:    probes.NewStore(db.Pool),
		Logger:   log,
		OnResult: obs.Add,
	})
	if err != nil {
		return fmt.Errorf("schedule probes: %w", err)
	}
	bgWork.Go(func() {
		if err := sched.Run(bg); err != nil {
			log.Error("probe scheduler stopped", "err", err)
		}
	})
	log.Info("probes scheduled", "count", len(sched.Plans()), "location", cfg.Location)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pageURL := publicURL(cfg, ln.Addr().String())
	if o.demo() {
		pageURL = "http://" + ln.Addr().String() // the demo's page is wherever it listens
	}
	pub, err := site.New(site.Options{Store: store, Pool: db.Pool, Logger: log,
		Page: site.Page{ID: cfg.Page.ID, Name: cfg.Page.Name, URL: pageURL}})
	if err != nil {
		return fmt.Errorf("public site: %w", err)
	}
	if err := pub.Rebuild(ctx); err != nil {
		return fmt.Errorf("build the public site: %w", err)
	}
	bgWork.Go(func() {
		if err := pub.Run(bg); err != nil && bg.Err() == nil {
			log.Error("public site updates stopped", "err", err)
		}
	})
	var consoleKey []byte
	if cfg.Console.SecretKey.IsSet() {
		consoleKey, _ = console.ParseSecretKey(cfg.Console.SecretKey.Reveal()) // checked with the config
	}
	// Notify: the outbox relay (Slack, webhooks) on every replica; they
	// share the work through PostgreSQL. Run checks the Slack token first
	// and logs a clear error; Slack's messages then wait, none is lost.
	relay, err := notify.NewRelay(notify.Options{Pool: db.Pool, Config: cfg.Notify, PageURL: pageURL, PageID: cfg.Page.ID,
		Registerer: reg, Logger: log, Timeline: store, Updates: store, Workers: 4})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	bgWork.Go(func() {
		if err := relay.Run(bg); err != nil {
			log.Error("notify relay stopped", "err", err)
		}
	})
	admin, err := console.New(console.Options{
		Pool: db.Pool, Incidents: store, Runbooks: set, Probes: probes.NewStore(db.Pool),
		BaseURL: pageURL, PageID: cfg.Page.ID, Logger: log,
		TrustForwardedFor: cfg.Console.TrustForwardedFor, Secure: cfg.Console.SecureCookies,
		SecretKey: consoleKey, Relay: relay,
	})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if n, err := admin.SealSecrets(ctx); err != nil {
		return fmt.Errorf("console: encrypt TOTP secrets: %w", err)
	} else if n > 0 {
		log.Info("console: TOTP secrets encrypted at rest", "count", n)
	}

	mux := http.NewServeMux()
	mux.Handle("/healthz", plainHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})))
	mux.Handle("/readyz", plainHeaders(readyz(db.Pool)))
	mux.Handle("/metrics", plainHeaders(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	mux.Handle("/admin/", admin.Handler())
	mux.Handle("/api/v1/", admin.Handler())
	// Slack commands and buttons: over HTTP with the signing secret, or
	// over Socket Mode with the app token (no public URL).
	if sc := cfg.Notify.Slack; sc.SigningSecret.IsSet() || sc.AppToken.IsSet() {
		cmds, err := notify.NewSlackCommands(notify.SlackCommandOptions{SigningSecret: sc.SigningSecret,
			Incidents: store, Pool: db.Pool, Logger: log,
			Operators: notify.SlackEmailOperators(sc, operatorByEmail(db.Pool))})
		if err != nil {
			return fmt.Errorf("slack commands: %w", err)
		}
		if sc.SigningSecret.IsSet() {
			mux.Handle("POST /slack/commands", cmds)
			mux.Handle("POST /slack/interactive", cmds)
		}
		if sc.AppToken.IsSet() {
			bgWork.Go(func() {
				if err := cmds.RunSocketMode(bg, sc); err != nil {
					log.Error("Slack Socket Mode stopped", "err", err)
				}
			})
		}
	}
	// Email subscriptions: the public site's only dynamic pages.
	subOpts := site.SubscribeOptions{TrustForwardedFor: cfg.Console.TrustForwardedFor}
	if cfg.Notify.Email.Enabled() {
		subs, err := notify.NewSubscriptions(notify.SubscriptionOptions{Pool: db.Pool, Logger: log})
		if err != nil {
			return fmt.Errorf("email subscriptions: %w", err)
		}
		subOpts.Subscriptions = subs
	}
	subscribe := pub.SubscribeHandler(subOpts)
	mux.Handle("/subscribe", subscribe)
	mux.Handle("/subscribe/", subscribe)
	mux.Handle("/unsubscribe/", subscribe)
	mux.Handle("/", pub.Handler())

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("candor is serving", "url", "http://"+ln.Addr().String()+"/", "demo", o.demo(), "location", cfg.Location)

	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	})
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		return fmt.Errorf("serve http: %w", err)
	}
	// In-flight requests finish; then background work stops; the database
	// closes last (deferred above).
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	wg.Wait()
	return nil
}

// operatorByEmail finds the enrolled, enabled operator with an email, for
// Slack commands.
func operatorByEmail(pool *pgxpool.Pool) func(ctx context.Context, email string) (notify.Operator, error) {
	return func(ctx context.Context, email string) (notify.Operator, error) {
		op, err := console.LookupOperator(ctx, pool, email)
		if errors.Is(err, console.ErrNotFound) || err == nil && (!op.Enrolled || op.Disabled) {
			return notify.Operator{}, notify.ErrUnknownUser
		}
		if err != nil {
			return notify.Operator{}, err
		}
		return notify.Operator{ID: op.Email, Role: string(op.Role)}, nil
	}
}

// plainHeaders gives the operational endpoints (GET and HEAD only) the
// security headers that the public site and the console set on every answer.
func plainHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			hd.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// publicURL is the configured page URL, or this server's own address.
func publicURL(cfg *appConfig, listenAddr string) string {
	if cfg.Page.URL != "" {
		return strings.TrimSuffix(cfg.Page.URL, "/")
	}
	return "http://" + listenAddr
}

// compilePlans turns configured probes into runnable plans.
func compilePlans(ps []probes.Probe) ([]*probes.Plan, error) {
	plans := make([]*probes.Plan, 0, len(ps))
	for _, p := range ps {
		plan, err := probes.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		plans = append(plans, plan)
	}
	return plans, nil
}

// readyz answers 200 when the database is reachable and migrated, 503 otherwise.
func readyz(pool *pgxpool.Pool) http.Handler {
	latest := migrate.Latest()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		v, err := migrate.Version(ctx, pool)
		switch {
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "database unreachable\n")
		case v != latest:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "database at schema version %d, want %d\n", v, latest)
		default:
			_, _ = io.WriteString(w, "ready\n")
		}
	})
}

// database is the pool and, in the embedded default, the cluster behind it.
type database struct {
	Pool    *pgxpool.Pool
	cluster *pgcluster.Cluster
	log     *slog.Logger
}

// Close closes the pool, then stops the embedded cluster if there is one.
func (d *database) Close() {
	d.Pool.Close()
	if d.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.cluster.Stop(ctx); err != nil {
			d.log.Warn("stop the embedded PostgreSQL cluster", "err", err)
		}
	}
}

// openDatabase connects to DATABASE_URL, or starts the embedded cluster in
// the data directory and connects to it. With attach, a cluster that a
// running candor serve owns is used through its socket (for commands such as
// candor user add that run beside it).
func openDatabase(ctx context.Context, o *options, log *slog.Logger, attach bool) (*database, error) {
	if o.databaseURL != "" {
		pool, err := connect(ctx, o.databaseURL)
		if err != nil {
			return nil, fmt.Errorf("cannot reach the database at DATABASE_URL (%s): %w", redactURL(o.databaseURL), err)
		}
		return &database{Pool: pool, log: log}, nil
	}
	dir, err := prepareDataDir(o.dataDir)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "postgres"), Logger: log})
	if attach && errors.Is(err, pgcluster.ErrInUse) {
		pool, err := connect(ctx, pgcluster.ConnStringFor(filepath.Join(dir, "postgres"), "candor"))
		if err != nil {
			return nil, fmt.Errorf("connect to the PostgreSQL cluster of the running candor in %s: %w", dir, err)
		}
		return &database{Pool: pool, log: log}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("start the embedded PostgreSQL cluster: %w", err)
	}
	log.Info("embedded PostgreSQL is up", "dir", filepath.Join(dir, "postgres"), "took", time.Since(start).Round(time.Millisecond))
	pool, err := connect(ctx, cl.ConnString("candor"))
	if err != nil {
		_ = cl.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("connect to the embedded PostgreSQL cluster: %w", err)
	}
	return &database{Pool: pool, cluster: cl, log: log}, nil
}

// maxConns is the most connections one candor process opens.
const maxConns = 16

func connect(ctx context.Context, connString string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, errors.New("the connection string is not valid") // pgx's message may echo the password
	}
	pcfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pcfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	// The connection budget of one replica (docs/operations.md): two held by
	// LISTEN (public site, relay), up to eight for the relay's four workers,
	// the rest for probes, incidents and the console.
	pcfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// prepareDataDir creates the data directory and proves it is writable.
func prepareDataDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("cannot create the data directory %s: %w", abs, unwrapPathError(err))
	}
	probe, err := os.CreateTemp(abs, ".write-test-*")
	if err != nil {
		return "", fmt.Errorf("the data directory %s is not writable: %w", abs, unwrapPathError(err))
	}
	probe.Close()
	_ = os.Remove(probe.Name())
	return abs, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// redactURL hides the password of a database URL so it can be shown.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("cannot listen on %s: the address is already in use (another candor? choose one with --listen)", addr)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot listen on %s: permission denied (ports below 1024 need privileges)", addr)
	}
	return fmt.Errorf("cannot listen on %s: %w", addr, err)
}

// newLogger logs text to a terminal and JSON otherwise.
func newLogger(w io.Writer) *slog.Logger {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, nil))
		}
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
