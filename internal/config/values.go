package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Secret is a configuration value that must never be shown: a password, a
// token, a TOTP seed. In the file it is written as "${NAME}" (read from the
// environment), "file:/path" (read from a file, trailing newline removed) or,
// for demos only, as the literal value. String, LogValue, MarshalJSON and
// MarshalYAML all redact it; Reveal is the only way to read it.
type Secret struct {
	ref   string
	value string
	set   bool
}

// NewSecret returns a Secret holding value, for code that builds configuration.
func NewSecret(value string) Secret { return Secret{ref: "(set in code)", value: value, set: true} }

// Reveal returns the secret's value. Call it only where the value is used.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether the configuration gave a value.
func (s Secret) IsSet() bool { return s.set }

// Ref returns how the secret was referenced ("${SLACK_TOKEN}", "file:/run/x",
// or "(literal)"), which is safe to show.
func (s Secret) Ref() string { return s.ref }

func (s Secret) String() string {
	if !s.set {
		return ""
	}
	return "[redacted]"
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML implements yaml.BytesMarshaler.
func (s Secret) MarshalYAML() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// UnmarshalYAML implements yaml.BytesUnmarshaler: it keeps the reference;
// the Checker resolves it after decoding, where it can report a position.
func (s *Secret) UnmarshalYAML(b []byte) error {
	raw := strings.TrimSpace(string(b))
	if len(raw) >= 2 && (raw[0] == '"' && raw[len(raw)-1] == '"' || raw[0] == '\'' && raw[len(raw)-1] == '\'') {
		raw = raw[1 : len(raw)-1]
	}
	*s = Secret{ref: raw, set: raw != ""}
	return nil
}

func (s *Secret) resolve(lookup func(string) (string, bool)) error {
	if !s.set {
		return nil
	}
	ref := s.ref
	switch {
	case strings.HasPrefix(ref, "${") && strings.HasSuffix(ref, "}"):
		name := ref[2 : len(ref)-1]
		if name == "" {
			return errors.New("empty environment variable name in ${}")
		}
		v, ok := lookup(name)
		if !ok || v == "" {
			return fmt.Errorf("secret %s is not set: the environment variable %s is missing or empty", ref, name)
		}
		s.value = v
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("secret %s cannot be read: %v", ref, unwrapPath(err))
		}
		s.value = strings.TrimRight(string(b), "\r\n")
		if s.value == "" {
			return fmt.Errorf("secret %s is empty", ref)
		}
	default:
		s.value = ref
		s.ref = "(literal)"
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Text is a plain (not secret) configuration value in which ${NAME} is
// replaced by the environment variable NAME, so that one file serves several
// deployments (target: ${LOGIN_URL}, or https://${LOGIN_HOST}/). "$${" writes
// a literal "${". A variable that is not set is reported at the value's
// position, by name. Unlike a [Secret], a Text may be shown.
type Text string

// String returns the value.
func (t Text) String() string { return string(t) }

func (t *Text) resolve(lookup func(string) (string, bool)) error {
	v, err := expandEnv(string(*t), lookup)
	if err != nil {
		return err
	}
	*t = Text(v)
	return nil
}

// expandEnv replaces every ${NAME} in s with the environment variable NAME.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		if i > 0 && rest[i-1] == '$' { // "$${" is a literal "${"
			b.WriteString(rest[:i-1])
			b.WriteString("${")
			rest = rest[i+2:]
			continue
		}
		b.WriteString(rest[:i])
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q has \"${\" without a closing \"}\": write ${NAME} for an environment variable, or $${ for a literal ${", s)
		}
		name := rest[i+2 : i+end]
		if !envName(name) {
			return "", fmt.Errorf("${%s} is not an environment variable reference: a name is letters, digits and _ (write $${ for a literal ${)", name)
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("${%s}: the environment variable %s is not set", name, name)
		}
		b.WriteString(v)
		rest = rest[i+end+1:]
	}
}

func envName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// Duration is a time.Duration written as "15s", "2m", "1h30m". Bad text is
// reported by the Checker with its position.
type Duration struct {
	D     time.Duration
	raw   string
	given bool
}

// Dur returns a Duration of d, for defaults set in code.
func Dur(d time.Duration) Duration { return Duration{D: d} }

// UnmarshalYAML implements yaml.BytesUnmarshaler.
func (d *Duration) UnmarshalYAML(b []byte) error {
	raw := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	*d = Duration{raw: raw, given: raw != ""}
	return nil
}

// Given reports whether the configuration wrote this duration, so that a
// check can refuse a zero that would otherwise silently mean the default.
func (d Duration) Given() bool { return d.given }

// MarshalYAML implements yaml.BytesMarshaler.
func (d Duration) MarshalYAML() ([]byte, error) { return []byte(d.D.String()), nil }

func (d *Duration) resolve(func(string) (string, bool)) error {
	if d.raw == "" {
		return nil
	}
	v, err := time.ParseDuration(d.raw)
	if err != nil {
		return fmt.Errorf("%q is not a duration: write a number with a unit, such as 30s, 5m or 1h", d.raw)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative: a duration must be positive", d.raw)
	}
	d.D, d.raw = v, ""
	return nil
}

// Or returns d, or def when d was not given.
func (d Duration) Or(def time.Duration) time.Duration {
	if d.D == 0 {
		return def
	}
	return d.D
}
