package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEveryAnswerCarriesSecurityHeaders asks candor serve for every public,
// console, API and operational route, signed out, by GET and POST, and checks
// each answer (pages, redirects, refusals, 404s) for the security headers.
func TestEveryAnswerCarriesSecurityHeaders(t *testing.T) {
	addr, demoAddr := freeAddr(t), freeAddr(t)
	base := "http://" + addr
	stop := serveInBackground(t, "--listen", addr, "--demo-listen", demoAddr, "--data-dir", t.TempDir())
	t.Cleanup(func() { stop() })
	waitFor(t, base+"/readyz", 200, 60*time.Second)

	paths := []string{
		"/", "/history", "/history.rss", "/history.atom", "/components/login", "/components/login.rss",
		"/incidents/1", "/no-such-page", "/badge.svg", "/badge.json", "/subscribe", "/unsubscribe/x",
		"/api/v2/summary.json", "/api/v2/status.json", "/api/v2/components.json", "/api/v2/incidents.json",
		"/api/v2/incidents/unresolved.json", "/api/v2/scheduled-maintenances.json",
		"/api/v2/scheduled-maintenances/upcoming.json", "/api/v2/scheduled-maintenances/active.json",
		"/admin/", "/admin/login", "/admin/login/code", "/admin/enrol/nope", "/admin/incidents", "/admin/incidents/1",
		"/admin/incidents/new", "/admin/incidents/1/note", "/admin/maintenance", "/admin/components", "/admin/deliveries",
		"/admin/webhooks", "/admin/operators", "/admin/tokens", "/admin/audit", "/admin/account", "/admin/nope",
		"/api/v1/incidents", "/api/v1/incidents/1", "/api/v1/webhooks", "/api/v1/pages/candor-demo/incidents",
		"/api/v1/pages/candor-demo/components", "/api/v1/nope",
		"/healthz", "/readyz", "/metrics",
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range paths {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, base+p, strings.NewReader("x=1"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, p, err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Errorf("%s %s: %s", method, p, resp.Status)
			}
			h := resp.Header
			csp := h.Get("Content-Security-Policy")
			switch {
			case csp == "":
				t.Errorf("%s %s (%d): no Content-Security-Policy", method, p, resp.StatusCode)
			case strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval"):
				t.Errorf("%s %s: CSP allows inline code: %s", method, p, csp)
			case !strings.Contains(csp, "frame-ancestors 'none'"):
				t.Errorf("%s %s: CSP without frame-ancestors 'none': %s", method, p, csp)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s (%d): X-Content-Type-Options %q", method, p, resp.StatusCode, h.Get("X-Content-Type-Options"))
			}
			if h.Get("Referrer-Policy") == "" {
				t.Errorf("%s %s (%d): no Referrer-Policy", method, p, resp.StatusCode)
			}
		}
	}
}
