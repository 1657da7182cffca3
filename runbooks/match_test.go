package runbooks

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// rb builds a runbook for matching tests.
func rb(id, severity string, c Criteria) Runbook {
	return Runbook{ID: id, Title: id, Severity: severity, Match: c}
}

func ids(ms []Matched) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestMatchTable(t *testing.T) {
	set := []Runbook{
		rb("password", "major", Criteria{Steps: []string{"password"}, ErrorClasses: []string{"http_status", "assertion"}, Components: []string{"Login"}, Classification: NonSecurity}),
		rb("events", "critical", Criteria{Steps: []string{"password"}, ErrorClasses: []string{"http_status"}, Components: []string{"Login"}, Classification: NonSecurity, MessageContains: []string{"503"}}),
		rb("general", "minor", Criteria{Classification: NonSecurity}),
		rb("security", "critical", Criteria{Classification: Security}),
		rb("tls", "critical", Criteria{ErrorClasses: []string{"tls"}}),
		rb("probe-b", "major", Criteria{Probes: []string{"login-remembered"}}),
		rb("probe-a", "major", Criteria{Probes: []string{"login-remembered"}}),
		rb("probe-minor", "minor", Criteria{Probes: []string{"login-remembered"}}),
		rb("empty", "critical", Criteria{}),
		rb("second-factor", "major", Criteria{Roles: []string{"second_factor"}, ErrorClasses: []string{"totp_rejected", "http_status"}, Classification: NonSecurity}),
		rb("probe-problem", "minor", Criteria{ErrorClasses: []string{"rate_limited"}}),
	}
	tests := []struct {
		name        string
		q           Query
		want        []string
		wantScores  []int
		wantReasons []string // of the first match
	}{
		{
			name: "events outage: message hint puts events first",
			q: Query{Probes: []string{"login"}, Steps: []string{"password"}, ErrorClasses: []string{"http_status"},
				Components: []string{"Login"}, Classification: NonSecurity, Messages: []string{"password: HTTP 503 Service Unavailable"}},
			want:        []string{"events", "password", "general"},
			wantScores:  []int{13, 10, 1},
			wantReasons: []string{"step password failing", "error class http_status", `message mentions "503"`, "component Login affected", "classification non_security"},
		},
		{
			name: "same score without the hint: severity breaks the tie",
			q: Query{Steps: []string{"password"}, ErrorClasses: []string{"http_status"},
				Components: []string{"Login"}, Classification: NonSecurity, Messages: []string{"HTTP 500"}},
			want:       []string{"events", "password", "general"},
			wantScores: []int{10, 10, 1},
		},
		{
			name:       "assertion at the password step is not the events signature's class",
			q:          Query{Steps: []string{"password"}, ErrorClasses: []string{"assertion"}, Components: []string{"Login"}, Classification: NonSecurity},
			want:       []string{"password", "general"},
			wantScores: []int{10, 1},
		},
		{
			name:        "names compared without regard to case",
			q:           Query{Steps: []string{"PASSWORD"}, ErrorClasses: []string{"HTTP_STATUS"}, Classification: NonSecurity},
			want:        []string{"events", "password", "general"},
			wantScores:  []int{8, 8, 1},
			wantReasons: []string{"step PASSWORD failing", "error class HTTP_STATUS", "classification non_security"},
		},
		{
			name:        "classification is a condition: no non-security runbook for a security incident",
			q:           Query{Steps: []string{"password"}, ErrorClasses: []string{"http_status"}, Components: []string{"Login"}, Classification: Security},
			want:        []string{"security"},
			wantScores:  []int{1},
			wantReasons: []string{"classification security"},
		},
		{
			name:       "TLS failure: the tls runbook beats the general security one",
			q:          Query{Steps: []string{"login_page"}, ErrorClasses: []string{"tls"}, Classification: Security},
			want:       []string{"tls", "security"},
			wantScores: []int{3, 1},
		},
		{
			name:       "equal score and severity: id breaks the tie",
			q:          Query{Probes: []string{"login-remembered"}, Classification: "undetermined"},
			want:       []string{"probe-a", "probe-b", "probe-minor"},
			wantScores: []int{2, 2, 2},
		},
		{
			name:       "where without what does not fit",
			q:          Query{Steps: []string{"password"}, Components: []string{"Login"}, ErrorClasses: []string{"timeout"}, Classification: NonSecurity},
			want:       []string{"general"},
			wantScores: []int{1},
		},
		{
			name:       "what without where does not fit",
			q:          Query{Steps: []string{"dashboard"}, Components: []string{"Dashboard"}, ErrorClasses: []string{"http_status"}, Classification: NonSecurity, Messages: []string{"503"}},
			want:       []string{"general"},
			wantScores: []int{1},
		},
		{
			name:        "a step named otherwise still fits on its component",
			q:           Query{Steps: []string{"submit_credentials"}, Components: []string{"login"}, ErrorClasses: []string{"http_status"}, Classification: NonSecurity},
			want:        []string{"events", "password", "general"},
			wantScores:  []int{6, 6, 1},
			wantReasons: []string{"error class http_status", "component login affected", "classification non_security"},
		},
		{
			name:        "a role fits whatever the step is called",
			q:           Query{Steps: []string{"verify-otp"}, Roles: []string{"second_factor"}, ErrorClasses: []string{"totp_rejected"}, Classification: NonSecurity},
			want:        []string{"second-factor", "general"},
			wantScores:  []int{8, 1},
			wantReasons: []string{"role second_factor failing", "error class totp_rejected", "classification non_security"},
		},
		{
			name:       "a role elsewhere does not fit",
			q:          Query{Steps: []string{"authenticate"}, Roles: []string{"password"}, ErrorClasses: []string{"http_status"}, Classification: NonSecurity},
			want:       []string{"general"},
			wantScores: []int{1},
		},
		{
			name:        "a probe problem alone fits only a runbook for probe problems",
			q:           Query{Roles: []string{"second_factor"}, ErrorClasses: []string{"RATE_LIMITED"}, Classification: NonSecurity},
			want:        []string{"probe-problem"},
			wantScores:  []int{3},
			wantReasons: []string{"error class RATE_LIMITED"},
		},
		{
			name: "nothing fits",
			q:    Query{Steps: []string{"dashboard"}, ErrorClasses: []string{"timeout"}, Classification: "undetermined"},
			want: []string{},
		},
		{
			name: "empty query",
			q:    Query{},
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Match(set, tt.q)
			if !reflect.DeepEqual(ids(got), tt.want) {
				t.Fatalf("Match = %v, want %v", ids(got), tt.want)
			}
			if tt.wantScores != nil {
				var scores []int
				for _, m := range got {
					scores = append(scores, m.Score)
				}
				if !reflect.DeepEqual(scores, tt.wantScores) {
					t.Errorf("scores = %v, want %v", scores, tt.wantScores)
				}
			}
			if tt.wantReasons != nil && !reflect.DeepEqual(got[0].Reasons, tt.wantReasons) {
				t.Errorf("reasons of %s = %q, want %q", got[0].ID, got[0].Reasons, tt.wantReasons)
			}
			// The order does not depend on the order of the set.
			rev := make([]Runbook, len(set))
			for i, r := range set {
				rev[len(set)-1-i] = r
			}
			if again := ids(Match(rev, tt.q)); !reflect.DeepEqual(again, ids(got)) {
				t.Errorf("Match of the reversed set = %v, want %v", again, ids(got))
			}
		})
	}
}

// TestMatchBuiltinsOnMeaning builds queries as incidents would for a
// configuration unlike the demo (a JSON login API with steps "authenticate"
// and "verify-otp", components "Accounts" and "SSO", probe "api-login") with
// roles declared: the built-in runbook each failure must attach first, and
// what else attaches.
func TestMatchBuiltinsOnMeaning(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	q := func(step, role, class, classification string) Query {
		return Query{Probes: []string{"api-login"}, Steps: []string{step}, Roles: []string{role},
			ErrorClasses: []string{class}, Components: []string{"Accounts", "SSO"}, Classification: classification,
			Messages: []string{step + ": answered 401 'Authentication failed' after 5.02 s; usually 0.9 s"}}
	}
	tests := []struct {
		name  string
		q     Query
		first string
		also  []string
	}{
		{"an error right after the password", q("authenticate", "password", "http_status", NonSecurity),
			"login-events-down", []string{"login-password-step", "long-outage-communication"}},
		{"a timeout right after the password", q("authenticate", "password", "timeout", NonSecurity),
			"login-events-down", []string{"login-password-step", "long-outage-communication"}},
		{"the password not accepted", q("authenticate", "password", "assertion", NonSecurity),
			"login-password-step", []string{"long-outage-communication"}},
		{"the sign-in page unreachable", q("start", "login_page", "dns", NonSecurity),
			"login-password-step", []string{"long-outage-communication"}},
		{"a code rejected", q("verify-otp", "second_factor", "totp_rejected", NonSecurity),
			"two-step-failing", []string{"long-outage-communication"}},
		{"the code step erroring", q("verify-otp", "second_factor", "http_status", NonSecurity),
			"two-step-failing", []string{"long-outage-communication"}},
		{"a recovery code refused", q("use-backup-code", "recovery_code", "assertion", NonSecurity),
			"recovery-code-failing", []string{"long-outage-communication"}},
		{"a remembered device failing", q("trusted-device", "remembered_device", "http_status", NonSecurity),
			"remembered-device-failing", []string{"long-outage-communication"}},
		{"the account page failing", q("me", "signed_in", "timeout", NonSecurity),
			"signed-in-pages-failing", []string{"long-outage-communication"}},
		{"signing out failing", q("sign-out", "logout", "http_status", NonSecurity),
			"signed-in-pages-failing", []string{"long-outage-communication"}},
		{"the code step rate-limited", q("verify-otp", "second_factor", "rate_limited", NonSecurity),
			"probe-account-problem", nil},
		{"the code window taken", q("verify-otp", "second_factor", "code_window_taken", NonSecurity),
			"probe-account-problem", nil},
		{"the password rate-limited, undetermined", q("authenticate", "password", "rate_limited", "undetermined"),
			"probe-account-problem", nil},
		{"an expired certificate", q("", "login_page", "cert_expired", NonSecurity),
			"tls-certificate", []string{"long-outage-communication"}},
		{"an untrusted certificate", q("", "login_page", "tls", Security),
			"tls-certificate", []string{"suspected-security-incident"}},
		{"the second step skipped", q("authenticate", "password", "security_check", Security),
			"suspected-security-incident", nil},
		{"a step of no particular meaning", q("fetch-config", "other", "http_status", NonSecurity),
			"long-outage-communication", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(Match(set, tt.q))
			want := append([]string{tt.first}, tt.also...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Match = %v, want %v", got, want)
			}
		})
	}
}

// A probe problem is the probe's, not the customers': its runbook attaches,
// and no runbook offers words for customers, so nothing is prefilled or
// published from one.
func TestProbeProblemsOfferNoPublicWords(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"rate_limited", "code_window_taken"} {
		for _, classification := range []string{NonSecurity, Security, "undetermined"} {
			q := Query{Probes: []string{"api-login"}, Steps: []string{"verify-otp"}, Roles: []string{"second_factor"},
				ErrorClasses: []string{class}, Components: []string{"SSO"}, Classification: classification,
				Messages: []string{"verify-otp: answered 429 'Too Many Requests' with Retry-After 60"}}
			ms := Match(set, q)
			if len(ms) == 0 || ms[0].ID != "probe-account-problem" {
				t.Errorf("%s (%s): Match = %v, want probe-account-problem first", class, classification, ids(ms))
			}
			for _, name := range TemplateNames {
				if m, tp, ok := BestTemplate(ms, name, classification); ok {
					t.Errorf("%s (%s): BestTemplate(%s) = %s's %s (%s), want none: customers are not told of a probe problem",
						class, classification, name, m.ID, tp.Name, tp.Classification)
				}
			}
		}
	}
	// With a customer-facing failure beside it, the customers' runbooks fit again.
	q := Query{Roles: []string{"second_factor", "password"}, ErrorClasses: []string{"rate_limited", "http_status"}, Classification: NonSecurity}
	if got, want := ids(Match(set, q)), []string{"login-events-down", "login-password-step", "two-step-failing", "probe-account-problem", "long-outage-communication"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rate_limited beside http_status: Match = %v, want %v", got, want)
	}
}

func TestLoadOverridesByID(t *testing.T) {
	dir := t.TempDir()
	write := func(name, id, severity, classification string) {
		t.Helper()
		src := "---\nid: " + id + "\ntitle: Ours\nseverity: " + severity + "\nowner: us\nmatch:\n  steps: [password]\n  classification: " + classification + "\n---\n## Steps\n\n1. Call the events team.\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("events.md", "login-events-down", "minor", NonSecurity) // replaces the built-in
	write("ours.md", "our-password", "critical", NonSecurity)     // adds one
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# not a runbook\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	builtins, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != len(builtins)+1 {
		t.Fatalf("Load(dir) has %d runbooks, want %d (built-ins plus one new)", len(set), len(builtins)+1)
	}
	ev, ok := set.ByID("login-events-down")
	if !ok || ev.Title != "Ours" || ev.Source != filepath.Join(dir, "events.md") {
		t.Fatalf("login-events-down = %q from %q, want ours from the directory", ev.Title, ev.Source)
	}
	if len(ev.Templates) != 0 {
		t.Errorf("the override kept %d built-in templates, want none: it replaces the whole runbook", len(ev.Templates))
	}

	q := Query{Steps: []string{"password"}, Roles: []string{"password"}, ErrorClasses: []string{"http_status"}, Components: []string{"Login"}, Classification: NonSecurity}
	got := ids(Match(set, q))
	// login-password-step: role 4 + class 3 + classification 1; our-password
	// and the overridden events runbook: step 4 + classification 1 each,
	// critical before minor.
	want := []string{"login-password-step", "our-password", "login-events-down", "long-outage-communication"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Match = %v, want %v", got, want)
	}

	m, tp, ok := BestTemplate(Match(set, q), FirstUpdate, NonSecurity)
	if !ok || m.ID != "login-password-step" || tp.Name != FirstUpdate || tp.Classification != NonSecurity {
		t.Errorf("BestTemplate = %s %s (%s) %v, want login-password-step's first_update (non_security)", m.ID, tp.Name, tp.Classification, ok)
	}
}

func TestLoadRejectsABadDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.md"), []byte("---\nid: x\ncolour: red\n---\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil {
		t.Fatal("Load of a directory with a bad runbook succeeded")
	}
	want := filepath.Join(dir, "bad.md") + `:3: unknown key "colour"`
	if ps, ok := err.(Problems); !ok || !containsProblem(ps, want) {
		t.Errorf("Load error = %v, want a problem %q", err, want)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
}

func containsProblem(ps []Problem, want string) bool {
	for _, p := range ps {
		if p.String() == want {
			return true
		}
	}
	return false
}

func BenchmarkLoadBuiltins(b *testing.B) {
	for b.Loop() {
		if _, err := Load(""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	set, err := Load("")
	if err != nil {
		b.Fatal(err)
	}
	q := Query{Probes: []string{"login"}, Steps: []string{"password"}, Roles: []string{"password"}, ErrorClasses: []string{"http_status"},
		Components: []string{"Login"}, Classification: NonSecurity, Messages: []string{"step password: status 503, want 303"}}
	for b.Loop() {
		if len(Match(set, q)) == 0 {
			b.Fatal("no match")
		}
	}
}
