package probes

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/pgtest"
)

// BenchmarkStorageBytesPerRun stores 20,000 runs of a six-step login probe
// (one in ten failing) and reports what each costs on disk: raw results with
// their indexes, and the rollups. Run it once:
//
//	go test -run '^$' -bench StorageBytesPerRun -benchtime 1x ./probes
func BenchmarkStorageBytesPerRun(b *testing.B) {
	pool := pgtest.New(b)
	ctx := context.Background()
	st := NewStore(pool)
	const runs = 20_000
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	steps := []StepResult{}
	for _, n := range []string{"login_page", "password", "totp_page", "totp", "dashboard", "logout"} {
		steps = append(steps, StepResult{Name: n, Status: 200, OK: true, Latency: 40 * time.Millisecond, Bytes: 1800})
	}
	for b.Loop() {
		batch := make([]Result, 0, 500)
		for i := range runs {
			r := Result{Probe: "login", Location: fmt.Sprintf("loc-%d", i%3), Start: start.Add(time.Duration(i) * 20 * time.Second),
				Duration: 240 * time.Millisecond, Outcome: OutcomeOK, FailedIdx: -1, Steps: steps}
			if i%10 == 0 {
				r.Outcome, r.FailedStep, r.FailedIdx, r.Class = OutcomeFailed, "password", 1, ClassHTTPStatus
				r.Message = `step "password" (POST /login): answered 503 Service Unavailable`
			}
			batch = append(batch, r)
			if len(batch) == cap(batch) {
				if err := st.Insert(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	var raw, rollups int64
	if err := pool.QueryRow(ctx, `select pg_total_relation_size('probe_results'),
		pg_total_relation_size('probe_rollups_hourly') + pg_total_relation_size('probe_rollups_daily')`).Scan(&raw, &rollups); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(raw)/runs, "raw-bytes/run")
	b.ReportMetric(float64(rollups)/runs, "rollup-bytes/run")
}
