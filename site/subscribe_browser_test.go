package site

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/browsertest"
)

// recordedSubs keeps sign-ups in memory.
type recordedSubs struct {
	mu    sync.Mutex
	calls []recordedSignUp
}

type recordedSignUp struct {
	address    string
	components []string
}

func (s *recordedSubs) Subscribe(_ context.Context, address string, components []string, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, recordedSignUp{address, components})
	return nil
}
func (s *recordedSubs) Confirm(context.Context, string) (bool, error) { return true, nil }
func (s *recordedSubs) Unsubscribe(context.Context, string) error     { return nil }

// TestBrowserSubscribeForm follows the footer link in Chromium, submits the
// form under the page's CSP (form-action 'self', no inline script or
// style), and runs axe on the form in light and dark mode.
func TestBrowserSubscribeForm(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.rebuild(t)
	subs := &recordedSubs{}
	mux := http.NewServeMux()
	mux.Handle("/", f.site.Handler())
	h := f.site.SubscribeHandler(SubscribeOptions{Subscriptions: subs})
	mux.Handle("/subscribe", h)
	mux.Handle("/subscribe/", h)
	mux.Handle("/unsubscribe/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	eval[bool](t, ctx, `document.querySelector('footer a[href="/subscribe"]').click(); true`)
	waitFor(t, "the form", mailWait, func() bool {
		return eval[bool](t, ctx, `location.pathname === "/subscribe" && document.readyState === "complete" && !!document.querySelector("#email")`)
	})
	axe(t, ctx, "subscribe, light")
	if err := chromedp.Do(ctx, media(true), chromedp.Navigate(srv.URL+"/subscribe")); err != nil {
		t.Fatal(err)
	}
	axe(t, ctx, "subscribe, dark")
	if err := chromedp.Do(ctx, media(false)); err != nil {
		t.Fatal(err)
	}
	// A person's submit: a form the CSP refused would not navigate.
	login := "#c-" + incidents.ComponentID("Login")
	eval[bool](t, ctx, `document.querySelector("#email").value = "reader@example.net";
		document.querySelector("`+login+`").click();
		document.querySelector("form button[type=submit]").click(); true`)
	waitFor(t, "the answer page", mailWait, func() bool {
		return eval[bool](t, ctx, `document.readyState === "complete" && document.querySelector("h1")?.innerText === "Check your inbox"`)
	})
	if body := eval[string](t, ctx, `document.body.innerText`); strings.Contains(body, "reader@") {
		t.Errorf("the page shows the address")
	}
	subs.mu.Lock()
	calls := append([]recordedSignUp(nil), subs.calls...)
	subs.mu.Unlock()
	if len(calls) != 1 || calls[0].address != "reader@example.net" || len(calls[0].components) != 1 || calls[0].components[0] != "Login" {
		t.Errorf("sign-ups: %+v", calls)
	}
}
