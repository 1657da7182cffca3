package console

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{7}, SecretKeySize)

func withKey(key []byte) func(*Options) { return func(o *Options) { o.SecretKey = key } }

func storedSecret(t *testing.T, e *env, email string) string {
	t.Helper()
	var s string
	if err := e.pool.QueryRow(context.Background(), `select totp_secret from operators where email = $1`, email).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTOTPSecretsEncryptedAtRest(t *testing.T) {
	e := newEnv(t, withKey(testKey))
	ctx := context.Background()
	if _, err := New(Options{Pool: e.pool, Incidents: e.store, SecretKey: testKey[:16]}); err == nil {
		t.Error("New accepted a 16-byte SecretKey")
	}

	// Enrolled with a key: the row holds no trace of the secret, and the
	// code from it signs in.
	b := e.browser()
	op := e.enrol(b, "ada@example.com", Viewer)
	stored := storedSecret(t, e, op.email)
	if !strings.HasPrefix(stored, sealedPrefix) || strings.Contains(stored, op.secret) {
		t.Fatalf("stored secret %q", stored)
	}
	b.signOut()
	b.signIn(op)
	if e.auditCount("signin", op.email) != 1 {
		t.Error("sign-in with an encrypted secret not recorded")
	}

	// A secret stored in plain text before the key was set still works, and
	// is sealed once it has proved right.
	plain := "JBSWY3DPEHPK3PXP"
	now := e.clk.Now()
	if _, err := e.pool.Exec(ctx, `insert into operators (email, role, password_hash, totp_secret, enrolled_at, created_at, updated_at)
		values ('old@example.com', 'viewer', $1, $2, $3, $3, $3)`, hashPassword(testPassword), plain, now); err != nil {
		t.Fatal(err)
	}
	old := operator{email: "old@example.com", password: testPassword, secret: plain}
	c := e.browser()
	c.signIn(old)
	if s := storedSecret(t, e, old.email); !strings.HasPrefix(s, sealedPrefix) || strings.Contains(s, plain) {
		t.Errorf("plain secret not sealed after sign-in: %q", s)
	}
	c.signOut()
	c.signIn(old)

	// SealSecrets seals the rest at once: an active secret and a pending one.
	if _, err := e.pool.Exec(ctx, `insert into operators (email, role, password_hash, totp_secret, totp_pending, enrolled_at, created_at, updated_at)
		values ('plain@example.com', 'viewer', $1, $2, $2, $3, $3, $3)`, hashPassword(testPassword), plain, now); err != nil {
		t.Fatal(err)
	}
	if n, err := e.c.SealSecrets(ctx); err != nil || n != 2 {
		t.Errorf("SealSecrets: %d %v", n, err)
	}
	if n, err := e.c.SealSecrets(ctx); err != nil || n != 0 {
		t.Errorf("SealSecrets again: %d %v", n, err)
	}
	var left int
	_ = e.pool.QueryRow(ctx, `select count(*) from operators where totp_secret like '%JBSWY3DPEHPK3PXP%' or totp_pending like '%JBSWY3DPEHPK3PXP%'`).Scan(&left)
	if left != 0 {
		t.Errorf("%d plain secrets left", left)
	}
	plainOp := operator{email: "plain@example.com", password: testPassword, secret: plain}
	d := e.browser()
	d.signIn(plainOp)

	// New recovery codes check the code against the encrypted secret too.
	e.clk.Add(30 * time.Second)
	if r := c.submit("/admin/account", "/admin/account/recovery-codes", url.Values{"code": {e.code(plain, 0)}}); r.status != http.StatusOK {
		t.Errorf("recovery codes with an encrypted secret: %d", r.status)
	}

	// A sealed secret moved to another operator's row does not open there,
	// and the error says nothing of the secret.
	if _, err := e.pool.Exec(ctx, `update operators set totp_secret = $1 where email = $2`, storedSecret(t, e, old.email), op.email); err != nil {
		t.Fatal(err)
	}
	var id int64
	_ = e.pool.QueryRow(ctx, `select id from operators where email = $1`, op.email).Scan(&id)
	if _, err := e.c.openSecret(id, storedSecret(t, e, op.email)); err == nil || strings.Contains(err.Error(), plain) {
		t.Errorf("a moved secret: %v", err)
	}
}

func TestSecretKeyParsingAndChecks(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n", strings.Repeat("07", 32)} {
		if k, err := ParseSecretKey(s); err != nil || !bytes.Equal(k, testKey) {
			t.Errorf("ParseSecretKey(%q) = %x, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "c2hvcnQ=", "not a key!"} {
		if _, err := ParseSecretKey(s); err == nil {
			t.Errorf("ParseSecretKey(%q) accepted", s)
		}
	}
	c := &Console{}
	if got, err := c.openSecret(1, "JBSWY3DPEHPK3PXP"); err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Errorf("plain secret without a key: %q %v", got, err)
	}
	if _, err := c.openSecret(1, sealedPrefix+"AAAA"); err == nil {
		t.Error("a sealed secret opened without a key")
	}
	aead, err := newAEAD(testKey)
	if err != nil {
		t.Fatal(err)
	}
	c.aead = aead
	sealed := c.sealSecret(3, "JBSWY3DPEHPK3PXP")
	if sealed == c.sealSecret(3, "JBSWY3DPEHPK3PXP") {
		t.Error("sealing is not randomised")
	}
	if got, err := c.openSecret(3, sealed); err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Errorf("round trip: %q %v", got, err)
	}
	if _, err := newAEAD(testKey[:16]); err == nil {
		t.Error("a 16-byte key accepted")
	}
}
