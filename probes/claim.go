package probes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Claims hands out one-time-code windows: one code, one use, cluster-wide.
//
// A login target accepts each TOTP code once per account; a second run that
// submits the same code in the same window (another location, another
// replica, a `candor probe run` beside `candor serve`, jitter across a window
// edge) is refused, and that refusal looks exactly like a broken code check.
// So before a run submits a code it claims the code's window for the
// account, first in this process (two runs of one account in one process
// never share a window, with or without a database) and then in PostgreSQL,
// where `insert … on conflict do nothing` picks the one winner among every
// process attached to the same database. A run whose window is taken waits
// for the next one; when that is beyond its timeout it fails with class
// code_window_taken, a problem of the probe, not of the target.
//
// Claims are best effort when the database is away: a claim that cannot be
// written counts as won (after the in-process guard), the code is
// submitted, and a warning without any secret is logged, at most once a
// minute. A probe never fails because its claim could not be stored.
//
// Claims older than a day are deleted by the claimer itself, a bounded
// batch at most every ten minutes, so the table stays small without a full
// scan per claim.
type Claims struct {
	pool   *pgxpool.Pool // nil: claims in this process only
	holder string
	log    *slog.Logger

	mu        sync.Mutex
	latest    map[string]time.Time // account → the latest window claimed in this process
	pruned    time.Time            // window start at the last prune
	loggedErr time.Time            // when a database error was last logged
}

// ClaimsOptions configures [NewClaims].
type ClaimsOptions struct {
	// Pool is the shared database; nil keeps claims within this process.
	Pool *pgxpool.Pool
	// Holder names the claiming process in the table, for diagnosis
	// (default "candor").
	Holder string
	Logger *slog.Logger
}

// Tuning of the table's upkeep.
const (
	claimRetention  = 24 * time.Hour
	claimPruneEvery = 10 * time.Minute
	claimPruneBatch = 5000
	// claimTimeout bounds one claim, so that a hung database costs a run
	// little of its timeout before the code is submitted anyway.
	claimTimeout = 2 * time.Second
)

// NewClaims returns a claimer.
func NewClaims(o ClaimsOptions) *Claims {
	c := &Claims{pool: o.Pool, holder: o.Holder, log: o.Logger, latest: map[string]time.Time{}}
	if c.holder == "" {
		c.holder = "candor"
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Claim claims the code window that starts at window for account (a key from
// [accountKey]) and reports whether this run may submit that window's code.
// It refuses a window that this process has already claimed for the account,
// or an earlier one (a target that accepted a later code refuses an older
// one), and a window another process holds, or one before a window another
// process holds. A database error counts as won; see [Claims].
func (c *Claims) Claim(ctx context.Context, account string, window time.Time) bool {
	window = window.UTC()
	c.mu.Lock()
	if last, ok := c.latest[account]; ok && !window.After(last) {
		c.mu.Unlock()
		return false
	}
	c.latest[account] = window
	prune := c.pool != nil && window.Sub(c.pruned) >= claimPruneEvery
	if prune {
		c.pruned = window
	}
	c.mu.Unlock()
	if c.pool == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	won, err := c.insert(ctx, account, window)
	if err != nil {
		c.warn(window, "claim a one-time-code window; the code is submitted without a cluster-wide claim", err)
		return true
	}
	if prune {
		if err := c.prune(ctx, window.Add(-claimRetention)); err != nil {
			c.warn(window, "delete old one-time-code claims", err)
		}
	}
	return won
}

// CodePeriod returns the longest period of the one-time codes the plan
// sends ({{ totp }} in its URLs, headers, forms, JSON bodies and lets), or 0
// when it sends none. A run that finds its code window taken may wait up to
// this long for the next one.
func (p *Plan) CodePeriod() time.Duration {
	var longest time.Duration
	see := func(t tmpl) {
		for _, part := range t.parts {
			if part.call == nil || part.call.fn != "totp" {
				continue
			}
			if params, err := totpParams(part.call.args[1:]); err == nil {
				longest = max(longest, params.Period)
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case tmpl:
			see(v)
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	for i := range p.steps {
		st := &p.steps[i]
		see(st.url)
		for _, kvs := range [][]kv{st.headers, st.form, st.let} {
			for _, f := range kvs {
				see(f.val)
			}
		}
		walk(st.json)
	}
	return longest
}

// insert writes the claim unless the window, or a later one, is taken.
func (c *Claims) insert(ctx context.Context, account string, window time.Time) (bool, error) {
	tag, err := c.pool.Exec(ctx, `
		insert into totp_claims (account, window_start, claimed_by)
		select $1, $2, $3
		where not exists (select 1 from totp_claims where account = $1 and window_start > $2)
		on conflict do nothing`, account, window, c.holder)
	if err != nil {
		return false, fmt.Errorf("insert totp claim: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// prune deletes at most claimPruneBatch claims of windows before cutoff.
func (c *Claims) prune(ctx context.Context, cutoff time.Time) error {
	_, err := c.pool.Exec(ctx, `
		delete from totp_claims where ctid in (
			select ctid from totp_claims where window_start < $1 limit $2)`, cutoff, claimPruneBatch)
	if err != nil {
		return fmt.Errorf("prune totp claims: %w", err)
	}
	return nil
}

// warn logs a database error at most once a minute (by the claims' clock).
// The error comes from PostgreSQL and the account is a hash: neither holds
// a secret.
func (c *Claims) warn(now time.Time, what string, err error) {
	c.mu.Lock()
	quiet := !c.loggedErr.IsZero() && now.Sub(c.loggedErr) < time.Minute && now.Sub(c.loggedErr) >= 0
	if !quiet {
		c.loggedErr = now
	}
	c.mu.Unlock()
	if !quiet {
		c.log.Warn("probes: "+what, "err", err)
	}
}

// accountKey names the account a code is for without revealing its seed: hex
// SHA-256 of the code's parameters, the seed and the probe's plain variables
// (name=value, sorted). The seed alone decides the codes, but a target counts
// their use per account, and accounts may share a seed (the demo's do): the
// plain variables, where a probe names its user, tell such accounts apart.
// Runs of one account with the same seed and the same plain variables share
// the key wherever they run; the location is not part of it.
func accountKey(seed string, p TOTPParams, plain map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s/%d/%d/", strings.ToLower(p.Algorithm.String()), p.Digits, int64(p.Period/time.Second))
	h.Write([]byte(seed))
	names := make([]string, 0, len(plain))
	for k := range plain {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		// Lengths first, so that no name or value can pass for another.
		fmt.Fprintf(h, "\n%d:%s=%d:%s", len(k), k, len(plain[k]), plain[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// windowStart is the start of the code window that holds t.
func windowStart(t time.Time, period time.Duration) time.Time {
	n := t.UnixNano()
	return time.Unix(0, n-n%int64(period)).UTC()
}

// WindowTakenError says that every code window a run could use within its
// timeout was already claimed for its account by another run.
type WindowTakenError struct {
	Window time.Time     // the window found taken (start, UTC)
	Period time.Duration // the code period
}

func (e *WindowTakenError) Error() string {
	next := e.Window.Add(e.Period)
	return fmt.Sprintf("another run on this account (another location, replica or `candor probe run`) already used its one-time code for %s–%s UTC; "+
		"the next code window starts at %s UTC, too late for this run's timeout, so no code was submitted",
		e.Window.Format("15:04:05"), next.Format("15:04:05"), next.Format("2006-01-02 15:04:05"))
}
