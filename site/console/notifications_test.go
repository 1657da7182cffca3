package console

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/slack-go/slack/slacktest"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/browsertest"
	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/notify"
)

const (
	slackToken = "xoxb-console-0000-topsecret"
	hookPath   = "/hooks/T0KEN-in-the-path"
	wait       = 60 * time.Second // polling deadline: generous for a loaded machine
)

// failingSlack is slacktest's server answering 500 to every call that posts
// or reads messages (auth.test still succeeds, so the token is good), and
// counting them.
func failingSlack(t *testing.T) (*slacktest.Server, *atomic.Int64) {
	var calls atomic.Int64
	fail := func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		for _, m := range []string{"/chat.postMessage", "/chat.update", "/conversations.history", "/conversations.replies"} {
			c.Handle(m, fail)
		}
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	return srv, &calls
}

// receiver is a webhook subscriber on loopback that answers 500 until told
// otherwise, and keeps what it accepted once its signature checks out.
type receiver struct {
	srv    *httptest.Server
	ok     atomic.Bool
	mu     sync.Mutex
	secret string
	got    []string // X-Candor-Event of each verified request
	bad    int      // requests whose signature did not verify
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !rc.ok.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if r.URL.Path != hookPath || notify.VerifyWebhook(rc.secret, r.Header, body, time.Now(), 5*time.Minute) != nil {
			rc.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		rc.got = append(rc.got, r.Header.Get(notify.HeaderEvent))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() (int, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got), rc.bad
}

// withRelay gives the console a notify relay whose Slack and webhooks
// fail fast: 3 attempts a few milliseconds apart, an endpoint paused after
// 2 failures in a row.
func withRelay(slackURL string, out **notify.Relay) func(*Options) {
	return func(o *Options) {
		cfg := notify.Config{
			Webhooks: notify.WebhookConfig{AllowPrivate: true, PauseAfter: 2, Timeout: config.Dur(5 * time.Second)},
			Delivery: notify.DeliveryConfig{MaxAttempts: 3, BackoffBase: config.Dur(10 * time.Millisecond),
				BackoffMax: config.Dur(50 * time.Millisecond), PollInterval: config.Dur(100 * time.Millisecond)},
		}
		if slackURL != "" {
			cfg.Slack = notify.SlackConfig{Token: config.NewSecret(slackToken), PublicChannel: "C0PUBLIC", OncallChannel: "C0ONCALL", APIURL: slackURL}
		}
		r, err := notify.NewRelay(notify.Options{Pool: o.Pool, Config: cfg, PageURL: "https://status.example.com", PageID: testPageID,
			Updates: o.Incidents, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			panic(err)
		}
		o.Relay, *out = r, r
	}
}

func runRelay(t *testing.T, r *notify.Relay) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	newSecretRE = regexp.MustCompile(`<code class="new-secret">(whsec_[0-9a-f]+)</code>`)
	retryRE     = regexp.MustCompile(`action="/admin/deliveries/(\d+)/retry"`)
)

// TestDeadDeliveriesAndPausedWebhooksInTheConsole runs a relay against a
// Slack that answers 500 and a webhook subscriber that is down, until the
// Slack deliveries are dead and the subscriber paused; then a viewer sees
// it all (and no token or secret), a responder retries a dead delivery and
// resumes the subscriber once it is up, and what it missed arrives signed.
func TestDeadDeliveriesAndPausedWebhooksInTheConsole(t *testing.T) {
	slack, slackCalls := failingSlack(t)
	rc := newReceiver(t)
	var relay *notify.Relay
	e := newEnv(t, withRelay(slack.GetAPIURL(), &relay))
	ctx := context.Background()

	admin := e.browser()
	e.enrol(admin, "ada@example.com", Admin)
	viewer := e.browser()
	e.enrol(viewer, "vic@example.com", Viewer)
	responder := e.browser()
	e.enrol(responder, "rex@example.com", Responder)

	// The admin subscribes the receiver; its secret is shown this once.
	r := admin.submit("/admin/webhooks", "/admin/webhooks", url.Values{"url": {rc.srv.URL + hookPath}, "description": {"Billing <team>"}})
	m := newSecretRE.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("add webhook: %d\n%s", r.status, r.body)
	}
	rc.mu.Lock()
	rc.secret = m[1]
	rc.mu.Unlock()
	if !strings.Contains(r.body, "Billing &lt;team&gt;") {
		t.Error("the description is not shown escaped")
	}
	if again := admin.get("/admin/webhooks"); strings.Contains(again.body, rc.secret) || !strings.Contains(again.body, hookPath) {
		t.Errorf("the list shows the secret again, or not the URL to an admin:\n%s", again.body)
	}
	if e.auditCount("webhook.added", "") != 1 {
		t.Error("adding a webhook is not audited")
	}
	hooks, err := relay.Webhooks(ctx)
	if err != nil || len(hooks) != 1 {
		t.Fatalf("webhooks %v, %v", hooks, err)
	}
	hook := hooks[0]

	runRelay(t, relay)
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Login failures", Message: "We are looking into it.",
		Visibility: incidents.Public, Classification: incidents.NonSecurity, Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PostUpdate(ctx, inc.ID, incidents.Update{Status: incidents.StatusIdentified, Message: "The events store is down.",
		Visibility: incidents.Public, Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	var dead []notify.Delivery
	eventually(t, "dead Slack deliveries and a paused subscriber", func() bool {
		dead, err = notify.Deliveries(ctx, e.pool, notify.DeliveryFilter{State: "dead"})
		if err != nil {
			t.Fatal(err)
		}
		hs, err := relay.Webhooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(dead) >= 2 && len(hs) == 1 && hs[0].Paused
	})

	// A viewer sees the channels, the dead deliveries and the paused
	// subscriber, but no retry button, no full URL and no secret.
	page := viewer.get("/admin/deliveries")
	if page.status != http.StatusOK {
		t.Fatalf("deliveries: %d\n%s", page.status, page.body)
	}
	for _, want := range []string{"slack:oncall", "slack:public", webhookChannel(hook.ID), "paused", "500",
		`href="/admin/incidents/` + itoa(inc.ID) + `"`, "update_posted"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the deliveries page lacks %q:\n%s", want, page.body)
		}
	}
	for _, secret := range []string{slackToken, rc.secret, hookPath} {
		if strings.Contains(page.body, secret) {
			t.Errorf("the deliveries page shows %q to a viewer", secret)
		}
	}
	if retryRE.MatchString(page.body) {
		t.Error("a viewer gets a retry button")
	}
	hp := viewer.get("/admin/webhooks")
	if !strings.Contains(hp.body, "webhook-paused") || strings.Contains(hp.body, hookPath) || strings.Contains(hp.body, rc.secret) ||
		strings.Contains(hp.body, "/resume") || !strings.Contains(hp.body, rc.srv.URL+"/…") {
		t.Errorf("the viewer's webhook list:\n%s", hp.body)
	}

	// The incident links to its own deliveries, in every state.
	if ip := viewer.get("/admin/incidents/" + itoa(inc.ID)); !strings.Contains(ip.body, `href="/admin/deliveries?incident=`+itoa(inc.ID)+`"`) {
		t.Errorf("the incident page does not link to its deliveries:\n%s", ip.body)
	}
	of := viewer.get("/admin/deliveries?incident=" + itoa(inc.ID))
	for _, want := range []string{"Incident #" + itoa(inc.ID), "delivery-dead", "delivery-pending", "waits for a retry"} {
		if !strings.Contains(of.body, want) {
			t.Errorf("the incident's deliveries lack %q:\n%s", want, of.body)
		}
	}
	if r := viewer.get("/admin/deliveries?incident=x"); r.status != http.StatusBadRequest {
		t.Errorf("?incident=x: %d", r.status)
	}

	// A responder retries a dead delivery: Slack is called again.
	page = responder.get("/admin/deliveries")
	rm := retryRE.FindStringSubmatch(page.body)
	if rm == nil {
		t.Fatalf("no retry button for a responder:\n%s", page.body)
	}
	if r := responder.post("/admin/deliveries/"+rm[1]+"/retry", url.Values{"csrf": {"forged"}}); r.status != http.StatusForbidden {
		t.Errorf("a retry without the CSRF token: %d", r.status)
	}
	before := slackCalls.Load()
	r = responder.submit("/admin/deliveries", "/admin/deliveries/"+rm[1]+"/retry", nil)
	if r.status != http.StatusSeeOther || r.location != "/admin/deliveries" {
		t.Fatalf("retry: %d %q\n%s", r.status, r.location, r.body)
	}
	if e.auditCount("delivery.retried", "delivery:"+rm[1]) != 1 {
		t.Error("the retry is not audited")
	}
	// From the incident's list, the retry comes back to it.
	r = responder.submit("/admin/deliveries?incident="+itoa(inc.ID), "/admin/deliveries/"+rm[1]+"/retry", url.Values{"incident": {itoa(inc.ID)}})
	if r.status != http.StatusSeeOther || r.location != "/admin/deliveries?incident="+itoa(inc.ID) {
		t.Errorf("retry from the incident's list: %d %q", r.status, r.location)
	}
	eventually(t, "Slack to be called again", func() bool { return slackCalls.Load() > before })
	if r := responder.submit("/admin/deliveries", "/admin/deliveries/999999/retry", nil); r.status != http.StatusNotFound {
		t.Errorf("retry of an unknown delivery: %d", r.status)
	}

	// The receiver is up again; the responder resumes it, and what it
	// missed arrives, signed with the secret shown at the start.
	rc.ok.Store(true)
	r = responder.submit("/admin/webhooks", "/admin/webhooks/"+itoa(hook.ID)+"/resume", nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("resume: %d\n%s", r.status, r.body)
	}
	eventually(t, "the held deliveries to reach the receiver", func() bool {
		var open, all int
		if err := e.pool.QueryRow(ctx, `select count(*) filter (where state <> 'delivered'), count(*) from notify_deliveries where channel = $1`,
			webhookChannel(hook.ID)).Scan(&open, &all); err != nil {
			t.Fatal(err)
		}
		n, _ := rc.received()
		return n >= 1 && all > 0 && open == 0
	})
	if _, bad := rc.received(); bad != 0 {
		t.Errorf("%d requests did not verify", bad)
	}
	if e.auditCount("webhook.resumed", webhookChannel(hook.ID)) != 1 {
		t.Error("the resume is not audited")
	}
	eventually(t, "the subscriber to be active", func() bool {
		return strings.Contains(viewer.get("/admin/webhooks").body, "webhook-active")
	})

	// The responder may not delete it; the admin may.
	if r := responder.submit("/admin/webhooks", "/admin/webhooks/"+itoa(hook.ID)+"/delete", nil); r.status != http.StatusForbidden {
		t.Errorf("a responder deleting a webhook: %d", r.status)
	}
	r = admin.submit("/admin/webhooks", "/admin/webhooks/"+itoa(hook.ID)+"/delete", nil)
	if r.status != http.StatusSeeOther || e.auditCount("webhook.deleted", webhookChannel(hook.ID)) != 1 {
		t.Fatalf("delete: %d\n%s", r.status, r.body)
	}
	if hs, _ := relay.Webhooks(ctx); len(hs) != 0 {
		t.Errorf("after delete: %v", hs)
	}
}

// TestWebhookAPI manages subscribers with API tokens.
func TestWebhookAPI(t *testing.T) {
	var relay *notify.Relay
	e := newEnv(t, withRelay("", &relay))
	ctx := context.Background()
	tok := map[Role]string{}
	for _, r := range []Role{Viewer, Responder, Admin} {
		v, err := CreateToken(ctx, e.pool, string(r), "api-"+string(r))
		if err != nil {
			t.Fatal(err)
		}
		tok[r] = v
	}
	call := func(role Role, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok[role])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		raw, _ := io.ReadAll(res.Body)
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
			}
		}
		return res.StatusCode, out
	}

	status, out := call(Admin, "POST", "/api/v1/webhooks", `{"url": "https://hooks.example.com/candor?token=abc123", "description": "ops"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	secret, _ := out["secret"].(string)
	hook, _ := out["webhook"].(map[string]any)
	if !strings.HasPrefix(secret, "whsec_") || hook["state"] != "active" || hook["url"] != "https://hooks.example.com/candor?token=abc123" {
		t.Fatalf("create answered %v", out)
	}
	id := itoa(int64(hook["id"].(float64)))

	for _, tc := range []struct{ body, field string }{
		{`{"url": "ftp://example.com/x"}`, "url"},
		{`{"url": ""}`, "url"},
		{`{"url": "https://example.com/", "description": "` + strings.Repeat("x", 201) + `"}`, "description"},
	} {
		status, out := call(Admin, "POST", "/api/v1/webhooks", tc.body)
		errs, _ := out["errors"].([]any)
		if status != http.StatusUnprocessableEntity || len(errs) != 1 || errs[0].(map[string]any)["field"] != tc.field {
			t.Errorf("create %s: %d %v", tc.body, status, out)
		}
	}
	if status, _ := call(Admin, "POST", "/api/v1/webhooks", `{"url": "https://example.com/", "secret": "mine"}`); status != http.StatusBadRequest {
		t.Errorf("an unknown field: %d", status)
	}

	// A viewer's list hides the URL's path and query, and never the secret.
	status, out = call(Viewer, "GET", "/api/v1/webhooks", "")
	list, _ := out["webhooks"].([]any)
	if status != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["url"] != "https://hooks.example.com/…" {
		t.Fatalf("viewer list: %d %v", status, out)
	}
	if raw, _ := json.Marshal(out); strings.Contains(string(raw), secret) || strings.Contains(string(raw), "abc123") {
		t.Errorf("the list shows a secret: %s", raw)
	}
	if status, _ := call(Admin, "GET", "/api/v1/webhooks", ""); status != http.StatusOK {
		t.Errorf("admin list: %d", status)
	}

	status, out = call(Responder, "POST", "/api/v1/webhooks/"+id+"/resume", "")
	if status != http.StatusOK || out["webhook"].(map[string]any)["state"] != "active" {
		t.Errorf("resume: %d %v", status, out)
	}
	if status, _ := call(Responder, "DELETE", "/api/v1/webhooks/"+id, ""); status != http.StatusForbidden {
		t.Errorf("a responder deleting: %d", status)
	}
	if status, _ := call(Admin, "DELETE", "/api/v1/webhooks/"+id, ""); status != http.StatusNoContent {
		t.Errorf("delete: %d", status)
	}
	if status, _ := call(Admin, "DELETE", "/api/v1/webhooks/"+id, ""); status != http.StatusNotFound {
		t.Errorf("delete again: %d", status)
	}
	if status, _ := call(Responder, "POST", "/api/v1/webhooks/"+id+"/resume", ""); status != http.StatusNotFound {
		t.Errorf("resume a deleted one: %d", status)
	}
	for _, action := range []string{"webhook.added", "webhook.resumed", "webhook.deleted"} {
		if e.auditCount(action, "webhook:"+id) != 1 {
			t.Errorf("%s not audited once", action)
		}
	}
}

// TestWebhookRefusesInternalAddresses: without allow_private, a subscriber
// on loopback or a private range is refused with a message saying why.
func TestWebhookRefusesInternalAddresses(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		r, err := notify.NewRelay(notify.Options{Pool: o.Pool, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			panic(err)
		}
		o.Relay = r
	})
	b := e.browser()
	e.enrol(b, "ada@example.com", Admin)
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data"} {
		r := b.submit("/admin/webhooks", "/admin/webhooks", url.Values{"url": {u}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "allow_private") {
			t.Errorf("%s: %d\n%s", u, r.status, r.body)
		}
	}
	if e.auditCount("webhook.added", "") != 0 {
		t.Error("a refused webhook was added")
	}
}

// TestNotificationsWithoutRelay: a console without a relay still lists
// deliveries and says that webhooks cannot be managed here.
func TestNotificationsWithoutRelay(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.enrol(b, "ada@example.com", Admin)
	if r := b.get("/admin/deliveries"); r.status != http.StatusOK || !strings.Contains(r.body, "No dead delivery") {
		t.Errorf("deliveries: %d\n%s", r.status, r.body)
	}
	if r := b.get("/admin/webhooks"); r.status != http.StatusOK || !strings.Contains(r.body, "cannot be managed here") {
		t.Errorf("webhooks: %d\n%s", r.status, r.body)
	}
	if r := b.submit("/admin/webhooks", "/admin/webhooks", url.Values{"url": {"https://example.com/"}}); r.status != http.StatusServiceUnavailable {
		t.Errorf("add without a relay: %d", r.status)
	}
}

func TestRedactSecrets(t *testing.T) {
	for in, want := range map[string]string{
		"slack: invalid_auth for xoxb-123-456-abcDEF":        "slack: invalid_auth for [redacted]",
		"Post https://h.example.com/x?token=s3cr3t&a=1: EOF": "Post https://h.example.com/x?token=[redacted]&a=1: EOF",
		"signed with whsec_00ff":                             "signed with [redacted]",
		"webhook answered 500 Internal Server Error":         "webhook answered 500 Internal Server Error",
	} {
		if got := redactSecrets(in); got != want {
			t.Errorf("redactSecrets(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBrowserDeliveriesAndWebhooks: in Chromium, an admin subscribes a
// webhook and sees its secret once, sees the dead Slack deliveries and the
// paused subscriber, retries a delivery and resumes the subscriber; axe
// checks each page.
func TestBrowserDeliveriesAndWebhooks(t *testing.T) {
	slack, _ := failingSlack(t)
	rc := newReceiver(t)
	var relay *notify.Relay
	e := newEnv(t, withRelay(slack.GetAPIURL(), &relay))
	ctx := context.Background()
	admin := e.enrol(e.browser(), "ada@example.com", Admin)

	b := browsertest.New(t)
	if err := chromedp.Do(b, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	browserSignIn(t, e, b, admin, false)
	within(t, b,
		chromedp.Navigate(e.srv.URL+"/admin/webhooks"),
		chromedp.SendKeys(chromedp.CSS("#webhook-url"), rc.srv.URL+hookPath),
		chromedp.SendKeys(chromedp.CSS("#webhook-description"), "Billing"),
		chromedp.Click(chromedp.CSS("main form button[type=submit]")),
	)
	waitFor(t, b, `document.querySelector("code.new-secret") !== null`)
	rc.mu.Lock()
	rc.secret = text(t, b, `document.querySelector("code.new-secret").textContent`)
	rc.mu.Unlock()
	axe(t, b, "webhooks with a new secret")

	runRelay(t, relay)
	if _, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Login failures", Message: "We are looking into it.",
		Visibility: incidents.Public, Classification: incidents.NonSecurity, Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dead deliveries and a paused subscriber", func() bool {
		dead, err := notify.Deliveries(ctx, e.pool, notify.DeliveryFilter{State: "dead"})
		if err != nil {
			t.Fatal(err)
		}
		hs, err := relay.Webhooks(ctx)
		return err == nil && len(dead) >= 2 && len(hs) == 1 && hs[0].Paused
	})
	within(t, b, chromedp.Navigate(e.srv.URL+"/admin/deliveries"))
	waitFor(t, b, `document.querySelectorAll("tr.delivery-row").length >= 2`)
	screenshot(t, b, "console-deliveries.png")
	axe(t, b, "deliveries")
	within(t, b, chromedp.Click(chromedp.CSS(`form[action$="/retry"] button`)))
	eventually(t, "the retry", func() bool { return e.auditCount("delivery.retried", "") == 1 })
	waitFor(t, b, `location.pathname === "/admin/deliveries"`)

	rc.ok.Store(true)
	within(t, b, chromedp.Navigate(e.srv.URL+"/admin/webhooks"))
	waitFor(t, b, `document.querySelector("tr.webhook-paused") !== null`)
	axe(t, b, "webhooks with a paused subscriber")
	within(t, b, chromedp.Click(chromedp.CSS(`form[action$="/resume"] button`)))
	waitFor(t, b, `document.querySelector("tr.webhook-active") !== null`)
	eventually(t, "the receiver to hear", func() bool { n, _ := rc.received(); return n >= 1 })
	if strings.Contains(text(t, b, `document.body.innerHTML`), rc.secret) {
		t.Error("the secret is shown again")
	}
}
