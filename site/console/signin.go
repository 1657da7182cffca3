package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image/png"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// What a failed sign-in says, whatever failed: the account may not exist,
// be disabled or not enrolled, or the password may be wrong.
const (
	msgSignInFailed = "The email or password is not right, or this account may not sign in."
	msgLocked       = "Too many failed attempts for this account or from this address. Wait 15 minutes and try again."
	msgCodeFailed   = "That code is not right. Enter the current 6-digit code from your authenticator app, or a recovery code."
	msgCodeReplayed = "That code has already been used. Wait for the next code in your authenticator app."
)

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if p, err := c.sessionPrincipal(r); err == nil && p != nil {
		http.Redirect(w, r, "/admin/incidents", http.StatusSeeOther)
		return nil
	}
	c.render(w, r, http.StatusOK, loginPage(c.publicPage("Sign in", c.publicCSRF(w, r)), "", ""))
	return nil
}

func (c *Console) login(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ctx, now, addr := r.Context(), c.now(), c.address(r)
	email := clip(normalizeEmail(r.PostFormValue("email")), 254)
	password := r.PostFormValue("password")
	pg := c.publicPage("Sign in", c.publicCSRF(w, r))

	isLocked, err := locked(ctx, c.o.Pool, email, addr, now)
	if err != nil {
		return err
	}
	if isLocked {
		c.auditReq(r, "anonymous", "signin.locked", email, map[string]any{"step": "password"})
		c.render(w, r, http.StatusTooManyRequests, loginPage(pg, email, msgLocked))
		return nil
	}
	o, err := operatorByEmail(ctx, c.o.Pool, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	// The same work whether or not the account exists: an unknown email
	// is checked against a dummy hash.
	hash := o.passwordHash
	if len(password) > MaxPassword {
		password, hash = "", ""
	}
	ok := checkPassword(hash, password) && o.ID != 0 && o.Enrolled && !o.Disabled
	if !ok {
		if err := recordFailure(ctx, c.o.Pool, email, addr, now); err != nil {
			return err
		}
		why := "wrong password"
		switch {
		case o.ID == 0:
			why = "unknown account"
		case o.Disabled:
			why = "disabled"
		case !o.Enrolled:
			why = "not enrolled"
		}
		c.auditReq(r, "anonymous", "signin.failed", email, map[string]any{"step": "password", "why": why})
		c.render(w, r, http.StatusUnauthorized, loginPage(pg, email, msgSignInFailed))
		return nil
	}
	// A remembered device of this operator skips the second step.
	if ck, err := r.Cookie(deviceCookie); err == nil {
		known, err := useDevice(ctx, c.o.Pool, o.ID, ck.Value, now)
		if err != nil {
			return err
		}
		if known {
			return c.finishSignIn(w, r, o, "password+device", false)
		}
	}
	tok, _, err := createSession(ctx, c.o.Pool, o.ID, "second", addr, r.UserAgent(), now)
	if err != nil {
		return err
	}
	c.setCookie(w, r, sessionCookie, tok, 0, http.SameSiteLaxMode)
	http.Redirect(w, r, "/admin/login/code", http.StatusSeeOther)
	return nil
}

// secondStep returns the operator between password and code, or ErrNotFound.
func (c *Console) secondStep(r *http.Request) (Operator, string, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return Operator{}, "", ErrNotFound
	}
	s, err := loadSession(r.Context(), c.o.Pool, ck.Value, c.now())
	if err != nil {
		return Operator{}, "", err
	}
	if s.Stage != "second" {
		return Operator{}, "", ErrNotFound
	}
	o, err := operatorByID(r.Context(), c.o.Pool, s.OperatorID)
	if err != nil {
		return o, "", err
	}
	if o.Disabled || !o.Enrolled {
		return o, "", ErrNotFound
	}
	return o, ck.Value, nil
}

func (c *Console) codeForm(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if _, _, err := c.secondStep(r); err != nil {
		if errors.Is(err, ErrNotFound) {
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return nil
		}
		return err
	}
	c.render(w, r, http.StatusOK, codePage(c.publicPage("Two-step authentication", c.publicCSRF(w, r)), ""))
	return nil
}

func (c *Console) code(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ctx, now, addr := r.Context(), c.now(), c.address(r)
	o, tok, err := c.secondStep(r)
	if errors.Is(err, ErrNotFound) {
		c.render(w, r, http.StatusUnauthorized, loginPage(c.publicPage("Sign in", c.publicCSRF(w, r)), "",
			"Your sign-in took too long or has ended. Enter your email and password again."))
		return nil
	}
	if err != nil {
		return err
	}
	pg := c.publicPage("Two-step authentication", c.publicCSRF(w, r))
	isLocked, err := locked(ctx, c.o.Pool, o.Email, addr, now)
	if err != nil {
		return err
	}
	if isLocked {
		c.auditReq(r, "anonymous", "signin.locked", o.Email, map[string]any{"step": "code"})
		c.render(w, r, http.StatusTooManyRequests, codePage(pg, msgLocked))
		return nil
	}
	code, recovery := clip(r.PostFormValue("code"), 20), clip(r.PostFormValue("recovery"), 40)
	method, msg := "", msgCodeFailed
	switch {
	case recovery != "":
		ok, err := useRecoveryCode(ctx, c.o.Pool, o.ID, recovery, now)
		if err != nil {
			return err
		}
		if ok {
			method = "recovery_code"
		}
	default:
		secret, err := c.openSecret(o.ID, o.totpSecret)
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, code, -1, now)
		switch {
		case ok && step <= o.totpLast:
			msg = msgCodeReplayed
			c.auditReq(r, "anonymous", "signin.code_replayed", o.Email, nil)
		case ok:
			accepted, err := acceptTOTP(ctx, c.o.Pool, o.ID, step)
			if err != nil {
				return err
			}
			if accepted {
				method = "totp"
				if err := c.sealStoredSecret(ctx, o, secret); err != nil {
					return err
				}
			} else {
				msg = msgCodeReplayed
				c.auditReq(r, "anonymous", "signin.code_replayed", o.Email, nil)
			}
		}
	}
	if method == "" {
		if err := recordFailure(ctx, c.o.Pool, o.Email, addr, now); err != nil {
			return err
		}
		kind := "totp"
		if recovery != "" {
			kind = "recovery_code"
		}
		c.auditReq(r, "anonymous", "signin.failed", o.Email, map[string]any{"step": kind})
		c.render(w, r, http.StatusUnauthorized, codePage(pg, msg))
		return nil
	}
	if err := deleteSession(ctx, c.o.Pool, tok); err != nil {
		return err
	}
	return c.finishSignIn(w, r, o, "password+"+method, r.PostFormValue("remember") == "on")
}

// finishSignIn starts a new session (never reusing the one from before the
// second step) and, when asked, remembers the device.
func (c *Console) finishSignIn(w http.ResponseWriter, r *http.Request, o Operator, method string, remember bool) error {
	ctx, now, addr := r.Context(), c.now(), c.address(r)
	tok, _, err := createSession(ctx, c.o.Pool, o.ID, "full", addr, r.UserAgent(), now)
	if err != nil {
		return err
	}
	if remember {
		dev, err := rememberDevice(ctx, c.o.Pool, o.ID, addr, r.UserAgent(), now)
		if err != nil {
			return err
		}
		c.setCookie(w, r, deviceCookie, dev, int(deviceTTL.Seconds()), http.SameSiteStrictMode)
	}
	if err := clearAccountFailures(ctx, c.o.Pool, o.Email); err != nil {
		return err
	}
	c.auditReq(r, "person:"+o.Email, "signin", o.Email, map[string]any{"method": method, "remember": remember})
	c.setCookie(w, r, sessionCookie, tok, 0, http.SameSiteLaxMode)
	http.Redirect(w, r, "/admin/incidents", http.StatusSeeOther)
	return nil
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := deleteSession(r.Context(), c.o.Pool, p.sessToken); err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "signout", p.Operator.Email, nil)
	c.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	return nil
}

// Enrolment.

const msgBadEnrolment = "This enrolment link is not valid: it was used, replaced by a newer one, or has expired. Ask an admin for a new link."

type enrolView struct {
	Token, Email, QR, URI, Secret string
}

func (c *Console) enrolment(ctx context.Context, token string) (Operator, enrolView, error) {
	o, err := enrolmentOperator(ctx, c.o.Pool, token, c.now())
	if err != nil {
		return o, enrolView{}, err
	}
	if o.totpPending == "" {
		// The secret is kept from the first view so that reloading the
		// page does not invalidate what the phone already scanned.
		secret := c.sealSecret(o.ID, newTOTPSecret())
		err := c.o.Pool.QueryRow(ctx, `update operators set totp_pending = case when totp_pending = '' then $2 else totp_pending end
			where id = $1 returning totp_pending`, o.ID, secret).Scan(&o.totpPending)
		if err != nil {
			return o, enrolView{}, err
		}
	}
	pending, err := c.openSecret(o.ID, o.totpPending)
	if err != nil {
		return o, enrolView{}, err
	}
	key, err := totpKey(c.o.Issuer, o.Email, pending)
	if err != nil {
		return o, enrolView{}, err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return o, enrolView{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return o, enrolView{}, err
	}
	return o, enrolView{Token: token, Email: o.Email, URI: key.URL(), Secret: pending,
		QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

func (c *Console) enrolForm(w http.ResponseWriter, r *http.Request, _ *principal) error {
	_, v, err := c.enrolment(r.Context(), r.PathValue("token"))
	if errors.Is(err, ErrNotFound) {
		c.auditReq(r, "anonymous", "enrol.refused", "", nil)
		return &httpError{status: http.StatusNotFound, msg: msgBadEnrolment}
	}
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, enrolPage(c.publicPage("Enrol", c.publicCSRF(w, r)), v, nil))
	return nil
}

func (c *Console) enrol(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ctx, now, addr := r.Context(), c.now(), c.address(r)
	token := r.PathValue("token")
	o, v, err := c.enrolment(ctx, token)
	if errors.Is(err, ErrNotFound) {
		c.auditReq(r, "anonymous", "enrol.refused", "", nil)
		return &httpError{status: http.StatusNotFound, msg: msgBadEnrolment}
	}
	if err != nil {
		return err
	}
	password, again, code := r.PostFormValue("password"), r.PostFormValue("password_again"), r.PostFormValue("code")
	var errs fieldErrs
	switch {
	case len([]rune(password)) < MinPassword:
		errs.add("password", "use at least "+strconv.Itoa(MinPassword)+" characters")
	case len(password) > MaxPassword:
		errs.add("password", "use at most "+strconv.Itoa(MaxPassword)+" bytes")
	case password != again:
		errs.add("password_again", "the two passwords differ")
	}
	step, ok := matchTOTP(v.Secret, clip(code, 20), -1, now)
	if !ok {
		errs.add("code", "that code is not right: scan the QR code again or check your phone's clock, then enter the current code")
	}
	if len(errs) > 0 {
		c.auditReq(r, "anonymous", "enrol.failed", o.Email, map[string]any{"fields": errs.names()})
		c.render(w, r, http.StatusUnprocessableEntity, enrolPage(c.publicPage("Enrol", c.publicCSRF(w, r)), v, errs.list()))
		return nil
	}
	hash := hashPassword(password)
	var codes []string
	err = transact(ctx, c.o.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `update operator_enrolments set used_at = $2 where token_hash = $1 and used_at is null and expires_at > $2`,
			tokenHash(token), now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return ErrNotFound // used by a concurrent request
		}
		tag, err = tx.Exec(ctx, `update operators set password_hash = $2, totp_secret = totp_pending, totp_pending = '',
			totp_last_counter = $3, enrolled_at = $4, updated_at = $4 where id = $1 and totp_pending = $5`,
			o.ID, hash, step, now, o.totpPending)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return ErrNotFound // reset by an admin meanwhile
		}
		if err := revokeAll(ctx, tx, o.ID, now); err != nil {
			return err
		}
		if codes, err = newRecoveryCodes(ctx, tx, o.ID, now); err != nil {
			return err
		}
		return audit(ctx, tx, now, "person:"+o.Email, "operator.enrolled", o.Email, addr, nil)
	})
	if errors.Is(err, ErrNotFound) {
		return &httpError{status: http.StatusNotFound, msg: msgBadEnrolment}
	}
	if err != nil {
		return err
	}
	tok, s, err := createSession(ctx, c.o.Pool, o.ID, "full", addr, r.UserAgent(), now)
	if err != nil {
		return err
	}
	c.setCookie(w, r, sessionCookie, tok, 0, http.SameSiteLaxMode)
	o.Enrolled = true
	p := &principal{Operator: o, Role: o.Role, CSRF: s.CSRF}
	c.render(w, r, http.StatusOK, recoveryCodesPage(c.page(p, "Recovery codes"), codes, true))
	return nil
}

// fieldErrs collects form errors.
type fieldErrs []fieldErr

type fieldErr struct{ Field, Msg string }

func (e *fieldErrs) add(field, msg string) { *e = append(*e, fieldErr{field, msg}) }

func (e fieldErrs) names() []string {
	var out []string
	for _, f := range e {
		out = append(out, f.Field)
	}
	return out
}

func (e fieldErrs) list() map[string]string {
	m := map[string]string{}
	for _, f := range e {
		m[f.Field] = f.Msg
	}
	return m
}

// sealStoredSecret encrypts an operator's TOTP secret stored in plain text
// (from before a SecretKey was configured), once it has just proved right.
func (c *Console) sealStoredSecret(ctx context.Context, o Operator, secret string) error {
	if c.aead == nil || strings.HasPrefix(o.totpSecret, sealedPrefix) {
		return nil
	}
	_, err := c.o.Pool.Exec(ctx, `update operators set totp_secret = $2 where id = $1 and totp_secret = $3`,
		o.ID, c.sealSecret(o.ID, secret), o.totpSecret)
	return err
}
