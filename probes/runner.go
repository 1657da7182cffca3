package probes

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/net/html"
)

// RunnerOptions configures a [Runner]. The zero value is a runner at
// [DefaultLocation] with the system's trust roots and the real clock.
type RunnerOptions struct {
	Location string
	// RootCAs replaces the system's trust roots (tests use httptest's
	// certificate); a probe's tls.ca_file adds to them.
	RootCAs *x509.CertPool
	// Now is the clock for TOTP codes, result times, cookie lifetimes and
	// certificate expiry; Sleep waits for the next TOTP window. Tests inject both.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
	// Getenv serves {{ env "NAME" }} (default os.Getenv).
	Getenv func(string) string
	// Claims, when set, claims each TOTP code's window before the code is
	// submitted (one code, one use, cluster-wide); nil submits codes
	// unclaimed.
	Claims *Claims
}

// Runner runs compiled probes. It is safe for concurrent use; runs share a
// connection pool but never cookies. It remembers, in memory, how long each
// step usually takes (for failure messages) and when it last tested each
// TLS target for protocols older than TLS 1.2.
type Runner struct {
	location  string
	roots     *x509.CertPool
	transport *http.Transport
	now       func() time.Time
	sleep     func(context.Context, time.Duration) error
	getenv    func(string) string
	claims    *Claims

	mu         sync.Mutex
	planTLS    map[*Plan]*planTLS     // probes with tls.ca_file or tls.server_name
	usual      map[string]*latencies  // probe and step → recent successful latencies
	oldTLSSeen map[string]oldTLSCheck // host:port → the last test of old protocols
}

// planTLS is the trust of one probe that has TLS options of its own.
type planTLS struct {
	config    *tls.Config
	transport *http.Transport
}

// tlsFor returns the TLS configuration and transport of p's runs: the
// runner's own, or, for a probe with tls.ca_file or tls.server_name, its
// own (built once, so its connections are reused between runs too).
func (r *Runner) tlsFor(p *Plan) (*tls.Config, *http.Transport, error) {
	if len(p.caCerts) == 0 && p.Probe.TLS.ServerName == "" {
		return r.transport.TLSClientConfig, r.transport, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if pt, ok := r.planTLS[p]; ok {
		return pt.config, pt.transport, nil
	}
	roots := r.roots
	if len(p.caCerts) > 0 {
		if roots != nil {
			roots = roots.Clone()
		} else {
			sys, err := x509.SystemCertPool()
			if err != nil {
				return nil, nil, fmt.Errorf("read the system's trust roots: %w", err)
			}
			roots = sys
		}
		for _, c := range p.caCerts {
			roots.AddCert(c)
		}
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: p.Probe.TLS.ServerName, MinVersion: tls.VersionTLS12}
	tr := r.transport.Clone()
	tr.TLSClientConfig = cfg
	if r.planTLS == nil {
		r.planTLS = map[*Plan]*planTLS{}
	}
	r.planTLS[p] = &planTLS{config: cfg, transport: tr}
	return cfg, tr, nil
}

// latencies keeps the latest successful latencies of one step.
type latencies struct {
	ring [latencySamples]time.Duration
	n    int // samples recorded, up to the ring's size
	next int
}

// latencySamples is how many recent successful latencies make "usually";
// minLatencySamples must be seen before a message says "usually".
const (
	latencySamples    = 20
	minLatencySamples = 3
)

func latencyKey(probe, step string) string { return probe + "\x00" + step }

// recordLatency notes a successful step's latency.
func (r *Runner) recordLatency(probe, step string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.usual == nil {
		r.usual = map[string]*latencies{}
	}
	l := r.usual[latencyKey(probe, step)]
	if l == nil {
		l = &latencies{}
		r.usual[latencyKey(probe, step)] = l
	}
	l.ring[l.next] = d
	l.next = (l.next + 1) % latencySamples
	l.n = min(l.n+1, latencySamples)
}

// usualLatency returns the median of a step's recent successful latencies,
// or false while too few are known.
func (r *Runner) usualLatency(probe, step string) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.usual[latencyKey(probe, step)]
	if l == nil || l.n < minLatencySamples {
		return 0, false
	}
	s := slices.Clone(l.ring[:l.n])
	slices.Sort(s)
	return s[len(s)/2], true
}

// NewRunner returns a Runner.
func NewRunner(o RunnerOptions) *Runner {
	r := &Runner{location: o.Location, roots: o.RootCAs, now: o.Now, sleep: o.Sleep, getenv: o.Getenv, claims: o.Claims}
	if r.location == "" {
		r.location = DefaultLocation
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.sleep == nil {
		r.sleep = sleepCtx
	}
	if r.getenv == nil {
		r.getenv = os.Getenv
	}
	r.transport = &http.Transport{
		Proxy:               nil, // a probe measures the target, not a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return r
}

// Location returns the location this runner reports in its results.
func (r *Runner) Location() string { return r.location }

// Close closes idle connections.
func (r *Runner) Close() {
	r.transport.CloseIdleConnections()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pt := range r.planTLS {
		pt.transport.CloseIdleConnections()
	}
}

var errTooManyRedirects = errors.New("too many redirects")

// run is the state of one run of one plan.
type run struct {
	r        *Runner
	p        *Plan
	ctx      context.Context
	vars     map[string]string
	jar      http.CookieJar
	usedTOTP bool // the current step computed a TOTP code
	res      *Result
	tls      *tls.Config     // the trust of this probe's connections
	client   *http.Transport // this probe's transport
}

func (x *run) lookup(name string) (string, bool) {
	v, ok := x.vars[name]
	return v, ok
}

func (x *run) callFunc(c *call) (string, error) {
	switch c.fn {
	case "totp":
		seed, ok := x.vars[c.args[0].variable]
		if !ok {
			return "", fmt.Errorf("variable .%s has no value", c.args[0].variable)
		}
		params, err := totpParams(c.args[1:])
		if err != nil {
			return "", err
		}
		plain := make(map[string]string, len(x.p.Probe.Vars))
		for k := range x.p.Probe.Vars {
			plain[k] = x.vars[k] // as the run sees it: a location's own value included
		}
		code, err := x.r.claimedCode(x.ctx, seed, params, accountKey(seed, params, plain))
		if err != nil {
			return "", err
		}
		x.usedTOTP = true
		return code, nil
	case "env":
		return x.r.getenv(c.args[0].text), nil
	case "now":
		t := x.r.now().UTC()
		if len(c.args) == 0 {
			return t.Format(time.RFC3339), nil
		}
		if c.args[0].text == "unix" {
			return strconv.FormatInt(t.Unix(), 10), nil
		}
		return t.Format(c.args[0].text), nil
	}
	return "", fmt.Errorf("unknown template function %q", c.fn)
}

// Run runs p once and returns its result. It never panics on what a target
// answers and always returns within the plan's timeout (plus a little).
func (r *Runner) Run(ctx context.Context, p *Plan) Result {
	start := r.now()
	wall := time.Now()
	res := Result{
		Probe:     p.Probe.Name,
		Location:  r.location,
		Start:     start.UTC(),
		Outcome:   OutcomeOK,
		FailedIdx: -1,
		Steps:     make([]StepResult, 0, len(p.steps)),
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	jar, _ := cookiejar.New(nil)
	x := &run{r: r, p: p, ctx: ctx, jar: jar, res: &res, vars: make(map[string]string, len(p.base)+8)}
	for k, v := range p.base {
		x.vars[k] = v
	}
	for k, v := range p.atLoc[r.location] {
		x.vars[k] = v // this location's own account
	}
	x.vars["location"] = r.location
	var err error
	if x.tls, x.client, err = r.tlsFor(p); err != nil {
		x.fail(-1, "tls", ClassTLS, "the probe's trusted certificates cannot be prepared: %v", err)
	}

	if !res.Failed() && p.target != nil && p.target.Scheme == "https" && !p.Probe.TLS.Skip {
		x.checkTLS()
	}
	if !res.Failed() {
		for i := range p.steps {
			if !x.step(i, &p.steps[i]) {
				break
			}
		}
	}
	res.Duration = time.Since(wall)
	if !res.Failed() && p.Probe.DegradedAfter.D > 0 {
		var total time.Duration
		for _, s := range res.Steps {
			total += s.Latency
		}
		if total > p.Probe.DegradedAfter.D {
			res.Outcome = OutcomeDegraded
			if res.Message != "" {
				res.Message += "; "
			}
			res.Message += fmt.Sprintf("the steps took %s in all, over the %s threshold", total.Round(time.Millisecond), p.Probe.DegradedAfter.D)
		}
	}
	res.Message = p.redact(res.Message)
	return res
}

// fail records the run's failure at step i (-1: the TLS check, which
// counts as the login page: no customer gets past it).
func (x *run) fail(i int, name string, class ErrorClass, format string, args ...any) {
	x.res.Outcome = OutcomeFailed
	x.res.FailedIdx = i
	x.res.FailedStep = name
	x.res.FailedRole = RoleLoginPage
	if i >= 0 && i < len(x.p.steps) {
		x.res.FailedRole = x.p.steps[i].Role.Or()
	}
	x.res.Class = class
	x.res.Message = fmt.Sprintf(format, args...)
}

func (x *run) signal(s Signal) {
	if !slices.Contains(x.res.Signals, s) {
		x.res.Signals = append(x.res.Signals, s)
	}
}

// response is what a step got back.
type response struct {
	resp    *http.Response
	body    []byte
	latency time.Duration
	cookies map[string]*http.Cookie // Set-Cookie of every response of the step
	at      time.Time               // our clock when the response arrived
	parsedJ any
	jerr    error
	jdone   bool
	doc     *html.Node
}

func (rs *response) json() (any, error) {
	if !rs.jdone {
		rs.jdone = true
		rs.jerr = json.Unmarshal(rs.body, &rs.parsedJ)
	}
	return rs.parsedJ, rs.jerr
}

func (rs *response) html() *html.Node {
	if rs.doc == nil {
		doc, err := html.Parse(bytes.NewReader(rs.body))
		if err != nil {
			doc = &html.Node{Type: html.DocumentNode}
		}
		rs.doc = doc
	}
	return rs.doc
}

// step runs step i and reports whether the run goes on.
func (x *run) step(i int, st *stepPlan) bool {
	x.usedTOTP = false
	sr := StepResult{Name: st.Name, Role: st.Role.Or(), Method: st.method}
	defer func() { x.res.Steps = append(x.res.Steps, sr) }()
	if st.NewSession {
		x.jar, _ = cookiejar.New(nil)
	}
	for _, l := range st.let {
		v, err := l.val.render(x)
		if err != nil {
			x.failRender(i, st, err)
			return false
		}
		x.vars[l.key] = v
	}
	req, err := x.request(st)
	if err != nil {
		x.failRender(i, st, err)
		return false
	}
	sr.Path = x.p.redact(req.URL.Path)

	ctx, cancel := context.WithTimeout(x.ctx, st.timeout)
	defer cancel()
	req = req.WithContext(ctx)
	rs := &response{cookies: map[string]*http.Cookie{}}
	client := &http.Client{
		Transport: x.client,
		Jar:       x.jar,
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			if prev := next.Response; prev != nil {
				for _, c := range prev.Cookies() {
					rs.cookies[c.Name] = c
				}
			}
			if !st.follow {
				return http.ErrUseLastResponse
			}
			if len(via) > st.maxRedir {
				return errTooManyRedirects
			}
			return nil
		},
	}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		sr.Latency = time.Since(began)
		where := fmt.Sprintf("step %q (%s %s)", st.Name, st.method, req.URL.Path)
		if exp, ok := x.expiredCert(err, req.URL.Hostname()); ok {
			x.failExpired(i, st.Name, where, exp)
			return false
		}
		class, msg := classify(err, ctx, x.ctx)
		if class == ClassTLS && isCertError(err) {
			x.signal(SignalTLSInvalid)
		}
		if class == ClassTimeout {
			msg = x.timedOut(st, sr.Latency)
		}
		x.fail(i, st.Name, class, "%s: %s", where, msg)
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, x.p.maxBody+1))
	sr.Latency = time.Since(began)
	sr.Status = resp.StatusCode
	sr.Bytes = int64(len(body))
	rs.at = x.r.now()
	if err != nil {
		class, msg := classify(err, ctx, x.ctx)
		if class == ClassTimeout {
			msg = x.timedOut(st, sr.Latency)
		}
		x.fail(i, st.Name, class, "step %q (%s %s): reading the response: %s (it answered %s)", st.Name, st.method, req.URL.Path, msg, resp.Status)
		return false
	}
	truncated := ""
	if int64(len(body)) > x.p.maxBody {
		body = body[:x.p.maxBody]
		sr.Bytes = x.p.maxBody
		truncated = fmt.Sprintf(" (only the first %d bytes of the response were read)", x.p.maxBody)
	}
	rs.resp, rs.body, rs.latency = resp, body, sr.Latency
	for _, c := range resp.Cookies() {
		rs.cookies[c.Name] = c
	}

	if !x.assert(i, st, rs, truncated) {
		return false
	}
	for _, e := range st.extracts {
		v, err := x.extract(e, rs)
		if err != nil {
			x.fail(i, st.Name, ClassExtraction, "step %q (%s %s): %v%s; %s", st.Name, st.method, req.URL.Path, err, truncated, x.evidence(st, rs))
			return false
		}
		x.vars[e.Var] = v
	}
	sr.OK = true
	x.r.recordLatency(x.p.Probe.Name, st.Name, sr.Latency)
	return true
}

// timedOut says which limit a step ran into, and how long it usually takes.
func (x *run) timedOut(st *stepPlan, took time.Duration) string {
	var msg string
	if x.ctx.Err() == context.DeadlineExceeded {
		msg = fmt.Sprintf("timed out after %s, the probe's limit for a whole run (%s)", seconds(took), seconds(x.p.timeout))
	} else {
		msg = fmt.Sprintf("timed out after %s, the step's limit", seconds(st.timeout))
	}
	if u, ok := x.r.usualLatency(x.p.Probe.Name, st.Name); ok {
		msg += fmt.Sprintf("; usually %s", seconds(u))
	}
	return msg
}

// evidence says what a step answered, for a person reading a failure at
// 3 a.m.: the status, the page's title or a short excerpt of what it said,
// and how long it took against the step's limit and its usual latency, as
// in: answered 401 "Authentication failed" after 5.02 s (limit 10 s); usually 0.9 s.
func (x *run) evidence(st *stepPlan, rs *response) string {
	msg := fmt.Sprintf("answered %d", rs.resp.StatusCode)
	if what := said(rs.resp.Header.Get("Content-Type"), rs.body); what != "" {
		msg += fmt.Sprintf(" %q", what)
	}
	msg += fmt.Sprintf(" after %s (limit %s)", seconds(rs.latency), seconds(st.timeout))
	if u, ok := x.r.usualLatency(x.p.Probe.Name, st.Name); ok {
		msg += fmt.Sprintf("; usually %s", seconds(u))
	}
	return msg
}

// seconds writes d as a person reads a latency: "5.02 s", "0.9 s", "10 s".
func seconds(d time.Duration) string {
	s := d.Seconds()
	var t string
	switch {
	case s >= 10:
		t = strconv.FormatFloat(s, 'f', 1, 64)
	case s >= 0.01:
		t = strconv.FormatFloat(s, 'f', 2, 64)
	default:
		t = strconv.FormatFloat(s, 'f', 3, 64)
	}
	if strings.Contains(t, ".") {
		t = strings.TrimRight(strings.TrimRight(t, "0"), ".")
	}
	if t == "0" {
		t = "0.001"
	}
	return t + " s"
}

// saidLimit is how much of what a response said goes into a message.
const saidLimit = 80

// said returns what a response said, in a few words: an HTML page's title
// (or the start of its visible text), a JSON body's error or message field
// (or the start of the JSON), or the start of a text body. The run's
// message is redacted afterwards, like everything in it.
func said(contentType string, body []byte) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return ""
	}
	switch {
	case strings.Contains(contentType, "json") || trimmed[0] == '{' || trimmed[0] == '[':
		var doc any
		if json.Unmarshal(trimmed, &doc) == nil {
			if m := jsonMessage(doc); m != "" {
				return clip(m)
			}
		}
		return clip(string(trimmed))
	case strings.Contains(contentType, "html") || trimmed[0] == '<':
		doc, err := html.Parse(bytes.NewReader(trimmed))
		if err != nil {
			return ""
		}
		if t := findTitle(doc); t != "" {
			return clip(t)
		}
		return clip(visibleText(doc))
	}
	return clip(string(trimmed))
}

// jsonMessage returns the first error or message text in a JSON body, at
// its top or one level down ({"error": {"message": …}}).
func jsonMessage(doc any) string {
	m, ok := doc.(map[string]any)
	if !ok {
		return ""
	}
	for _, k := range []string{"error_description", "message", "error", "detail", "title", "msg", "reason"} {
		switch v := m[k].(type) {
		case string:
			if v != "" {
				return v
			}
		case map[string]any:
			if s := jsonMessage(v); s != "" {
				return s
			}
		case []any:
			if len(v) > 0 {
				if s, ok := v[0].(string); ok {
					return s
				}
				if s := jsonMessage(v[0]); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

func findTitle(n *html.Node) string {
	if n.Type == html.ElementNode && n.Data == "title" {
		return textOf(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if t := findTitle(c); t != "" {
			return t
		}
	}
	return ""
}

// visibleText returns the start of the text a browser would show.
func visibleText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if b.Len() > 4*saidLimit {
			return
		}
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style" || n.Data == "head" || n.Data == "noscript") {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// clip collapses whitespace, drops control characters and cuts s to
// saidLimit characters.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || unicode.IsControl(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > saidLimit {
		return string(r[:saidLimit]) + "…"
	}
	return s
}

func (x *run) failRender(i int, st *stepPlan, err error) {
	class := ClassExtraction
	var taken *WindowTakenError
	switch {
	case errors.As(err, &taken):
		class = ClassCodeWindowTaken
	case x.ctx.Err() != nil:
		class = ClassTimeout
	}
	x.fail(i, st.Name, class, "step %q: %v", st.Name, err)
}

// request builds the step's request from its templates.
func (x *run) request(st *stepPlan) (*http.Request, error) {
	raw, err := st.url.render(x)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if strings.HasPrefix(raw, "/") {
		raw = x.vars["target"] + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("the url is not an absolute http(s) URL")
	}
	var body io.Reader
	contentType := ""
	switch {
	case st.form != nil:
		vals := make(url.Values, len(st.form))
		for _, f := range st.form {
			v, err := f.val.render(x)
			if err != nil {
				return nil, fmt.Errorf("form field %s: %w", f.key, err)
			}
			vals.Set(f.key, v)
		}
		body = strings.NewReader(vals.Encode())
		contentType = "application/x-www-form-urlencoded"
	case st.json != nil:
		v, err := x.renderJSON(st.json)
		if err != nil {
			return nil, fmt.Errorf("json body: %w", err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("json body: %w", err)
		}
		body = bytes.NewReader(b)
		contentType = "application/json"
	}
	req, err := http.NewRequest(st.method, u.String(), body)
	if err != nil {
		return nil, errors.New("the request cannot be built")
	}
	req.Header.Set("User-Agent", "candor-probe/1")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, h := range st.headers {
		v, err := h.val.render(x)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", h.key, err)
		}
		req.Header.Set(h.key, v)
	}
	return req, nil
}

func (x *run) renderJSON(v any) (any, error) {
	switch c := v.(type) {
	case tmpl:
		return c.render(x)
	case map[string]any:
		out := make(map[string]any, len(c))
		for k, e := range c {
			r, err := x.renderJSON(e)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(c))
		for i, e := range c {
			r, err := x.renderJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// assert checks the step's expectations in order and records the first
// failure with its class.
func (x *run) assert(i int, st *stepPlan, rs *response, truncated string) bool {
	resp := rs.resp
	where := fmt.Sprintf("step %q (%s %s)", st.Name, st.method, resp.Request.URL.Path)
	hasStatus := false
	for _, e := range st.expects {
		if e.Status != nil {
			hasStatus = true
		}
	}
	if !hasStatus && resp.StatusCode >= 400 {
		x.failAssertion(i, st, rs, Expect{}, true, fmt.Sprintf("%s: %s", where, x.evidence(st, rs)))
		return false
	}
	for _, e := range st.expects {
		msg, err := x.check(e, rs)
		if err != nil {
			x.fail(i, st.Name, ClassExtraction, "%s: %v; %s", where, err, x.evidence(st, rs))
			return false
		}
		if msg != "" {
			x.failAssertion(i, st, rs, e.Expect, e.Status != nil, fmt.Sprintf("%s: %s%s; %s", where, msg, truncated, x.evidence(st, rs)))
			return false
		}
	}
	return true
}

// codeRefusedText and codeUsedText are what targets say when they refuse a
// one-time code, and when they refuse it because it was used already.
var (
	codeRefusedText = regexp.MustCompile(`(?i)\b(invalid|incorrect|wrong|expired|bad|already used|reused)\b[^.!\n]{0,40}\b(code|otp|token|totp)\b|\b(code|otp|totp)\b[^.!\n]{0,40}\b(invalid|incorrect|wrong|expired|not valid|already|used|reused|replay)`)
	codeUsedText    = regexp.MustCompile(`(?i)already\s+(been\s+)?used|\breplay|\bused code|code\s+(was|has been|is)\s+(already\s+)?used|\breused\b|already redeemed`)
)

// codeRefused reports whether a response to a step that sent a fresh code
// shows the code was refused: a status that refuses what was sent, or a
// page that says the code is wrong. A 2xx or 3xx that does not say so is
// not evidence against the code: another check failed.
func codeRefused(status int, body []byte) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusUnprocessableEntity:
		return true
	}
	return status < 400 && codeRefusedText.Match(body)
}

// rateLimited reports whether a response says the target is limiting the
// probe's requests: 429, or a Retry-After on a refusal (4xx). A 503 with
// Retry-After is left an availability failure: customers get it too.
func rateLimited(resp *http.Response) bool {
	if resp.StatusCode == http.StatusTooManyRequests {
		return true
	}
	return resp.Header.Get("Retry-After") != "" && resp.StatusCode >= 400 && resp.StatusCode < 500
}

// retryAfter describes a Retry-After header ("", or "; it asks to retry after 30 s").
func retryAfter(h string, now time.Time) string {
	h = strings.TrimSpace(h)
	if h == "" {
		return ""
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return fmt.Sprintf(" (Retry-After: %d s)", n)
	}
	if t, err := http.ParseTime(h); err == nil {
		return fmt.Sprintf(" (Retry-After: %s, in %s)", t.UTC().Format(time.RFC3339), seconds(max(t.Sub(now), 0)))
	}
	return fmt.Sprintf(" (Retry-After: %q)", clip(h))
}

// failAssertion classifies a failed assertion: a rate limit (429, or
// Retry-After on a refusal) is rate_limited, a problem of the probe's
// account; a server error is an availability failure whatever the
// assertion; a failing assertion with a signal is a security finding; a
// step that submitted a fresh TOTP code and was refused for it is
// totp_rejected, with the cause the evidence points to; else a status
// mismatch is http_status and anything else an assertion failure.
func (x *run) failAssertion(i int, st *stepPlan, rs *response, e Expect, isStatus bool, msg string) {
	switch {
	case rateLimited(rs.resp):
		what := "the target is limiting the probe's requests"
		if x.usedTOTP {
			what = "the target's rate limit refused the code before checking it"
		}
		x.fail(i, st.Name, ClassRateLimited, "%s; %s%s", msg, what, retryAfter(rs.resp.Header.Get("Retry-After"), rs.at))
	case rs.resp.StatusCode >= 500: // the evidence in msg gives the status
		x.fail(i, st.Name, ClassHTTPStatus, "%s", msg)
	case e.Signal != "":
		x.signal(e.Signal)
		x.fail(i, st.Name, ClassSecurityCheck, "security check failed (%s): %s", e.Signal, msg)
	case x.usedTOTP && codeRefused(rs.resp.StatusCode, rs.body):
		x.fail(i, st.Name, ClassTOTPRejected, "the target rejected a freshly computed TOTP code: %s", msg)
		d, dateErr := http.ParseTime(rs.resp.Header.Get("Date"))
		if dateErr == nil {
			x.res.ClockOffset = d.Sub(rs.at).Round(time.Second)
		}
		off := x.res.ClockOffset
		switch {
		case codeUsedText.Match(rs.body):
			x.res.Message += "; it says the code was already used: something else signed in to this account with a code in the same window (another location, replica or manual run on the same account, or a person)"
		case dateErr == nil && (off >= 5*time.Second || off <= -5*time.Second):
			dir := "ahead of"
			if off < 0 {
				dir, off = "behind", -off
			}
			x.res.Message += fmt.Sprintf("; its clock is about %s %s ours (from its Date header): a clock out of step makes valid codes look wrong", off, dir)
		case dateErr == nil:
			x.res.Message += "; its clock agrees with ours within a few seconds (Date header) and it did not say the code was used, so suspect the seed or the code check"
		default:
			x.res.Message += "; it did not say the code was used and sent no Date header to compare clocks, so suspect the seed, the code check or a clock out of step"
		}
	case isStatus:
		x.fail(i, st.Name, ClassHTTPStatus, "%s", msg)
	default:
		x.fail(i, st.Name, ClassAssertion, "%s", msg)
	}
}

// check returns "" when e holds, or what is wrong. An error means the
// response could not be examined (e.g. a JSON assertion on a body that is
// not JSON).
func (x *run) check(e expectPlan, rs *response) (string, error) {
	resp := rs.resp
	switch {
	case e.Status != nil:
		if !slices.Contains(e.Status, resp.StatusCode) {
			return fmt.Sprintf("expected status %s", statusList(e.Status)), nil
		}
		return "", nil
	case e.Cookie != nil:
		return x.checkCookie(e.Cookie, rs), nil
	}
	var subject, text string
	present := true
	switch {
	case e.Body != nil:
		subject, text = "the body", string(rs.body)
		if e.json != nil {
			doc, err := rs.json()
			if err != nil {
				return "", fmt.Errorf("the body is not JSON (%s)", firstLine(err.Error()))
			}
			subject = "JSON " + e.Body.JSON
			v, err := e.json.lookup(doc)
			if err != nil {
				present = false
			}
			text = v
		}
	case e.URL != nil:
		u := resp.Request.URL
		subject, text = "the final URL "+u.Path, u.String()
		if e.URL.Path != "" && u.Path != e.URL.Path {
			return fmt.Sprintf("the final URL path is %s, expected %s", u.Path, e.URL.Path), nil
		}
	case e.Header != nil:
		subject = "header " + e.Header.Name
		vs := resp.Header.Values(e.Header.Name)
		present = len(vs) > 0
		text = strings.Join(vs, ", ")
	}
	m := matchOf(e.Expect)
	if m.Present != nil {
		if *m.Present && !present {
			return subject + " is missing", nil
		}
		if !*m.Present && present {
			return subject + " is present, expected none", nil
		}
	}
	if !present && (e.hasEquals || m.Contains != "" || m.Regex != "") {
		return subject + " is missing", nil
	}
	if e.hasEquals {
		want, err := e.equals.render(x)
		if err != nil {
			return "", err
		}
		if text != want {
			return fmt.Sprintf("%s is %q, expected %q", subject, excerpt(text), want), nil
		}
	}
	if m.Contains != "" {
		want, err := e.contains.render(x)
		if err != nil {
			return "", err
		}
		if !strings.Contains(text, want) {
			return fmt.Sprintf("%s does not contain %q", subject, want), nil
		}
	}
	if m.NotContains != "" {
		bad, err := e.notContains.render(x)
		if err != nil {
			return "", err
		}
		if strings.Contains(text, bad) {
			return fmt.Sprintf("%s contains %q", subject, bad), nil
		}
	}
	if e.re != nil && !e.re.MatchString(text) {
		return fmt.Sprintf("%s does not match /%s/", subject, e.re), nil
	}
	return "", nil
}

func matchOf(e Expect) *Match {
	switch {
	case e.Body != nil:
		return e.Body
	case e.URL != nil:
		return e.URL
	}
	return e.Header
}

func (x *run) checkCookie(m *CookieMatch, rs *response) string {
	c, ok := rs.cookies[m.Name]
	if c != nil && (c.MaxAge < 0 || c.Value == "" && !c.Expires.IsZero() && c.Expires.Before(rs.at)) {
		ok = false // a deletion is not a cookie
	}
	if m.Present != nil {
		if *m.Present && !ok {
			return fmt.Sprintf("cookie %s was not set", m.Name)
		}
		if !*m.Present && ok {
			return fmt.Sprintf("cookie %s was set, expected not", m.Name)
		}
	}
	if !ok {
		if m.Secure != nil || m.HTTPOnly != nil || m.MaxLifetime.D > 0 {
			return fmt.Sprintf("cookie %s was not set", m.Name)
		}
		return ""
	}
	var weak []string
	if m.Secure != nil && *m.Secure && !c.Secure && rs.resp.Request.URL.Scheme == "https" {
		weak = append(weak, "not Secure")
	}
	if m.HTTPOnly != nil && *m.HTTPOnly && !c.HttpOnly {
		weak = append(weak, "not HttpOnly")
	}
	if m.MaxLifetime.D > 0 {
		var life time.Duration
		switch {
		case c.MaxAge > 0:
			life = time.Duration(c.MaxAge) * time.Second
		case !c.Expires.IsZero():
			ref := rs.at
			if d, err := http.ParseTime(rs.resp.Header.Get("Date")); err == nil {
				ref = d // Expires is written by the server's clock
			}
			life = c.Expires.Sub(ref)
		}
		if life > m.MaxLifetime.D+time.Minute {
			weak = append(weak, fmt.Sprintf("lives %s, more than %s", roundDays(life), roundDays(m.MaxLifetime.D)))
		}
	}
	if len(weak) > 0 {
		return fmt.Sprintf("cookie %s is %s", m.Name, strings.Join(weak, ", "))
	}
	return ""
}

func roundDays(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}

func (x *run) extract(e extractPlan, rs *response) (string, error) {
	switch {
	case e.re != nil:
		m := e.re.FindSubmatch(rs.body)
		if m == nil {
			return "", fmt.Errorf("nothing in the body matches /%s/ for .%s", e.re, e.Var)
		}
		if len(m) > 1 {
			return string(m[1]), nil
		}
		return string(m[0]), nil
	case e.FormField != "":
		v, ok := formField(rs.html(), e.FormField)
		if !ok {
			return "", fmt.Errorf("no form field %q in the page for .%s", e.FormField, e.Var)
		}
		return v, nil
	case e.sel != nil:
		n := e.sel.first(rs.html())
		if n == nil {
			return "", fmt.Errorf("nothing in the page matches %q for .%s", e.CSS, e.Var)
		}
		if e.Attr == "" {
			return textOf(n), nil
		}
		v, ok := attrOf(n, e.Attr)
		if !ok {
			return "", fmt.Errorf("%q has no attribute %s for .%s", e.CSS, e.Attr, e.Var)
		}
		return v, nil
	case e.json != nil:
		doc, err := rs.json()
		if err != nil {
			return "", fmt.Errorf("the body is not JSON, so %s cannot be read for .%s", e.JSON, e.Var)
		}
		v, err := e.json.lookup(doc)
		if err != nil {
			return "", fmt.Errorf("the JSON has no %s for .%s", e.JSON, e.Var)
		}
		return v, nil
	case e.Header != "":
		v := rs.resp.Header.Get(e.Header)
		if v == "" {
			return "", fmt.Errorf("no header %s for .%s", e.Header, e.Var)
		}
		return v, nil
	case e.Cookie != "":
		if c, ok := rs.cookies[e.Cookie]; ok {
			return c.Value, nil
		}
		for _, c := range x.jar.Cookies(rs.resp.Request.URL) {
			if c.Name == e.Cookie {
				return c.Value, nil
			}
		}
		return "", fmt.Errorf("no cookie %s for .%s", e.Cookie, e.Var)
	}
	return "", errors.New("nothing to extract")
}

func statusList(s Statuses) string {
	parts := make([]string, len(s))
	for i, c := range s {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, " or ")
}

func excerpt(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// redact removes every secret of the plan from s.
func (p *Plan) redact(s string) string {
	for _, v := range p.secrets {
		if v == "" {
			continue
		}
		s = strings.ReplaceAll(s, v, "[redacted]")
		if q := url.QueryEscape(v); q != v {
			s = strings.ReplaceAll(s, q, "[redacted]")
		}
	}
	return s
}

// classify names the class of a transport error and says it plainly.
func classify(err error, stepCtx, runCtx context.Context) (ErrorClass, string) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.Is(err, errTooManyRedirects):
		return ClassHTTPStatus, "the target redirected too many times (a redirect loop?)"
	case errors.As(err, &dnsErr):
		return ClassDNS, fmt.Sprintf("the name %s does not resolve", dnsErr.Name)
	case stepCtx.Err() == context.DeadlineExceeded && runCtx.Err() == nil:
		return ClassTimeout, "no answer within the step's timeout"
	case runCtx.Err() == context.DeadlineExceeded:
		return ClassTimeout, "no answer within the probe's timeout"
	case errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout, "the connection timed out"
	case isCertError(err):
		return ClassTLS, "the certificate is not valid: " + certProblem(err)
	case isTLSError(err):
		return ClassTLS, "the TLS handshake failed"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return ClassConnect, "the connection was refused or could not be made"
	case strings.Contains(err.Error(), "malformed HTTP") || strings.Contains(err.Error(), "HTTP/1.x transport connection broken"):
		return ClassHTTPStatus, "the target answered with something that is not HTTP"
	}
	return ClassConnect, "the connection failed: " + lastPart(err.Error())
}

func lastPart(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

func isCertError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

func certProblem(err error) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "signed by an unknown authority"
	case errors.As(err, &he):
		return "it is not for this host name"
	case errors.As(err, &ci):
		if ci.Reason == x509.Expired {
			return "expired or not yet valid"
		}
		return "invalid"
	}
	return lastPart(err.Error())
}

func isTLSError(err error) bool {
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	return errors.As(err, &rh) || errors.As(err, &ae) || strings.Contains(err.Error(), "tls: ")
}
