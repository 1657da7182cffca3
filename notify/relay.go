// Package notify delivers what incidents writes to its outbox to the places
// people read: Slack (a root message per incident, kept current, with every
// update in its thread) and webhook subscribers (Statuspage-shaped, signed);
// and takes /candor commands from Slack.
//
// The Relay turns each outbox row into one delivery per channel
// ("slack:public", "slack:oncall", "webhook:<id>") and delivers them at least once, in outbox
// order per ordering key (one incident), with the delivery as the idempotency
// key: a Slack message is remembered by its ts before and after it is posted,
// so a redelivery after a crash updates or finds the message instead of
// posting it twice. Failed attempts back off exponentially with jitter; a
// Slack rate limit is waited out as Slack asks; after Config.Delivery's
// MaxAttempts a delivery is dead, holds back the later ones of its incident,
// and waits for Relay.Retry. Any number of replicas run a Relay on one
// database: deliveries are claimed with FOR UPDATE SKIP LOCKED, and each
// replica wakes on the incidents change notice with a poll as a fallback.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/candorhq/candor/incidents"
)

// WakeChannel is the LISTEN/NOTIFY channel on which a retry asks every
// replica's relay to look for work (besides incidents.NotifyChannel).
const WakeChannel = "candor_notify"

// ErrNotFound is returned by Retry for a delivery that does not exist.
var ErrNotFound = errors.New("not found")

// Options are what a Relay needs.
type Options struct {
	Pool   *pgxpool.Pool
	Config Config
	// PageURL is the public status page's base URL; Slack and webhooks
	// link to PageURL + "/incidents/<id>".
	PageURL string
	// PageID is the page's id in webhook bodies.
	PageID string
	// Timeline, when set, records on an incident's timeline that a channel
	// delivered its opening or an update (*incidents.Store).
	Timeline Timeline
	// Updates gives webhook bodies an incident's public updates
	// (*incidents.Store); without it a body carries the event's own update.
	Updates UpdatesReader
	// Registerer receives the relay's metrics (nil: not registered).
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil: slog.Default()
	Now        func() time.Time
	// Workers deliver in parallel on this replica (default 2). Each holds a
	// database connection while it delivers and borrows a second one briefly.
	Workers int
	// Backfill: a channel seen for the first time starts with the outbox rows
	// of this recent past (default 1h), not the whole history.
	Backfill time.Duration
}

// Relay delivers outbox rows to the configured channels.
type Relay struct {
	pool       *pgxpool.Pool
	cfg        DeliveryConfig
	log        *slog.Logger
	now        func() time.Time
	workers    int
	backfill   time.Duration
	hold       time.Duration // how long a channel that cannot work waits before trying again
	channels   []channel     // Slack's, fixed at start
	slack      *slackClient  // nil when Slack is not configured
	mailer     *smtpSender   // nil when email is not configured
	pageID     string
	pageURL    string
	updates    UpdatesReader
	timeline   Timeline
	hooksCfg   WebhookConfig
	hookClient *http.Client
	m          *metrics
	wake       chan struct{}

	mu     sync.Mutex
	hooks  []channel            // the webhook subscribers not paused, reloaded every pass
	known  map[string]bool      // channels whose notify_channels row exists
	paused map[string]time.Time // channel → not before (rate limit, held)
	health map[string]string    // channel → why it cannot deliver ("" when fine)
}

// Timeline records deliveries on incidents' timelines (*incidents.Store).
type Timeline interface {
	Notified(ctx context.Context, id int64, channel, detail string) error
}

// channel is one destination of deliveries.
type channel interface {
	name() string
	// filter is an SQL condition over the outbox row o that says whether
	// it is for this channel at all.
	filter() string
	deliver(ctx context.Context, d *delivery) error
}

// NewRelay returns a Relay for the configured channels. It does no I/O:
// Run checks the Slack token first.
func NewRelay(o Options) (*Relay, error) {
	if o.Pool == nil {
		return nil, errors.New("notify: no database pool")
	}
	r := &Relay{pool: o.Pool, cfg: o.Config.Delivery.withDefaults(), log: o.Logger, now: o.Now,
		workers: o.Workers, backfill: o.Backfill, hold: DefaultHoldRetry, wake: make(chan struct{}, 1),
		paused: map[string]time.Time{}, health: map[string]string{}, known: map[string]bool{},
		pageID: o.PageID, pageURL: strings.TrimRight(o.PageURL, "/"), updates: o.Updates, timeline: o.Timeline, hooksCfg: o.Config.Webhooks.withDefaults()}
	r.hookClient = webhookClient(r.hooksCfg.Timeout.D, r.hooksCfg.AllowPrivate)
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.workers <= 0 {
		r.workers = 2
	}
	if r.backfill <= 0 {
		r.backfill = time.Hour
	}
	if o.Config.Slack.Enabled() {
		r.slack = newSlackClient(o.Pool, o.Config.Slack, o.PageURL, r.utcNow, r.log)
		if c := o.Config.Slack.PublicChannel; c != "" {
			r.channels = append(r.channels, &slackDest{c: r.slack, slackChannel: c, oncall: false})
		}
		if c := o.Config.Slack.OncallChannel; c != "" {
			r.channels = append(r.channels, &slackDest{c: r.slack, slackChannel: c, oncall: true})
		}
	}
	if o.Config.Email.Enabled() {
		s, err := newSMTPSender(o.Config.Email)
		if err != nil {
			return nil, err
		}
		r.mailer = s
		r.channels = append(r.channels, &emailDest{r: r, s: s})
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	r.m = m
	for _, ch := range r.channels {
		r.m.init(ch.name())
	}
	return r, nil
}

func (r *Relay) utcNow() time.Time { return r.now().UTC() }

// Channels names the channels this relay delivers to now: Slack's and the
// webhook subscribers not paused.
func (r *Relay) Channels() []string {
	var out []string
	for _, ch := range r.allChannels() {
		out = append(out, ch.name())
	}
	return out
}

func (r *Relay) allChannels() []channel {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(slices.Clip(r.channels), r.hooks...)
}

// Health returns, for each channel that cannot deliver now, why (a bad
// token, an unknown Slack channel). Its deliveries are held, not lost.
func (r *Relay) Health() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for k, v := range r.health {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// Check verifies what can be verified before delivering: the Slack token
// (auth.test). A bad token holds Slack's deliveries; Run checks again.
func (r *Relay) Check(ctx context.Context) error {
	if r.slack == nil {
		return nil
	}
	err := r.slack.authTest(ctx)
	for _, ch := range r.channels {
		if _, ok := ch.(*slackDest); ok {
			r.setHealth(ch.name(), err)
		}
	}
	return err
}

func (r *Relay) setHealth(ch string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.health[ch] = ""
		delete(r.paused, ch)
		return
	}
	r.health[ch] = err.Error()
	r.paused[ch] = r.utcNow().Add(r.hold)
}

// Run delivers until ctx ends. It returns nil when ctx is cancelled.
func (r *Relay) Run(ctx context.Context) error {
	if err := r.Check(ctx); err != nil && ctx.Err() == nil {
		r.log.Error("notify: Slack cannot be used; its deliveries are held until it can", "err", err)
	}
	var listening sync.WaitGroup
	defer listening.Wait()
	listening.Go(func() { r.listen(ctx) })
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-r.wake:
		}
		next, err := r.pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.log.Warn("notify: relay pass failed", "err", err)
		}
		// Sleep until the next retry or the end of a pause falls due, the
		// poll interval at most; a notice wakes us sooner.
		wait := r.cfg.PollInterval.D
		if p := r.nextUnpause(); !p.IsZero() && (next.IsZero() || p.Before(next)) {
			next = p
		}
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(r.utcNow()), 5*time.Millisecond))
		}
		timer.Reset(wait)
	}
}

// Wake asks the relay to look for work now.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// listen wakes the relay on every change notice, reconnecting when the
// connection drops (the poll keeps deliveries going meanwhile).
func (r *Relay) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("notify: listening for changes failed; polling meanwhile", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context) error {
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection listens for as long as we run: it is ours, not the pool's.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{incidents.NotifyChannel, WakeChannel} {
		if _, err := conn.Exec(ctx, "listen "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	r.Wake() // whatever was committed before we listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		r.Wake()
	}
}

// pass creates the deliveries of new outbox rows, delivers everything due,
// and returns when the next delivery falls due (zero: none waiting).
func (r *Relay) pass(ctx context.Context) (time.Time, error) {
	var errs []error
	if hooks, err := r.loadWebhooks(ctx); err != nil {
		errs = append(errs, err)
	} else {
		for _, h := range hooks {
			r.m.init(h.name())
		}
		r.mu.Lock()
		r.hooks = hooks
		r.mu.Unlock()
	}
	for _, ch := range r.allChannels() {
		if err := r.fanOut(ctx, ch); err != nil {
			errs = append(errs, err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n, err := r.deliverBatch(ctx)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	next, err := r.refreshGauges(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if due, err := r.sendConfirmations(ctx); err != nil {
		errs = append(errs, err)
	} else if !due.IsZero() && (next.IsZero() || due.Before(next)) {
		next = due
	}
	return next, errors.Join(errs...)
}

// fanOut writes a delivery for every outbox row for ch above its cursor,
// and moves the cursor to the last horizon once no transaction that could
// still write below it is running. Replicas take turns (SKIP LOCKED).
func (r *Relay) fanOut(ctx context.Context, ch channel) error {
	now := r.utcNow()
	name := ch.name()
	r.mu.Lock()
	known := r.known[name]
	r.mu.Unlock()
	if !known {
		_, err := r.pool.Exec(ctx, `
			insert into notify_channels (channel, cursor_id, created_at, updated_at)
			values ($1, coalesce((select max(id) from outbox where created_at < $2), 0), $3, $3)
			on conflict (channel) do nothing`, name, now.Add(-r.backfill), now)
		if err != nil {
			return fmt.Errorf("notify: channel %s: %w", name, err)
		}
		r.mu.Lock()
		r.known[name] = true
		r.mu.Unlock()
	}
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		// The new horizon: the outbox sequence, read before this
		// transaction has an xid (it writes nothing yet), then the xid it
		// takes when it locks its channel row below. Whoever holds an
		// outbox id up to seq took its xid before (its timeline event is
		// written before its outbox row), so below ours.
		var seq int64
		if err := tx.QueryRow(ctx, `select coalesce(pg_sequence_last_value(pg_get_serial_sequence('outbox', 'id')::regclass), 0)`).Scan(&seq); err != nil {
			return fmt.Errorf("notify: channel %s: %w", name, err)
		}
		// The last horizon is settled when no xid up to its own is running.
		var cursor int64
		var settled bool
		err := tx.QueryRow(ctx, `
			select cursor_id, horizon_xid is not null and pg_snapshot_xmin(pg_current_snapshot()) > horizon_xid
			from notify_channels where channel = $1 for update skip locked`, name).Scan(&cursor, &settled)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // another replica is at it
		}
		if err != nil {
			return fmt.Errorf("notify: channel %s: %w", name, err)
		}
		// A new statement, a new snapshot: once settled, every outbox row
		// up to the horizon is committed (and visible) or never will be.
		tag, err := tx.Exec(ctx, `
			insert into notify_deliveries (outbox_id, channel, ordering_key, next_attempt_at, created_at, updated_at)
			select o.id, $1, o.ordering_key, $3, o.created_at, $3 from outbox o
			where o.id > $2 and (`+ch.filter()+`)
			  and not exists (select 1 from notify_deliveries d where d.outbox_id = o.id and d.channel = $1)
			order by o.id
			on conflict (outbox_id, channel) do nothing`, name, cursor, now)
		if err != nil {
			return fmt.Errorf("notify: deliveries for %s: %w", name, err)
		}
		if n := tag.RowsAffected(); n > 0 {
			r.m.queuedTotal.WithLabelValues(name).Add(float64(n))
		}
		_, err = tx.Exec(ctx, `
			update notify_channels set
				cursor_id = case when $2 then coalesce(horizon_id, cursor_id) else cursor_id end,
				horizon_id = case when $2 or horizon_xid is null then $3 else horizon_id end,
				horizon_xid = case when $2 or horizon_xid is null then pg_current_xact_id() else horizon_xid end,
				updated_at = $4
			where channel = $1`, name, settled, seq, now)
		if err != nil {
			return fmt.Errorf("notify: channel %s cursor: %w", name, err)
		}
		return nil
	})
}

// delivery is one outbox row to deliver on one channel.
type delivery struct {
	ID          int64
	OutboxID    int64
	Channel     string
	OrderingKey string
	Attempts    int
	Kind        incidents.EventKind
	IncidentID  int64
	Public      bool
	CreatedAt   time.Time // the outbox row's
	Event       incidents.Event
	EventID     int64
	Incident    *incidents.Incident // the incident after the event, nil for other keys
	// Root is the incident's Slack root message on this channel, read with
	// the claim (nil when none is posted yet, or not a Slack channel). Only
	// deliveries of this incident on this channel change it, and they run
	// one at a time, so it is current.
	Root *slackMessage
}

type outboxPayload struct {
	Event    json.RawMessage     `json:"event"`
	Incident *incidents.Incident `json:"incident"`
}

type eventHead struct {
	ID    int64               `json:"id"`
	Kind  incidents.EventKind `json:"kind"`
	At    time.Time           `json:"at"`
	Actor string              `json:"actor"`
}

func decodeOutbox(d *delivery, raw []byte) error {
	var p outboxPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	var h eventHead
	if len(p.Event) > 0 {
		if err := json.Unmarshal(p.Event, &d.Event); err != nil {
			return err
		}
		if err := json.Unmarshal(p.Event, &h); err != nil {
			return err
		}
	}
	d.Event.Kind, d.Event.At, d.Event.Actor, d.Event.Incident = h.Kind, h.At.UTC(), h.Actor, d.IncidentID
	if d.Event.Kind == "" {
		d.Event.Kind = d.Kind
	}
	d.EventID = h.ID
	d.Incident = p.Incident
	return nil
}

// batchBudget bounds how long a claim's transaction stays open when the
// far end is slow: what is left is claimed again by the next batch.
const batchBudget = 5 * time.Second

// deliverBatch claims the deliveries due now whose predecessors are all
// delivered (at most one per ordering key and channel), delivers them in
// one transaction that holds their row locks, and records each outcome.
// It returns how many it claimed.
func (r *Relay) deliverBatch(ctx context.Context) (int, error) {
	names := r.activeChannels()
	if len(names) == 0 {
		return 0, nil
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("notify: claim: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Slack channels' root messages come with the claim: one round trip
	// less per delivery.
	var relayChans, slackChans []string
	for _, ch := range r.channels {
		if sd, ok := ch.(*slackDest); ok {
			relayChans, slackChans = append(relayChans, sd.name()), append(slackChans, sd.slackChannel)
		}
	}
	rows, err := tx.Query(ctx, `
		select d.id, d.outbox_id, d.channel, d.ordering_key, d.attempts, o.kind, coalesce(o.incident_id, 0), o.public, o.created_at, o.payload,
			m.slack_channel, m.ts, m.content_sha
		from notify_deliveries d join outbox o on o.id = d.outbox_id
		left join unnest($3::text[], $4::text[]) c(name, slack) on c.name = d.channel
		left join notify_slack_messages m on m.key = 'root/' || c.slack || '/' || o.incident_id and m.ts <> ''
		where d.state = 'pending' and d.next_attempt_at <= $1 and d.channel = any($2)
		  and not exists (select 1 from notify_deliveries p where p.channel = d.channel and p.ordering_key = d.ordering_key
		                  and p.outbox_id < d.outbox_id and p.state <> 'delivered')
		order by d.outbox_id
		limit 16
		for update of d skip locked`, r.utcNow(), names, relayChans, slackChans)
	if err != nil {
		return 0, fmt.Errorf("notify: claim: %w", err)
	}
	var ds []*delivery
	for rows.Next() {
		d := &delivery{}
		var raw []byte
		var rootCh, rootTS, rootSHA *string
		if err := rows.Scan(&d.ID, &d.OutboxID, &d.Channel, &d.OrderingKey, &d.Attempts, &d.Kind, &d.IncidentID, &d.Public, &d.CreatedAt, &raw,
			&rootCh, &rootTS, &rootSHA); err != nil {
			rows.Close()
			return 0, fmt.Errorf("notify: claim: %w", err)
		}
		if rootTS != nil {
			d.Root = &slackMessage{channel: *rootCh, ts: *rootTS, sha: *rootSHA}
		}
		if err := decodeOutbox(d, raw); err != nil {
			r.log.Error("notify: undecodable outbox row", "outbox", d.OutboxID, "err", err)
		}
		ds = append(ds, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("notify: claim: %w", err)
	}
	if len(ds) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	var done []*delivery
	start := time.Now()
	for _, d := range ds {
		ch := r.channel(d.Channel)
		if ch == nil || r.isPaused(d.Channel) || time.Since(start) > batchBudget {
			continue // left pending, untouched
		}
		err := ch.deliver(ctx, d)
		if ctx.Err() != nil {
			return 0, nil // stopping: the claims roll back, nothing is lost
		}
		r.record(b, d, err)
		if err == nil {
			done = append(done, d)
		}
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			if ctx.Err() != nil {
				return 0, nil
			}
			return 0, fmt.Errorf("notify: record deliveries: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, fmt.Errorf("notify: commit deliveries: %w", err)
	}
	r.noteDelivered(ctx, done)
	return len(ds), nil
}

// noteDelivered puts on the timeline that an incident's opening and its
// updates reached a channel. A crash before it leaves the timeline short,
// never the channel.
func (r *Relay) noteDelivered(ctx context.Context, ds []*delivery) {
	if r.timeline == nil {
		return
	}
	for _, d := range ds {
		var detail string
		switch d.Kind {
		case incidents.KindDetected, incidents.KindCreated:
			detail = "incident opened"
		case incidents.KindUpdatePosted:
			detail = "update delivered"
			if id, ok := d.Event.Extra["update_id"].(float64); ok {
				detail = fmt.Sprintf("update %d delivered", int64(id))
			}
		default:
			continue
		}
		if d.IncidentID == 0 {
			continue
		}
		if err := r.timeline.Notified(ctx, d.IncidentID, d.Channel, detail); err != nil && ctx.Err() == nil {
			r.log.Warn("notify: could not record the delivery on the timeline", "incident", d.IncidentID, "channel", d.Channel, "err", err)
		}
	}
}

// record queues the writing of one attempt's outcome.
func (r *Relay) record(b *pgx.Batch, d *delivery, derr error) {
	now := r.utcNow()
	var rl *retryAfterError
	var held *heldError
	var perm *permanentError
	switch {
	case derr == nil:
		b.Queue(`update notify_deliveries set state = 'delivered', delivered_at = $2, last_error = '', updated_at = $2 where id = $1`, d.ID, now)
		r.m.delivered.WithLabelValues(d.Channel).Inc()
		r.m.latency.WithLabelValues(d.Channel).Observe(max(now.Sub(d.CreatedAt).Seconds(), 0))
		r.setHealthy(d.Channel)
	case errors.As(derr, &rl):
		// Slack said when: wait that long, and it is not the delivery's fault.
		until := now.Add(rl.after)
		r.pause(d.Channel, until)
		r.m.failed.WithLabelValues(d.Channel).Inc()
		b.Queue(`update notify_deliveries set next_attempt_at = $2, last_error = $3, updated_at = $4 where id = $1`,
			d.ID, until, truncate(derr.Error(), 500), now)
	case errors.Is(derr, errMoreRecipients):
		// Email ran out of its budget with subscribers left: again at once.
		b.Queue(`update notify_deliveries set next_attempt_at = $2, updated_at = $2 where id = $1`, d.ID, now)
	case errors.As(derr, &held):
		r.setHealth(d.Channel, held.err)
		r.log.Error("notify: channel cannot deliver; its deliveries are held", "channel", d.Channel, "err", held.err)
		b.Queue(`update notify_deliveries set next_attempt_at = $2, last_error = $3, updated_at = $4 where id = $1`,
			d.ID, now.Add(r.hold), truncate(derr.Error(), 500), now)
	default:
		attempts := d.Attempts + 1
		r.m.failed.WithLabelValues(d.Channel).Inc()
		if errors.As(derr, &perm) || attempts >= r.cfg.MaxAttempts {
			r.m.died.WithLabelValues(d.Channel).Inc()
			r.log.Error("notify: delivery is dead; later deliveries of its incident wait for a retry",
				"delivery", d.ID, "channel", d.Channel, "key", d.OrderingKey, "attempts", attempts, "err", derr)
			b.Queue(`update notify_deliveries set state = 'dead', attempts = $2, last_error = $3, updated_at = $4 where id = $1`,
				d.ID, attempts, truncate(derr.Error(), 500), now)
		} else {
			next := now.Add(r.backoff(attempts))
			r.log.Warn("notify: delivery failed; will retry", "delivery", d.ID, "channel", d.Channel, "attempt", attempts, "retry_at", next, "err", derr)
			b.Queue(`update notify_deliveries set attempts = $2, next_attempt_at = $3, last_error = $4, updated_at = $5 where id = $1`,
				d.ID, attempts, next, truncate(derr.Error(), 500), now)
		}
	}
}

// backoff is the wait before attempt n+1: base·2^(n-1), at most max, with
// jitter between a half and the whole of it, so that failures that began
// together do not retry together.
func (r *Relay) backoff(n int) time.Duration {
	d := r.cfg.BackoffBase.D
	for i := 1; i < n && d < r.cfg.BackoffMax.D; i++ {
		d *= 2
	}
	d = min(d, r.cfg.BackoffMax.D)
	return d/2 + rand.N(d/2+1)
}

func (r *Relay) channel(name string) channel {
	for _, ch := range r.allChannels() {
		if ch.name() == name {
			return ch
		}
	}
	return nil
}

func (r *Relay) activeChannels() []string {
	var out []string
	for _, ch := range r.allChannels() {
		if !r.isPaused(ch.name()) {
			out = append(out, ch.name())
		}
	}
	return out
}

func (r *Relay) isPaused(ch string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.paused[ch]
	if !ok {
		return false
	}
	if !r.utcNow().Before(until) {
		delete(r.paused, ch)
		return false
	}
	return true
}

func (r *Relay) pause(ch string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if until.After(r.paused[ch]) {
		r.paused[ch] = until
	}
}

func (r *Relay) setHealthy(ch string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health[ch] = ""
}

// nextUnpause returns when the earliest paused channel may deliver again
// (zero: none is paused), forgetting pauses that are over.
func (r *Relay) nextUnpause() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.utcNow()
	var next time.Time
	for ch, t := range r.paused {
		if !t.After(now) {
			delete(r.paused, ch)
			continue
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

// refreshGauges sets the queued and dead gauges and returns when the next
// pending delivery falls due after now (those due already wait for an
// earlier one of their incident, or for their channel).
func (r *Relay) refreshGauges(ctx context.Context) (time.Time, error) {
	names := r.Channels()
	rows, err := r.pool.Query(ctx, `
		select channel, count(*) filter (where state = 'pending'), count(*) filter (where state = 'dead'),
			min(next_attempt_at) filter (where state = 'pending' and next_attempt_at > $2)
		from notify_deliveries where state <> 'delivered' and channel = any($1) group by channel`, names, r.utcNow())
	if err != nil {
		return time.Time{}, fmt.Errorf("notify: gauges: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var next time.Time
	for rows.Next() {
		var ch string
		var pending, dead int64
		var due *time.Time
		if err := rows.Scan(&ch, &pending, &dead, &due); err != nil {
			return time.Time{}, fmt.Errorf("notify: gauges: %w", err)
		}
		seen[ch] = true
		r.m.queued.WithLabelValues(ch).Set(float64(pending))
		r.m.dead.WithLabelValues(ch).Set(float64(dead))
		if due != nil && (next.IsZero() || due.Before(next)) {
			next = *due
		}
	}
	for _, ch := range names {
		if !seen[ch] {
			r.m.queued.WithLabelValues(ch).Set(0)
			r.m.dead.WithLabelValues(ch).Set(0)
		}
	}
	return next, rows.Err()
}

// Delivery is a delivery as the console shows it.
type Delivery struct {
	ID          int64               `json:"id"`
	OutboxID    int64               `json:"outbox_id"`
	Channel     string              `json:"channel"`
	OrderingKey string              `json:"ordering_key"`
	Kind        incidents.EventKind `json:"kind"`
	IncidentID  int64               `json:"incident_id,omitempty"`
	State       string              `json:"state"` // pending, delivered or dead
	Attempts    int                 `json:"attempts"`
	NextAttempt time.Time           `json:"next_attempt_at"`
	LastError   string              `json:"last_error,omitempty"`
	CreatedAt   time.Time           `json:"created_at"`
	DeliveredAt time.Time           `json:"delivered_at,omitzero"`
}

// DeliveryFilter selects deliveries for the console.
type DeliveryFilter struct {
	State    string // "" for every state
	Incident int64  // 0 for every incident
	Limit    int    // default 100, at most 1000
}

// Deliveries lists deliveries, newest first.
func (r *Relay) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	return Deliveries(ctx, r.pool, f)
}

// Deliveries lists deliveries, newest first, for a console that has no Relay.
func Deliveries(ctx context.Context, pool *pgxpool.Pool, f DeliveryFilter) ([]Delivery, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	rows, err := pool.Query(ctx, `
		select d.id, d.outbox_id, d.channel, d.ordering_key, o.kind, coalesce(o.incident_id, 0), d.state, d.attempts,
			d.next_attempt_at, d.last_error, d.created_at, d.delivered_at
		from notify_deliveries d join outbox o on o.id = d.outbox_id
		where ($1 = '' or d.state = $1) and ($2 = 0 or o.incident_id = $2)
		order by d.id desc limit $3`, f.State, f.Incident, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("notify: deliveries: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		var delivered *time.Time
		err := row.Scan(&d.ID, &d.OutboxID, &d.Channel, &d.OrderingKey, &d.Kind, &d.IncidentID, &d.State, &d.Attempts,
			&d.NextAttempt, &d.LastError, &d.CreatedAt, &delivered)
		d.NextAttempt, d.CreatedAt = d.NextAttempt.UTC(), d.CreatedAt.UTC()
		if delivered != nil {
			d.DeliveredAt = delivered.UTC()
		}
		return d, err
	})
}

// Retry makes a dead (or waiting) delivery due now with its attempts reset,
// for the console's retry button, and wakes every replica's relay.
func (r *Relay) Retry(ctx context.Context, id int64) error {
	if err := Retry(ctx, r.pool, id, r.utcNow()); err != nil {
		return err
	}
	r.Wake()
	return nil
}

// Retry makes a dead (or waiting) delivery due at now with its attempts
// reset, and wakes the relays of every replica. A delivered one is left as it is.
func Retry(ctx context.Context, pool *pgxpool.Pool, id int64, now time.Time) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, `select state from notify_deliveries where id = $1 for update`, id).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("delivery %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("notify: retry %d: %w", id, err)
		}
		if state == "delivered" {
			return nil
		}
		if _, err := tx.Exec(ctx, `update notify_deliveries set state = 'pending', attempts = 0, next_attempt_at = $2, updated_at = $2 where id = $1`,
			id, now.UTC()); err != nil {
			return fmt.Errorf("notify: retry %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `select pg_notify($1, $2)`, WakeChannel, fmt.Sprintf(`{"retry":%d}`, id)); err != nil {
			return fmt.Errorf("notify: retry %d: %w", id, err)
		}
		return nil
	})
}

// retryAfterError is a rate limit: try again after, without counting an attempt.
type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("rate limited for %s: %v", e.after, e.err)
}
func (e *retryAfterError) Unwrap() error { return e.err }

// heldError means the channel itself cannot work (bad token, unknown
// channel): every delivery of it waits, none is charged an attempt.
type heldError struct{ err error }

func (e *heldError) Error() string { return e.err.Error() }
func (e *heldError) Unwrap() error { return e.err }

// permanentError will not succeed however often it is tried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
