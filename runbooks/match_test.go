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

// demoQueries are what the demo target's faults produce, as incidents would
// ask: the built-in runbook each must attach first.
func TestMatchBuiltinsForDemoFaults(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		fault string
		q     Query
		first string
		also  []string
	}{
		{"events_down", Query{Probes: []string{"login"}, Steps: []string{"password"}, ErrorClasses: []string{"http_status"},
			Components: []string{"Login"}, Classification: NonSecurity, Messages: []string{"step password: status 503, want 303"}},
			"login-events-down", []string{"login-password-step", "long-outage-communication"}},
		{"error at password", Query{Probes: []string{"login"}, Steps: []string{"password"}, ErrorClasses: []string{"assertion"},
			Components: []string{"Login"}, Classification: NonSecurity, Messages: []string{"body does not contain \"Enter your code\""}},
			"login-password-step", []string{"long-outage-communication"}},
		{"clock_skew", Query{Probes: []string{"login"}, Steps: []string{"totp"}, ErrorClasses: []string{"totp_rejected"},
			Components: []string{"Two-step authentication"}, Classification: NonSecurity, Messages: []string{"the target rejected a freshly computed TOTP code: status 401, want 303; its clock is about 1m35s ahead of ours (from its Date header): a clock out of step makes valid codes look wrong"}},
			"two-step-failing", []string{"long-outage-communication"}},
		{"accept_any_code", Query{Probes: []string{"login-security"}, Steps: []string{"wrong_code"}, ErrorClasses: []string{"security_check"},
			Components: []string{"Two-step authentication"}, Classification: Security},
			"suspected-security-incident", nil},
		{"expired certificate", Query{Probes: []string{"login"}, Steps: []string{"login_page"}, ErrorClasses: []string{"tls"},
			Components: []string{"Login"}, Classification: Security, Messages: []string{"x509: certificate has expired"}},
			"tls-certificate", []string{"suspected-security-incident"}},
		{"hang at dashboard", Query{Probes: []string{"login"}, Steps: []string{"dashboard"}, ErrorClasses: []string{"timeout"},
			Components: []string{"Dashboard"}, Classification: NonSecurity},
			"long-outage-communication", nil},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			got := ids(Match(set, tt.q))
			want := append([]string{tt.first}, tt.also...)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Match = %v, want %v", got, want)
			}
		})
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

	q := Query{Steps: []string{"password"}, ErrorClasses: []string{"http_status"}, Components: []string{"Login"}, Classification: NonSecurity}
	got := ids(Match(set, q))
	// login-password-step: 4+3+2+1; our-password and the overridden events
	// runbook: 4+1 each, critical before minor.
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
	q := Query{Probes: []string{"login"}, Steps: []string{"password"}, ErrorClasses: []string{"http_status"},
		Components: []string{"Login"}, Classification: NonSecurity, Messages: []string{"step password: status 503, want 303"}}
	for b.Loop() {
		if len(Match(set, q)) == 0 {
			b.Fatal("no match")
		}
	}
}
