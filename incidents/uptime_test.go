package incidents

import (
	"context"
	"testing"
	"time"
)

func TestUptimeFromDailyRollups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	clk.Set(time.Date(2025, 3, 4, 18, 0, 0, 0, time.UTC))
	day := func(d int) time.Time { return time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d) }
	for _, r := range []struct {
		probe, loc   string
		day          int
		runs, failed int
	}{
		{"login", "eu-west", 0, 100, 10},
		{"login", "us-east", 0, 100, 0},
		{"login-remembered", "eu-west", 0, 100, 0},
		{"login", "eu-west", -1, 50, 0},
		{"login", "eu-west", -3, 10, 10},
		{"login", "eu-west", -4, 999, 999}, // outside a 4-day window
		{"other", "eu-west", 0, 100, 100},  // a probe no component lists
	} {
		_, err := pool.Exec(ctx, `insert into probe_rollups_daily (probe, location, bucket, runs, ok, degraded, failed, with_signals, duration_ms_sum, duration_ms_max)
			values ($1, $2, $3, $4, $5, 0, $6, 0, 0, 0)`, r.probe, r.loc, day(r.day), r.runs, r.runs-r.failed, r.failed)
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Uptime(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Component != "Login" || len(got[0].Days) != 4 {
		t.Fatalf("got %+v", got)
	}
	login := got[0].Days
	for i, want := range []struct {
		day    time.Time
		uptime float64
		runs   int
	}{{day(-3), 0, 10}, {day(-2), -1, 0}, {day(-1), 1, 50}, {day(0), 290.0 / 300, 300}} {
		if !login[i].Day.Equal(want.day) || login[i].Uptime != want.uptime || login[i].Runs != want.runs {
			t.Errorf("day %d: got %+v, want %v %v %d", i, login[i], want.day, want.uptime, want.runs)
		}
		if login[i].Day.Location() != time.UTC {
			t.Errorf("day %v is not UTC", login[i].Day)
		}
	}
	if got[3].Component != "Dashboard" || got[3].Days[3].Uptime != -1 {
		t.Errorf("a component without probes: %+v", got[3])
	}
}
