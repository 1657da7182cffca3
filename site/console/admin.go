package console

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"
)

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrNotFound
	}
	return id, nil
}

// Account: the operator's own devices and recovery codes.

func (c *Console) account(w http.ResponseWriter, r *http.Request, p *principal) error {
	return c.renderAccount(w, r, p, http.StatusOK, "")
}

func (c *Console) renderAccount(w http.ResponseWriter, r *http.Request, p *principal, status int, msg string) error {
	devs, err := listDevices(r.Context(), c.o.Pool, p.Operator.ID, c.now())
	if err != nil {
		return err
	}
	n, err := remainingRecoveryCodes(r.Context(), c.o.Pool, p.Operator.ID)
	if err != nil {
		return err
	}
	c.render(w, r, status, accountPage(c.page(p, "Your account"), devs, n, currentDevice(r), msg))
	return nil
}

func currentDevice(r *http.Request) string {
	if ck, err := r.Cookie(deviceCookie); err == nil {
		return ck.Value
	}
	return ""
}

func (c *Console) revokeOwnDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := revokeDevice(r.Context(), c.o.Pool, p.Operator.ID, id, c.now()); err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "device.revoked", p.Operator.Email, map[string]any{"device": id})
	http.Redirect(w, r, "/admin/account", http.StatusSeeOther)
	return nil
}

func (c *Console) revokeOwnDevices(w http.ResponseWriter, r *http.Request, p *principal) error {
	n, err := revokeDevices(r.Context(), c.o.Pool, p.Operator.ID, c.now())
	if err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "device.revoked_all", p.Operator.Email, map[string]any{"devices": n})
	c.clearCookie(w, r, deviceCookie)
	http.Redirect(w, r, "/admin/account", http.StatusSeeOther)
	return nil
}

// regenerateRecoveryCodes makes new recovery codes once the operator gives
// a fresh code from their authenticator app: a session alone (a browser left
// open) is not enough to replace the fallback for a lost phone. A wrong code
// counts as a failed sign-in step for the rate limits.
func (c *Console) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx, now, addr := r.Context(), c.now(), c.address(r)
	isLocked, err := locked(ctx, c.o.Pool, p.Operator.Email, addr, now)
	if err != nil {
		return err
	}
	if isLocked {
		c.auditReq(r, p.actor(), "recovery_codes.refused", p.Operator.Email, map[string]any{"why": "locked"})
		return c.renderAccount(w, r, p, http.StatusTooManyRequests, msgLocked)
	}
	secret, err := c.openSecret(p.Operator.ID, p.Operator.totpSecret)
	if err != nil {
		return err
	}
	step, ok := matchTOTP(secret, clip(r.PostFormValue("code"), 20), p.Operator.totpLast, now)
	if ok {
		if ok, err = acceptTOTP(ctx, c.o.Pool, p.Operator.ID, step); err != nil {
			return err
		}
	}
	if !ok {
		if err := recordFailure(ctx, c.o.Pool, p.Operator.Email, addr, now); err != nil {
			return err
		}
		c.auditReq(r, p.actor(), "recovery_codes.refused", p.Operator.Email, map[string]any{"why": "wrong or used code"})
		return c.renderAccount(w, r, p, http.StatusUnprocessableEntity,
			"To make new recovery codes, enter the current 6-digit code from your authenticator app (each code works once).")
	}
	var codes []string
	err = transact(ctx, c.o.Pool, func(tx pgx.Tx) error {
		var err error
		if codes, err = newRecoveryCodes(ctx, tx, p.Operator.ID, now); err != nil {
			return err
		}
		return audit(ctx, tx, now, p.actor(), "recovery_codes.regenerated", p.Operator.Email, addr, nil)
	})
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, recoveryCodesPage(c.page(p, "Recovery codes"), codes, false))
	return nil
}

// operatorDevices shows an admin one operator's remembered devices.
func (c *Console) operatorDevices(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	o, err := operatorByID(r.Context(), c.o.Pool, id)
	if err != nil {
		return err
	}
	devs, err := listDevices(r.Context(), c.o.Pool, o.ID, c.now())
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, operatorDevicesPage(c.page(p, "Devices of "+o.Email), o, devs))
	return nil
}

// Operators.

func (c *Console) operatorList(w http.ResponseWriter, r *http.Request, p *principal) error {
	return c.renderOperators(w, r, p, http.StatusOK, "", "")
}

func (c *Console) renderOperators(w http.ResponseWriter, r *http.Request, p *principal, status int, link, problem string) error {
	ops, err := listOperators(r.Context(), c.o.Pool)
	if err != nil {
		return err
	}
	c.render(w, r, status, operatorsPage(c.page(p, "Operators"), ops, link, problem))
	return nil
}

func (c *Console) addOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	link, err := addUser(r.Context(), c.o.Pool, r.PostFormValue("email"), r.PostFormValue("role"), c.o.BaseURL, p.actor(), c.address(r), c.now())
	if errors.Is(err, ErrExists) {
		return c.renderOperators(w, r, p, http.StatusConflict, "", "An operator with this email is already enrolled; reset their two-step authentication to send a new link.")
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		// addUser's errors about the input name the problem plainly.
		var pe *inputError
		if errors.As(err, &pe) {
			return c.renderOperators(w, r, p, http.StatusUnprocessableEntity, "", pe.msg)
		}
		return err
	}
	return c.renderOperators(w, r, p, http.StatusOK, link, "")
}

func (c *Console) setRole(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx, now := r.Context(), c.now()
	id, err := pathID(r)
	if err != nil {
		return err
	}
	role, err := ParseRole(r.PostFormValue("role"))
	if err != nil {
		return c.renderOperators(w, r, p, http.StatusUnprocessableEntity, "", err.Error())
	}
	if id == p.Operator.ID {
		return c.renderOperators(w, r, p, http.StatusUnprocessableEntity, "", "You cannot change your own role; ask another admin.")
	}
	err = transact(ctx, c.o.Pool, func(tx pgx.Tx) error {
		o, err := operatorByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `update operators set role = $2, updated_at = $3 where id = $1`, id, string(role), now); err != nil {
			return err
		}
		// A change of privilege ends the operator's sessions: they sign in
		// again and get a new session with the new role.
		if _, err := tx.Exec(ctx, `delete from operator_sessions where operator_id = $1`, id); err != nil {
			return err
		}
		return audit(ctx, tx, now, p.actor(), "operator.role_changed", o.Email, c.address(r), map[string]any{"from": o.Role, "to": role})
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/operators", http.StatusSeeOther)
	return nil
}

func (c *Console) resetOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	o, err := operatorByID(r.Context(), c.o.Pool, id)
	if err != nil {
		return err
	}
	link, err := resetTwoStep(r.Context(), c.o.Pool, o.Email, c.o.BaseURL, p.actor(), c.address(r), c.now())
	if err != nil {
		return err
	}
	return c.renderOperators(w, r, p, http.StatusOK, link, "")
}

// setAccess disables an operator (ending their sessions and forgetting
// their devices) or enables them again.
func (c *Console) setAccess(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx, now := r.Context(), c.now()
	id, err := pathID(r)
	if err != nil {
		return err
	}
	disable := r.PostFormValue("disabled") == "true"
	if id == p.Operator.ID {
		return c.renderOperators(w, r, p, http.StatusUnprocessableEntity, "", "You cannot disable yourself; ask another admin.")
	}
	err = transact(ctx, c.o.Pool, func(tx pgx.Tx) error {
		o, err := operatorByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `update operators set disabled = $2, updated_at = $3 where id = $1`, id, disable, now); err != nil {
			return err
		}
		action := "operator.enabled"
		if disable {
			action = "operator.disabled"
			if err := revokeAll(ctx, tx, id, now); err != nil {
				return err
			}
		}
		return audit(ctx, tx, now, p.actor(), action, o.Email, c.address(r), nil)
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/operators", http.StatusSeeOther)
	return nil
}

func (c *Console) revokeOperatorDevices(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx, now := r.Context(), c.now()
	id, err := pathID(r)
	if err != nil {
		return err
	}
	err = transact(ctx, c.o.Pool, func(tx pgx.Tx) error {
		o, err := operatorByID(ctx, tx, id)
		if err != nil {
			return err
		}
		n, err := revokeDevices(ctx, tx, id, now)
		if err != nil {
			return err
		}
		return audit(ctx, tx, now, p.actor(), "device.revoked_all", o.Email, c.address(r), map[string]any{"devices": n})
	})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/operators", http.StatusSeeOther)
	return nil
}

// Tokens.

func (c *Console) tokenList(w http.ResponseWriter, r *http.Request, p *principal) error {
	return c.renderTokens(w, r, p, http.StatusOK, "", "")
}

func (c *Console) renderTokens(w http.ResponseWriter, r *http.Request, p *principal, status int, created, problem string) error {
	ts, err := listTokens(r.Context(), c.o.Pool)
	if err != nil {
		return err
	}
	c.render(w, r, status, tokensPage(c.page(p, "API tokens"), ts, created, problem))
	return nil
}

func (c *Console) addToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	tok, err := createToken(r.Context(), c.o.Pool, r.PostFormValue("role"), r.PostFormValue("name"), p.actor(), c.address(r), c.now())
	var pe *inputError
	if errors.As(err, &pe) {
		return c.renderTokens(w, r, p, http.StatusUnprocessableEntity, "", pe.msg)
	}
	if err != nil {
		return err
	}
	return c.renderTokens(w, r, p, http.StatusOK, tok, "")
}

func (c *Console) revokeTokenHandler(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	name, err := revokeToken(r.Context(), c.o.Pool, id, c.now())
	if err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "token.revoked", "token:"+strconv.FormatInt(id, 10), map[string]any{"name": name})
	http.Redirect(w, r, "/admin/tokens", http.StatusSeeOther)
	return nil
}

// The audit log.

func (c *Console) auditLog(w http.ResponseWriter, r *http.Request, p *principal) error {
	es, err := listAudit(r.Context(), c.o.Pool, 500)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, auditPage(c.page(p, "Audit log"), es))
	return nil
}
