package incidents

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/internal/config"
)

func TestFirstUpdate(t *testing.T) {
	data := TemplateData{Components: []string{"Login", "Two-step authentication"}, Probe: "login", Step: "password",
		Role: "password", ErrorClass: "http_status", StartedAt: time.Date(2025, 3, 4, 8, 12, 30, 0, time.FixedZone("NZDT", 13*3600)),
		Locations: []string{"eu-west"}}
	for _, tc := range []struct {
		name    string
		pol     Policy
		class   Classification
		publish bool
	}{
		{"non-security publishes", Policy{}, NonSecurity, true},
		{"security never", Policy{}, Security, false},
		{"undetermined never", Policy{}, Undetermined, false},
		{"turned off", Policy{AutoPublish: new(bool)}, NonSecurity, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := data
			d.Classification = string(tc.class)
			pub, err := tc.pol.FirstUpdate(d)
			if err != nil {
				t.Fatal(err)
			}
			if pub.Publish != tc.publish {
				t.Errorf("publish %v, want %v (%s)", pub.Publish, tc.publish, pub.Why)
			}
			if !tc.publish {
				return
			}
			for _, want := range []string{"**Login and Two-step authentication**", "signing in fails after the password is entered", "2025-03-03 19:12 UTC",
				"We have no indication that this is a security incident", "within 30m"} {
				if !strings.Contains(pub.Message, want) {
					t.Errorf("message lacks %q:\n%s", want, pub.Message)
				}
			}
			if pub.Title != "Login and Two-step authentication: sign-in failing" {
				t.Errorf("title %q", pub.Title)
			}
		})
	}
}

func TestCheckClaims(t *testing.T) {
	for _, tc := range []struct {
		msg       string
		class     Classification
		confirmed bool
		ok        bool
	}{
		{"We have no indication that this is a security incident.", NonSecurity, false, true},
		{"This is not a security incident and no data was compromised.", NonSecurity, false, false},
		{"This is NOT a  security issue.", NonSecurity, false, false},
		{"No customer data was accessed.", NonSecurity, false, false},
		{"This is not a security incident and no data was compromised.", NonSecurity, true, true},
		{"This is not a security incident.", Security, true, false},
	} {
		if err := CheckClaims(tc.msg, tc.class, tc.confirmed); (err == nil) != tc.ok {
			t.Errorf("%q (%s, confirmed=%v): got %v, want ok=%v", tc.msg, tc.class, tc.confirmed, err, tc.ok)
		}
	}
}

func TestReclassificationNeedsReason(t *testing.T) {
	err := CheckReclassification("harmless", " ")
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want FieldErrors", err)
	}
	if _, ok := fe.Field("classification"); !ok {
		t.Errorf("no error on classification: %v", fe)
	}
	if _, ok := fe.Field("reason"); !ok {
		t.Errorf("no error on reason: %v", fe)
	}
	var one FieldError
	if !errors.As(err, &one) {
		t.Errorf("errors.As does not find a FieldError in %v", err)
	}
	if err := CheckReclassification(NonSecurity, "TLS library not in use anywhere"); err != nil {
		t.Errorf("got %v", err)
	}
	// PostgreSQL refuses NUL in text: the person hears which field, not "try again".
	for _, bad := range []string{"seen\x00there", "\xff\xfe"} {
		if err := CheckReclassification(Security, bad); !errors.As(err, &fe) || len(fe) != 1 || fe[0].Field != "reason" {
			t.Errorf("reason %q: %v", bad, err)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	const doc = `components:
  - name: Login
    probes: [login, nope]
    steps: [password, login/totp, login/missing, ghost]
  - name: login
  - name: "!!"
incidents:
  open_after: 0
  recover_after: 500
  cadence: 10s
  quiet_period: 5m
  templates:
    title: "{{.Nope}}"
    first_update: "Fixed. This is not a security incident."
`
	src, err := config.Parse("candor.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := config.NewChecker(src, func(string) (string, bool) { return "", false })
	var cfg Config
	c.Decode("$.components", &cfg.Components)
	c.Decode("$.incidents", &cfg.Policy)
	Check(c, "$", &cfg, map[string][]string{"login": {"login_page", "password", "totp"}})
	got := c.Err()
	if got == nil {
		t.Fatal("no problems found")
	}
	for _, want := range []string{
		`candor.yaml:3:21: component "Login" names probe "nope"`,
		`candor.yaml:4:35: probe "login" has no step "missing"`,
		`candor.yaml:4:50: no configured probe has a step "ghost"`,
		`candor.yaml:5:11: component "login" has the same id "login" as components[0]`,
		`candor.yaml:6:11: component name "!!" needs at least one letter or digit`,
		`candor.yaml:9:18: recover_after is 500`,
		`candor.yaml:10:12: cadence is 10s; it must be at least 1m0s`,
		`candor.yaml:13:12: template title does not render`,
		`candor.yaml:14:19: template first_update says "not a security incident"`,
	} {
		if !strings.Contains(got.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, got)
		}
	}
	if strings.Contains(got.Error(), "open_after") {
		t.Errorf("open_after: 0 means the default, not a problem:\n%v", got)
	}
}

func TestComponentID(t *testing.T) {
	for in, want := range map[string]string{
		"Two-step authentication": "two-step-authentication",
		"  API ":                  "api",
		"Log in / out!":           "log-in-out",
		"Zürich DC":               "zürich-dc",
	} {
		if got := ComponentID(in); got != want {
			t.Errorf("ComponentID(%q) = %q, want %q", in, got, want)
		}
	}
}
