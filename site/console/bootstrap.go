package console

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AddUser creates an operator with the given email and role and returns a
// one-time enrolment link under baseURL (valid for seven days), where the
// operator sets a password and enrols a TOTP authenticator. It acts on the
// database directly, so it works whether or not a server is running.
// An operator who exists but has not enrolled yet gets a fresh link (and the
// role given); one who has enrolled is ErrExists.
func AddUser(ctx context.Context, pool *pgxpool.Pool, email, role, baseURL string) (string, error) {
	return addUser(ctx, pool, email, role, baseURL, "cli", "", time.Now().UTC())
}

func addUser(ctx context.Context, pool *pgxpool.Pool, email, role, baseURL, actor, address string, now time.Time) (string, error) {
	email = normalizeEmail(email)
	if !validEmail(email) {
		return "", &inputError{fmt.Sprintf("%q is not an email address", email)}
	}
	r, err := ParseRole(role)
	if err != nil {
		return "", &inputError{err.Error()}
	}
	var tok string
	err = transact(ctx, pool, func(tx pgx.Tx) error {
		o, err := operatorByEmail(ctx, tx, email)
		switch {
		case errors.Is(err, ErrNotFound):
			err = tx.QueryRow(ctx, `insert into operators (email, role, created_at, updated_at) values ($1, $2, $3, $3) returning id`,
				email, string(r), now).Scan(&o.ID)
			if err != nil {
				return err
			}
		case err != nil:
			return err
		case o.Enrolled:
			return ErrExists
		default:
			if _, err := tx.Exec(ctx, `update operators set role = $2, updated_at = $3 where id = $1`, o.ID, string(r), now); err != nil {
				return err
			}
		}
		if tok, err = issueEnrolment(ctx, tx, o.ID, now); err != nil {
			return err
		}
		return audit(ctx, tx, now, actor, "operator.added", email, address, map[string]any{"role": r})
	})
	if err != nil {
		return "", fmt.Errorf("add operator %s: %w", email, err)
	}
	return enrolURL(baseURL, tok), nil
}

func enrolURL(baseURL, tok string) string {
	return strings.TrimRight(baseURL, "/") + "/admin/enrol/" + tok
}

// CreateToken creates an API token with the given role and name and returns
// its value, which is shown this once: only its hash is stored. It acts on
// the database directly.
func CreateToken(ctx context.Context, pool *pgxpool.Pool, role, name string) (string, error) {
	return createToken(ctx, pool, role, name, "cli", "", time.Now().UTC())
}

func createToken(ctx context.Context, pool *pgxpool.Pool, role, name, actor, address string, now time.Time) (string, error) {
	r, err := ParseRole(role)
	if err != nil {
		return "", &inputError{err.Error()}
	}
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 100 || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", &inputError{"a token needs a name of 1 to 100 characters, without control characters"}
	}
	var tok string
	err = transact(ctx, pool, func(tx pgx.Tx) error {
		var id int64
		var err error
		if tok, id, err = insertToken(ctx, tx, r, name, actor, now); err != nil {
			return err
		}
		return audit(ctx, tx, now, actor, "token.created", fmt.Sprintf("token:%d", id), address, map[string]any{"name": name, "role": r})
	})
	if err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return tok, nil
}

// ResetTwoStep clears an operator's password, authenticator and recovery
// codes, ends their sessions and forgets their devices, and returns a new
// one-time enrolment link under baseURL. For an admin locked out of their
// own account; in the console an admin does the same for others.
func ResetTwoStep(ctx context.Context, pool *pgxpool.Pool, email, baseURL string) (string, error) {
	return resetTwoStep(ctx, pool, email, baseURL, "cli", "", time.Now().UTC())
}

func resetTwoStep(ctx context.Context, pool *pgxpool.Pool, email, baseURL, actor, address string, now time.Time) (string, error) {
	var tok string
	err := transact(ctx, pool, func(tx pgx.Tx) error {
		o, err := operatorByEmail(ctx, tx, email)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `update operators set password_hash = '', totp_secret = '', totp_pending = '',
			enrolled_at = null, updated_at = $2 where id = $1`, o.ID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `delete from operator_recovery_codes where operator_id = $1`, o.ID); err != nil {
			return err
		}
		if err := revokeAll(ctx, tx, o.ID, now); err != nil {
			return err
		}
		if tok, err = issueEnrolment(ctx, tx, o.ID, now); err != nil {
			return err
		}
		return audit(ctx, tx, now, actor, "operator.2sa_reset", o.Email, address, nil)
	})
	if err != nil {
		return "", fmt.Errorf("reset two-step authentication of %s: %w", email, err)
	}
	return enrolURL(baseURL, tok), nil
}

// inputError is a mistake in what was asked for, said plainly.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

// LookupOperator returns the operator with the given email (ErrNotFound when
// there is none), for other parts that map their own users to operators,
// such as Slack commands: act only for an operator that is Enrolled, not
// Disabled, and whose Role allows the action.
func LookupOperator(ctx context.Context, pool *pgxpool.Pool, email string) (Operator, error) {
	return operatorByEmail(ctx, pool, email)
}

// Audit appends an entry to the audit log that the console shows: who
// (e.g. "slack:U123" or "person:ada@example.com"), did what ("slack.refused"),
// to what, from where, with details that must hold no secret.
func Audit(ctx context.Context, pool *pgxpool.Pool, actor, action, target, address string, detail map[string]any) error {
	return audit(ctx, pool, time.Now().UTC(), actor, action, target, address, detail)
}
