package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
)

// receiver is a subscriber's endpoint that verifies every request as the
// documentation tells receivers to.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret atomic.Value // string
	fail   atomic.Int32 // answer 500 to this many requests first
	always atomic.Bool  // answer 500 to every request
	hits   atomic.Int32

	mu       sync.Mutex
	got      []received
	badSigs  int
	seenByID map[string]int
}

type received struct {
	Event    string
	Delivery string
	Body     map[string]any
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, seenByID: map[string]int{}}
	rc.secret.Store("")
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if err := VerifyWebhook(rc.secret.Load().(string), r.Header, body, time.Now(), 5*time.Minute); err != nil {
			rc.mu.Lock()
			rc.badSigs++
			rc.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if rc.always.Load() || rc.fail.Add(-1) >= 0 {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		id := r.Header.Get(HeaderDelivery)
		rc.seenByID[id]++
		if rc.seenByID[id] > 1 {
			return // a repeat: acknowledged, not processed again
		}
		rc.got = append(rc.got, received{Event: r.Header.Get(HeaderEvent), Delivery: id, Body: m})
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) incidents() []map[string]any {
	var out []map[string]any
	for _, r := range rc.received() {
		if r.Event == "incident" {
			out = append(out, r.Body["incident"].(map[string]any))
		}
	}
	return out
}

func TestWebhookReceiverVerifiesSignedStatuspageBodiesInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rc := newReceiver(t)
	rc.fail.Store(2) // the endpoint is down for the first two attempts
	r, _ := e.relay(func(o *Options) {
		o.Config.Slack = SlackConfig{}
		o.Config.Webhooks.AllowPrivate = true // the receiver is on loopback
		o.Updates = e.store
		o.PageID = "candor-test"
	})
	wh, secret, err := r.AddWebhook(ctx, NewWebhook{URL: rc.srv.URL + "/hook?token=abc", Description: "ops", Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") || len(secret) < 40 {
		t.Fatalf("secret %q", secret)
	}
	rc.secret.Store(secret)
	e.start(r)
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Login <errors>", Message: "We are looking.", Actor: "person:ada@example.com",
		Impact: incidents.ImpactMajor, Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.MajorOutage}}})
	if err != nil {
		t.Fatal(err)
	}
	e.post(inc.ID, incidents.Update{Status: incidents.StatusIdentified, Message: "Found it."})
	e.post(inc.ID, incidents.Update{Message: "Internal only.", Visibility: incidents.Internal})
	e.post(inc.ID, incidents.Update{Status: incidents.StatusResolved, Message: "Fixed.",
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.Operational}}})
	eventually(t, wait, "three incident notifications", func() bool { return len(rc.incidents()) == 3 })
	eventually(t, wait, "two component updates", func() bool { return len(rc.received()) == 5 })

	incs := rc.incidents()
	for i, want := range []string{"investigating", "identified", "resolved"} {
		got := incs[i]
		ups := got["incident_updates"].([]any)
		if got["status"] != want || len(ups) != i+1 || got["name"] != "Login <errors>" {
			t.Errorf("notification %d: status %v, %d updates, name %v; want %s with %d", i+1, got["status"], len(ups), got["name"], want, i+1)
		}
		if newest := ups[0].(map[string]any); newest["status"] != want {
			t.Errorf("notification %d: newest update is %v, want %s first", i+1, newest["status"], want)
		}
		if !strings.HasSuffix(got["shortlink"].(string), "/incidents/"+got["id"].(string)) {
			t.Errorf("shortlink %v", got["shortlink"])
		}
		for _, u := range ups {
			if strings.Contains(u.(map[string]any)["body"].(string), "Internal") {
				t.Errorf("an internal update reached a subscriber")
			}
		}
	}
	var comps []string
	for _, r := range rc.received() {
		if r.Event == "component_update" {
			cu := r.Body["component_update"].(map[string]any)
			comps = append(comps, cu["component_id"].(string)+":"+cu["old_status"].(string)+">"+cu["new_status"].(string))
			if r.Body["page"].(map[string]any)["id"] != "candor-test" {
				t.Errorf("page %v", r.Body["page"])
			}
		}
	}
	if strings.Join(comps, " ") != "login:operational>major_outage login:major_outage>operational" {
		t.Errorf("component updates %v", comps)
	}
	rc.mu.Lock()
	bad := rc.badSigs
	rc.mu.Unlock()
	if bad != 0 {
		t.Errorf("%d requests failed verification", bad)
	}
	hooks, err := r.Webhooks(ctx)
	if err != nil || len(hooks) != 1 || hooks[0].ID != wh.ID || hooks[0].Failures != 0 || hooks[0].Paused {
		t.Errorf("webhooks %+v %v", hooks, err)
	}
	if b, _ := json.Marshal(hooks); strings.Contains(string(b), secret) {
		t.Errorf("the list shows the secret")
	}
}

func TestWebhookSSRFGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	r, _ := e.relay(func(o *Options) { o.Config.Slack = SlackConfig{}; o.Config.Webhooks.PauseAfter = 100 })
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://localhost/x", "http://api.localhost/x", "http://10.1.2.3/", "http://192.168.0.1/",
		"http://172.16.5.4/", "http://[::1]/", "http://[fd00::1]/", "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/",
		"http://0.0.0.0/", "http://[::ffff:127.0.0.1]/"} {
		if _, _, err := r.AddWebhook(ctx, NewWebhook{URL: u, Actor: "person:ada@example.com"}); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("AddWebhook(%s) = %v, want refused as internal", u, err)
		}
	}
	for _, u := range []string{"ftp://example.com/", "/relative", "http://user:pw@example.com/"} {
		if _, _, err := r.AddWebhook(ctx, NewWebhook{URL: u, Actor: "person:ada@example.com"}); err == nil {
			t.Errorf("AddWebhook(%s) accepted", u)
		}
	}
	for _, a := range []string{"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"} {
		if err := checkAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("checkAddr(%s) = %v, want allowed", a, err)
		}
	}
	// A subscriber whose name resolved outside when added and inside now
	// (DNS rebinding) is stopped by the dialer.
	rc := newReceiver(t)
	if _, err := e.pool.Exec(ctx, `insert into notify_webhooks (url, secret, created_by, created_at, updated_at) values ($1, 's', 'test', now(), now())`,
		rc.srv.URL); err != nil {
		t.Fatal(err)
	}
	e.start(r)
	if _, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "x", Message: "y", Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "a refused attempt", func() bool {
		var last string
		_ = e.pool.QueryRow(ctx, `select coalesce(max(last_error), '') from notify_deliveries where channel like 'webhook:%'`).Scan(&last)
		return strings.Contains(last, "internal")
	})
	if n := rc.hits.Load(); n != 0 {
		t.Errorf("the internal receiver got %d requests", n)
	}
}

func TestWebhookPausedAfterFailuresThenResumedInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rc := newReceiver(t)
	rc.always.Store(true)
	r, _ := e.relay(func(o *Options) {
		o.Config.Slack = SlackConfig{}
		o.Config.Webhooks.AllowPrivate = true
		o.Config.Webhooks.PauseAfter = 3
		o.Updates = e.store
	})
	wh, secret, err := r.AddWebhook(ctx, NewWebhook{URL: rc.srv.URL, Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	rc.secret.Store(secret)
	e.start(r)
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Paused", Message: "one", Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e.post(inc.ID, incidents.Update{Message: "two"})
	eventually(t, wait, "the webhook to be paused", func() bool {
		hooks, err := r.Webhooks(ctx)
		return err == nil && len(hooks) == 1 && hooks[0].Paused
	})
	hooks, _ := r.Webhooks(ctx)
	if !strings.Contains(hooks[0].PausedReason, "3 failures in a row") || !strings.Contains(hooks[0].PausedReason, "500") {
		t.Errorf("paused because %q", hooks[0].PausedReason)
	}
	if n := rc.hits.Load(); n != 3 {
		t.Errorf("the endpoint got %d attempts before the pause, want 3", n)
	}
	ds, err := r.Deliveries(ctx, DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.State != "pending" {
			t.Errorf("delivery %d is %s while the endpoint is paused; want it held", d.ID, d.State)
		}
	}
	rc.always.Store(false)
	if err := r.ResumeWebhook(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "both notifications", func() bool { return len(rc.incidents()) == 2 })
	got := rc.incidents()
	if n := len(got[0]["incident_updates"].([]any)); n != 1 {
		t.Errorf("first notification has %d updates", n)
	}
	if n := len(got[1]["incident_updates"].([]any)); n != 2 {
		t.Errorf("second notification has %d updates", n)
	}
	if err := r.DeleteWebhook(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	if hooks, _ := r.Webhooks(ctx); len(hooks) != 0 {
		t.Errorf("deleted webhook still listed")
	}
}
