package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// TOTP secrets at rest: with Options.SecretKey set, every TOTP secret the
// console stores is sealed with AES-256-GCM, written as "enc1:" followed by
// the base64 of nonce and ciphertext. The operator's id is the additional
// data, so a sealed secret copied to another operator's row does not open.
// Secrets stored in plain base32 (before a key was configured) keep working
// and are sealed at the operator's next sign-in with a code.

const sealedPrefix = "enc1:"

// SecretKeySize is the length of Options.SecretKey: an AES-256 key.
const SecretKeySize = 32

// ParseSecretKey reads a key for Options.SecretKey written as base64 (what
// "openssl rand -base64 32" prints) or as 64 hexadecimal digits.
func ParseSecretKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == SecretKeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != SecretKeySize {
				return nil, fmt.Errorf("the key is %d bytes, want %d (make one with: openssl rand -base64 32)", len(b), SecretKeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("the key is neither base64 nor hexadecimal (make one with: openssl rand -base64 32)")
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("SecretKey is %d bytes, want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func secretAD(operatorID int64) []byte {
	return []byte("candor totp operator:" + strconv.FormatInt(operatorID, 10))
}

// sealSecret returns how a TOTP secret is stored for an operator: sealed
// when a key is configured, as it is otherwise.
func (c *Console) sealSecret(operatorID int64, secret string) string {
	if c.aead == nil || secret == "" {
		return secret
	}
	nonce := make([]byte, c.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := c.aead.Seal(nonce, nonce, []byte(secret), secretAD(operatorID))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// openSecret returns a stored TOTP secret as authenticator apps know it.
// Its errors never contain the secret.
func (c *Console) openSecret(operatorID int64, stored string) (string, error) {
	if !strings.HasPrefix(stored, sealedPrefix) {
		return stored, nil // plain base32, stored before a key was configured
	}
	if c.aead == nil {
		return "", fmt.Errorf("operator %d: the TOTP secret is encrypted but the console has no SecretKey", operatorID)
	}
	raw, err := base64.RawStdEncoding.DecodeString(stored[len(sealedPrefix):])
	if err != nil || len(raw) < c.aead.NonceSize() {
		return "", fmt.Errorf("operator %d: the encrypted TOTP secret is malformed", operatorID)
	}
	n := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, raw[:n], raw[n:], secretAD(operatorID))
	if err != nil {
		return "", fmt.Errorf("operator %d: the TOTP secret does not open with this SecretKey", operatorID)
	}
	return string(plain), nil
}

// SealSecrets encrypts every TOTP secret still stored in plain text (active
// or pending enrolment) with the SecretKey, and returns how many it sealed.
// Without it, a plain secret is sealed at its operator's next sign-in with
// a code; call it once at start-up to seal them all at once (it does
// nothing without a SecretKey, and is safe on every replica).
func (c *Console) SealSecrets(ctx context.Context) (int, error) {
	if c.aead == nil {
		return 0, nil
	}
	rows, err := c.o.Pool.Query(ctx, `select id, totp_secret, totp_pending from operators
		where (totp_secret <> '' and totp_secret not like 'enc1:%') or (totp_pending <> '' and totp_pending not like 'enc1:%')`)
	if err != nil {
		return 0, fmt.Errorf("seal secrets: %w", err)
	}
	type plainRow struct {
		id              int64
		secret, pending string
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (plainRow, error) {
		var p plainRow
		err := row.Scan(&p.id, &p.secret, &p.pending)
		return p, err
	})
	if err != nil {
		return 0, fmt.Errorf("seal secrets: %w", err)
	}
	n := 0
	for _, p := range list {
		for _, col := range []struct{ name, value string }{{"totp_secret", p.secret}, {"totp_pending", p.pending}} {
			if col.value == "" || strings.HasPrefix(col.value, sealedPrefix) {
				continue
			}
			// Only if unchanged meanwhile (an enrolment or a reset).
			tag, err := c.o.Pool.Exec(ctx, `update operators set `+col.name+` = $2 where id = $1 and `+col.name+` = $3`,
				p.id, c.sealSecret(p.id, col.value), col.value)
			if err != nil {
				return n, fmt.Errorf("seal secrets: %w", err)
			}
			n += int(tag.RowsAffected())
		}
	}
	return n, nil
}
