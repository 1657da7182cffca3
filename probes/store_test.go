package probes

import (
	"github.com/candorhq/candor/internal/pgtest"

	"context"
	"testing"
	"time"
)

func TestStoreInsertsRollsUpAndPrunes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewStore(pgtest.New(t))
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var batch []Result
	for i := range 48 { // every 30 minutes for a day; every fourth fails
		r := Result{Probe: "login", Location: "eu", Start: day.Add(time.Duration(i) * 30 * time.Minute),
			Outcome: OutcomeOK, Duration: time.Duration(100+i) * time.Millisecond, FailedIdx: -1,
			Steps: []StepResult{{Name: "login_page", Status: 200, Latency: 10 * time.Millisecond, Bytes: 900, OK: true}}}
		if i%4 == 0 {
			r.Outcome, r.FailedStep, r.FailedIdx, r.Class, r.Message = OutcomeFailed, "password", 1, ClassHTTPStatus, "answered 503"
			r.Signals = []Signal{SignalCookieFlagsWeak}
		}
		batch = append(batch, r)
	}
	// Two batches: the rollups must add up across them.
	if err := s.Insert(ctx, batch[:20]); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, batch[20:]); err != nil {
		t.Fatal(err)
	}
	daily, err := s.Rollups(ctx, "login", true, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(daily) != 1 || daily[0].Runs != 48 || daily[0].Failed != 12 || daily[0].WithSignals != 12 || !daily[0].Bucket.Equal(day) || daily[0].Bucket.Location() != time.UTC {
		t.Fatalf("daily: got %+v", daily)
	}
	hourly, err := s.Rollups(ctx, "", false, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(hourly) != 24 || hourly[0].Runs != 2 || hourly[0].Failed != 1 || hourly[1].Failed != 0 {
		t.Fatalf("hourly: got %d rollups, first %+v", len(hourly), hourly[0])
	}
	recent, err := s.Recent(ctx, "login", "eu", 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 4 || !recent[0].Start.Equal(batch[47].Start) || recent[0].Start.Location() != time.UTC || len(recent[0].Steps) != 1 {
		t.Fatalf("recent: got %+v", recent)
	}
	if got := recent[3]; got.Outcome != OutcomeFailed || got.FailedStep != "password" || got.Class != ClassHTTPStatus || len(got.Signals) != 1 {
		t.Errorf("recent[3]: got %+v", got)
	}
	n, err := s.Prune(ctx, day.Add(12*time.Hour))
	if err != nil || n != 24 {
		t.Fatalf("prune: %d, %v; want 24 rows", n, err)
	}
	// The rollups are untouched by pruning.
	daily, _ = s.Rollups(ctx, "login", true, day, day.AddDate(0, 0, 1))
	if len(daily) != 1 || daily[0].Runs != 48 {
		t.Errorf("after prune, daily: %+v", daily)
	}
}
