package probes

import (
	"github.com/candorhq/candor/internal/pgtest"

	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"
)

// runLog records which replica ran which interval.
type runLog struct {
	mu   sync.Mutex
	runs []replicaRun
}

type replicaRun struct {
	replica string
	slot    int64
	res     Result
}

func (l *runLog) add(replica string, interval time.Duration) func(context.Context, Result) {
	return func(_ context.Context, r Result) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.runs = append(l.runs, replicaRun{replica, r.Start.UnixNano() / int64(interval), r})
	}
}

func (l *runLog) snapshot() []replicaRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]replicaRun(nil), l.runs...)
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTwoReplicasRunAProbeOncePerIntervalAndTheSurvivorTakesOver(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	const interval = time.Second
	plan := plans(t, fmt.Sprintf(`probes:
  - name: home
    target: %s
    interval: 1s
    jitter: 400ms
    steps: [{name: home, url: /}]
  - name: elsewhere
    target: %s
    interval: 1s
    locations: [mars]
    steps: [{name: home, url: /}]
`, srv.URL, srv.URL), nil)

	pool := pgtest.New(t)
	store := NewStore(pool)
	log := &runLog{}
	start := func(name string) (context.CancelFunc, chan error) {
		r := NewRunner(RunnerOptions{Location: "earth"})
		t.Cleanup(r.Close)
		s, err := NewScheduler(plan, SchedulerOptions{Runner: r, Pool: pool, Store: store, Holder: name,
			OnResult: log.add(name, interval), FlushEvery: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Plans()) != 1 || s.Plans()[0].Name() != "home" {
			t.Fatalf("replica at earth schedules %d plans, want only home", len(s.Plans()))
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		return cancel, done
	}
	stopA, doneA := start("a")
	stopB, doneB := start("b")
	defer stopB()

	waitFor(t, 15*time.Second, "five runs by two replicas", func() bool { return len(log.snapshot()) >= 5 })
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now().UnixNano() / int64(interval)
	waitFor(t, 15*time.Second, "three runs by the survivor", func() bool {
		n := 0
		for _, r := range log.snapshot() {
			if r.replica == "b" && r.slot > stoppedAt {
				n++
			}
		}
		return n >= 3
	})
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}

	runs := log.snapshot()
	perSlot := map[int64][]string{}
	for _, r := range runs {
		perSlot[r.slot] = append(perSlot[r.slot], r.replica)
		if r.res.Outcome != OutcomeOK || r.res.Location != "earth" {
			t.Errorf("run %+v", r.res)
		}
	}
	var slots []int64
	for s, who := range perSlot {
		slots = append(slots, s)
		if len(who) != 1 {
			t.Errorf("interval %d ran %d times (by %v), want once", s, len(who), who)
		}
	}
	sort.Slice(slots, func(i, j int) bool { return slots[i] < slots[j] })
	for i := 1; i < len(slots); i++ {
		if slots[i] != slots[i-1]+1 {
			t.Errorf("no run in intervals %d..%d: the survivor must take over within one interval (slots %v)", slots[i-1]+1, slots[i]-1, slots)
		}
	}
	// Every run was stored (the last batch is flushed at shutdown).
	stored, err := store.Recent(context.Background(), "home", "earth", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(runs) {
		t.Errorf("stored %d results, want %d", len(stored), len(runs))
	}
}

// BenchmarkScheduleCost measures what scheduling adds to a run: taking (or
// failing to take) the lease, one statement on a local database.
func BenchmarkScheduleCost(b *testing.B) {
	pool := pgtest.New(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := takeLease(ctx, pool, "login", "eu", "bench", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
