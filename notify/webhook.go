package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/candorhq/candor/incidents"
)

// Webhook requests: a POST of JSON shaped like Atlassian Statuspage's
// webhook notifications, with these headers:
//
//	Content-Type:        application/json
//	User-Agent:          Candor-Webhook/1
//	X-Candor-Event:      incident | component_update
//	X-Candor-Delivery:   the delivery id: the same on every retry, so a receiver can drop repeats
//	X-Candor-Timestamp:  Unix seconds when this attempt was signed
//	X-Candor-Signature:  v1=<hex HMAC-SHA256 of timestamp + "." + body, keyed with the subscriber's secret>
//
// A receiver recomputes the signature over the raw body with
// VerifyWebhook (or the same three lines in its language), compares in
// constant time, and refuses timestamps more than a few minutes old.
const (
	HeaderEvent     = "X-Candor-Event"
	HeaderDelivery  = "X-Candor-Delivery"
	HeaderTimestamp = "X-Candor-Timestamp"
	HeaderSignature = "X-Candor-Signature"
)

// Defaults of the webhooks section.
const (
	DefaultWebhookPauseAfter = 10
	DefaultWebhookTimeout    = 10 * time.Second
)

// ErrForbiddenAddress is returned for a webhook URL (or a connection) to a
// loopback, private, link-local or otherwise internal address, unless
// notify.webhooks.allow_private is set.
var ErrForbiddenAddress = errors.New("webhook address is internal")

// SignWebhook returns the X-Candor-Signature value of body sent at ts.
func SignWebhook(secret string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyWebhook checks a webhook request's signature and that its
// timestamp is within window of now, as a receiver should.
func VerifyWebhook(secret string, h http.Header, body []byte, now time.Time, window time.Duration) error {
	sec, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return errors.New("webhook: no timestamp")
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > window || d < -window {
		return errors.New("webhook: timestamp outside the window")
	}
	want := SignWebhook(secret, ts, body)
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(want)) {
		return errors.New("webhook: bad signature")
	}
	return nil
}

// Webhook is a subscriber as the console shows it (never its secret).
type Webhook struct {
	ID           int64     `json:"id"`
	URL          string    `json:"url"`
	Description  string    `json:"description"`
	Failures     int       `json:"failures"` // consecutive
	Paused       bool      `json:"paused"`
	PausedReason string    `json:"paused_reason,omitempty"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
}

// NewWebhook is what a person subscribes with.
type NewWebhook struct {
	URL         string
	Description string
	Actor       string
}

// checkAddr refuses internal addresses (SSRF): loopback, RFC 1918 and
// unique-local, link-local (cloud metadata), CGNAT, unspecified, multicast,
// broadcast and the other special-purpose ranges.
func checkAddr(a netip.Addr) error {
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || !a.IsValid() {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, a)
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(a) {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, a)
		}
	}
	return nil
}

var forbiddenPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "240.0.0.0/4", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001:db8::/32"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// checkWebhookURL validates a subscriber's URL and, unless private
// addresses are allowed, what its host resolves to now. The dialer checks
// again at every connection, so a name that later resolves inside is refused
// too.
func checkWebhookURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || len(raw) > 2000 {
		return errors.New("webhook url must be an absolute http or https URL")
	}
	if u.User != nil {
		return errors.New("webhook url must not carry a user or password")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return checkAddr(a)
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("webhook host %s does not resolve: %w", host, err)
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// webhookClient sends webhook requests through a dialer that refuses
// internal addresses, without proxies from the environment and without
// following redirects.
func webhookClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			return checkAddr(ap.Addr())
		}
	}
	tr := &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// AddWebhook subscribes an endpoint and returns it with its signing
// secret, which is shown this once. The endpoint receives what is published
// from now on.
func (r *Relay) AddWebhook(ctx context.Context, n NewWebhook) (Webhook, string, error) {
	if strings.TrimSpace(n.Actor) == "" {
		return Webhook{}, "", errors.New("webhook: who adds it is required")
	}
	if err := checkWebhookURL(ctx, n.URL, r.hooksCfg.AllowPrivate); err != nil {
		return Webhook{}, "", err
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	secret := "whsec_" + hex.EncodeToString(b[:])
	now := r.utcNow()
	w := Webhook{URL: n.URL, Description: strings.TrimSpace(n.Description), CreatedBy: n.Actor, CreatedAt: now}
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `insert into notify_webhooks (url, secret, description, created_by, created_at, updated_at)
			values ($1, $2, $3, $4, $5, $5) returning id`, w.URL, secret, w.Description, w.CreatedBy, now).Scan(&w.ID); err != nil {
			return err
		}
		// It starts at the outbox's end: a new subscriber gets no history.
		_, err := tx.Exec(ctx, `insert into notify_channels (channel, cursor_id, created_at, updated_at)
			values ($1, coalesce(pg_sequence_last_value(pg_get_serial_sequence('outbox', 'id')::regclass), 0), $2, $2)
			on conflict (channel) do nothing`, webhookChannel(w.ID), now)
		return err
	})
	if err != nil {
		return Webhook{}, "", fmt.Errorf("notify: add webhook: %w", err)
	}
	r.Wake()
	return w, secret, nil
}

// Webhooks lists the subscribers.
func (r *Relay) Webhooks(ctx context.Context) ([]Webhook, error) {
	rows, err := r.pool.Query(ctx, `select id, url, description, failures, paused_at is not null, paused_reason, created_by, created_at
		from notify_webhooks where deleted_at is null order by id`)
	if err != nil {
		return nil, fmt.Errorf("notify: webhooks: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Webhook, error) {
		var w Webhook
		err := row.Scan(&w.ID, &w.URL, &w.Description, &w.Failures, &w.Paused, &w.PausedReason, &w.CreatedBy, &w.CreatedAt)
		w.CreatedAt = w.CreatedAt.UTC()
		return w, err
	})
}

// ResumeWebhook re-enables a paused subscriber: its held deliveries go out,
// in order.
func (r *Relay) ResumeWebhook(ctx context.Context, id int64) error {
	now := r.utcNow()
	tag, err := r.pool.Exec(ctx, `update notify_webhooks set paused_at = null, paused_reason = '', failures = 0, updated_at = $2
		where id = $1 and deleted_at is null`, id, now)
	if err != nil {
		return fmt.Errorf("notify: resume webhook %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook %d: %w", id, ErrNotFound)
	}
	if _, err := r.pool.Exec(ctx, `update notify_deliveries set next_attempt_at = $2, updated_at = $2 where channel = $1 and state = 'pending'`,
		webhookChannel(id), now); err != nil {
		return fmt.Errorf("notify: resume webhook %d: %w", id, err)
	}
	r.setHealth(webhookChannel(id), nil)
	r.Wake()
	return nil
}

// DeleteWebhook unsubscribes an endpoint; what it has not received is dropped.
func (r *Relay) DeleteWebhook(ctx context.Context, id int64) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `update notify_webhooks set deleted_at = $2, updated_at = $2 where id = $1 and deleted_at is null`, id, r.utcNow())
		if err != nil {
			return fmt.Errorf("notify: delete webhook %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook %d: %w", id, ErrNotFound)
		}
		_, err = tx.Exec(ctx, `delete from notify_deliveries where channel = $1 and state <> 'delivered'`, webhookChannel(id))
		return err
	})
}

func webhookChannel(id int64) string { return "webhook:" + strconv.FormatInt(id, 10) }

// webhookDest is one subscriber.
type webhookDest struct {
	r      *Relay
	id     int64
	url    string
	secret string
}

func (w *webhookDest) name() string { return webhookChannel(w.id) }

func (w *webhookDest) filter() string {
	return `o.public and o.kind in ('update_posted', 'status_changed', 'impact_changed', 'component_changed', 'note_published')`
}

// loadWebhooks returns the channels of the subscribers not paused.
func (r *Relay) loadWebhooks(ctx context.Context) ([]channel, error) {
	rows, err := r.pool.Query(ctx, `select id, url, secret from notify_webhooks where deleted_at is null and paused_at is null order by id`)
	if err != nil {
		return nil, fmt.Errorf("notify: webhooks: %w", err)
	}
	defer rows.Close()
	var out []channel
	for rows.Next() {
		w := &webhookDest{r: r}
		if err := rows.Scan(&w.id, &w.url, &w.secret); err != nil {
			return nil, fmt.Errorf("notify: webhooks: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func (w *webhookDest) deliver(ctx context.Context, d *delivery) error {
	event, body, err := w.r.webhookBody(ctx, d)
	if err != nil {
		return err
	}
	if body == nil {
		return nil
	}
	now := w.r.utcNow()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return &permanentError{err: fmt.Errorf("webhook request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Candor-Webhook/1")
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(d.ID, 10))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, SignWebhook(w.secret, now, body))
	resp, err := w.r.hookClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return w.failed(ctx, scrubURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		_, err := w.r.pool.Exec(ctx, `update notify_webhooks set failures = 0 where id = $1 and failures <> 0`, w.id)
		return err
	case resp.StatusCode == http.StatusTooManyRequests:
		after := 30 * time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			after = time.Duration(min(s, 3600)) * time.Second
		}
		return &retryAfterError{after: after, err: fmt.Errorf("webhook answered %s", resp.Status)}
	case resp.StatusCode == http.StatusGone:
		return w.pause(ctx, "the endpoint answered 410 Gone")
	}
	return w.failed(ctx, fmt.Errorf("webhook answered %s", resp.Status))
}

// failed counts a failed attempt against the endpoint and pauses it once it
// has failed pause_after times in a row.
func (w *webhookDest) failed(ctx context.Context, cause error) error {
	var failures int
	if err := w.r.pool.QueryRow(ctx, `update notify_webhooks set failures = failures + 1, updated_at = $2 where id = $1 returning failures`,
		w.id, w.r.utcNow()).Scan(&failures); err != nil {
		return errors.Join(cause, err)
	}
	if failures >= w.r.hooksCfg.PauseAfter {
		return w.pause(ctx, fmt.Sprintf("%d failures in a row, the last: %v", failures, cause))
	}
	return cause
}

func (w *webhookDest) pause(ctx context.Context, why string) error {
	if _, err := w.r.pool.Exec(ctx, `update notify_webhooks set paused_at = $2, paused_reason = $3, updated_at = $2 where id = $1`,
		w.id, w.r.utcNow(), truncate(why, 500)); err != nil {
		return err
	}
	return &heldError{err: fmt.Errorf("webhook %d paused: %s", w.id, why)}
}

// scrubURL keeps a transport error without the URL, which may carry a token
// in its query.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("webhook %s: %w", ue.Op, ue.Err)
	}
	return err
}

// UpdatesReader gives webhooks an incident's public updates (*incidents.Store).
type UpdatesReader interface {
	Updates(ctx context.Context, id int64, publicOnly bool) ([]incidents.PostedUpdate, error)
}

type whPage struct {
	ID  string `json:"id"`
	URL string `json:"url,omitempty"`
}

type whUpdate struct {
	ID                 string          `json:"id"`
	IncidentID         string          `json:"incident_id"`
	Status             string          `json:"status"`
	Body               string          `json:"body"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
	DisplayAt          time.Time       `json:"display_at"`
	AffectedComponents json.RawMessage `json:"affected_components"`
}

type whComponent struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

type whIncident struct {
	ID              string        `json:"id"`
	Name            string        `json:"name"`
	Status          string        `json:"status"`
	Impact          string        `json:"impact"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
	StartedAt       time.Time     `json:"started_at"`
	ResolvedAt      *time.Time    `json:"resolved_at"`
	Shortlink       string        `json:"shortlink"`
	IncidentUpdates []whUpdate    `json:"incident_updates"`
	Components      []whComponent `json:"components"`
}

// webhookBody returns a delivery's event type and Statuspage-shaped body,
// or a nil body when the subscriber has nothing to hear about it.
func (r *Relay) webhookBody(ctx context.Context, d *delivery) (string, []byte, error) {
	meta := map[string]any{"delivery": d.ID, "event_id": d.EventID, "kind": d.Kind}
	page := whPage{ID: r.pageID, URL: r.pageURL}
	e := d.Event
	if d.Incident == nil {
		if e.Kind != incidents.KindComponentChanged || len(e.Components) == 0 {
			return "", nil, nil
		}
		name := e.Components[0]
		body, err := json.Marshal(map[string]any{"meta": meta, "page": page,
			"component_update": map[string]any{"id": strconv.FormatInt(d.EventID, 10), "component_id": incidents.ComponentID(name),
				"created_at": e.At.UTC(), "old_status": e.From, "new_status": e.To},
			"component": map[string]any{"id": incidents.ComponentID(name), "name": name, "status": e.To}})
		return "component_update", body, err
	}
	inc := *d.Incident
	wi := whIncident{ID: strconv.FormatInt(inc.ID, 10), Name: inc.Title, Status: string(inc.Status), Impact: string(inc.Impact),
		CreatedAt: inc.DetectedAt, UpdatedAt: e.At.UTC(), StartedAt: inc.StartedAt, Shortlink: incidentURL(r.pageURL, inc.ID),
		IncidentUpdates: []whUpdate{}, Components: []whComponent{}}
	if !inc.ResolvedAt.IsZero() {
		t := inc.ResolvedAt
		wi.ResolvedAt = &t
	}
	for _, c := range inc.Components {
		wi.Components = append(wi.Components, whComponent{ID: incidents.ComponentID(c), Name: c, Status: string(inc.ComponentState[c])})
	}
	// The public updates up to this event, newest first, as Statuspage sends them.
	var ups []incidents.PostedUpdate
	if r.updates != nil {
		all, err := r.updates.Updates(ctx, inc.ID, true)
		if err != nil {
			return "", nil, err
		}
		limit, _ := e.Extra["update_id"].(float64)
		for _, u := range all {
			if (limit > 0 && u.ID <= int64(limit)) || (limit == 0 && !u.CreatedAt.After(e.At)) {
				ups = append(ups, u)
			}
		}
	} else if e.Kind == incidents.KindUpdatePosted {
		msg, _ := e.Extra["message"].(string)
		id, _ := e.Extra["update_id"].(float64)
		ups = append(ups, incidents.PostedUpdate{ID: int64(id), Incident: inc.ID, Status: incidents.Status(e.To), Body: msg, CreatedAt: e.At,
			Components: json.RawMessage("[]")})
	}
	for i := len(ups) - 1; i >= 0; i-- {
		u := ups[i]
		comps := u.Components
		if len(comps) == 0 {
			comps = json.RawMessage("[]")
		}
		wi.IncidentUpdates = append(wi.IncidentUpdates, whUpdate{ID: strconv.FormatInt(u.ID, 10), IncidentID: wi.ID, Status: string(u.Status),
			Body: u.Body, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.CreatedAt.UTC(), DisplayAt: u.CreatedAt.UTC(), AffectedComponents: comps})
	}
	body, err := json.Marshal(map[string]any{"meta": meta, "page": page, "incident": wi})
	return "incident", body, err
}
