// Package console is Candor's operator console under /admin and its write
// API under /api/v1: operators sign in with a password and a mandatory TOTP
// code, and work on incidents through the incidents package, with roles
// (viewer < exec < responder < admin) checked on every route, CSRF protection
// on every form, and an audit log of who did what, when and from where.
package console

import (
	"context"
	"crypto/cipher"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/notify"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/runbooks"
)

// Options are what a Console needs.
type Options struct {
	Pool      *pgxpool.Pool
	Incidents *incidents.Store
	Runbooks  runbooks.Set
	// Probes, when set, shows each affected probe's latest run per location
	// on the incident page.
	Probes *probes.Store
	// Relay, when set, lets the console manage webhook subscribers and
	// shows each channel's health on the Deliveries page. Without it the
	// Deliveries page still lists and retries deliveries (any replica's
	// relay picks a retry up), and webhooks cannot be managed here.
	Relay *notify.Relay
	// BaseURL is where operators reach Candor ("https://status.example.com"),
	// for enrolment links. Cookies are Secure unless BaseURL is plain http
	// on a loopback address (a local trial or the demo).
	BaseURL string
	// Secure marks cookies Secure even for a loopback http BaseURL.
	Secure bool
	// PageID is the public page's id (what /api/v2/summary.json reports), the
	// {page_id} of the Statuspage-compatible API under /api/v1/pages/.
	PageID string
	// TrustForwardedFor takes the client's address (for rate limits and the
	// audit log) from X-Forwarded-For, for a Candor behind a reverse proxy
	// that sets it. Without it, every client behind a proxy shares the
	// proxy's address and its sign-in rate limit.
	TrustForwardedFor bool
	// SecretKey, when set, encrypts the operators' TOTP secrets at rest
	// (AES-256-GCM; SecretKeySize bytes, see ParseSecretKey). Secrets stored
	// before it was set keep working and are encrypted at each operator's
	// next sign-in with a code. Once set, it must stay set: encrypted
	// secrets do not open without it.
	SecretKey []byte
	// Issuer is the name authenticator apps show; default "Candor".
	Issuer string
	Logger *slog.Logger
	// Now is the clock (time.Now when nil). Everything stored is UTC.
	Now func() time.Time
}

// Console serves the operator console and the write API.
type Console struct {
	o      Options
	log    *slog.Logger
	routes []route
	mux    *http.ServeMux
	h      http.Handler
	aead   cipher.AEAD // nil: TOTP secrets are stored as they are
}

// New returns a Console.
func New(o Options) (*Console, error) {
	if o.Pool == nil || o.Incidents == nil {
		return nil, errors.New("console: Pool and Incidents are required")
	}
	if o.Issuer == "" {
		o.Issuer = "Candor"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if !plainLoopback(o.BaseURL) {
		o.Secure = true
	}
	c := &Console{o: o, log: o.Logger}
	if len(o.SecretKey) > 0 {
		aead, err := newAEAD(o.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		c.aead = aead
	}
	c.routes = c.routeTable()
	c.mux = http.NewServeMux()
	for _, rt := range c.routes {
		c.mux.Handle(rt.method+" "+rt.path, c.wrap(rt))
	}
	c.mux.Handle("GET /admin/static/{file}", http.StripPrefix("/admin/", http.FileServerFS(staticFS)))
	c.mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, &httpError{status: http.StatusNotFound, msg: "There is no such page."})
	})
	c.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "", "no such endpoint")
	})
	cop := http.NewCrossOriginProtection()
	// The page URL's origin is ours even when a proxy in front rewrites Host.
	if u, err := url.Parse(o.BaseURL); err == nil && u.Scheme != "" && u.Host != "" {
		if err := cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("console: BaseURL %q: %w", o.BaseURL, err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.auditReq(r, "anonymous", "csrf.refused", r.URL.Path, map[string]any{"why": "cross-origin request"})
		c.fail(w, r, nil, &httpError{status: http.StatusForbidden, msg: "This request came from another site and was refused."})
	}))
	c.h = c.headers(cop.Handler(c.mux))
	return c, nil
}

// plainLoopback reports whether base is an http URL on a loopback host,
// the one case where cookies go without the Secure flag.
func plainLoopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

//go:embed static
var staticFS embed.FS

// Handler serves every path under /admin/ and /api/v1/.
func (c *Console) Handler() http.Handler { return c.h }

func (c *Console) now() time.Time { return c.o.Now().UTC() }

// headers sets the security headers of every console and API response: a
// CSP with no inline script or style, no framing, no referrer (enrolment
// links carry a token), no caching of pages that show private data.
func (c *Console) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if c.secure(r) {
			h.Set("Strict-Transport-Security", "max-age=63072000")
		}
		next.ServeHTTP(w, r)
	})
}

func (c *Console) secure(r *http.Request) bool { return c.o.Secure || r.TLS != nil }

// address is the client's address: the connection's peer, or, when
// TrustForwardedFor is set, the last address of X-Forwarded-For (the one
// the proxy in front added; earlier ones are whatever the client claimed).
func (c *Console) address(r *http.Request) string {
	if c.o.TrustForwardedFor {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// httpError is an error with what the person should read.
type httpError struct {
	status int
	msg    string
	fields incidents.FieldErrors
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func badRequest(msg string) error { return &httpError{status: http.StatusBadRequest, msg: msg} }

// statusOf maps an error to a status and a message a person may read.
func statusOf(err error) (int, string, incidents.FieldErrors) {
	var he *httpError
	var fe incidents.FieldErrors
	switch {
	case errors.As(err, &he):
		return he.status, he.msg, he.fields
	case errors.As(err, &fe):
		return http.StatusUnprocessableEntity, "Please correct the fields below.", fe
	case errors.Is(err, incidents.ErrNotFound), errors.Is(err, ErrNotFound), errors.Is(err, notify.ErrNotFound):
		return http.StatusNotFound, "There is no such page.", nil
	case errors.Is(err, incidents.ErrConflict):
		return http.StatusConflict, "Someone else changed this at the same moment; reload and try again.", nil
	case errors.Is(err, context.Canceled):
		return 499, "The request was cancelled.", nil
	}
	return http.StatusInternalServerError, "Something went wrong on our side; it has been logged.", nil
}

func (c *Console) auditReq(r *http.Request, actor, action, target string, detail map[string]any) {
	if err := audit(r.Context(), c.o.Pool, c.now(), actor, action, target, c.address(r), detail); err != nil {
		c.log.Error("audit", "action", action, "err", err)
	}
}
