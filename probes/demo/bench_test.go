package demo

import (
	"context"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/probes"
)

// benchPlan is the demo "login" probe (six requests: page, password, code
// page, code, dashboard, logout) with a fresh account per flow, since a code
// is accepted once per account and window.
func benchPlan(b *testing.B, baseURL string) *probes.Plan {
	b.Helper()
	doc := ProbesYAML(baseURL)
	src, err := config.Parse("demo.yaml", []byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	c := config.NewChecker(src, func(string) (string, bool) { return "", false })
	var ps []probes.Probe
	c.Decode("$.probes", &ps)
	if err := c.Err(); err != nil {
		b.Fatal(err)
	}
	p := ps[0]
	if p.Name != "login" {
		b.Fatalf("first demo probe is %q, want login", p.Name)
	}
	p.Steps[0].Let = map[string]string{"email": `bench-{{ now "150405.000000000" }}@` + Domain}
	plan, err := probes.Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	return plan
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoginFlow runs full login flows (six HTTP requests each, with
// TOTP) against the demo target in the same process over loopback, with
// 200 flows in flight. CPU, allocations and heap include the target's share.
func BenchmarkLoginFlow(b *testing.B) {
	// A clock one second into a TOTP window that moves a nanosecond per
	// reading: no flow waits for a window, and every flow's account is new.
	start := time.Unix(1_800_000_000/TOTPPeriod*TOTPPeriod+1, 0)
	var ticks atomic.Int64
	now := func() time.Time { return start.Add(time.Duration(ticks.Add(1))) }
	target := New(Options{Now: now})
	defer target.Close()
	srv := httptest.NewServer(target)
	defer srv.Close()
	plan := benchPlan(b, srv.URL)
	r := probes.NewRunner(probes.RunnerOptions{Now: now})
	defer r.Close()

	const inFlight = 200
	var failed atomic.Int64
	var peakHeap atomic.Uint64
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapAlloc

	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() { // sample the heap while flows are in flight
		defer sampler.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peakHeap.Load() {
					peakHeap.Store(m.HeapAlloc)
				}
			}
		}
	}()

	b.ReportAllocs()
	b.SetParallelism((inFlight + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := r.Run(context.Background(), plan); res.Outcome != probes.OutcomeOK {
				if failed.Add(1) == 1 {
					b.Errorf("flow failed at %s: %s %s", res.FailedStep, res.Class, res.Message)
				}
			}
		}
	})
	b.StopTimer()
	cpu := cpuTime() - cpu0
	close(stop)
	sampler.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/flow")
	if peak := peakHeap.Load(); peak > baseHeap {
		b.ReportMetric(float64(peak-baseHeap)/inFlight/1024, "peak-heap-KB/flow-in-flight")
	}
}
