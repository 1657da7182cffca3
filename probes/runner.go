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
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// RunnerOptions configures a [Runner]. The zero value is a runner at
// [DefaultLocation] with the system's trust roots and the real clock.
type RunnerOptions struct {
	Location string
	// RootCAs replaces the system's trust roots (tests use httptest's certificate).
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
// connection pool but never cookies.
type Runner struct {
	location  string
	roots     *x509.CertPool
	transport *http.Transport
	now       func() time.Time
	sleep     func(context.Context, time.Duration) error
	getenv    func(string) string
	claims    *Claims
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
func (r *Runner) Close() { r.transport.CloseIdleConnections() }

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
	x.vars["location"] = r.location

	if p.target != nil && p.target.Scheme == "https" && !p.Probe.TLS.Skip {
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

// fail records the run's failure at step i.
func (x *run) fail(i int, name string, class ErrorClass, format string, args ...any) {
	x.res.Outcome = OutcomeFailed
	x.res.FailedIdx = i
	x.res.FailedStep = name
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
	sr := StepResult{Name: st.Name, Method: st.method}
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
		Transport: x.r.transport,
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
		class, msg := classify(err, ctx, x.ctx)
		if class == ClassTLS && isCertError(err) {
			x.signal(SignalTLSInvalid)
		}
		x.fail(i, st.Name, class, "step %q (%s %s): %s", st.Name, st.method, req.URL.Path, msg)
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
		x.fail(i, st.Name, class, "step %q (%s %s): reading the response: %s", st.Name, st.method, req.URL.Path, msg)
		return false
	}
	truncated := ""
	if int64(len(body)) > x.p.maxBody {
		body = body[:x.p.maxBody]
		sr.Bytes = x.p.maxBody
		truncated = fmt.Sprintf(" (only the first %d bytes of the response were read)", x.p.maxBody)
	}
	rs.resp, rs.body = resp, body
	for _, c := range resp.Cookies() {
		rs.cookies[c.Name] = c
	}

	if !x.assert(i, st, rs, truncated) {
		return false
	}
	for _, e := range st.extracts {
		v, err := x.extract(e, rs)
		if err != nil {
			x.fail(i, st.Name, ClassExtraction, "step %q (%s %s): %v%s", st.Name, st.method, req.URL.Path, err, truncated)
			return false
		}
		x.vars[e.Var] = v
	}
	sr.OK = true
	return true
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
		x.failAssertion(i, st, rs, Expect{}, true, "%s: answered %s", where, resp.Status)
		return false
	}
	for _, e := range st.expects {
		msg, err := x.check(e, rs)
		if err != nil {
			x.fail(i, st.Name, ClassExtraction, "%s: %v", where, err)
			return false
		}
		if msg != "" {
			x.failAssertion(i, st, rs, e.Expect, e.Status != nil, "%s: %s%s", where, msg, truncated)
			return false
		}
	}
	return true
}

// failAssertion classifies a failed assertion: a server error is an
// availability failure whatever the assertion; a failing assertion with a
// signal is a security finding; a rejected step that submitted a fresh TOTP
// code is totp_rejected (with the server's clock offset); else a status
// mismatch is http_status and anything else an assertion failure.
func (x *run) failAssertion(i int, st *stepPlan, rs *response, e Expect, isStatus bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch {
	case rs.resp.StatusCode >= 500:
		if !isStatus {
			msg += fmt.Sprintf(" (the response was %s)", rs.resp.Status)
		}
		x.fail(i, st.Name, ClassHTTPStatus, "%s", msg)
	case e.Signal != "":
		x.signal(e.Signal)
		x.fail(i, st.Name, ClassSecurityCheck, "security check failed (%s): %s", e.Signal, msg)
	case x.usedTOTP:
		x.fail(i, st.Name, ClassTOTPRejected, "the target rejected a freshly computed TOTP code: %s", msg)
		if d, err := http.ParseTime(rs.resp.Header.Get("Date")); err == nil {
			off := d.Sub(rs.at).Round(time.Second)
			x.res.ClockOffset = off
			if off >= 5*time.Second || off <= -5*time.Second {
				dir := "ahead of"
				if off < 0 {
					dir, off = "behind", -off
				}
				x.res.Message += fmt.Sprintf("; its clock is about %s %s ours (from its Date header): a clock out of step makes valid codes look wrong", off, dir)
			} else {
				x.res.Message += "; its clock agrees with ours within a few seconds (Date header), so suspect the seed or the code check"
			}
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
			return fmt.Sprintf("status %d, expected %s", resp.StatusCode, statusList(e.Status)), nil
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
