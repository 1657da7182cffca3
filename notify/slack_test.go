package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/internal/pgtest"
	"github.com/candorhq/candor/probes"
)

const (
	oncallCh = "C0ONCALL"
	publicCh = "C0PUBLIC"
	pageURL  = "https://status.example.com"
	token    = "xoxb-test-0000-secret"
	wait     = 60 * time.Second // polling deadline: generous for a loaded machine
)

// offsetClock is the wall clock moved forward by hand, for the Store's
// cadence and the relay's retries to agree.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().UTC().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

type advisor struct{}

func (advisor) Advise(q incidents.AdviceQuery) incidents.Advice {
	return incidents.Advice{Runbooks: []incidents.RunbookRef{{ID: "login-errors", Title: "Login answers <5xx> & what to check",
		Reasons: []string{"step " + strings.Join(q.Steps, ",")}}}}
}

type env struct {
	t     *testing.T
	pool  *pgxpool.Pool
	store *incidents.Store
	slack *fakeSlack
	clock *offsetClock
	logs  *syncBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := pgtest.New(t)
	clk := &offsetClock{}
	comps := []incidents.Component{
		{Name: "Login", Group: "Sign-in", Probes: []string{"login"}, Steps: []string{"login_page", "password"}},
		{Name: "Two-step authentication", Group: "Sign-in", Steps: []string{"totp"}},
	}
	st := incidents.NewStore(pool, incidents.Config{Components: comps}, incidents.Options{Now: clk.Now,
		ProbeLocations: map[string][]string{"login": {"eu-west"}}, Advisor: advisor{}})
	if err := st.SyncComponents(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pool: pool, store: st, slack: newFakeSlack(t), clock: clk, logs: &syncBuffer{}}
	// Whatever a test does, the relay never logs the token.
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), token) {
			t.Errorf("the Slack token appears in the log")
		}
	})
	return e
}

// syncBuffer is a log destination shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e *env) config() Config {
	return Config{
		Slack: SlackConfig{Token: config.NewSecret(token), PublicChannel: publicCh, OncallChannel: oncallCh, APIURL: e.slack.url()},
		Delivery: DeliveryConfig{MaxAttempts: 50, BackoffBase: config.Dur(20 * time.Millisecond), BackoffMax: config.Dur(200 * time.Millisecond),
			PollInterval: config.Dur(200 * time.Millisecond)},
	}
}

func (e *env) relay(mut func(*Options)) (*Relay, *prometheus.Registry) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	o := Options{Pool: e.pool, Config: e.config(), PageURL: pageURL, Registerer: reg, Now: e.clock.Now, Timeline: e.store,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mut != nil {
		mut(&o)
	}
	r, err := NewRelay(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return r, reg
}

// start runs r until the returned stop is called (or the test ends).
func (e *env) start(r *Relay) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("relay: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// observeFailure opens (or feeds) an incident the way the probes do: two
// failed runs of the login probe at its one location.
func (e *env) openIncident(signals ...probes.Signal) int64 {
	e.t.Helper()
	ctx := context.Background()
	var id int64
	for range 2 {
		now := e.clock.Now()
		r := probes.Result{Probe: "login", Location: "eu-west", Start: now.Add(-time.Second), Duration: time.Second,
			Outcome: probes.OutcomeFailed, FailedStep: "password", FailedIdx: 1, Class: probes.ClassHTTPStatus, Signals: signals,
			Message: `step "password" (POST /login): answered 500 <Internal Server Error> & more`}
		evs, err := e.store.Observe(ctx, r)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Kind == incidents.KindDetected {
				id = ev.Incident
			}
		}
	}
	if id == 0 {
		e.t.Fatal("two failed runs opened no incident")
	}
	return id
}

func (e *env) post(id int64, u incidents.Update) {
	e.t.Helper()
	if u.Actor == "" {
		u.Actor = "person:ada@example.com"
	}
	if _, err := e.store.PostUpdate(context.Background(), id, u); err != nil {
		e.t.Fatal(err)
	}
}

// rootOf waits for the one root message of a channel and returns it.
func (e *env) rootOf(ch string) fakeMsg {
	e.t.Helper()
	if !poll(wait, func() bool { return len(e.slack.roots(ch)) > 0 }) {
		e.dump()
		e.t.Fatalf("timed out waiting for a root message in %s", ch)
	}
	roots := e.slack.roots(ch)
	if len(roots) != 1 {
		e.t.Fatalf("%s has %d root messages, want 1:%s", ch, len(roots), texts(roots))
	}
	return roots[0]
}

// waitThread waits until a channel's root has n replies and returns them.
func (e *env) waitThread(ch string, n int) (fakeMsg, []fakeMsg) {
	e.t.Helper()
	root := e.rootOf(ch)
	if !poll(wait, func() bool { return len(e.slack.thread(ch, root.TS)) >= n }) {
		e.dump()
		e.t.Fatalf("timed out waiting for %d replies in %s:%s", n, ch, texts(e.slack.thread(ch, root.TS)))
	}
	th := e.slack.thread(ch, root.TS)
	if len(th) != n {
		e.t.Fatalf("%s thread has %d replies, want %d:%s", ch, len(th), n, texts(th))
	}
	return e.slack.roots(ch)[0], th
}

// idle waits until no delivery is pending and every outbox row has its
// deliveries.
func (e *env) idle(r *Relay) {
	e.t.Helper()
	eventually(e.t, wait, "the relay to deliver everything", func() bool {
		var pending, missing int
		err := e.pool.QueryRow(context.Background(), `select
			(select count(*) from notify_deliveries where state = 'pending'),
			(select count(*) from outbox o where o.incident_id is not null and not exists
				(select 1 from notify_deliveries d where d.outbox_id = o.id and d.channel = 'slack:oncall'))`).Scan(&pending, &missing)
		if err != nil {
			e.t.Fatal(err)
		}
		return pending == 0 && missing == 0
	})
}

func contains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q, want it to contain %q", what, got, w)
		}
	}
}

func TestSlackRootThreadRepliesAndEdits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, reg := e.relay(nil)
	e.start(r)
	id := e.openIncident()

	// On-call: the root, what was detected with the failing step and its
	// error, the runbook, and the automatic first public update.
	root, th := e.waitThread(oncallCh, 3)
	contains(t, "on-call root blocks", root.Blocks, "Investigating", "Login: major outage", "No indication of a security incident",
		fmt.Sprintf("%s/incidents/%d", pageURL, id), "Started")
	kindsInOrder(t, th, "*Detected*", "*Investigating*", "*Runbook*")
	contains(t, "detected reply", th[0].Text, "`login/password`", "eu-west", "answered 500 &lt;Internal Server Error&gt; &amp; more")
	contains(t, "runbook reply", th[2].Text, "Login answers &lt;5xx&gt; &amp; what to check", "`login-errors`")
	// Public: the root and the first public update only.
	proot, pth := e.waitThread(publicCh, 1)
	contains(t, "public root", proot.Blocks, "Investigating", fmt.Sprintf("%s/incidents/%d|", pageURL, id))
	contains(t, "public update", pth[0].Text, "*Investigating*", "We are investigating a problem affecting *Login*")

	e.post(id, incidents.Update{Status: incidents.StatusIdentified, Message: "We found the **cause**: a bad <deploy> & we roll it back. [Details](https://example.com/a?b=1&c=2)"})
	root, th = e.waitThread(oncallCh, 4)
	contains(t, "identified reply", th[3].Text, "*Identified*", "*cause*", "a bad &lt;deploy&gt; &amp; we roll it back",
		"<https://example.com/a?b=1&amp;c=2|Details>", "ada@example.com")
	eventually(t, wait, "the on-call root to show identified", func() bool { return strings.Contains(e.slack.roots(oncallCh)[0].Blocks, "Identified") })
	proot, pth = e.waitThread(publicCh, 2)
	if strings.Contains(pth[1].Text, "ada@example.com") {
		t.Errorf("public reply names the author: %q", pth[1].Text)
	}

	// A person reclassifies without publishing: the public root stops
	// saying "no indication of a security incident" and says nothing more.
	if _, err := e.store.Reclassify(context.Background(), id, incidents.Security, "The error page leaked session ids.", "person:ada@example.com"); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "the public root to drop its classification", func() bool {
		return !strings.Contains(e.slack.roots(publicCh)[0].Blocks, "Classification")
	})
	if b := e.slack.roots(publicCh)[0].Blocks; strings.Contains(b, "ecurity incident") {
		t.Errorf("the public root reveals the reclassification: %s", b)
	}
	e.waitThread(oncallCh, 5)
	if _, pth := e.waitThread(publicCh, 2); strings.Contains(texts(pth), "lassification") {
		t.Errorf("the reclassification reached the public thread:%s", texts(pth))
	}
	contains(t, "on-call root", e.slack.roots(oncallCh)[0].Blocks, "Security incident (confirmed)")

	e.post(id, incidents.Update{Status: incidents.StatusResolved, Message: "Login works again."})
	e.waitThread(oncallCh, 6)
	e.waitThread(publicCh, 3)
	for _, ch := range []string{oncallCh, publicCh} {
		eventually(t, wait, ch+" root to show resolved", func() bool { return strings.Contains(e.slack.roots(ch)[0].Blocks, "Resolved at") })
		if got := e.slack.roots(ch)[0]; got.Edits < 3 {
			t.Errorf("%s root edited %d times, want at least 3 (identified, reclassified, resolved)", ch, got.Edits)
		}
	}
	if d := e.slack.duplicates(); len(d) > 0 {
		t.Errorf("posted twice: %v", d)
	}
	e.idle(r)
	// On-call: the opening and three updates; public: three updates.
	notified := map[string]int{}
	if !poll(wait, func() bool {
		tl, err := e.store.Timeline(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		clear(notified)
		for _, ev := range tl {
			if ev.Kind == incidents.KindNotified {
				var p struct{ Channel, Detail string }
				_ = json.Unmarshal(ev.Payload, &p)
				notified[p.Channel]++
			}
		}
		return notified["slack:oncall"] == 4 && notified["slack:public"] == 3
	}) {
		t.Errorf("notified events per channel %v, want 4 on-call and 3 public", notified)
	}
	if got := counter(r.m.delivered.WithLabelValues("slack:oncall")); got < 5 {
		t.Errorf("delivered metric for on-call = %v, want at least 5", got)
	}
	n, err := series(reg, "candor_notify_delivery_seconds")
	if err != nil || n != 2 {
		t.Errorf("latency histogram series = %d (%v), want one per channel", n, err)
	}
}

// kindsInOrder checks that the replies start with the given markers, in order.
func kindsInOrder(t *testing.T, th []fakeMsg, markers ...string) {
	t.Helper()
	for i, m := range markers {
		if i >= len(th) || !strings.Contains(th[i].Text, m) {
			t.Fatalf("reply %d should contain %q; thread:%s", i+1, m, texts(th))
		}
	}
}

func TestSecurityIncidentGoesToOnCallOnlyUntilPublished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.relay(nil)
	e.start(r)
	id := e.openIncident(probes.SignalWrongPasswordAccepted)

	root, th := e.waitThread(oncallCh, 2)
	contains(t, "on-call root", root.Blocks, "Suspected security incident", "Nothing published yet")
	kindsInOrder(t, th, "*Detected*", "*Runbook*")
	contains(t, "detected reply", th[0].Text, "wrong password accepted", "Publication:")
	e.post(id, incidents.Update{Message: "Internal: looking at the auth logs.", Visibility: incidents.Internal})
	e.waitThread(oncallCh, 3)
	e.idle(r)
	if got := e.slack.roots(publicCh); len(got) != 0 {
		t.Fatalf("an unpublished security incident reached the public channel:%s", texts(got))
	}

	e.post(id, incidents.Update{Message: "We are investigating a problem with sign-in and will update within 30 minutes."})
	proot, pth := e.waitThread(publicCh, 1)
	if strings.Contains(proot.Blocks, "Classification") {
		t.Errorf("the public root shows an unconfirmed security suspicion: %s", proot.Blocks)
	}
	contains(t, "public update", pth[0].Text, "We are investigating a problem with sign-in")
	if strings.Contains(pth[0].Text, "Internal") {
		t.Errorf("internal note reached the public channel")
	}
	_, th = e.waitThread(oncallCh, 4)
	eventually(t, wait, "the on-call root to drop 'Nothing published yet'", func() bool {
		return !strings.Contains(e.slack.roots(oncallCh)[0].Blocks, "Nothing published yet")
	})
	contains(t, "internal note", th[2].Text, "*Internal note*")
}

func TestSlackFailuresThenRateLimitEndWithEveryUpdateOnceInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var posts atomic.Int32
	e.slack.fault = func(method string, _ map[string]string) (int, string) {
		if method != "chat.postMessage" && method != "chat.update" {
			return 0, ""
		}
		switch n := posts.Add(1); {
		case n <= 4:
			return http.StatusInternalServerError, ""
		case n <= 6:
			return http.StatusTooManyRequests, "1"
		case n%5 == 0:
			return http.StatusBadGateway, "" // now and then, later too
		}
		return 0, ""
	}
	ctx := context.Background()
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Dashboard slow", Message: "update 0", Actor: "person:ada@example.com",
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.DegradedPerformance}}})
	if err != nil {
		t.Fatal(err)
	}
	r, reg := e.relay(func(o *Options) { o.Workers = 1 }) // one worker: no call is in flight when a 429 comes back
	e.start(r)
	for i := 1; i <= 5; i++ {
		e.post(inc.ID, incidents.Update{Message: fmt.Sprintf("update %d", i)})
	}
	_, th := e.waitThread(oncallCh, 7) // opened, update 0..5
	kindsInOrder(t, th, "*Opened*", "update 0", "update 1", "update 2", "update 3", "update 4", "update 5")
	_, pth := e.waitThread(publicCh, 6)
	kindsInOrder(t, pth, "update 0", "update 1", "update 2", "update 3", "update 4", "update 5")
	if d := e.slack.duplicates(); len(d) > 0 {
		t.Errorf("posted twice: %v", d)
	}
	// After a 429 with Retry-After: 1, that channel hears nothing for a second.
	calls := e.slack.callLog()
	limited := 0
	for i, c := range calls {
		if c.Status != http.StatusTooManyRequests {
			continue
		}
		limited++
		for _, next := range calls[i+1:] {
			if next.Channel == c.Channel && (next.Method == "chat.postMessage" || next.Method == "chat.update") {
				if gap := next.At.Sub(c.At); gap < time.Second {
					t.Errorf("%s called %s after a 429 with Retry-After: 1", next.Method, gap)
				}
				break
			}
		}
	}
	if limited != 2 {
		t.Errorf("%d calls were rate limited, want 2", limited)
	}
	if n, _ := series(reg, "candor_notify_failed_total"); n == 0 {
		t.Errorf("no failed metric series")
	}
	if got := counter(r.m.failed.WithLabelValues("slack:oncall")) + counter(r.m.failed.WithLabelValues("slack:public")); got < 6 {
		t.Errorf("failed attempts counted = %v, want at least 6", got)
	}
}

// TestRelayKilledMidPostRestartsWithoutDuplicate kills the relay at each of
// the first posts in turn (roots and replies, both channels): Slack has
// taken the message, the relay never hears back. A new relay on the same
// database finishes the work and nobody sees a message twice.
func TestRelayKilledMidPostRestartsWithoutDuplicate(t *testing.T) {
	t.Parallel()
	for killAt := 1; killAt <= 6; killAt++ {
		t.Run(fmt.Sprintf("post %d", killAt), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Sign-in errors", Message: "first", Actor: "person:ada@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			e.post(inc.ID, incidents.Update{Message: "second"})
			e.post(inc.ID, incidents.Update{Message: "third"})

			r1, _ := e.relay(func(o *Options) { o.Workers = 1 })
			killed, started := make(chan struct{}), make(chan struct{})
			var kill func()
			var n atomic.Int32
			e.slack.mu.Lock()
			e.slack.afterPost = func(m *fakeMsg, req *http.Request) {
				if n.Add(1) == int32(killAt) {
					<-started
					kill()
					<-req.Context().Done()
					close(killed)
				}
			}
			e.slack.mu.Unlock()
			kill = e.start(r1)
			close(started)
			<-killed
			kill()
			if before := e.slack.all(); len(before) != killAt {
				t.Fatalf("before the restart Slack has %d messages, want %d:%s", len(before), killAt, texts(before))
			}
			e.slack.mu.Lock()
			e.slack.afterPost = nil
			e.slack.mu.Unlock()

			r2, _ := e.relay(nil)
			e.start(r2)
			_, th := e.waitThread(oncallCh, 4)
			kindsInOrder(t, th, "*Opened*", "first", "second", "third")
			_, pth := e.waitThread(publicCh, 3)
			kindsInOrder(t, pth, "first", "second", "third")
			e.idle(r2)
			if d := e.slack.duplicates(); len(d) > 0 {
				t.Errorf("posted twice after the restart: %v", d)
			}
			if e.slack.count("conversations.replies")+e.slack.count("conversations.history") == 0 {
				t.Errorf("the restarted relay did not look for the message whose answer it lost")
			}
		})
	}
}

func TestTwoRelaysDeliverEachEventOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	r1, _ := e.relay(nil)
	r2, _ := e.relay(nil)
	e.start(r1)
	e.start(r2)
	const incs, updates = 10, 3
	var wg sync.WaitGroup
	for i := range incs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: fmt.Sprintf("Incident %d", i), Message: "u0", Actor: "person:ada@example.com"})
			if err != nil {
				t.Error(err)
				return
			}
			for u := 1; u < updates; u++ {
				if _, err := e.store.PostUpdate(ctx, inc.ID, incidents.Update{Message: fmt.Sprintf("u%d", u), Actor: "person:bo@example.com"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if !poll(wait, func() bool { return len(e.slack.all()) == incs*(1+1+updates)+incs*(1+updates) }) {
		e.dump()
		t.Fatalf("timed out waiting for every message: %d of %d", len(e.slack.all()), incs*(1+1+updates)+incs*(1+updates))
	}
	e.idle(r1)
	if d := e.slack.duplicates(); len(d) > 0 {
		t.Fatalf("posted twice: %v", d)
	}
	for _, ch := range []string{oncallCh, publicCh} {
		for _, root := range e.slack.roots(ch) {
			th := e.slack.thread(ch, root.TS)
			var want []string
			if ch == oncallCh {
				want = append(want, "*Opened*")
			}
			for u := range updates {
				want = append(want, fmt.Sprintf("u%d", u))
			}
			kindsInOrder(t, th, want...)
		}
	}
	total := 0.0
	for _, r := range []*Relay{r1, r2} {
		for _, ch := range r.Channels() {
			total += counter(r.m.delivered.WithLabelValues(ch))
		}
	}
	var rows int
	if err := e.pool.QueryRow(ctx, `select count(*) from notify_deliveries where state = 'delivered'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if int(total) != rows {
		t.Errorf("the relays counted %v deliveries, the table has %d", total, rows)
	}
}

func TestInvalidTokenHoldsDeliveriesUntilFixed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.slack.setAuthError("invalid_auth")
	r, _ := e.relay(nil)
	r.hold = 100 * time.Millisecond
	err := r.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "notify.slack.token") || strings.Contains(err.Error(), token) {
		t.Fatalf("Check = %v, want a clear error about notify.slack.token without the token", err)
	}
	if h := r.Health(); h["slack:oncall"] == "" || h["slack:public"] == "" {
		t.Errorf("Health = %v, want both channels' problem", h)
	}
	if strings.Contains(fmt.Sprint(r.Health()), token) {
		t.Errorf("Health shows the token")
	}
	e.start(r)
	if _, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Held", Message: "hello", Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "held deliveries", func() bool {
		var held int
		if err := e.pool.QueryRow(ctx, `select count(*) from notify_deliveries
			where state = 'pending' and attempts = 0 and last_error like '%invalid_auth%'`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		return held > 0
	})
	var dead int
	if err := e.pool.QueryRow(ctx, `select count(*) from notify_deliveries where state <> 'pending'`).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Fatalf("%d deliveries left pending while the token was bad; they must be held", dead)
	}
	e.slack.setAuthError("")
	_, th := e.waitThread(oncallCh, 2)
	kindsInOrder(t, th, "*Opened*", "hello")
	e.waitThread(publicCh, 1)
	eventually(t, wait, "healthy channels", func() bool { return len(r.Health()) == 0 })
}

func TestDeadDeliveryHoldsItsIncidentUntilRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var poison atomic.Bool
	poison.Store(true)
	e.slack.fault = func(method string, form map[string]string) (int, string) {
		if method == "chat.postMessage" && poison.Load() && strings.Contains(form["text"], "poison") {
			return http.StatusInternalServerError, ""
		}
		return 0, ""
	}
	ctx := context.Background()
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Dead letters", Message: "first", Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e.post(inc.ID, incidents.Update{Message: "poison"})
	e.post(inc.ID, incidents.Update{Message: "third"})
	r, _ := e.relay(func(o *Options) { o.Config.Delivery.MaxAttempts = 3 })
	e.start(r)
	var dead []Delivery
	eventually(t, wait, "a dead delivery", func() bool {
		dead, err = r.Deliveries(ctx, DeliveryFilter{State: "dead"})
		if err != nil {
			t.Fatal(err)
		}
		return len(dead) == 2 // on-call and public
	})
	for _, d := range dead {
		if d.Attempts != 3 || d.Kind != incidents.KindUpdatePosted || !strings.Contains(d.LastError, "500") {
			t.Errorf("dead delivery %+v", d)
		}
	}
	_, th := e.waitThread(oncallCh, 2)
	kindsInOrder(t, th, "*Opened*", "first")
	if got := counter(r.m.died.WithLabelValues("slack:oncall")); got != 1 {
		t.Errorf("dead metric = %v, want 1", got)
	}
	poison.Store(false)
	for _, d := range dead {
		if err := r.Retry(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	_, th = e.waitThread(oncallCh, 4)
	kindsInOrder(t, th, "*Opened*", "first", "poison", "third")
	_, pth := e.waitThread(publicCh, 3)
	kindsInOrder(t, pth, "first", "poison", "third")
	if err := r.Retry(ctx, 1<<40); err == nil {
		t.Errorf("Retry of an unknown delivery succeeded")
	}
}

func TestReminderGoesToTheOnCallThread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.relay(nil)
	e.start(r)
	e.openIncident(probes.SignalWrongPasswordAccepted) // not published: security
	e.waitThread(oncallCh, 2)
	e.clock.Advance(31 * time.Minute)
	evs, err := e.store.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[len(evs)-1].Kind != incidents.KindReminderDue {
		t.Fatalf("Tick gave %v, want a reminder", evs)
	}
	_, th := e.waitThread(oncallCh, 3)
	contains(t, "reminder", th[2].Text, "No public update for 31 minutes", "customers have heard nothing since it was detected at")
	// It repeats at every cadence while the public hears nothing.
	e.clock.Advance(30 * time.Minute)
	if _, err := e.store.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, th = e.waitThread(oncallCh, 4)
	contains(t, "second reminder", th[3].Text, "No public update for 1 hour 1 minute:")
	e.idle(r)
	if len(e.slack.roots(publicCh)) != 0 {
		t.Errorf("the reminder reached the public channel")
	}
}

// counter reads a counter's value.
func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// series counts the series of a metric family in a registry.
func series(reg *prometheus.Registry, name string) (int, error) {
	fams, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range fams {
		if f.GetName() == name {
			return len(f.GetMetric()), nil
		}
	}
	return 0, nil
}

// dump logs the deliveries and Slack messages, for a failing test.
func (e *env) dump() {
	rows, err := e.pool.Query(context.Background(), `select d.id, d.outbox_id, o.kind, d.channel, d.state, d.attempts, d.next_attempt_at, d.last_error
		from notify_deliveries d join outbox o on o.id = d.outbox_id order by d.id`)
	if err != nil {
		e.t.Log(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id, ob int64
		var kind, ch, state, lastErr string
		var att int
		var next time.Time
		_ = rows.Scan(&id, &ob, &kind, &ch, &state, &att, &next, &lastErr)
		e.t.Logf("delivery %d outbox %d %s %s %s attempts %d next %s %s", id, ob, kind, ch, state, att, next.Format(time.RFC3339Nano), lastErr)
	}
	var outbox, cursor int64
	_ = e.pool.QueryRow(context.Background(), `select (select count(*) from outbox), (select coalesce(max(cursor_id),0) from notify_channels)`).Scan(&outbox, &cursor)
	e.t.Logf("outbox rows %d, cursor %d, now %s", outbox, cursor, e.clock.Now().Format(time.RFC3339Nano))
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	e.t.Log(b.String())
	for _, m := range e.slack.all() {
		e.t.Logf("slack %s ts %s thread %s key %s: %q", m.Channel, m.TS, m.ThreadTS, m.Key, m.Text)
	}
}

// TestLateCommitIsDelivered: an outbox row whose transaction took its id
// before a later one committed, and commits after the relay has delivered
// the later one, is still delivered (the cursor waits for the horizon).
func TestLateCommitIsDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	r, _ := e.relay(nil)
	e.start(r)
	first, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "First", Message: "one", Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitThread(oncallCh, 2)

	// A slow transaction writes a timeline event and its outbox row, as
	// incidents does, and stays open.
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	now := e.clock.Now()
	var eventID, outboxID int64
	if err := tx.QueryRow(ctx, `insert into incident_events (incident_id, at, kind, actor, payload) values ($1, $2, 'update_posted', 'person:ada@example.com', '{}') returning id`,
		first.ID, now).Scan(&eventID); err != nil {
		t.Fatal(err)
	}
	payload := fmt.Sprintf(`{"event": {"id": %d, "kind": "update_posted", "at": %q, "actor": "person:ada@example.com", "extra": {"visibility": "internal", "message": "late commit"}}, "incident": {"id": %d, "title": "First", "status": "investigating", "classification": "undetermined"}}`,
		eventID, now.Format(time.RFC3339Nano), first.ID)
	if err := tx.QueryRow(ctx, `insert into outbox (created_at, ordering_key, kind, incident_id, event_id, public, payload)
		values ($1, $2, 'update_posted', $3, $4, false, $5) returning id`, now, fmt.Sprintf("incident:%d", first.ID), first.ID, eventID, payload).Scan(&outboxID); err != nil {
		t.Fatal(err)
	}

	// Later changes commit and are delivered meanwhile.
	_, err = e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Second", Message: "two", Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "the second incident in Slack", func() bool { return len(e.slack.roots(oncallCh)) == 2 })
	eventually(t, wait, "the second incident's first update", func() bool {
		return len(e.slack.thread(oncallCh, e.slack.roots(oncallCh)[1].TS)) == 2
	})
	var cursor int64
	if err := e.pool.QueryRow(ctx, `select cursor_id from notify_channels where channel = 'slack:oncall'`).Scan(&cursor); err != nil {
		t.Fatal(err)
	}
	if cursor >= outboxID {
		t.Fatalf("the cursor passed outbox row %d (at %d) while its transaction was open", outboxID, cursor)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "the late update in the first incident's thread", func() bool {
		return len(e.slack.thread(oncallCh, e.slack.roots(oncallCh)[0].TS)) == 3
	})
	kindsInOrder(t, e.slack.thread(oncallCh, e.slack.roots(oncallCh)[0].TS), "*Opened*", "one", "late commit")
	kindsInOrder(t, e.slack.thread(oncallCh, e.slack.roots(oncallCh)[1].TS), "*Opened*", "two")
	e.idle(r)
	eventually(t, wait, "the cursor to move past the late row", func() bool {
		if err := e.pool.QueryRow(ctx, `select cursor_id from notify_channels where channel = 'slack:oncall'`).Scan(&cursor); err != nil {
			t.Fatal(err)
		}
		return cursor >= outboxID
	})
}

func TestDeletedRootIsPostedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r, _ := e.relay(nil)
	e.start(r)
	inc, err := e.store.CreateIncident(context.Background(), incidents.NewIncident{Title: "Deleted", Message: "first", Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := e.waitThread(oncallCh, 2)
	e.slack.deleteMessage(oncallCh, root.TS)
	e.post(inc.ID, incidents.Update{Status: incidents.StatusIdentified, Message: "second"})
	eventually(t, wait, "a new root", func() bool { return len(e.slack.roots(oncallCh)) == 1 && e.slack.roots(oncallCh)[0].TS != root.TS })
	_, th := e.waitThread(oncallCh, 1)
	kindsInOrder(t, th, "second")
	contains(t, "new root", e.slack.roots(oncallCh)[0].Blocks, "Identified")
	e.idle(r)
	var dead int
	if err := e.pool.QueryRow(context.Background(), `select count(*) from notify_deliveries where state = 'dead'`).Scan(&dead); err != nil || dead != 0 {
		t.Errorf("%d dead deliveries (%v)", dead, err)
	}
}
