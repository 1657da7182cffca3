package incidents

import (
	"context"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/pgtest"
	"github.com/candorhq/candor/probes"
)

// BenchmarkDetectorObserve is the pure detector on a steady stream of
// results from three probes in two locations, with an outage every 40 runs.
func BenchmarkDetectorObserve(b *testing.B) {
	s := newSim(b, Policy{})
	b.ReportAllocs()
	for i := range b.N {
		at := t0.Add(time.Duration(i) * time.Second)
		p, l := demoProbes[i%3], twoLocs[i/3%2]
		r := ok(p, l, at)
		if i/120%2 == 1 {
			r = fail(p, l, at, "password", probes.ClassHTTPStatus)
		}
		s.observe(r, at)
	}
}

// BenchmarkStoreObserve is Observe on PostgreSQL for healthy results, the
// common case: one transaction per result.
func BenchmarkStoreObserve(b *testing.B) {
	pool := pgtest.New(b)
	clk := &clock{t: t0}
	s := NewStore(pool, Config{Components: demoComponents()}, Options{Now: clk.Now})
	ctx := context.Background()
	if err := s.SyncComponents(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		at := t0.Add(time.Duration(i) * time.Second)
		clk.Set(at)
		if _, err := s.Observe(ctx, ok(demoProbes[i%3], twoLocs[i/3%2], at)); err != nil {
			b.Fatal(err)
		}
	}
}
