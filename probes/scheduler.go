package probes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchedulerOptions configures a [Scheduler].
type SchedulerOptions struct {
	// Runner runs the probes; its location decides which probes run here.
	Runner *Runner
	// Pool coordinates replicas through lease rows; nil runs every probe
	// on every tick (a single replica without a database, e.g. in tests).
	Pool *pgxpool.Pool
	// Store receives every result, in batches; nil stores nothing.
	Store *Store
	// OnResult receives every result as soon as its run ends (the incidents
	// part consumes them); it must not block for long.
	OnResult func(context.Context, Result)
	// Retention is how long raw results are kept (default 30 days); rollups stay.
	Retention time.Duration
	// FlushEvery is the time between batch writes (default 1s).
	FlushEvery time.Duration
	// Holder names this replica in the lease table (default host name, pid and a random suffix).
	Holder string
	Logger *slog.Logger
}

// Scheduler runs each probe once per interval per location across every
// replica that shares its database.
//
// Every replica ticks once per interval (at multiples of the interval since
// the Unix epoch, plus a fixed offset below the probe's jitter) and asks PostgreSQL for the lease of (probe, location)
// until the end of the current interval, by the database's clock. The lease
// is taken only when the previous one has expired, and it is never released
// early — gocron's locker interface would release it when the run ends, which
// lets a replica whose tick fires a moment later run the probe a second time.
// A replica that dies simply stops taking leases; the next tick of another
// replica takes the next interval.
type Scheduler struct {
	o     SchedulerOptions
	plans []*Plan
	lock  *leaseLocker
	batch *batcher
	log   *slog.Logger
}

// NewScheduler returns a Scheduler for the plans that run at the runner's location.
func NewScheduler(plans []*Plan, o SchedulerOptions) (*Scheduler, error) {
	if o.Runner == nil {
		return nil, errors.New("probes: scheduler needs a runner")
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	s := &Scheduler{o: o, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	loc := o.Runner.Location()
	if o.Pool != nil {
		s.lock = &leaseLocker{pool: o.Pool, holder: o.Holder, keys: map[string]leaseKey{}, log: s.log}
	}
	for _, p := range plans {
		if !p.RunsAt(loc) {
			continue
		}
		s.plans = append(s.plans, p)
		if s.lock != nil {
			s.lock.keys[jobName(p.Name(), loc)] = leaseKey{probe: p.Name(), location: loc, interval: p.Interval()}
		}
	}
	if o.Store != nil {
		s.batch = &batcher{store: o.Store, maxPending: 10_000}
	}
	return s, nil
}

// Plans returns the plans this scheduler runs.
func (s *Scheduler) Plans() []*Plan { return s.plans }

func jobName(probe, location string) string { return probe + "@" + location }

// Run schedules the probes and blocks until ctx is done; then it waits for
// running probes, writes the last results and returns.
func (s *Scheduler) Run(ctx context.Context) error {
	opts := []gocron.SchedulerOption{gocron.WithStopTimeout(30 * time.Second)}
	if s.lock != nil {
		opts = append(opts, gocron.WithDistributedLocker(s.lock))
	}
	sched, err := gocron.NewScheduler(opts...)
	if err != nil {
		return fmt.Errorf("probes: scheduler: %w", err)
	}
	loc := s.o.Runner.Location()
	now := time.Now()
	for _, p := range s.plans {
		// Ticks fall at multiples of the interval since the epoch, plus an
		// offset drawn once per replica and probe from [0, jitter), so that
		// replicas and probes do not all fire at the same instant.
		iv := p.Interval()
		first := time.Unix(0, (now.UnixNano()/int64(iv)+1)*int64(iv))
		if j := p.Probe.Jitter.D; j > 0 {
			first = first.Add(mrand.N(j))
		}
		_, err := sched.NewJob(gocron.DurationJob(iv), gocron.NewTask(s.runOnce, p),
			gocron.WithName(jobName(p.Name(), loc)),
			gocron.WithContext(ctx),
			gocron.WithStartAt(gocron.WithStartDateTime(first)),
			gocron.WithSingletonMode(gocron.LimitModeReschedule))
		if err != nil {
			return fmt.Errorf("probes: schedule %s: %w", p.Name(), err)
		}
	}
	if s.batch != nil {
		_, err := sched.NewJob(gocron.DurationJob(s.o.FlushEvery), gocron.NewTask(s.flush),
			gocron.WithName("probe-results-flush"), gocron.WithContext(ctx),
			gocron.WithDisabledDistributedJobLocker(true), gocron.WithSingletonMode(gocron.LimitModeReschedule))
		if err != nil {
			return fmt.Errorf("probes: schedule flush: %w", err)
		}
		_, err = sched.NewJob(gocron.DurationJob(time.Hour), gocron.NewTask(s.prune),
			gocron.WithName("probe-results-prune"), gocron.WithContext(ctx),
			gocron.WithStartAt(gocron.WithStartImmediately()),
			gocron.WithDisabledDistributedJobLocker(true), gocron.WithSingletonMode(gocron.LimitModeReschedule))
		if err != nil {
			return fmt.Errorf("probes: schedule prune: %w", err)
		}
	}
	sched.Start()
	<-ctx.Done()
	err = sched.Shutdown()
	if s.batch != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ferr := s.batch.flush(fctx); ferr != nil {
			s.log.Error("probe results not stored at shutdown", "err", ferr, "results", len(s.batch.pending))
		}
	}
	if err != nil {
		return fmt.Errorf("probes: scheduler shutdown: %w", err)
	}
	return nil
}

// runOnce runs p and hands the result on. A panic (a bug, never a target's
// answer) is logged and ends this run only: the scheduler keeps going.
func (s *Scheduler) runOnce(ctx context.Context, p *Plan) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("probe run panicked", "probe", p.Name(), "panic", fmt.Sprint(v))
		}
	}()
	res := s.o.Runner.Run(ctx, p)
	if ctx.Err() != nil && res.Failed() && res.Class == ClassTimeout {
		return // shut down mid-run: not a finding about the target
	}
	if s.batch != nil {
		s.batch.add(res)
	}
	if s.o.OnResult != nil {
		s.o.OnResult(ctx, res)
	}
}

func (s *Scheduler) flush(ctx context.Context) {
	if err := s.batch.flush(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("probe results not stored yet; will retry", "err", err)
	}
}

func (s *Scheduler) prune(ctx context.Context) {
	n, err := s.o.Store.Prune(ctx, time.Now().Add(-s.o.Retention))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("pruning probe results failed", "err", err)
		}
		return
	}
	if n > 0 {
		s.log.Info("pruned old probe results", "rows", n)
	}
}

type leaseKey struct {
	probe, location string
	interval        time.Duration
}

// leaseLocker is a gocron.Locker whose locks expire by themselves at the
// end of the interval they were taken in and whose Unlock does nothing.
type leaseLocker struct {
	pool   *pgxpool.Pool
	holder string
	keys   map[string]leaseKey // fixed after NewScheduler
	log    *slog.Logger
}

// errLeaseHeld tells gocron that another replica runs this interval.
var errLeaseHeld = errors.New("another replica holds the lease for this interval")

func (l *leaseLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	k, ok := l.keys[key]
	if !ok {
		return nil, fmt.Errorf("probes: no lease key %q", key)
	}
	ok, err := takeLease(ctx, l.pool, k.probe, k.location, l.holder, k.interval)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// The database is unreachable: keep probing rather than go blind
		// when it matters most. Results are buffered until it returns;
		// replicas in the same location may both run this interval.
		l.log.Warn("probe lease unavailable; running without it", "probe", k.probe, "location", k.location, "err", err)
		return noUnlock{}, nil
	}
	if !ok {
		return nil, errLeaseHeld
	}
	return noUnlock{}, nil
}

// takeLease takes the lease of (probe, location) until the end of the
// current interval by the database's clock, unless an unexpired lease exists.
func takeLease(ctx context.Context, pool *pgxpool.Pool, probe, location, holder string, interval time.Duration) (bool, error) {
	tag, err := pool.Exec(ctx, `
		insert into probe_leases as l (probe, location, holder, until)
		values ($1, $2, $3, to_timestamp((floor(extract(epoch from now()) / $4) + 1) * $4))
		on conflict (probe, location) do update set holder = excluded.holder, until = excluded.until
		where l.until <= now()`,
		probe, location, holder, interval.Seconds())
	if err != nil {
		return false, fmt.Errorf("probes: take lease of %s@%s: %w", probe, location, err)
	}
	return tag.RowsAffected() == 1, nil
}

type noUnlock struct{}

// Unlock does nothing: the lease expires at the end of its interval.
func (noUnlock) Unlock(context.Context) error { return nil }
