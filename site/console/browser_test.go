package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/browsertest"
	"github.com/candorhq/candor/site"
)

// within runs actions with a time limit, so that a page that never shows
// what is awaited fails the test instead of hanging it; the page's text is
// reported.
func within(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatalf("%v; the page says:\n%s", err, text(t, ctx, `location.pathname + "\n" + document.body.innerText`))
	}
}

// waitFor polls a JavaScript condition until it holds, across page loads
// (a form post navigates), or fails after a deadline.
func waitFor(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`document.readyState === "complete" && (`+cond+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v; the page says:\n%s", cond, err, text(t, ctx, `location.pathname + "\n" + document.body.innerText`))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func text(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("%.60s…: %v", js, err)
	}
	return v
}

// screenshot keeps a picture of the page when CONSOLE_SCREENSHOTS names a
// directory (to refresh the ones in docs/).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// axeSource is axe-core as committed for the public site's browser test
// (never downloaded).
var axeSource = func() string {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "axe-core", "axe.min.js"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// colorScheme emulates prefers-color-scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// axe runs axe-core on the loaded page, in the light and the dark colour
// scheme, against WCAG 2.1 A and AA and best practices, and fails on serious
// or critical violations.
func axe(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		within(t, ctx, colorScheme(scheme))
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";true")); err != nil {
			t.Fatalf("%s: loading axe-core: %v", where, err)
		}
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
			.then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.html)}))))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: axe: %v", where, err)
		}
		var vs []struct {
			ID     string   `json:"id"`
			Impact string   `json:"impact"`
			Help   string   `json:"help"`
			Nodes  []string `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(raw), &vs); err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Errorf("%s (%s): axe %s (%s): %s %v", where, scheme, v.ID, v.Impact, v.Help, v.Nodes)
			} else {
				t.Logf("%s (%s): axe %s (%s): %s", where, scheme, v.ID, v.Impact, v.Help)
			}
		}
	}
	within(t, ctx, colorScheme(""))
}

// browserSignIn signs op in through the pages, typing a code computed now.
func browserSignIn(t *testing.T, e *env, ctx context.Context, op operator, check bool) {
	t.Helper()
	e.clk.Add(30 * time.Second)
	within(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/login"))
	if check {
		axe(t, ctx, "sign-in")
	}
	within(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#email"), op.email),
		chromedp.SendKeys(chromedp.CSS("#password"), op.password),
		chromedp.Click(chromedp.CSS("main button[type=submit]")),
	)
	waitFor(t, ctx, `location.pathname === "/admin/login/code"`)
	if check {
		axe(t, ctx, "sign-in code")
	}
	within(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#code"), e.code(op.secret, 0)),
		chromedp.Click(chromedp.CSS("main button[type=submit]")),
	)
	waitFor(t, ctx, `location.pathname === "/admin/incidents"`)
	if check {
		axe(t, ctx, "incident list")
	}
}

// TestBrowserUpdateReachesThePublicPageAndNoteIsPublished: a responder
// signs in with a TOTP code in Chromium, posts an update that appears on
// the public page and in /history.rss; an exec edits and publishes the note.
func TestBrowserUpdateReachesThePublicPageAndNoteIsPublished(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pub, err := site.New(site.Options{Store: e.store, Pool: e.pool, Page: site.Page{ID: testPageID, Name: "Example status", URL: e.srv.URL},
		Now: e.clk.Now, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = pub.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	if err := pub.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	e.public = pub.Handler()

	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Login failures", Message: "We are investigating failures at the password step.",
		Impact: incidents.ImpactMajor, Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.MajorOutage}}, Actor: "person:oncall@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.AttachRunbook(ctx, inc.ID, incidents.RunbookRef{ID: "login-events-down", Title: "Login events store or queue down",
		Reasons: []string{"step password failing"}}, "system"); err != nil {
		t.Fatal(err)
	}
	responder := e.enrol(e.browser(), "ada@example.com", Responder)
	execOp := e.enrol(e.browser(), "ceo@example.com", Exec)

	b := browsertest.New(t)
	if err := chromedp.Do(b, browsertest.Timezone("Pacific/Auckland"), chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	browserSignIn(t, e, b, responder, true)
	const msg = "The events store is down; we are moving login off it. Next update within 30 minutes."
	page := e.srv.URL + "/admin/incidents/" + itoa(inc.ID)
	within(t, b,
		chromedp.Navigate(page),
		chromedp.SetValue(chromedp.CSS("#status"), "identified"),
		chromedp.SetValue(chromedp.CSS("#message"), msg),
		chromedp.Click(chromedp.CSS(".update-form button:not(.secondary)")),
	)
	waitFor(t, b, `document.querySelectorAll(".update").length === 2`)
	body := text(t, b, `document.body.innerText`)
	for _, want := range []string{msg, "identified", "Sign-in fails right after the password is accepted", "UTC (", "GMT+13"} {
		if !strings.Contains(body, want) {
			t.Errorf("incident page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "@when") {
		t.Error("a template call shows as text")
	}
	screenshot(t, b, "console-incident.png")
	axe(t, b, "incident detail")
	for _, path := range []string{"/admin/components", "/admin/account"} {
		within(t, b, chromedp.Navigate(e.srv.URL+path))
		axe(t, b, path)
	}

	// The public page and the feed show it within a second or so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(e.srv.URL + "/history.rss")
		if err != nil {
			t.Fatal(err)
		}
		feed, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(feed), "moving login off it") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the update never reached /history.rss:\n%s", feed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	within(t, b, chromedp.Navigate(e.srv.URL+"/incidents/"+itoa(inc.ID)))
	if got := text(t, b, `document.body.innerText`); !strings.Contains(got, "moving login off it") {
		t.Errorf("public incident page lacks the update:\n%s", got)
	}

	// Resolved; the exec writes and publishes the note.
	if _, err := e.store.PostUpdate(ctx, inc.ID, incidents.Update{Status: incidents.StatusResolved, Message: "Login works again.", Actor: "person:ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	x := browsertest.New(t)
	if err := chromedp.Do(x, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	browserSignIn(t, e, x, execOp, false)
	within(t, x, chromedp.Navigate(page+"/note"), chromedp.WaitVisible(chromedp.CSS("#body")))
	draft := text(t, x, `document.querySelector("#body").value`)
	if !strings.Contains(draft, "Login failures") {
		t.Fatalf("draft:\n%s", draft)
	}
	edited := draft + "\n\n## What we changed\n\nLogin no longer waits for the events store.\n"
	within(t, x,
		chromedp.SetValue(chromedp.CSS("#body"), edited),
		chromedp.Click(chromedp.CSS("form[action$='/note'] button")),
	)
	waitFor(t, x, `document.querySelectorAll("table.list tbody tr").length === 1`)
	// A second version shows what changed.
	within(t, x,
		chromedp.SetValue(chromedp.CSS("#body"), strings.Replace(edited, "_To be written._", "The events store's disk filled up.", 1)),
		chromedp.Click(chromedp.CSS("form[action$='/note'] button")),
	)
	waitFor(t, x, `document.body.innerText.includes("Changes in version 2")`)
	if got := text(t, x, `document.querySelector("pre.diff .added").innerText`); !strings.Contains(got, "disk filled up") {
		t.Errorf("first added line %q", got)
	}
	screenshot(t, x, "console-note.png")
	axe(t, x, "note editor")
	within(t, x,
		chromedp.Click(chromedp.CSS("form[action$='/note/publish'] button")),
	)
	waitFor(t, x, `document.body.innerText.includes("Status: postmortem")`)
	if got := text(t, x, `document.body.innerText`); !strings.Contains(got, "Status: postmortem") {
		t.Errorf("after publishing:\n%s", got)
	}
	notes, err := e.store.Notes(ctx, inc.ID)
	if err != nil || len(notes) != 2 || notes[1].PublishedAt.IsZero() || !strings.Contains(notes[1].Body, "disk filled up") || notes[1].Author != "person:ceo@example.com" {
		t.Fatalf("notes %+v %v", notes, err)
	}
}
