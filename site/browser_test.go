package site

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/browsertest"
)

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%.60s…: %v", js, err)
	}
	return v
}

func media(dark bool) chromedp.Action[chromedp.Void] {
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

var axeSource = func() string {
	b, err := os.ReadFile(filepath.Join("testdata", "axe-core", "axe.min.js"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axe runs axe-core (committed under testdata, never downloaded) on the
// loaded page against WCAG 2.1 A and AA and best practices, and fails on
// serious or critical violations.
func axe(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	eval[bool](t, ctx, axeSource+";true")
	raw := eval[string](t, ctx, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
		.then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.html + " " + JSON.stringify(n.any.map(a => a.data)))}))))`)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("%s: axe %s (%s): %s %v", where, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			t.Logf("%s: axe %s (%s): %s", where, v.ID, v.Impact, v.Help)
		}
	}
}

// TestBrowserHomeAndIncident loads the home page and an incident page in
// headless Chromium, checks what a person sees (banner, the incident and
// its latest update, components, uptime bars that open on keyboard focus,
// UTC times with the local time beside them) and runs axe-core in light and
// dark mode, at desktop and phone width.
func TestBrowserHomeAndIncident(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, open := f.scenario(t)
	f.rebuild(t)
	srv := httptest.NewServer(f.site.Handler())
	defer srv.Close()
	ctx := browsertest.New(t)

	if err := chromedp.Do(ctx, browsertest.Timezone("America/New_York"), chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `document.querySelector("h1").innerText`); got != "Example Status" {
		t.Errorf("h1: %q", got)
	}
	if got := eval[string](t, ctx, `document.querySelector(".banner p").innerText`); got != "Partial System Outage" {
		t.Errorf("banner: %q", got)
	}
	active := eval[string](t, ctx, `document.querySelector("#active").parentElement.innerText`)
	for _, want := range []string{"Two-step codes rejected", "Identified", "We found a clock problem on one server."} {
		if !strings.Contains(active, want) {
			t.Errorf("active incidents %q lack %q", active, want)
		}
	}
	if strings.Contains(active, "Valid codes are rejected") {
		t.Errorf("the active incident shows more than its latest update: %q", active)
	}
	if strings.Contains(eval[string](t, ctx, `document.body.innerText`), "totp-3") {
		t.Error("an internal update is on the page")
	}
	comps := eval[string](t, ctx, `document.querySelector("#components").parentElement.innerText`)
	for _, want := range []string{"Sign-in", "Platform", "Login", "Two-step authentication\nPartial outage", "API\nOperational"} {
		if !strings.Contains(comps, want) {
			t.Errorf("components %q lack %q", comps, want)
		}
	}
	// The local time is added beside a UTC time.
	if got := eval[string](t, ctx, `document.querySelector("time[data-local]").parentElement.innerText`); !strings.Contains(got, "UTC") || !strings.Contains(got, "your time") {
		t.Errorf("time: %q", got)
	}
	// Uptime bars: a day's tip is hidden, shows on keyboard focus, and says
	// its uptime; the failing day names its incident count in runs.
	bar := `document.querySelectorAll("ol.bars")[0].children[86]` // 3 days before t0
	if got := eval[string](t, ctx, `getComputedStyle(`+bar+`.querySelector(".tip")).display`); got != "none" {
		t.Errorf("tip before focus: display %s", got)
	}
	eval[bool](t, ctx, bar+`.focus(); true`)
	tip := eval[string](t, ctx, bar+`.querySelector(".tip").innerText`)
	if got := eval[string](t, ctx, `getComputedStyle(`+bar+`.querySelector(".tip")).display`); got == "none" || !strings.Contains(tip, "97.22% uptime") {
		t.Errorf("focused day: display %s, tip %q", got, tip)
	}
	// Hover: the mouse over today's bar of the component in the incident
	// shows the day's tip with a link to the incident.
	today := `document.querySelectorAll("ol.bars")[1].lastElementChild`
	eval[bool](t, ctx, `document.activeElement.blur(); `+today+`.scrollIntoView({block: "center"}); true`)
	rect := eval[[]float64](t, ctx, `(() => { const r = `+today+`.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2] })()`)
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: rect[0], Y: rect[1]})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `getComputedStyle(`+today+`.querySelector(".tip")).display`); got == "none" {
		t.Errorf("today's tip is hidden under the mouse")
	}
	if got := eval[string](t, ctx, today+`.querySelector(".tip a").textContent`); got != "Two-step codes rejected" {
		t.Errorf("today's tip links %q", got)
	}
	// Keyboard: Tab from the top reaches the skip link, then the page's links
	// and every day of the bars in order.
	order := eval[string](t, ctx, `(() => { const els = [...document.querySelectorAll("a[href], [tabindex='0']")]; return els.slice(0, 3).map(e => e.className || e.textContent).join("|") })()`)
	if !strings.HasPrefix(order, "skip|brand|") {
		t.Errorf("focus order starts %q", order)
	}
	axe(t, ctx, "home, light")
	if err := chromedp.Do(ctx, media(true), chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	axe(t, ctx, "home, dark")
	if err := chromedp.Do(ctx, media(false), chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the phone layout scrolls sideways: %d px", w)
	}
	axe(t, ctx, "home, phone")

	// The incident page: every public update, newest first, with UTC times.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/incidents/"+itoa(open.ID))); err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `document.querySelector("h1").innerText`); got != "Two-step codes rejected" {
		t.Errorf("incident h1: %q", got)
	}
	ups := eval[[]string](t, ctx, `[...document.querySelectorAll(".upd")].map(e => e.innerText)`)
	if len(ups) != 2 || !strings.HasPrefix(ups[0], "Identified") || !strings.HasPrefix(ups[1], "Investigating") {
		t.Fatalf("updates: %q", ups)
	}
	if !strings.Contains(ups[0], "30 Nov 2026 11:50 UTC") || !strings.Contains(ups[0], "your time") {
		t.Errorf("update time: %q", ups[0])
	}
	if dt := eval[string](t, ctx, `document.querySelector(".upd time").getAttribute("datetime")`); dt != "2026-11-30T11:50:00Z" {
		t.Errorf("datetime %q", dt)
	}
	if strings.Contains(eval[string](t, ctx, `document.body.innerText`), "totp-3") {
		t.Error("an internal update is on the incident page")
	}
	axe(t, ctx, "incident, light")
	if err := chromedp.Do(ctx, media(true), chromedp.Navigate(srv.URL+"/incidents/"+itoa(open.ID))); err != nil {
		t.Fatal(err)
	}
	axe(t, ctx, "incident, dark")
	for _, p := range []string{"/history", "/history/" + t0.Format("2006-01"), "/components/login", "/no-such-page"} {
		if err := chromedp.Do(ctx, media(false), chromedp.Navigate(srv.URL+p)); err != nil {
			t.Fatal(err)
		}
		axe(t, ctx, p)
	}
}

// TestScreenshots writes the README's screenshots of the home page, quiet
// and during an incident, at desktop and phone width, when
// CANDOR_SCREENSHOTS names a directory:
//
//	CANDOR_SCREENSHOTS=$PWD/docs/screenshots go test ./site -run TestScreenshots
//
// Without it, it takes the screenshots and checks they are PNG images.
func TestScreenshots(t *testing.T) {
	t.Parallel()
	dir := os.Getenv("CANDOR_SCREENSHOTS")
	quiet := newFixture(t)
	quiet.clk.Set(t0.AddDate(0, 0, -3).Add(-2 * time.Hour))
	in := quiet.incident(t, incidents.NewIncident{Title: "Sign-in failures", Message: "Some sign-ins fail with an error.", Impact: incidents.ImpactMajor,
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.PartialOutage}}})
	quiet.clk.Set(t0.AddDate(0, 0, -3).Add(-time.Hour))
	quiet.update(t, in.ID, incidents.Update{Status: incidents.StatusResolved, Message: "Resolved.",
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.Operational}}})
	quiet.clk.Set(t0)
	quiet.rebuild(t)
	busy := newFixture(t)
	busy.scenario(t)
	busy.rebuild(t)
	ctx := browsertest.New(t)
	for name, f := range map[string]*fixture{"normal": quiet, "incident": busy} {
		srv := httptest.NewServer(f.site.Handler())
		for _, vp := range []struct {
			name string
			w, h int64
			opts []chromedp.EmulateViewportOption
		}{{"desktop", 1280, 800, nil}, {"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}}} {
			if err := chromedp.Do(ctx, browsertest.Timezone("UTC"), chromedp.EmulateViewport(vp.w, vp.h, vp.opts...), chromedp.Navigate(srv.URL+"/")); err != nil {
				t.Fatal(err)
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			if len(png) < 8 || string(png[1:4]) != "PNG" {
				t.Fatalf("%s %s: not a PNG", name, vp.name)
			}
			if dir != "" {
				if err := os.WriteFile(filepath.Join(dir, "home-"+name+"-"+vp.name+".png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		srv.Close()
	}
}
