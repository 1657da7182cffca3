package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's second recommended set (19 MiB, two passes,
// one lane), about 30 ms a hash here. They are written into each hash, so
// raising them later leaves existing hashes verifiable.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Limits on passwords: long enough to resist guessing, short enough that
// hashing one costs a bounded amount.
const (
	MinPassword = 12
	MaxPassword = 1024
)

// randomToken returns n random bytes in URL-safe base64 without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is how random tokens (sessions, devices, enrolment links, API
// tokens, recovery codes) are stored: they carry at least 80 random bits,
// so a fast hash suffices and lets them be looked up by value.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// hashPassword returns an argon2id hash in the PHC string format.
func hashPassword(password string) string {
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// dummyHash is verified against when the account does not exist, so that an
// unknown email costs the same time as a wrong password.
var dummyHash = hashPassword(randomToken(16))

// checkPassword reports whether password matches the PHC string hash, in
// constant time. A malformed or empty hash never matches (but still costs a
// hash, so timing does not tell).
func checkPassword(hash, password string) bool {
	ok := true
	if hash == "" {
		hash, ok = dummyHash, false
	}
	var (
		version, mem, iter int
		threads            uint8
		saltB64, keyB64    string
	)
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		parts, ok = strings.Split(dummyHash, "$"), false
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iter, &threads); err != nil ||
		mem < 1024 || mem > 1<<20 || iter < 1 || iter > 16 || threads < 1 {
		return false
	}
	saltB64, keyB64 = parts[4], parts[5]
	salt, err1 := base64.RawStdEncoding.DecodeString(saltB64)
	want, err2 := base64.RawStdEncoding.DecodeString(keyB64)
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, uint32(iter), uint32(mem), threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && ok
}

// TOTP: RFC 6238 with the parameters every authenticator app supports.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // one step either side: clocks up to 30 s apart still agree
)

var totpOpts = hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}

// newTOTPSecret returns a fresh base32 secret (160 bits, as RFC 4226 advises).
func newTOTPSecret() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// totpKey is the key an authenticator app scans.
func totpKey(issuer, account, secret string) (*otp.Key, error) {
	u := fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=6&period=%d",
		url.PathEscape(issuer), url.PathEscape(account), secret, url.QueryEscape(issuer), totpPeriod)
	return otp.NewKeyFromURL(u)
}

// matchTOTP returns the time step at which code is valid for secret at now,
// looking one step either side, and only at steps after last: a code is
// accepted once, and so is any code older than the last one accepted.
func matchTOTP(secret, code string, last int64, now time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		if step <= last || step < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// Recovery codes: ten of them, 80 random bits each, written as four groups of
// four base32 characters.
const recoveryCodes = 10

func newRecoveryCode() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	s := strings.ToLower(base32.StdEncoding.EncodeToString(b)) // 16 characters
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// normalizeRecoveryCode accepts a code typed with or without dashes, spaces or
// capitals.
func normalizeRecoveryCode(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '2' && r <= '7') {
			b.WriteRune(r)
		}
	}
	n := b.String()
	if len(n) != 16 {
		return ""
	}
	return n[0:4] + "-" + n[4:8] + "-" + n[8:12] + "-" + n[12:16]
}

// API tokens start with a recognisable prefix so that secret scanners and
// people can tell what leaked.
const tokenPrefix = "candor_"

func newAPIToken() string { return tokenPrefix + randomToken(32) }

var errBadToken = errors.New("invalid token")
