package probes

import (
	"testing"
	"time"
)

func TestAggregateRollsUpByProbeLocationAndBucket(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	rs := []Result{
		{Probe: "login", Location: "eu", Start: at("2026-03-01T10:59:59Z"), Outcome: OutcomeOK, Duration: 100 * time.Millisecond},
		{Probe: "login", Location: "eu", Start: at("2026-03-01T11:00:00Z"), Outcome: OutcomeFailed, Duration: 300 * time.Millisecond, Signals: []Signal{SignalSecondStepSkipped}},
		{Probe: "login", Location: "eu", Start: at("2026-03-01T11:30:00+02:00"), Outcome: OutcomeDegraded, Duration: 200 * time.Millisecond},
		{Probe: "login", Location: "us", Start: at("2026-03-01T11:10:00Z"), Outcome: OutcomeOK, Duration: 50 * time.Millisecond},
	}
	hourly := aggregate(rs, hourOf)
	if len(hourly) != 4 {
		t.Fatalf("got %d hourly rollups, want 4 (09:00 eu, 10:00 eu, 11:00 eu, 11:00 us)", len(hourly))
	}
	h := hourly[rollupKey{"login", "eu", at("2026-03-01T11:00:00Z")}]
	if h == nil || h.Runs != 1 || h.Failed != 1 || h.WithSignals != 1 {
		t.Errorf("11:00 eu: got %+v", h)
	}
	daily := aggregate(rs, dayOf)
	d := daily[rollupKey{"login", "eu", at("2026-03-01T00:00:00Z")}]
	if d == nil || d.Runs != 3 || d.OK != 1 || d.Failed != 1 || d.Degraded != 1 || d.DurationSum != 600*time.Millisecond || d.DurationMax != 300*time.Millisecond {
		t.Errorf("day eu: got %+v", d)
	}
	if got := d.Uptime(); got < 0.66 || got > 0.67 {
		t.Errorf("uptime %v, want 2/3", got)
	}
}
