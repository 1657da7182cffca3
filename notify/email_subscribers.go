package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"
)

// Errors of Subscriptions.Subscribe.
var (
	ErrBadAddress  = errors.New("not an email address")
	ErrRateLimited = errors.New("too many sign-ups, try again later")
)

// ConfirmValidity is how long a confirmation link works; unconfirmed
// sign-ups (and their addresses) are deleted after it.
const ConfirmValidity = 7 * 24 * time.Hour

// Default sign-up limits: per address, one every 10 minutes after a burst
// of 2 (a second confirmation mail when the first went astray); per client
// IP, one a minute after a burst of 5.
const (
	DefaultAddressEvery = 10 * time.Minute
	DefaultAddressBurst = 2
	DefaultIPEvery      = time.Minute
	DefaultIPBurst      = 5
)

// resendAfter: a sign-up again within this long of the last confirmation
// mail sends none, whatever the replica (the limits above hold per replica).
const resendAfter = 2 * time.Minute

// maxComponents bounds what one sign-up may choose.
const maxComponents = 100

// NormalizeAddress returns the one form an address is stored in: a bare
// address (no display name), trimmed and lower-cased, at most 254 bytes.
func NormalizeAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\t <>\"(),;:\\[]") {
		return "", ErrBadAddress
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", ErrBadAddress
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || !strings.Contains(s[at+1:], ".") || strings.HasSuffix(s, ".") {
		return "", ErrBadAddress
	}
	return strings.ToLower(s), nil
}

// SubscriptionOptions configure Subscriptions.
type SubscriptionOptions struct {
	Pool   *pgxpool.Pool
	Now    func() time.Time
	Logger *slog.Logger // never receives an address
	// Sign-up limits (0: the defaults). They hold per replica.
	AddressEvery time.Duration
	AddressBurst int
	IPEvery      time.Duration
	IPBurst      int
}

// Subscriptions takes sign-ups, confirmations and unsubscriptions from
// the public site. The relay sends the confirmation mails (with the
// deliveries' retry rules) and the updates.
type Subscriptions struct {
	pool   *pgxpool.Pool
	now    func() time.Time
	log    *slog.Logger
	byAddr *limiters
	byIP   *limiters
}

// NewSubscriptions returns Subscriptions on the database.
func NewSubscriptions(o SubscriptionOptions) (*Subscriptions, error) {
	if o.Pool == nil {
		return nil, errors.New("notify: no database pool")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.AddressEvery <= 0 {
		o.AddressEvery = DefaultAddressEvery
	}
	if o.AddressBurst <= 0 {
		o.AddressBurst = DefaultAddressBurst
	}
	if o.IPEvery <= 0 {
		o.IPEvery = DefaultIPEvery
	}
	if o.IPBurst <= 0 {
		o.IPBurst = DefaultIPBurst
	}
	return &Subscriptions{pool: o.Pool, now: o.Now, log: o.Logger,
		byAddr: newLimiters(rate.Every(o.AddressEvery), o.AddressBurst),
		byIP:   newLimiters(rate.Every(o.IPEvery), o.IPBurst)}, nil
}

// Subscribe records a sign-up for updates on components (none: every
// component) and asks the relay to mail a confirmation link. Nothing is
// sent to the address until its owner confirms. An address already
// confirmed is left as it is, and the answer is the same, so that the form
// does not tell who is subscribed. It returns ErrBadAddress or
// ErrRateLimited (per client IP, then per address).
func (s *Subscriptions) Subscribe(ctx context.Context, address string, components []string, clientIP string) error {
	addr, err := NormalizeAddress(address)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	if clientIP != "" && !s.byIP.allow(clientIP, now) {
		return ErrRateLimited
	}
	if !s.byAddr.allow(addr, now) {
		return ErrRateLimited
	}
	comps := []string{}
	seen := map[string]bool{}
	for _, c := range components {
		c = strings.TrimSpace(c)
		if c == "" || len(c) > 200 || !utf8.ValidString(c) || seen[c] {
			continue
		}
		seen[c] = true
		comps = append(comps, c)
		if len(comps) == maxComponents {
			break
		}
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			insert into notify_email_subscribers (address, components, confirm_token, unsubscribe_token, confirm_due_at, requested_at, created_at, updated_at)
			values ($1, $2, $3, $4, $5, $5, $5, $5)
			on conflict (address) do update set components = excluded.components, confirm_due_at = excluded.confirm_due_at,
				confirm_attempts = 0, confirm_error = '', requested_at = excluded.requested_at, updated_at = excluded.updated_at
			where notify_email_subscribers.state = 'pending'
			  and (notify_email_subscribers.confirm_sent_at is null or notify_email_subscribers.confirm_sent_at < $6)`,
			addr, comps, newToken(), newToken(), now, now.Add(-resendAfter)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `select pg_notify($1, '{"email":"confirm"}')`, WakeChannel)
		return err
	})
	if err != nil {
		return fmt.Errorf("notify: subscribe: %w", err)
	}
	return nil
}

// Confirm confirms the sign-up whose confirmation link carries token. It
// reports false for a token that is unknown or expired. Confirming twice is
// fine. Mail covers what is published from the first confirmation on.
func (s *Subscriptions) Confirm(ctx context.Context, token string) (bool, error) {
	if !plausibleToken(token) {
		return false, nil
	}
	now := s.now().UTC()
	tag, err := s.pool.Exec(ctx, `
		update notify_email_subscribers set state = 'confirmed', confirmed_at = coalesce(confirmed_at, $2), confirm_due_at = null, updated_at = $2
		where confirm_token = $1 and (state = 'confirmed' or requested_at > $3)`, token, now, now.Add(-ConfirmValidity))
	if err != nil {
		return false, fmt.Errorf("notify: confirm: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Unsubscribe deletes the subscriber whose unsubscribe link carries token,
// address and all: nothing more is sent, even what is queued. An unknown
// token is no error (the subscriber is gone already).
func (s *Subscriptions) Unsubscribe(ctx context.Context, token string) error {
	if !plausibleToken(token) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `delete from notify_email_subscribers where unsubscribe_token = $1`, token); err != nil {
		return fmt.Errorf("notify: unsubscribe: %w", err)
	}
	return nil
}

// Count returns how many subscribers are confirmed and how many wait for
// confirmation, for the console (addresses are never listed).
func (s *Subscriptions) Count(ctx context.Context) (confirmed, pending int64, err error) {
	err = s.pool.QueryRow(ctx, `select count(*) filter (where state = 'confirmed'), count(*) filter (where state = 'pending')
		from notify_email_subscribers`).Scan(&confirmed, &pending)
	return confirmed, pending, err
}

// newToken returns 256 random bits in hex.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func plausibleToken(t string) bool {
	if len(t) != 64 {
		return false
	}
	_, err := hex.DecodeString(t)
	return err == nil
}

// limiters are token buckets by key, forgotten once full again.
type limiters struct {
	mu    sync.Mutex
	every rate.Limit
	burst int
	m     map[string]*rate.Limiter
}

func newLimiters(every rate.Limit, burst int) *limiters {
	return &limiters{every: every, burst: burst, m: map[string]*rate.Limiter{}}
}

func (l *limiters) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) > 10000 {
		for k, lim := range l.m {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(l.m, k)
			}
		}
	}
	lim := l.m[key]
	if lim == nil {
		lim = rate.NewLimiter(l.every, l.burst)
		l.m[key] = lim
	}
	return lim.AllowN(now, 1)
}

// confirmBatch bounds the confirmations one pass sends in one transaction.
const confirmBatch = 20

// sendConfirmations mails the confirmation links that are due, with the
// deliveries' backoff; after MaxAttempts failures a sign-up gets no more
// tries (its owner may sign up again). It deletes expired sign-ups, and
// returns when the next confirmation falls due (zero: none waits).
func (r *Relay) sendConfirmations(ctx context.Context) (time.Time, error) {
	if r.mailer == nil {
		return time.Time{}, nil
	}
	now := r.utcNow()
	if _, err := r.pool.Exec(ctx, `delete from notify_email_subscribers where state = 'pending' and requested_at < $1`, now.Add(-ConfirmValidity)); err != nil {
		return time.Time{}, fmt.Errorf("notify: expire sign-ups: %w", err)
	}
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			select id, address, components, confirm_token, confirm_attempts from notify_email_subscribers
			where state = 'pending' and confirm_due_at <= $1
			order by confirm_due_at limit $2 for update skip locked`, now, confirmBatch)
		if err != nil {
			return err
		}
		type pending struct {
			id       int64
			addr     string
			comps    []string
			token    string
			attempts int
		}
		ps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pending, error) {
			var p pending
			err := row.Scan(&p.id, &p.addr, &p.comps, &p.token, &p.attempts)
			return p, err
		})
		if err != nil || len(ps) == 0 {
			return err
		}
		start := time.Now()
		ss, derr := r.mailer.dial(ctx)
		if ss != nil {
			defer ss.close()
		}
		for _, p := range ps {
			if time.Since(start) > emailBudget {
				break // the rest stays due
			}
			serr := derr
			if serr == nil {
				m := r.confirmMail(p.comps, p.token)
				serr = ss.send(p.addr, r.composeMail(r.mailer.from, recipient{id: p.id, addr: p.addr}, m, fmt.Sprintf("c%d.%d", p.id, now.Unix())))
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if serr == nil {
				if _, err := tx.Exec(ctx, `update notify_email_subscribers set confirm_due_at = null, confirm_sent_at = $2, confirm_error = '', updated_at = $2
					where id = $1`, p.id, r.utcNow()); err != nil {
					return err
				}
				continue
			}
			attempts := p.attempts + 1
			var rej *errRecipientRejected
			var held *heldError
			var due *time.Time
			switch {
			case errors.As(serr, &held):
				// The server cannot be used at all (credentials, no
				// STARTTLS): wait like the deliveries, no attempt charged.
				attempts--
				t := r.utcNow().Add(r.hold)
				due = &t
			case !errors.As(serr, &rej) && attempts < r.cfg.MaxAttempts:
				t := r.utcNow().Add(r.backoff(attempts))
				due = &t
			}
			r.log.Warn("notify: a confirmation mail failed", "subscriber", p.id, "attempt", attempts, "retry_at", due, "err", serr)
			if _, err := tx.Exec(ctx, `update notify_email_subscribers set confirm_due_at = $2, confirm_attempts = $3, confirm_error = $4, updated_at = $5
				where id = $1`, p.id, due, attempts, truncate(serr.Error(), 500), r.utcNow()); err != nil {
				return err
			}
			if derr == nil && !errors.As(serr, &rej) {
				// The session is gone: leave the rest for the next pass.
				derr = serr
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}, nil
		}
		return time.Time{}, fmt.Errorf("notify: confirmations: %w", err)
	}
	var next *time.Time
	if err := r.pool.QueryRow(ctx, `select min(confirm_due_at) from notify_email_subscribers where state = 'pending' and confirm_due_at is not null`).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("notify: confirmations: %w", err)
	}
	if next == nil {
		return time.Time{}, nil
	}
	return next.UTC(), nil
}

// confirmMail is the double opt-in message.
func (r *Relay) confirmMail(comps []string, token string) mailContent {
	what := "every component"
	if len(comps) > 0 {
		what = strings.Join(comps, ", ")
	}
	return mailContent{
		Subject: "Confirm your subscription to status updates",
		Heading: "Confirm your subscription",
		Lines:   []string{"Status page: " + r.pageURL, "Components: " + what, "Requested: " + r.utcNow().Format("2 Jan 2006 15:04 UTC")},
		Body: "Someone, hopefully you, asked to get incident updates from this status page by email. " +
			"Nothing is sent until you confirm.\n\nIf it was not you, ignore this message: the request expires in 7 days.",
		Link:      r.pageURL + "/subscribe/confirm/" + token,
		LinkLabel: "Confirm",
		Footer:    "You get this one message because this address was entered on " + r.pageURL + ".",
	}
}
