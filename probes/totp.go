package probes

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTPParams are the parameters of an RFC 6238 code.
type TOTPParams struct {
	Algorithm otp.Algorithm // SHA1, SHA256 or SHA512
	Digits    int           // 6 or 8
	Period    time.Duration // whole seconds
}

// DefaultTOTP is what authenticator apps use: SHA1, 6 digits, 30 seconds.
var DefaultTOTP = TOTPParams{Algorithm: otp.AlgorithmSHA1, Digits: 6, Period: 30 * time.Second}

// minRemaining is how much of a TOTP window must be left when a code is
// computed; with less, the probe waits for the next window, so that a slow
// network does not make the server see an expired code.
const minRemaining = 2 * time.Second

// totpParams reads the optional literal arguments of {{ totp .seed [alg] [digits] [period] }}.
func totpParams(args []arg) (TOTPParams, error) {
	p := DefaultTOTP
	if len(args) >= 1 {
		a := args[0]
		if a.variable != "" || a.isNum {
			return p, errors.New(`the TOTP algorithm is written in quotes: "sha1", "sha256" or "sha512"`)
		}
		switch strings.ToLower(a.text) {
		case "sha1":
			p.Algorithm = otp.AlgorithmSHA1
		case "sha256":
			p.Algorithm = otp.AlgorithmSHA256
		case "sha512":
			p.Algorithm = otp.AlgorithmSHA512
		default:
			return p, fmt.Errorf("unknown TOTP algorithm %q: use sha1, sha256 or sha512", a.text)
		}
	}
	if len(args) >= 2 {
		a := args[1]
		if !a.isNum || a.num != 6 && a.num != 8 {
			return p, fmt.Errorf("TOTP digits must be 6 or 8, not %s", a)
		}
		p.Digits = a.num
	}
	if len(args) >= 3 {
		a := args[2]
		if !a.isNum || a.num < 5 || a.num > 600 {
			return p, fmt.Errorf("the TOTP period is a number of seconds between 5 and 600, not %s", a)
		}
		p.Period = time.Duration(a.num) * time.Second
	}
	return p, nil
}

// TOTPCode returns the RFC 6238 code for seed (base32, as authenticator apps
// show it) at t.
func TOTPCode(seed string, t time.Time, p TOTPParams) (string, error) {
	code, err := totp.GenerateCodeCustom(seed, t, totp.ValidateOpts{
		Period:    uint(p.Period / time.Second),
		Digits:    otp.Digits(p.Digits),
		Algorithm: p.Algorithm,
	})
	if err != nil {
		return "", errors.New("the TOTP seed is not valid base32")
	}
	return code, nil
}

// validSeed reports whether seed decodes as base32 the way TOTPCode reads it.
func validSeed(seed string) bool {
	s := strings.ToUpper(strings.TrimSpace(seed))
	if n := len(s) % 8; n != 0 {
		s += strings.Repeat("=", 8-n)
	}
	b, err := base32.StdEncoding.DecodeString(s)
	return err == nil && len(b) > 0
}

// codeAtSubmission computes the code for the moment of submission. When fewer
// than two seconds of the current window remain, it first waits for the next
// window (through sleep, so tests do not wait).
func codeAtSubmission(ctx context.Context, seed string, p TOTPParams, now func() time.Time, sleep func(context.Context, time.Duration) error) (string, time.Duration, error) {
	code, _, waited, err := codeInWindow(ctx, seed, p, now, sleep)
	return code, waited, err
}

// codeInWindow is [codeAtSubmission] that also returns the moment the code
// was computed for, which names its window.
func codeInWindow(ctx context.Context, seed string, p TOTPParams, now func() time.Time, sleep func(context.Context, time.Duration) error) (string, time.Time, time.Duration, error) {
	t := now()
	period := p.Period
	left := period - time.Duration(t.UnixNano()%int64(period))
	var waited time.Duration
	if left < minRemaining {
		// A few milliseconds past the boundary, so the clock has surely moved on.
		if err := sleep(ctx, left+10*time.Millisecond); err != nil {
			return "", t, 0, err
		}
		waited = left + 10*time.Millisecond
		t = now()
	}
	code, err := TOTPCode(seed, t, p)
	return code, t, waited, err
}

// claimedCode returns the code to submit now for account (a key from
// [accountKey]). Without claims it is [codeAtSubmission]. With claims it
// first claims the code's window (see [Claims]). When that window is taken,
// the run claims the next free window at once (so that a run starting at
// that window's edge does not take it first), waits for it and submits its
// code; it does so only while the wait leaves minRemaining of the run's
// timeout. When it does not, the run ends with a [*WindowTakenError] rather
// than sending a code the target would refuse as used: a problem of the
// probe, not of the target.
func (r *Runner) claimedCode(ctx context.Context, seed string, p TOTPParams, account string) (string, error) {
	code, at, _, err := codeInWindow(ctx, seed, p, r.now, r.sleep)
	if err != nil || r.claims == nil {
		return code, err
	}
	w := windowStart(at, p.Period)
	if r.claims.Claim(ctx, account, w) {
		return code, nil
	}
	for {
		next := w.Add(p.Period)
		wait := next.Sub(r.now()) + 10*time.Millisecond
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+minRemaining {
			return "", &WindowTakenError{Window: w, Period: p.Period}
		}
		if r.claims.Claim(ctx, account, next) {
			if err := r.sleep(ctx, wait); err != nil {
				return "", err
			}
			return TOTPCode(seed, next, p)
		}
		w = next
	}
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
