package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when an operator, token or device does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned by AddUser when an enrolled operator has that email.
var ErrExists = errors.New("an operator with this email is already enrolled")

// Lifetimes of what sign-in hands out.
const (
	enrolmentTTL  = 7 * 24 * time.Hour
	secondStepTTL = 5 * time.Minute
	sessionIdle   = 2 * time.Hour
	sessionMax    = 12 * time.Hour
	deviceTTL     = 30 * 24 * time.Hour
)

// Rate limits on failed sign-in steps (wrong password, wrong code): past
// the limit within the window, that account or address is locked until the
// window has moved on.
const (
	failWindow     = 15 * time.Minute
	accountLimit   = 5
	addressLimit   = 30
	failRetainDays = 2
)

// Operator is a person who signs in to the console.
type Operator struct {
	ID         int64
	Email      string
	Role       Role
	Enrolled   bool
	Disabled   bool
	EnrolledAt time.Time
	CreatedAt  time.Time

	passwordHash string
	totpSecret   string
	totpPending  string
	totpLast     int64
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func transact(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it does nothing
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

const operatorCols = `id, email, role, password_hash, totp_secret, totp_pending, totp_last_counter,
	enrolled_at, disabled, created_at`

func scanOperator(row pgx.Row) (Operator, error) {
	var o Operator
	var enrolled *time.Time
	err := row.Scan(&o.ID, &o.Email, &o.Role, &o.passwordHash, &o.totpSecret, &o.totpPending, &o.totpLast,
		&enrolled, &o.Disabled, &o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNotFound
	}
	if err != nil {
		return o, err
	}
	if enrolled != nil {
		o.Enrolled, o.EnrolledAt = true, enrolled.UTC()
	}
	o.CreatedAt = o.CreatedAt.UTC()
	return o, nil
}

func operatorByEmail(ctx context.Context, q querier, email string) (Operator, error) {
	return scanOperator(q.QueryRow(ctx, `select `+operatorCols+` from operators where email = $1`, normalizeEmail(email)))
}

func operatorByID(ctx context.Context, q querier, id int64) (Operator, error) {
	return scanOperator(q.QueryRow(ctx, `select `+operatorCols+` from operators where id = $1`, id))
}

func listOperators(ctx context.Context, q querier) ([]Operator, error) {
	rows, err := q.Query(ctx, `select `+operatorCols+` from operators order by email`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Operator
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(clean(s, 254))) }

// clean makes outside text safe to store in a text column: valid UTF-8,
// no NUL (PostgreSQL refuses both), at most n bytes.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	return clip(s, n)
}

// validEmail is deliberately loose: one @, something either side, no spaces
// or control characters, at most 254 bytes.
func validEmail(s string) bool {
	if len(s) < 3 || len(s) > 254 || !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	at := strings.IndexByte(s, '@')
	return at > 0 && at == strings.LastIndexByte(s, '@') && at < len(s)-1
}

// audit appends to the audit log. detail must not hold secrets.
func audit(ctx context.Context, q querier, at time.Time, actor, action, target, address string, detail map[string]any) error {
	if detail == nil {
		detail = map[string]any{}
	}
	for k, v := range detail {
		if s, ok := v.(string); ok {
			detail[k] = clean(s, 500)
		}
	}
	actor, target, address = clean(actor, 300), clean(target, 300), clean(address, 100)
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `insert into audit_log (at, actor, action, target, address, detail) values ($1, $2, $3, $4, $5, $6)`,
		at.UTC(), actor, action, target, address, b)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   string
	Action  string
	Target  string
	Address string
	Detail  string // JSON
}

func listAudit(ctx context.Context, q querier, limit int) ([]AuditEntry, error) {
	rows, err := q.Query(ctx, `select id, at, actor, action, target, address, detail::text from audit_log order by id desc limit $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Address, &e.Detail); err != nil {
			return nil, err
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// issueEnrolment creates a one-time enrolment link token for an operator,
// replacing any unused one.
func issueEnrolment(ctx context.Context, q querier, operatorID int64, now time.Time) (string, error) {
	if _, err := q.Exec(ctx, `delete from operator_enrolments where operator_id = $1 and used_at is null`, operatorID); err != nil {
		return "", err
	}
	tok := randomToken(32)
	_, err := q.Exec(ctx, `insert into operator_enrolments (token_hash, operator_id, created_at, expires_at) values ($1, $2, $3, $4)`,
		tokenHash(tok), operatorID, now, now.Add(enrolmentTTL))
	return tok, err
}

// enrolmentOperator returns the operator an unused, unexpired enrolment
// token belongs to.
func enrolmentOperator(ctx context.Context, q querier, token string, now time.Time) (Operator, error) {
	if token == "" || len(token) > 100 {
		return Operator{}, ErrNotFound
	}
	return scanOperator(q.QueryRow(ctx, `select `+prefixCols("o", operatorCols)+`
		from operator_enrolments e join operators o on o.id = e.operator_id
		where e.token_hash = $1 and e.used_at is null and e.expires_at > $2 and not o.disabled`, tokenHash(token), now))
}

func prefixCols(p, cols string) string {
	fs := strings.Split(cols, ",")
	for i, f := range fs {
		fs[i] = p + "." + strings.TrimSpace(f)
	}
	return strings.Join(fs, ", ")
}

// revokeAll ends an operator's sessions and forgets their devices.
func revokeAll(ctx context.Context, q querier, operatorID int64, now time.Time) error {
	if _, err := q.Exec(ctx, `delete from operator_sessions where operator_id = $1`, operatorID); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `update operator_devices set revoked_at = $2 where operator_id = $1 and revoked_at is null`, operatorID, now)
	return err
}

// newRecoveryCodes replaces an operator's recovery codes and returns the new
// ones, which are never stored in the clear.
func newRecoveryCodes(ctx context.Context, q querier, operatorID int64, now time.Time) ([]string, error) {
	if _, err := q.Exec(ctx, `delete from operator_recovery_codes where operator_id = $1`, operatorID); err != nil {
		return nil, err
	}
	codes := make([]string, recoveryCodes)
	for i := range codes {
		codes[i] = newRecoveryCode()
		if _, err := q.Exec(ctx, `insert into operator_recovery_codes (operator_id, code_hash, created_at) values ($1, $2, $3)`,
			operatorID, tokenHash(codes[i]), now); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

// useRecoveryCode spends one unused recovery code; false when it is unknown
// or spent.
func useRecoveryCode(ctx context.Context, q querier, operatorID int64, code string, now time.Time) (bool, error) {
	n := normalizeRecoveryCode(code)
	if n == "" {
		return false, nil
	}
	tag, err := q.Exec(ctx, `update operator_recovery_codes set used_at = $3
		where operator_id = $1 and code_hash = $2 and used_at is null`, operatorID, tokenHash(n), now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func remainingRecoveryCodes(ctx context.Context, q querier, operatorID int64) (int, error) {
	var n int
	err := q.QueryRow(ctx, `select count(*) from operator_recovery_codes where operator_id = $1 and used_at is null`, operatorID).Scan(&n)
	return n, err
}

// acceptTOTP records that the code at step was used; false when that step
// or a later one was already accepted (a replay, or a race lost to one).
func acceptTOTP(ctx context.Context, q querier, operatorID, step int64) (bool, error) {
	tag, err := q.Exec(ctx, `update operators set totp_last_counter = $2 where id = $1 and totp_last_counter < $2`, operatorID, step)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Sign-in failures.

func failureKeys(email, address string) []string {
	return []string{"account:" + normalizeEmail(email), "address:" + address}
}

func recordFailure(ctx context.Context, q querier, email, address string, now time.Time) error {
	for _, k := range failureKeys(email, address) {
		if _, err := q.Exec(ctx, `insert into signin_failures (key, at) values ($1, $2)`, k, now); err != nil {
			return err
		}
	}
	// Keep the table small; a day or two of history is plenty for audit,
	// which has its own log.
	_, err := q.Exec(ctx, `delete from signin_failures where at < $1`, now.Add(-failRetainDays*24*time.Hour))
	return err
}

// locked reports whether the account or the address has failed too often
// within the window.
func locked(ctx context.Context, q querier, email, address string, now time.Time) (bool, error) {
	var acct, addr int
	err := q.QueryRow(ctx, `select
		count(*) filter (where key = $1), count(*) filter (where key = $2)
		from signin_failures where key in ($1, $2) and at > $3`,
		"account:"+normalizeEmail(email), "address:"+address, now.Add(-failWindow)).Scan(&acct, &addr)
	if err != nil {
		return false, err
	}
	return acct >= accountLimit || addr >= addressLimit, nil
}

func clearAccountFailures(ctx context.Context, q querier, email string) error {
	_, err := q.Exec(ctx, `delete from signin_failures where key = $1`, "account:"+normalizeEmail(email))
	return err
}

// Sessions.

type session struct {
	OperatorID int64
	Stage      string
	CSRF       string
	CreatedAt  time.Time
	LastSeen   time.Time
	ExpiresAt  time.Time
}

func createSession(ctx context.Context, q querier, operatorID int64, stage, address, userAgent string, now time.Time) (string, session, error) {
	tok := randomToken(32)
	ttl := sessionMax
	if stage == "second" {
		ttl = secondStepTTL
	}
	s := session{OperatorID: operatorID, Stage: stage, CSRF: randomToken(24), CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(ttl)}
	_, err := q.Exec(ctx, `insert into operator_sessions (token_hash, operator_id, stage, csrf, address, user_agent, created_at, last_seen_at, expires_at)
		values ($1, $2, $3, $4, $5, $6, $7, $7, $8)`, tokenHash(tok), operatorID, stage, s.CSRF, address, clean(userAgent, 300), now, s.ExpiresAt)
	return tok, s, err
}

// loadSession returns a live session: within its absolute limit and, when
// signed in, used within the idle timeout. It touches last_seen_at.
func loadSession(ctx context.Context, q querier, token string, now time.Time) (session, error) {
	var s session
	if token == "" || len(token) > 100 {
		return s, ErrNotFound
	}
	h := tokenHash(token)
	err := q.QueryRow(ctx, `select operator_id, stage, csrf, created_at, last_seen_at, expires_at
		from operator_sessions where token_hash = $1`, h).Scan(&s.OperatorID, &s.Stage, &s.CSRF, &s.CreatedAt, &s.LastSeen, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	if err != nil {
		return s, err
	}
	if !now.Before(s.ExpiresAt) || (s.Stage == "full" && now.Sub(s.LastSeen) > sessionIdle) {
		_, _ = q.Exec(ctx, `delete from operator_sessions where token_hash = $1`, h)
		return s, ErrNotFound
	}
	if now.Sub(s.LastSeen) > time.Minute {
		if _, err := q.Exec(ctx, `update operator_sessions set last_seen_at = $2 where token_hash = $1`, h, now); err != nil {
			return s, err
		}
	}
	return s, nil
}

func deleteSession(ctx context.Context, q querier, token string) error {
	_, err := q.Exec(ctx, `delete from operator_sessions where token_hash = $1`, tokenHash(token))
	return err
}

// Devices.

// Device is a browser an operator chose to remember.
type Device struct {
	ID        int64
	UserAgent string
	Address   string
	CreatedAt time.Time
	LastUsed  time.Time
	ExpiresAt time.Time
	Revoked   bool
}

func rememberDevice(ctx context.Context, q querier, operatorID int64, address, userAgent string, now time.Time) (string, error) {
	tok := randomToken(32)
	_, err := q.Exec(ctx, `insert into operator_devices (operator_id, token_hash, user_agent, address, created_at, last_used_at, expires_at)
		values ($1, $2, $3, $4, $5, $5, $6)`, operatorID, tokenHash(tok), clean(userAgent, 300), address, now, now.Add(deviceTTL))
	return tok, err
}

// useDevice reports whether token is a live remembered device of the
// operator, and marks it used.
func useDevice(ctx context.Context, q querier, operatorID int64, token string, now time.Time) (bool, error) {
	if token == "" || len(token) > 100 {
		return false, nil
	}
	tag, err := q.Exec(ctx, `update operator_devices set last_used_at = $3
		where token_hash = $1 and operator_id = $2 and revoked_at is null and expires_at > $3`, tokenHash(token), operatorID, now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func listDevices(ctx context.Context, q querier, operatorID int64, now time.Time) ([]Device, error) {
	rows, err := q.Query(ctx, `select id, user_agent, address, created_at, last_used_at, expires_at, revoked_at is not null
		from operator_devices where operator_id = $1 and revoked_at is null and expires_at > $2 order by last_used_at desc`, operatorID, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		var d Device
		if err := rows.Scan(&d.ID, &d.UserAgent, &d.Address, &d.CreatedAt, &d.LastUsed, &d.ExpiresAt, &d.Revoked); err != nil {
			return nil, err
		}
		d.CreatedAt, d.LastUsed, d.ExpiresAt = d.CreatedAt.UTC(), d.LastUsed.UTC(), d.ExpiresAt.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

func revokeDevice(ctx context.Context, q querier, operatorID, id int64, now time.Time) error {
	tag, err := q.Exec(ctx, `update operator_devices set revoked_at = $3 where id = $1 and operator_id = $2 and revoked_at is null`, id, operatorID, now)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func revokeDevices(ctx context.Context, q querier, operatorID int64, now time.Time) (int64, error) {
	tag, err := q.Exec(ctx, `update operator_devices set revoked_at = $2 where operator_id = $1 and revoked_at is null`, operatorID, now)
	return tag.RowsAffected(), err
}

// API tokens.

// Token is an API token as listed (never its value).
type Token struct {
	ID        int64
	Name      string
	Role      Role
	CreatedBy string
	CreatedAt time.Time
	LastUsed  time.Time
	Revoked   bool
}

func insertToken(ctx context.Context, q querier, role Role, name, createdBy string, now time.Time) (string, int64, error) {
	tok := newAPIToken()
	var id int64
	err := q.QueryRow(ctx, `insert into api_tokens (name, role, token_hash, created_by, created_at) values ($1, $2, $3, $4, $5) returning id`,
		name, string(role), tokenHash(tok), createdBy, now).Scan(&id)
	return tok, id, err
}

func tokenByValue(ctx context.Context, q querier, value string, now time.Time) (Token, error) {
	var t Token
	if !strings.HasPrefix(value, tokenPrefix) || len(value) > 100 {
		return t, errBadToken
	}
	err := q.QueryRow(ctx, `update api_tokens set last_used_at = $2 where token_hash = $1 and revoked_at is null
		returning id, name, role, created_by, created_at`, tokenHash(value), now).Scan(&t.ID, &t.Name, &t.Role, &t.CreatedBy, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, errBadToken
	}
	return t, err
}

func listTokens(ctx context.Context, q querier) ([]Token, error) {
	rows, err := q.Query(ctx, `select id, name, role, created_by, created_at, coalesce(last_used_at, 'epoch'), revoked_at is not null
		from api_tokens order by revoked_at is not null, id desc`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		if err := rows.Scan(&t.ID, &t.Name, &t.Role, &t.CreatedBy, &t.CreatedAt, &t.LastUsed, &t.Revoked); err != nil {
			return nil, err
		}
		t.CreatedAt, t.LastUsed = t.CreatedAt.UTC(), t.LastUsed.UTC()
		if t.LastUsed.Unix() == 0 {
			t.LastUsed = time.Time{}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func revokeToken(ctx context.Context, q querier, id int64, now time.Time) (string, error) {
	var name string
	err := q.QueryRow(ctx, `update api_tokens set revoked_at = $2 where id = $1 and revoked_at is null returning name`, id, now).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	return name, err
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
