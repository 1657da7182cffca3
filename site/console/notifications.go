package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/notify"
)

// Deliveries: what the notify relay could not get out, per channel, with a
// retry for a dead delivery; and the webhook subscribers, managed here and
// through the API (notify.Relay does the work).

// channelRow is one channel's health and its deliveries by state.
type channelRow struct {
	Name      string
	Label     string // what the channel is, e.g. a webhook's host
	Problem   string // why it cannot deliver now (Relay.Health), or ""
	Paused    bool   // a webhook subscriber paused after failing
	Pending   int64
	Failing   int64 // pending after at least one failed attempt
	Dead      int64
	Delivered int64
}

// deliveryRow is a dead or failing delivery as the page shows it.
type deliveryRow struct {
	notify.Delivery
	Error string // LastError with anything token-shaped redacted
}

type deliveriesView struct {
	Incident   int64         // ?incident=N: that incident's deliveries first
	OfIncident []deliveryRow // in every state, newest first
	Relay      bool
	Channels   []channelRow
	Dead       []deliveryRow
	Failing    []deliveryRow
}

// listLimit bounds each list on the page: the oldest problems are the ones
// that hold their incidents back, so failing deliveries come oldest first.
const listLimit = 200

func (c *Console) deliveryList(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	v := deliveriesView{Relay: c.o.Relay != nil}
	if s := r.URL.Query().Get("incident"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return badRequest("incident must be an incident number")
		}
		ds, err := notify.Deliveries(ctx, c.o.Pool, notify.DeliveryFilter{Incident: id, Limit: listLimit})
		if err != nil {
			return err
		}
		v.Incident = id
		for _, d := range ds {
			v.OfIncident = append(v.OfIncident, deliveryRow{Delivery: d, Error: redactSecrets(d.LastError)})
		}
	}
	rows := map[string]*channelRow{}
	row := func(name string) *channelRow {
		if cr, ok := rows[name]; ok {
			return cr
		}
		cr := &channelRow{Name: name}
		rows[name] = cr
		return cr
	}
	configured := map[string]bool{}
	if c.o.Relay != nil {
		for _, ch := range c.o.Relay.Channels() {
			row(ch)
			configured[ch] = true
		}
		for ch, why := range c.o.Relay.Health() {
			row(ch).Problem = redactSecrets(why)
		}
		hooks, err := c.o.Relay.Webhooks(ctx)
		if err != nil {
			return err
		}
		for _, h := range hooks {
			cr := row(webhookChannel(h.ID))
			configured[cr.Name] = true
			cr.Label, cr.Paused = shownURL(h.URL, p.Role.Allows(Admin)), h.Paused
			if h.Paused && cr.Problem == "" {
				cr.Problem = "paused: " + redactSecrets(h.PausedReason)
			}
		}
	}
	// Counts per channel and state: one read of notify's table (an index
	// scan per state is not needed at this size; it is a GROUP BY).
	counts, err := c.o.Pool.Query(ctx, `select channel, state, count(*), count(*) filter (where last_error <> '')
		from notify_deliveries group by channel, state`)
	if err != nil {
		return err
	}
	for counts.Next() {
		var ch, state string
		var n, failing int64
		if err := counts.Scan(&ch, &state, &n, &failing); err != nil {
			counts.Close()
			return err
		}
		cr := row(ch)
		switch state {
		case "pending":
			cr.Pending, cr.Failing = n, failing
		case "dead":
			cr.Dead = n
		case "delivered":
			cr.Delivered = n
		}
	}
	counts.Close()
	if err := counts.Err(); err != nil {
		return err
	}
	for _, cr := range rows {
		// A subscriber deleted long ago keeps its delivered rows; show a
		// channel only while it is configured or has something open.
		if c.o.Relay != nil && !configured[cr.Name] && cr.Pending == 0 && cr.Dead == 0 {
			continue
		}
		v.Channels = append(v.Channels, *cr)
	}
	slices.SortFunc(v.Channels, func(a, b channelRow) int { return strings.Compare(a.Name, b.Name) })

	dead, err := notify.Deliveries(ctx, c.o.Pool, notify.DeliveryFilter{State: "dead", Limit: listLimit})
	if err != nil {
		return err
	}
	for _, d := range dead {
		v.Dead = append(v.Dead, deliveryRow{Delivery: d, Error: redactSecrets(d.LastError)})
	}
	if v.Failing, err = failingDeliveries(ctx, c); err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, deliveriesPage(c.page(p, "Deliveries"), v))
	return nil
}

// failingDeliveries lists the pending deliveries that have failed at least
// once (or are held by their channel), oldest first: notify.Deliveries
// lists newest first, and behind a long queue would miss them.
func failingDeliveries(ctx context.Context, c *Console) ([]deliveryRow, error) {
	rows, err := c.o.Pool.Query(ctx, `
		select d.id, d.outbox_id, d.channel, d.ordering_key, o.kind, coalesce(o.incident_id, 0), d.attempts,
			d.next_attempt_at, d.last_error, d.created_at
		from notify_deliveries d join outbox o on o.id = d.outbox_id
		where d.state = 'pending' and d.last_error <> ''
		order by d.id limit $1`, listLimit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []deliveryRow
	for rows.Next() {
		var d notify.Delivery
		if err := rows.Scan(&d.ID, &d.OutboxID, &d.Channel, &d.OrderingKey, &d.Kind, &d.IncidentID, &d.Attempts,
			&d.NextAttempt, &d.LastError, &d.CreatedAt); err != nil {
			return nil, err
		}
		d.State, d.NextAttempt, d.CreatedAt = "pending", d.NextAttempt.UTC(), d.CreatedAt.UTC()
		out = append(out, deliveryRow{Delivery: d, Error: redactSecrets(d.LastError)})
	}
	return out, rows.Err()
}

// retryDelivery makes a dead (or waiting) delivery due now with its attempts
// reset; every replica's relay is woken.
func (c *Console) retryDelivery(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var channel string
	var incident int64
	if err := c.o.Pool.QueryRow(r.Context(), `select d.channel, coalesce(o.incident_id, 0) from notify_deliveries d
		join outbox o on o.id = d.outbox_id where d.id = $1`, id).Scan(&channel, &incident); errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if c.o.Relay != nil {
		err = c.o.Relay.Retry(r.Context(), id)
	} else {
		err = notify.Retry(r.Context(), c.o.Pool, id, c.now())
	}
	if err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "delivery.retried", "delivery:"+itoa(id), map[string]any{"channel": channel, "incident": incident})
	back := "/admin/deliveries"
	if from := r.PostFormValue("incident"); from != "" {
		if n, err := strconv.ParseInt(from, 10, 64); err == nil && n > 0 {
			back += "?incident=" + itoa(n)
		}
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// Webhook subscribers.

// webhookView is a subscriber as the console and the API show it: the URL
// in full to admins only (a receiver's URL may carry its own token in the
// path or query), the signing secret never.
type webhookView struct {
	ID           int64     `json:"id"`
	URL          string    `json:"url"`
	Description  string    `json:"description"`
	State        string    `json:"state"` // active or paused
	Failures     int       `json:"failures"`
	PausedReason string    `json:"paused_reason,omitempty"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
}

func viewWebhook(h notify.Webhook, admin bool) webhookView {
	v := webhookView{ID: h.ID, URL: shownURL(h.URL, admin), Description: h.Description, State: "active", Failures: h.Failures,
		CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt.UTC()}
	if h.Paused {
		v.State, v.PausedReason = "paused", redactSecrets(h.PausedReason)
	}
	return v
}

func (c *Console) webhookViews(ctx context.Context, p *principal) ([]webhookView, error) {
	hooks, err := c.o.Relay.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]webhookView, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, viewWebhook(h, p.Role.Allows(Admin)))
	}
	return out, nil
}

var errNoRelay = &httpError{status: http.StatusServiceUnavailable, msg: "Notifications are not running on this server, so webhooks cannot be managed here."}

// newWebhook is what the add form or the API sends; created is the answer
// with the secret, shown once.
type newWebhook struct {
	URL         string `json:"url"`
	Description string `json:"description"`
}

type createdWebhook struct {
	Webhook webhookView `json:"webhook"`
	Secret  string      `json:"secret"`
}

func (c *Console) webhookList(w http.ResponseWriter, r *http.Request, p *principal) error {
	return c.renderWebhooks(w, r, p, http.StatusOK, nil, newWebhook{}, "")
}

func (c *Console) renderWebhooks(w http.ResponseWriter, r *http.Request, p *principal, status int, created *createdWebhook, form newWebhook, msg string) error {
	var hooks []webhookView
	if c.o.Relay != nil {
		var err error
		if hooks, err = c.webhookViews(r.Context(), p); err != nil {
			return err
		}
	}
	c.render(w, r, status, webhooksPage(c.page(p, "Webhooks"), c.o.Relay != nil, hooks, created, form, msg))
	return nil
}

// createWebhook subscribes an endpoint; an error a person can fix is an
// *httpError with status 422.
func (c *Console) createWebhook(r *http.Request, p *principal, in newWebhook) (createdWebhook, error) {
	if c.o.Relay == nil {
		return createdWebhook{}, errNoRelay
	}
	in.URL, in.Description = strings.TrimSpace(in.URL), strings.TrimSpace(in.Description)
	invalid := func(field, msg string) error {
		return &httpError{status: http.StatusUnprocessableEntity, msg: msg, fields: incidents.FieldErrors{{Field: field, Msg: msg}}}
	}
	switch {
	case in.URL == "":
		return createdWebhook{}, invalid("url", "a URL is required")
	case len(in.URL) > 2000:
		return createdWebhook{}, invalid("url", "the URL is longer than 2000 characters")
	case !plainText(in.URL):
		return createdWebhook{}, invalid("url", "the URL must be text without control characters")
	case len(in.Description) > 200:
		return createdWebhook{}, invalid("description", "the description is longer than 200 characters")
	case !plainText(in.Description):
		return createdWebhook{}, invalid("description", "the description must be text without control characters")
	}
	h, secret, err := c.o.Relay.AddWebhook(r.Context(), notify.NewWebhook{URL: in.URL, Description: in.Description, Actor: p.actor()})
	switch {
	case errors.Is(err, notify.ErrForbiddenAddress):
		return createdWebhook{}, invalid("url", "the URL points at a loopback, private or otherwise internal address; "+
			"set notify.webhooks.allow_private to allow receivers inside your network")
	case err != nil && !strings.HasPrefix(err.Error(), "notify:"):
		// notify's own failures start with "notify:"; the others are about
		// the URL and say what is wrong with it.
		return createdWebhook{}, invalid("url", err.Error())
	case err != nil:
		return createdWebhook{}, err
	}
	c.auditReq(r, p.actor(), "webhook.added", webhookChannel(h.ID), map[string]any{"url": shownURL(h.URL, false)})
	return createdWebhook{Webhook: viewWebhook(h, true), Secret: secret}, nil
}

func (c *Console) addWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	form := newWebhook{URL: clip(r.PostFormValue("url"), 2001), Description: clip(r.PostFormValue("description"), 201)}
	created, err := c.createWebhook(r, p, form)
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusUnprocessableEntity {
		return c.renderWebhooks(w, r, p, he.status, nil, form, he.msg)
	}
	if err != nil {
		return err
	}
	return c.renderWebhooks(w, r, p, http.StatusOK, &created, newWebhook{}, "")
}

func (c *Console) doResumeWebhook(r *http.Request, p *principal) (int64, error) {
	if c.o.Relay == nil {
		return 0, errNoRelay
	}
	id, err := pathID(r)
	if err != nil {
		return 0, err
	}
	if err := c.o.Relay.ResumeWebhook(r.Context(), id); err != nil {
		return 0, err
	}
	c.auditReq(r, p.actor(), "webhook.resumed", webhookChannel(id), nil)
	return id, nil
}

func (c *Console) doDeleteWebhook(r *http.Request, p *principal) error {
	if c.o.Relay == nil {
		return errNoRelay
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := c.o.Relay.DeleteWebhook(r.Context(), id); err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "webhook.deleted", webhookChannel(id), nil)
	return nil
}

func (c *Console) resumeWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := c.doResumeWebhook(r, p); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/webhooks", http.StatusSeeOther)
	return nil
}

func (c *Console) deleteWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := c.doDeleteWebhook(r, p); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/webhooks", http.StatusSeeOther)
	return nil
}

// The same in the API.

func (c *Console) apiListWebhooks(w http.ResponseWriter, r *http.Request, p *principal) error {
	if c.o.Relay == nil {
		return errNoRelay
	}
	hooks, err := c.webhookViews(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": hooks})
	return nil
}

func (c *Console) apiAddWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in newWebhook
	if err := decode(r, &in); err != nil {
		return err
	}
	created, err := c.createWebhook(r, p, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, created)
	return nil
}

func (c *Console) apiResumeWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := c.doResumeWebhook(r, p)
	if err != nil {
		return err
	}
	hooks, err := c.o.Relay.Webhooks(r.Context())
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if h.ID == id {
			writeJSON(w, http.StatusOK, map[string]any{"webhook": viewWebhook(h, p.Role.Allows(Admin))})
			return nil
		}
	}
	return ErrNotFound // deleted in between
}

func (c *Console) apiDeleteWebhook(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := c.doDeleteWebhook(r, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Helpers.

func webhookChannel(id int64) string { return "webhook:" + strconv.FormatInt(id, 10) }

// plainText reports whether s is valid UTF-8 without control characters
// (PostgreSQL refuses NUL and invalid UTF-8 in text).
func plainText(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// shownURL is a subscriber's URL as a reader may see it: in full for an
// admin, otherwise its scheme and host only, since a receiver's URL often
// carries its own token.
func shownURL(raw string, full bool) string {
	if full {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(hidden)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// secretShapes are the tokens Candor handles (Slack bot, app and user
// tokens, webhook signing secrets) and bearer-like query values. notify
// keeps them out of its errors; the console redacts them again in case.
var secretShapes = regexp.MustCompile(`(?i)(xox[a-z]-|xapp-|whsec_)[A-Za-z0-9._-]+|((?:token|secret|key|signature|sig|password)=)[^&\s"']+`)

func redactSecrets(s string) string { return secretShapes.ReplaceAllString(s, "${2}[redacted]") }
