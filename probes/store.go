package probes

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store keeps probe results in PostgreSQL: raw results for a retention
// period, and hourly and daily rollups per probe and location for ever.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Rollup is the summary of one probe at one location over one UTC hour or day.
type Rollup struct {
	Probe       string        `json:"probe"`
	Location    string        `json:"location"`
	Bucket      time.Time     `json:"bucket"` // start of the hour or day, UTC
	Runs        int           `json:"runs"`
	OK          int           `json:"ok"`
	Degraded    int           `json:"degraded"`
	Failed      int           `json:"failed"`
	WithSignals int           `json:"with_signals"`
	DurationSum time.Duration `json:"duration_sum"`
	DurationMax time.Duration `json:"duration_max"`
}

// Uptime is the share of runs that did not fail, or 1 when there were none.
func (r Rollup) Uptime() float64 {
	if r.Runs == 0 {
		return 1
	}
	return float64(r.Runs-r.Failed) / float64(r.Runs)
}

type rollupKey struct {
	probe, location string
	bucket          time.Time
}

// aggregate sums results into rollups per probe, location and bucket
// (truncate gives a result's bucket).
func aggregate(rs []Result, truncate func(time.Time) time.Time) map[rollupKey]*Rollup {
	out := map[rollupKey]*Rollup{}
	for _, r := range rs {
		k := rollupKey{r.Probe, r.Location, truncate(r.Start.UTC())}
		a := out[k]
		if a == nil {
			a = &Rollup{Probe: k.probe, Location: k.location, Bucket: k.bucket}
			out[k] = a
		}
		a.Runs++
		switch r.Outcome {
		case OutcomeOK:
			a.OK++
		case OutcomeDegraded:
			a.Degraded++
		default:
			a.Failed++
		}
		if len(r.Signals) > 0 {
			a.WithSignals++
		}
		d := r.Duration.Truncate(time.Millisecond)
		a.DurationSum += d
		a.DurationMax = max(a.DurationMax, d)
	}
	return out
}

func hourOf(t time.Time) time.Time { return t.Truncate(time.Hour) }
func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// Insert stores a batch of results and adds them to the rollups, in one transaction.
func (s *Store) Insert(ctx context.Context, rs []Result) error {
	if len(rs) == 0 {
		return nil
	}
	rows := make([][]any, len(rs))
	for i, r := range rs {
		steps, err := json.Marshal(r.Steps)
		if err != nil {
			return fmt.Errorf("store probe results: %w", err)
		}
		signals := make([]string, len(r.Signals))
		for j, sg := range r.Signals {
			signals[j] = string(sg)
		}
		var cert *time.Time
		if r.CertNotAfter != nil {
			c := r.CertNotAfter.UTC()
			cert = &c
		}
		rows[i] = []any{r.Probe, r.Location, r.Start.UTC(), r.Duration.Milliseconds(), string(r.Outcome),
			r.FailedStep, r.FailedIdx, string(r.Class), r.Message, signals, steps, r.ClockOffset.Milliseconds(), cert}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"probe_results"},
			[]string{"probe", "location", "started_at", "duration_ms", "outcome", "failed_step", "failed_index",
				"error_class", "message", "signals", "steps", "clock_offset_ms", "cert_not_after"},
			pgx.CopyFromRows(rows))
		if err != nil {
			return err
		}
		var b pgx.Batch
		for table, trunc := range map[string]func(time.Time) time.Time{"probe_rollups_hourly": hourOf, "probe_rollups_daily": dayOf} {
			for _, a := range aggregate(rs, trunc) {
				b.Queue(`insert into `+table+` as r (probe, location, bucket, runs, ok, degraded, failed, with_signals, duration_ms_sum, duration_ms_max)
					values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
					on conflict (probe, location, bucket) do update set
						runs = r.runs + excluded.runs, ok = r.ok + excluded.ok,
						degraded = r.degraded + excluded.degraded, failed = r.failed + excluded.failed,
						with_signals = r.with_signals + excluded.with_signals,
						duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum,
						duration_ms_max = greatest(r.duration_ms_max, excluded.duration_ms_max)`,
					a.Probe, a.Location, a.Bucket, a.Runs, a.OK, a.Degraded, a.Failed, a.WithSignals,
					a.DurationSum.Milliseconds(), a.DurationMax.Milliseconds())
			}
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("store %d probe results: %w", len(rs), err)
	}
	return nil
}

// Prune deletes raw results that started before cutoff; rollups stay.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `delete from probe_results where started_at < $1`, cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("prune probe results: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Recent returns up to limit latest raw results of probe (at every location
// when location is ""), newest first.
func (s *Store) Recent(ctx context.Context, probe, location string, limit int) ([]Result, error) {
	rows, err := s.pool.Query(ctx, `
		select probe, location, started_at, duration_ms, outcome, failed_step, failed_index,
		       error_class, message, signals, steps, clock_offset_ms, cert_not_after
		from probe_results
		where probe = $1 and ($2 = '' or location = $2)
		order by started_at desc limit $3`, probe, location, limit)
	if err != nil {
		return nil, fmt.Errorf("recent probe results: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Result, error) {
		var r Result
		var durMS, offMS int64
		var outcome, class string
		var signals []string
		var steps []byte
		err := row.Scan(&r.Probe, &r.Location, &r.Start, &durMS, &outcome, &r.FailedStep, &r.FailedIdx,
			&class, &r.Message, &signals, &steps, &offMS, &r.CertNotAfter)
		if err != nil {
			return r, err
		}
		r.Start = r.Start.UTC()
		if r.CertNotAfter != nil {
			c := r.CertNotAfter.UTC()
			r.CertNotAfter = &c
		}
		r.Duration = time.Duration(durMS) * time.Millisecond
		r.ClockOffset = time.Duration(offMS) * time.Millisecond
		r.Outcome, r.Class = Outcome(outcome), ErrorClass(class)
		for _, sg := range signals {
			r.Signals = append(r.Signals, Signal(sg))
		}
		return r, json.Unmarshal(steps, &r.Steps)
	})
	if err != nil {
		return nil, fmt.Errorf("recent probe results: %w", err)
	}
	return out, nil
}

// Rollups returns the hourly (daily false) or daily rollups of probe (every
// probe when ""), at every location, whose bucket is in [from, to), oldest first.
func (s *Store) Rollups(ctx context.Context, probe string, daily bool, from, to time.Time) ([]Rollup, error) {
	table := "probe_rollups_hourly"
	if daily {
		table = "probe_rollups_daily"
	}
	rows, err := s.pool.Query(ctx, `
		select probe, location, bucket, runs, ok, degraded, failed, with_signals, duration_ms_sum, duration_ms_max
		from `+table+`
		where ($1 = '' or probe = $1) and bucket >= $2 and bucket < $3
		order by bucket, probe, location`, probe, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("probe rollups: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rollup, error) {
		var r Rollup
		var sum, mx int64
		err := row.Scan(&r.Probe, &r.Location, &r.Bucket, &r.Runs, &r.OK, &r.Degraded, &r.Failed, &r.WithSignals, &sum, &mx)
		r.Bucket = r.Bucket.UTC()
		r.DurationSum = time.Duration(sum) * time.Millisecond
		r.DurationMax = time.Duration(mx) * time.Millisecond
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("probe rollups: %w", err)
	}
	return out, nil
}

// batcher collects results and writes them in batches; a batch that cannot
// be written is kept (up to maxPending results, oldest dropped first) and
// retried with the next one, so that a short database outage loses nothing.
type batcher struct {
	store      *Store
	maxPending int
	mu         sync.Mutex
	pending    []Result
	dropped    int
}

func (b *batcher) add(r Result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) >= b.maxPending {
		b.pending = b.pending[1:]
		b.dropped++
	}
	b.pending = append(b.pending, r)
}

// flush writes what is pending; on error it stays pending.
func (b *batcher) flush(ctx context.Context) error {
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := b.store.Insert(ctx, batch); err != nil {
		b.mu.Lock()
		b.pending = append(batch, b.pending...)
		if over := len(b.pending) - b.maxPending; over > 0 {
			b.pending = b.pending[over:]
			b.dropped += over
		}
		b.mu.Unlock()
		return err
	}
	return nil
}
