package site

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
)

// TestHandlerServesSnapshots checks every public route over real HTTP:
// status, type, gzip and identity, strong ETags and 304, Cache-Control,
// security headers, HEAD, 405 and the 404 page.
func TestHandlerServesSnapshots(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resolved, open := f.scenario(t)

	// Before the first snapshot: 503, not a panic.
	srv := httptest.NewServer(f.site.Handler())
	defer srv.Close()
	if resp, _ := get(t, srv, "/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("before the first rebuild: %d", resp.StatusCode)
	}
	f.rebuild(t)

	routes := map[string]string{
		"/":                                   "text/html",
		"/history":                            "text/html",
		"/incidents/" + itoa(resolved.ID):     "text/html",
		"/incidents/" + itoa(open.ID):         "text/html",
		"/components/login":                   "text/html",
		"/components/two-step-authentication": "text/html",
		"/history.rss":                        "application/rss+xml",
		"/history.atom":                       "application/atom+xml",
		"/components/login.rss":               "application/rss+xml",
		"/components/login.atom":              "application/atom+xml",
		"/badge.svg":                          "image/svg+xml",
		"/badge.json":                         "application/json",
		"/api/v2/summary.json":                "application/json",
		f.site.assets.CSS:                     "text/css",
		f.site.assets.JS:                      "text/javascript",
	}
	for path, ctype := range routes {
		plainResp, plain := get(t, srv, path)
		gzResp, unzipped := get(t, srv, path, "Accept-Encoding", "br, gzip;q=0.8")
		for _, resp := range []*http.Response{plainResp, gzResp} {
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
				t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			checkSecurityHeaders(t, path, resp.Header)
			if !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
				t.Errorf("%s: Cache-Control %q", path, resp.Header.Get("Cache-Control"))
			}
		}
		if gzResp.Header.Get("Content-Encoding") != "gzip" || plainResp.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: encodings %q and %q", path, gzResp.Header.Get("Content-Encoding"), plainResp.Header.Get("Content-Encoding"))
		}
		if !bytes.Equal(plain, unzipped) {
			t.Errorf("%s: gzip and identity bodies differ", path)
		}
		etag := gzResp.Header.Get("Etag")
		if etag == "" || strings.HasPrefix(etag, "W/") || etag == plainResp.Header.Get("Etag") {
			t.Errorf("%s: ETags %q and %q", path, etag, plainResp.Header.Get("Etag"))
		}
		if resp, body := get(t, srv, path, "Accept-Encoding", "gzip", "If-None-Match", `"x", `+etag); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("%s: If-None-Match: %d, %d bytes", path, resp.StatusCode, len(body))
		}
		if resp, _ := get(t, srv, path, "If-None-Match", etag); resp.StatusCode != 200 {
			t.Errorf("%s: the gzip ETag matched the identity body: %d", path, resp.StatusCode)
		}
	}
	if cc := mustGet(t, srv, f.site.assets.CSS).Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("stylesheet Cache-Control %q", cc)
	}
	if cc := mustGet(t, srv, "/").Header.Get("Cache-Control"); !strings.Contains(cc, "stale-while-revalidate=") || !strings.Contains(cc, "stale-if-error=") {
		t.Errorf("page Cache-Control %q", cc)
	}

	// HEAD: headers with the length, no body, in both encodings.
	for _, enc := range []string{"", "gzip"} {
		req, _ := http.NewRequest(http.MethodHead, srv.URL+"/", nil)
		req.Header.Set("Accept-Encoding", enc)
		tr := &http.Transport{DisableCompression: true}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := len(f.site.Snapshot().files["/"].body)
		if enc == "gzip" {
			want = len(f.site.Snapshot().files["/"].gz)
		}
		if resp.StatusCode != 200 || resp.ContentLength != int64(want) {
			t.Errorf("HEAD %q: %d, length %d, want %d", enc, resp.StatusCode, resp.ContentLength, want)
		}
	}
	// Other methods: 405.
	resp, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// Unknown paths: the small 404 page.
	for _, p := range []string{"/nope", "/incidents/999999", "/incidents/../../etc/passwd", "/api/v2/nope.json", "/history/", "/%00"} {
		resp, body := get(t, srv, p, "Accept-Encoding", "gzip")
		if resp.StatusCode != 404 || !strings.Contains(string(body), "Page not found") || len(body) > 8<<10 {
			t.Errorf("%s: %d, %d bytes", p, resp.StatusCode, len(body))
		}
		checkSecurityHeaders(t, p, resp.Header)
	}
}

// TestOddRequestsCannotPoison sends huge and odd headers and query
// strings: no crash, and every requester gets the same snapshot bytes.
func TestOddRequestsCannotPoison(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.scenario(t)
	f.rebuild(t)
	srv := httptest.NewServer(f.site.Handler())
	defer srv.Close()
	_, want := get(t, srv, "/api/v2/summary.json")
	odd := [][]string{
		{"Host", "evil.example"},
		{"X-Forwarded-Host", "evil.example"},
		{"Accept-Encoding", strings.Repeat("gzip;q=0,", 2000)},
		{"Accept-Encoding", "identity;q=1, *;q=0"},
		{"If-None-Match", strings.Repeat(`"a",`, 5000)},
		{"Cookie", strings.Repeat("a=b; ", 10000)},
		{"Accept", "<script>alert(1)</script>"},
	}
	for _, h := range odd {
		for _, q := range []string{"", "?callback=alert(1)", "?" + strings.Repeat("x=%00&", 3000)} {
			resp, body := get(t, srv, "/api/v2/summary.json"+q, h...)
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("%s: %.40s… %s: %d, same body %v", h[0], h[1], q[:min(len(q), 20)], resp.StatusCode, bytes.Equal(body, want))
			}
		}
	}
	// A header over the server's limit is refused by net/http, not crashed on.
	resp, _ := get(t, srv, "/", "X-Big", strings.Repeat("a", 2<<20))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MB header: %d", resp.StatusCode)
	}
}

func checkSecurityHeaders(t *testing.T, path string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("%s: CSP %q", path, csp)
	}
	if !strings.Contains(csp, "frame-ancestors") {
		t.Errorf("%s: CSP without frame-ancestors: %q", path, csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", path, h.Get("X-Content-Type-Options"))
	}
	if h.Get("Referrer-Policy") == "" && h.Get("Allow") == "" {
		t.Errorf("%s: no Referrer-Policy", path)
	}
}

func mustGet(t *testing.T, srv *httptest.Server, path string) *http.Response {
	t.Helper()
	resp, _ := get(t, srv, path)
	return resp
}

// TestRunFollowsChanges: with Run going, a change committed through the
// Store shows on every public endpoint (the notice arrives by LISTEN).
func TestRunFollowsChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.site.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	srv := httptest.NewServer(f.site.Handler())
	defer srv.Close()
	waitFor(t, "the first snapshot", 30*time.Second, func() bool { return f.site.Snapshot() != nil })

	in := f.incident(t, incidents.NewIncident{Title: "Sign-in errors", Message: "We see errors at sign-in.",
		Components: []incidents.ComponentUpdate{{Component: "Login", Status: incidents.MajorOutage}}})
	for _, p := range []string{"/", "/history", "/incidents/" + itoa(in.ID), "/history.rss", "/history.atom", "/api/v2/summary.json",
		"/api/v2/incidents.json", "/api/v2/incidents/unresolved.json", "/components/login", "/components/login.rss"} {
		waitFor(t, p+" shows the incident", 30*time.Second, func() bool {
			resp, body := get(t, srv, p, "Accept-Encoding", "gzip")
			return resp.StatusCode == 200 && strings.Contains(string(body), "Sign-in errors")
		})
	}
	waitFor(t, "the badge turns red", 30*time.Second, func() bool {
		_, body := get(t, srv, "/badge.json")
		return strings.Contains(string(body), `"red"`)
	})
}

// TestExport writes the snapshot as files and checks names and contents.
func TestExport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, open := f.scenario(t)
	dir := t.TempDir()
	if err := f.site.Export(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	snap := f.site.Snapshot()
	for name, path := range map[string]string{
		"index.html":         "/",
		"history/index.html": "/history",
		"incidents/" + itoa(open.ID) + "/index.html":  "/incidents/" + itoa(open.ID),
		"components/login/index.html":                 "/components/login",
		"components/login.rss":                        "/components/login.rss",
		"history.rss":                                 "/history.rss",
		"api/v2/summary.json":                         "/api/v2/summary.json",
		"api/v2/scheduled-maintenances/upcoming.json": "/api/v2/scheduled-maintenances/upcoming.json",
		"badge.svg":                                   "/badge.svg",
		strings.TrimPrefix(f.site.assets.CSS, "/"):    f.site.assets.CSS,
	} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		want, _ := snap.Body(path)
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s", name, path)
		}
		if _, err := os.Stat(filepath.Join(dir, name+".gz")); err != nil {
			t.Error(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "404.html")); err != nil || !strings.Contains(string(b), "Page not found") {
		t.Errorf("404.html: %v", err)
	}
}

// TestRebuildReusesWhatDidNotChange: a rebuild after an update shows it
// everywhere, while the responses it did not change keep their bytes and
// ETags (and were not compressed again).
func TestRebuildReusesWhatDidNotChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, open := f.scenario(t)
	f.rebuild(t)
	before := f.site.Snapshot()
	f.clk.Set(t0.Add(time.Minute))
	f.update(t, open.ID, incidents.Update{Status: incidents.StatusMonitoring, Message: "A fix is rolling out."})
	f.rebuild(t)
	after := f.site.Snapshot()
	for _, p := range []string{"/", "/incidents/" + itoa(open.ID), "/history.rss", "/api/v2/incidents.json", "/api/v2/summary.json"} {
		if body, _ := after.Body(p); !strings.Contains(string(body), "A fix is rolling out.") {
			t.Errorf("%s does not show the new update", p)
		}
	}
	for _, p := range []string{"/components/api", "/components/api.rss", f.site.assets.CSS} {
		if before.files[p] != after.files[p] {
			t.Errorf("%s was rebuilt though it did not change", p)
		}
	}
}

// TestUnchangedRebuildKeepsTheSnapshot: a rebuild that reads the same data
// keeps the snapshot as it is; a new UTC day (the uptime bars move) does not.
func TestUnchangedRebuildKeepsTheSnapshot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.scenario(t)
	f.rebuild(t)
	first := f.site.Snapshot()
	f.clk.Set(t0.Add(time.Hour))
	f.rebuild(t)
	if f.site.Snapshot() != first {
		t.Error("a rebuild with nothing changed made a new snapshot")
	}
	f.clk.Set(t0.Add(24 * time.Hour))
	f.rebuild(t)
	if f.site.Snapshot() == first {
		t.Fatal("a new day kept the old snapshot")
	}
	if before, _ := first.Body("/"); bytes.Equal(before, mustBody(t, f.site.Snapshot(), "/")) {
		t.Error("the home page did not move to the new day")
	}
}

func mustBody(t *testing.T, s *Snapshot, path string) []byte {
	t.Helper()
	b, ok := s.Body(path)
	if !ok {
		t.Fatalf("no %s", path)
	}
	return b
}
