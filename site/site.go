package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/incidents"
)

// Page identifies the public status page, as the API reports it.
type Page struct {
	ID   string // stable id, e.g. "candor"
	Name string // shown as the page title
	URL  string // absolute public URL, e.g. "https://status.example.com"; links in feeds and the API start with it
}

// Options configure a Site.
type Options struct {
	// Store is where the site reads incidents, components and uptime from.
	Store *incidents.Store
	// Pool is used to LISTEN for change notices (one connection, held by Run).
	Pool *pgxpool.Pool
	Page Page
	// Logger receives rebuild failures and reconnections; nil discards them.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Debounce is how long Run waits after a change notice before
	// rebuilding, so that a burst of changes costs one rebuild (default
	// 100ms). A rebuild starts at most this long after the first notice.
	Debounce time.Duration
}

// Site is the public status site: pages, feeds, the JSON API and badges,
// served from an in-memory snapshot that Rebuild replaces as a whole.
type Site struct {
	opts   Options
	log    *slog.Logger
	assets assets
	cur    atomic.Pointer[Snapshot]
	mu     sync.Mutex // one rebuild at a time; guards cache
	cache  updateCache
	poke   chan struct{}
}

// New returns a Site. It serves 503 until the first snapshot is built by
// Rebuild or Run.
func New(opts Options) (*Site, error) {
	if opts.Store == nil {
		return nil, errors.New("site: a Store is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.Page.Name == "" {
		opts.Page.Name = "Status"
	}
	if opts.Page.ID == "" {
		opts.Page.ID = "candor"
	}
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	return &Site{opts: opts, log: opts.Logger, assets: a, poke: make(chan struct{}, 1)}, nil
}

// Snapshot returns the snapshot being served, or nil before the first
// rebuild.
func (s *Site) Snapshot() *Snapshot { return s.cur.Load() }

// Handler serves every public route from the current snapshot. It never
// touches PostgreSQL.
func (s *Site) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap := s.cur.Load()
		if snap == nil {
			h := w.Header()
			h["Retry-After"] = []string{"1"}
			h["Cache-Control"] = []string{"no-store"}
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["X-Content-Type-Options"] = []string{"nosniff"}
			h["Content-Security-Policy"] = []string{csp}
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "The status page is starting.\n")
			return
		}
		snap.serve(w, r)
	})
}

// Rebuild reads everything public from the Store and replaces the snapshot.
// On error the previous snapshot stays.
func (s *Site) Rebuild(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := load(ctx, s.opts.Store, s.opts.Page, s.opts.Now(), &s.cache)
	if err != nil {
		s.cache.next = nil
		return fmt.Errorf("site: rebuild: %w", err)
	}
	snap, err := build(m, s.assets, s.cur.Load())
	if err != nil {
		s.cache.next = nil
		return fmt.Errorf("site: rebuild: %w", err)
	}
	s.cache.commit()
	s.cur.Store(snap)
	return nil
}

// build renders a snapshot from a model.
func build(m *model, a assets, prev *Snapshot) (*Snapshot, error) {
	key := modelKey(m, a)
	if prev != nil && prev.key == key {
		return prev, nil
	}
	b := newBuilder(prev)
	if err := b.addAPI(m); err != nil {
		return nil, err
	}
	if err := b.addFeeds(m, a); err != nil {
		return nil, err
	}
	if err := b.addBadges(m); err != nil {
		return nil, err
	}
	if err := b.addPages(m, a); err != nil {
		return nil, err
	}
	snap := b.snapshot(m.Built, m.UpdatedAt)
	snap.key = key
	return snap, nil
}

// Changed asks Run to rebuild soon, for changes this process knows of
// without a notice from PostgreSQL.
func (s *Site) Changed() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run keeps the snapshot current until ctx ends: it rebuilds at once, then
// on every change notice on incidents.NotifyChannel (debounced), at the top
// of every hour (uptime bars move with the day), and whenever the connection
// to PostgreSQL comes back (notices may have been missed). While PostgreSQL
// is down the last snapshot keeps being served and rebuilds are retried.
func (s *Site) Run(ctx context.Context) error {
	if s.opts.Pool != nil {
		go s.listen(ctx)
	}
	var (
		pending = true // rebuild at once
		due     = time.NewTimer(0)
		retry   = time.Second
		hourly  = time.NewTimer(untilHour(time.Now()))
	)
	defer due.Stop()
	defer hourly.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.poke:
			if !pending {
				pending = true
				due.Reset(s.opts.Debounce)
			}
		case <-hourly.C:
			hourly.Reset(untilHour(time.Now()))
			if !pending {
				pending = true
				due.Reset(0)
			}
		case <-due.C:
			// A database that hangs instead of refusing must not stop
			// rebuilds for good.
			rctx, cancel := context.WithTimeout(ctx, rebuildTimeout)
			err := s.Rebuild(rctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Warn("public site rebuild failed; serving the last snapshot", "err", err, "retry_in", retry)
				due.Reset(retry)
				retry = min(2*retry, 30*time.Second)
				continue
			}
			pending, retry = false, time.Second
		}
	}
}

// rebuildTimeout bounds one rebuild in Run, and connectTimeout one attempt
// to get a connection for LISTEN.
const (
	rebuildTimeout = 30 * time.Second
	connectTimeout = 10 * time.Second
)

func untilHour(now time.Time) time.Duration {
	return now.Truncate(time.Hour).Add(time.Hour + time.Second).Sub(now)
}

// listen holds one connection LISTENing on incidents.NotifyChannel and pokes
// Run on every notice, reconnecting with backoff when the connection fails.
func (s *Site) listen(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, func() { wait = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("public site lost its change notices; reconnecting", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (s *Site) listenOnce(ctx context.Context, connected func()) error {
	actx, cancel := context.WithTimeout(ctx, connectTimeout)
	pc, err := s.opts.Pool.Acquire(actx)
	cancel()
	if err != nil {
		return err
	}
	// The connection leaves the pool: a LISTENing session must not be
	// handed to someone else.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "listen "+incidents.NotifyChannel); err != nil {
		return err
	}
	connected()
	// Anything may have changed while we were not listening.
	s.Changed()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.Changed()
	}
}
