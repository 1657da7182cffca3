package site

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"github.com/candorhq/candor/notify"
)

// Subscriptions is what the subscribe pages need (*notify.Subscriptions):
// Subscribe returns notify.ErrBadAddress or notify.ErrRateLimited for what
// the person can fix.
type Subscriptions interface {
	Subscribe(ctx context.Context, address string, components []string, clientIP string) error
	Confirm(ctx context.Context, token string) (bool, error)
	Unsubscribe(ctx context.Context, token string) error
}

// SubscribeOptions configure Site.SubscribeHandler.
type SubscribeOptions struct {
	// Subscriptions takes the sign-ups; nil: the pages say that email
	// updates are not offered and point at the feeds.
	Subscriptions Subscriptions
	// ClientIP returns the client's address for the sign-up limit
	// (default: the host of the request's RemoteAddr). Behind a reverse
	// proxy, set TrustForwardedFor or give one that reads the proxy's
	// header.
	ClientIP func(*http.Request) string
	// TrustForwardedFor takes the client's address from the last entry of
	// X-Forwarded-For (the one the proxy in front added), as the console
	// does. Ignored when ClientIP is set.
	TrustForwardedFor bool
}

// subscribeCSP is the site's policy with one change: forms may post to the
// page's own origin (the site's static pages keep form-action 'none').
var subscribeCSP = strings.Replace(csp, "form-action 'none'", "form-action 'self'", 1)

// maxFormBytes bounds a posted form.
const maxFormBytes = 16 << 10

// SubscribeHandler serves the dynamic pages of email subscriptions. Mount
// it at "/subscribe", "/subscribe/" and "/unsubscribe/":
//
//	GET  /subscribe                    the form: an address, every component or chosen ones
//	POST /subscribe                    signs up; a confirmation link is mailed (double opt-in)
//	GET  /subscribe/confirm/{token}    asks to confirm (a button: link scanners only GET)
//	POST /subscribe/confirm/{token}    confirms
//	GET  /unsubscribe/{token}          asks to unsubscribe (a button)
//	POST /unsubscribe/{token}          unsubscribes: the button, or a mail client's RFC 8058
//	                                   one-click POST (List-Unsubscribe=One-Click)
//
// Pages carry the site's CSP with form-action 'self', are never cached, and
// never show an address, not even the one just entered. Cross-origin
// browser POSTs are refused (http.CrossOriginProtection); mail providers'
// one-click POSTs carry no browser headers and pass.
func (s *Site) SubscribeHandler(o SubscribeOptions) http.Handler {
	if o.ClientIP == nil {
		o.ClientIP = remoteIP
		if o.TrustForwardedFor {
			o.ClientIP = forwardedIP
		}
	}
	h := &subscribeHandler{s: s, o: o}
	return http.NewCrossOriginProtection().Handler(h)
}

type subscribeHandler struct {
	s *Site
	o SubscribeOptions
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// forwardedIP is the last address of X-Forwarded-For, or the peer's.
func forwardedIP(r *http.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		parts := strings.Split(xff[len(xff)-1], ",")
		if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
			return ip.String()
		}
	}
	return remoteIP(r)
}

func (h *subscribeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/subscribe":
		h.allow(w, r, h.form, h.signUp)
	case strings.HasPrefix(p, "/subscribe/confirm/"):
		tok := strings.TrimPrefix(p, "/subscribe/confirm/")
		h.allow(w, r, func(w http.ResponseWriter, r *http.Request) { h.askConfirm(w, r, tok) },
			func(w http.ResponseWriter, r *http.Request) { h.confirm(w, r, tok) })
	case strings.HasPrefix(p, "/unsubscribe/"):
		tok := strings.TrimPrefix(p, "/unsubscribe/")
		h.allow(w, r, func(w http.ResponseWriter, r *http.Request) { h.askUnsubscribe(w, r, tok) },
			func(w http.ResponseWriter, r *http.Request) { h.unsubscribe(w, r, tok) })
	default:
		h.page(w, r, http.StatusNotFound, "Not found", tmplMessage, msg{Text: "There is nothing at this address."})
	}
}

func (h *subscribeHandler) allow(w http.ResponseWriter, r *http.Request, get, post http.HandlerFunc) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		get(w, r)
	case http.MethodPost:
		if h.o.Subscriptions == nil {
			h.unavailable(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.page(w, r, http.StatusBadRequest, "Bad request", tmplMessage, msg{Text: "The form could not be read."})
			return
		}
		post(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.headers(w)
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// subscribable is a component the form offers.
type subscribable struct {
	ID, Name string
}

// components reads the components the public site shows from the
// snapshot's API body: no database round trip for the form.
func (h *subscribeHandler) components() []subscribable {
	snap := h.s.Snapshot()
	if snap == nil {
		return nil
	}
	body, ok := snap.Body("/api/v2/components.json")
	if !ok {
		return nil
	}
	var doc struct {
		Components []struct {
			ID    string `json:"id"`
			Name  string `json:"name"`
			Group bool   `json:"group"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil
	}
	var out []subscribable
	for _, c := range doc.Components {
		if !c.Group {
			out = append(out, subscribable{ID: c.ID, Name: c.Name})
		}
	}
	return out
}

type formData struct {
	Components []subscribable
	Error      string
	Offered    bool
}

func (h *subscribeHandler) form(w http.ResponseWriter, r *http.Request) {
	h.page(w, r, http.StatusOK, "Subscribe to updates", tmplForm, formData{Components: h.components(), Offered: h.o.Subscriptions != nil})
}

func (h *subscribeHandler) signUp(w http.ResponseWriter, r *http.Request) {
	var comps []string
	if chosen := r.PostForm["component"]; len(chosen) > 0 {
		known := map[string]string{}
		for _, c := range h.components() {
			known[c.ID] = c.Name
		}
		for _, id := range chosen {
			if name, ok := known[id]; ok {
				comps = append(comps, name)
			}
		}
		if len(comps) == 0 {
			h.page(w, r, http.StatusBadRequest, "Subscribe to updates", tmplForm,
				formData{Components: h.components(), Offered: true, Error: "Those components are not on this page any more: choose again."})
			return
		}
	}
	err := h.o.Subscriptions.Subscribe(r.Context(), r.PostForm.Get("email"), comps, h.o.ClientIP(r))
	switch {
	case err == nil:
		h.page(w, r, http.StatusOK, "Check your inbox", tmplMessage, msg{Heading: "Check your inbox",
			Text: "We sent a confirmation link to the address you entered. Nothing else is sent until you follow it; it works for 7 days."})
	case errors.Is(err, notify.ErrBadAddress):
		h.page(w, r, http.StatusBadRequest, "Subscribe to updates", tmplForm,
			formData{Components: h.components(), Offered: true, Error: "That is not an email address we can use: enter one such as name@example.com."})
	case errors.Is(err, notify.ErrRateLimited):
		w.Header().Set("Retry-After", "600")
		h.page(w, r, http.StatusTooManyRequests, "Too many sign-ups", tmplMessage, msg{Heading: "Too many sign-ups",
			Text: "There have been too many sign-ups from here or for this address. Try again in a few minutes."})
	default:
		h.s.log.Error("email sign-up failed", "err", err)
		h.page(w, r, http.StatusInternalServerError, "Try again later", tmplMessage, msg{Heading: "Something went wrong",
			Text: "The sign-up could not be saved. Try again later."})
	}
}

func (h *subscribeHandler) askConfirm(w http.ResponseWriter, r *http.Request, _ string) {
	h.page(w, r, http.StatusOK, "Confirm your subscription", tmplAction, msg{Heading: "Confirm your subscription",
		Text: "Confirm that you want incident updates from this status page by email.", Button: "Confirm subscription"})
}

func (h *subscribeHandler) confirm(w http.ResponseWriter, r *http.Request, tok string) {
	ok, err := h.o.Subscriptions.Confirm(r.Context(), tok)
	switch {
	case err != nil:
		h.s.log.Error("email confirmation failed", "err", err)
		h.page(w, r, http.StatusInternalServerError, "Try again later", tmplMessage, msg{Heading: "Something went wrong",
			Text: "The confirmation could not be saved. Try again later."})
	case !ok:
		h.page(w, r, http.StatusNotFound, "Link expired", tmplMessage, msg{Heading: "This link does not work",
			Text: "It is unknown or more than 7 days old. Sign up again to get a new one.", Link: "/subscribe", LinkText: "Subscribe to updates"})
	default:
		h.page(w, r, http.StatusOK, "Subscribed", tmplMessage, msg{Heading: "You are subscribed",
			Text: "You will get an email for every public update. Each one has a link to unsubscribe.", Link: "/", LinkText: "See the current status"})
	}
}

func (h *subscribeHandler) askUnsubscribe(w http.ResponseWriter, r *http.Request, _ string) {
	h.page(w, r, http.StatusOK, "Unsubscribe", tmplAction, msg{Heading: "Unsubscribe",
		Text: "Stop incident updates from this status page by email, and forget the address.", Button: "Unsubscribe"})
}

func (h *subscribeHandler) unsubscribe(w http.ResponseWriter, r *http.Request, tok string) {
	if err := h.o.Subscriptions.Unsubscribe(r.Context(), tok); err != nil {
		h.s.log.Error("email unsubscription failed", "err", err)
		h.page(w, r, http.StatusInternalServerError, "Try again later", tmplMessage, msg{Heading: "Something went wrong",
			Text: "The unsubscription could not be saved. Try again later."})
		return
	}
	// The same answer for an unknown token: the subscriber is gone either way.
	h.page(w, r, http.StatusOK, "Unsubscribed", tmplMessage, msg{Heading: "You are unsubscribed",
		Text: "No more updates will be sent, and the address is deleted.", Link: "/", LinkText: "See the current status"})
}

func (h *subscribeHandler) unavailable(w http.ResponseWriter, r *http.Request) {
	h.page(w, r, http.StatusNotFound, "Email updates", tmplMessage, msg{Heading: "Email updates are not offered here",
		Text: "Follow the status page's RSS or Atom feed instead.", Link: "/history.atom", LinkText: "Atom feed"})
}

// msg is a page with a heading, a sentence, and a link or a button.
type msg struct {
	Heading, Text  string
	Link, LinkText string
	Button         string
}

var (
	tmplForm = template.Must(template.New("form").Parse(`<h1>Subscribe to updates</h1>
{{if .Offered}}<p>Get an email for every public update of an incident. We send a confirmation link first, and every email has a link to unsubscribe. Times are in UTC.</p>
{{if .Error}}<p class="card" role="alert" id="form-error">{{.Error}}</p>{{end}}
<form method="post" action="/subscribe">
<p><label for="email">Email address</label><br>
<input type="email" id="email" name="email" required autocomplete="email" maxlength="254"{{if .Error}} aria-describedby="form-error"{{end}}></p>
<fieldset><legend>Updates about</legend>
{{if .Components}}<p id="comps-hint">Tick the components you care about, or none for every component.</p>
<ul class="comps">{{range .Components}}<li><input type="checkbox" id="c-{{.ID}}" name="component" value="{{.ID}}" aria-describedby="comps-hint"> <label for="c-{{.ID}}">{{.Name}}</label></li>
{{end}}</ul>{{else}}<p>Every component.</p>{{end}}
</fieldset>
<p><button type="submit">Subscribe</button></p>
</form>
{{else}}<p>Email updates are not offered here. Follow the <a href="/history.atom">Atom</a> or <a href="/history.rss">RSS</a> feed instead.</p>{{end}}`))
	tmplMessage = template.Must(template.New("message").Parse(`<h1>{{or .Heading "Not found"}}</h1>
<p>{{.Text}}</p>
{{if .Link}}<p><a href="{{.Link}}">{{.LinkText}}</a></p>{{end}}`))
	tmplAction = template.Must(template.New("action").Parse(`<h1>{{.Heading}}</h1>
<p>{{.Text}}</p>
<form method="post"><p><button type="submit">{{.Button}}</button></p></form>`))
)

func (h *subscribeHandler) headers(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	// The path carries a token: it must not leave in a Referer.
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", subscribeCSP)
}

// page renders body in the site's layout.
func (h *subscribeHandler) page(w http.ResponseWriter, r *http.Request, status int, title string, body *template.Template, data any) {
	h.headers(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	v := view{m: &model{Page: h.s.opts.Page}, a: h.s.assets}
	child := templ.ComponentFunc(func(_ context.Context, w io.Writer) error { return body.Execute(w, data) })
	var b strings.Builder
	if err := layout(v, title+" · "+v.m.Page.Name).Render(templ.WithChildren(r.Context(), child), &b); err != nil {
		h.s.log.Error("subscribe page failed to render", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, b.String())
	}
}
