package notify

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/config"
)

func TestEscapeAndMrkdwn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a & b", "a &amp; b"},
		{"<!channel> <@U123> <https://evil.example|click>", "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt;"},
		{"**bold** and *it*", "*bold* and *it*"},
		{"[the page](https://status.example.com/x?a=1&b=2)", "<https://status.example.com/x?a=1&amp;b=2|the page>"},
		{"[a|b](https://x.example)", "<https://x.example|a¦b>"},
		{"[js](javascript:alert(1))", "[js](javascript:alert(1))"},
		{"  trimmed \n", "trimmed"},
	} {
		if got := mrkdwn(tc.in); got != tc.want {
			t.Errorf("mrkdwn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 4000)
	got := mrkdwn(long)
	if len(got) > maxReply+100 || !strings.HasSuffix(got, "(the rest is on the status page)") || !strings.HasPrefix(got, "éé") {
		t.Errorf("long text cut to %d bytes: …%q", len(got), got[len(got)-60:])
	}
	if strings.Contains(got, "\uFFFD") {
		t.Errorf("cut inside a character")
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	r := &Relay{cfg: DeliveryConfig{BackoffBase: config.Dur(time.Second), BackoffMax: config.Dur(time.Minute)}}
	for n := 1; n <= 20; n++ {
		want := min(time.Second<<(n-1), time.Minute)
		for range 50 {
			got := r.backoff(n)
			if got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %s, want between %s and %s", n, got, want/2, want)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	env := map[string]string{"SLACK_BOT_TOKEN": "xoxb-1-secret"}
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of problems, in order; none for a good config
	}{
		{"good", `notify:
  slack:
    token: ${SLACK_BOT_TOKEN}
    public_channel: C0PUBLIC1
    oncall_channel: "#oncall"
    api_url: http://127.0.0.1:9/api/
  delivery:
    max_attempts: 5
    backoff_base: 1s
    backoff_max: 1m
`, nil},
		{"empty", "notify: {}\n", nil},
		{"no channel", "notify:\n  slack:\n    token: ${SLACK_BOT_TOKEN}\n", []string{"3:5", "no channel"}},
		{"no token", "notify:\n  slack:\n    public_channel: C0PUBLIC1\n", []string{"3:5", "no token"}},
		{"missing env", "notify:\n  slack:\n    token: ${NOPE}\n    oncall_channel: C0ONCALL1\n", []string{"NOPE"}},
		{"bad values", `notify:
  slack:
    token: ${SLACK_BOT_TOKEN}
    public_channel: "not a channel!"
    oncall_channel: "not a channel!"
    api_url: ftp://x
  delivery:
    backoff_base: 1h
    backoff_max: 1m
    poll_interval: 1ms
`, []string{"4:21", "5:21", "on-call channel must not be the public", "6:14", "8:19", "10:20"}},
		{"unknown key", "notify:\n  slack:\n    tokn: x\n", []string{"tokn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := config.Parse("candor.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			c := config.NewChecker(src, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			var cfg Config
			if c.Decode("$.notify", &cfg) {
				Check(c, "$.notify", &cfg)
			}
			err = c.Err()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("problems: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no problem, want %v", tc.want)
			}
			msg := err.Error()
			if strings.Contains(msg, "xoxb-1-secret") {
				t.Errorf("problems show the token: %s", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("problems %q should mention %q", msg, w)
				}
			}
		})
	}
}

func TestRootBlocks(t *testing.T) {
	inc := incidents.Incident{ID: 7, Title: "Login <down> & out", Status: incidents.StatusInvestigating, Impact: incidents.ImpactMajor,
		Classification: incidents.NonSecurity, Components: []string{"Login"},
		ComponentState: map[string]incidents.ComponentStatus{"Login": incidents.MajorOutage},
		StartedAt:      time.Date(2026, 3, 4, 8, 0, 0, 0, time.FixedZone("CET", 3600))}
	text, blocks := renderRoot(inc, "https://status.example.com", true, true)
	b, _ := json.Marshal(blocks)
	js := string(b)
	for _, want := range []string{`"type":"header"`, "Login \\u003cdown\\u003e \\u0026 out", "Login: major outage", "2026-03-04 07:00 UTC",
		"No indication of a security incident", "https://status.example.com/incidents/7|", ActionAcknowledge, "Nothing published yet"} {
		if !strings.Contains(js, want) {
			t.Errorf("root blocks lack %q: %s", want, js)
		}
	}
	if !strings.Contains(text, "Login &lt;down&gt; &amp; out") {
		t.Errorf("fallback text %q is not escaped", text)
	}
	inc.Status, inc.ResolvedAt, inc.Public = incidents.StatusResolved, time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC), true
	_, blocks = renderRoot(inc, "https://status.example.com", false, true)
	b, _ = json.Marshal(blocks)
	if js := string(b); !strings.Contains(js, "Resolved at 2026-03-04 09:30 UTC") || strings.Contains(js, ActionAcknowledge) {
		t.Errorf("resolved public root: %s", js)
	}
}

var slackLink = regexp.MustCompile(`<https?://[^\s<>|]+\|[^<>]*>`)

// FuzzMrkdwn: whatever people write, Slack gets no control sequence of
// theirs (<!channel>, <@U…>, a disguised link): only the links Candor
// makes, and well-formed entities.
func FuzzMrkdwn(f *testing.F) {
	for _, s := range []string{"a & b", "<!channel>", "**b**", "[x](https://e.com/?a=1&b=<2>)", "[a|b](http://x)", "[0](http://|)", "[x](https://e.com/a|b)", "&amp;lt;",
		strings.Repeat("[l](https://example.com/) & ", 200), strings.Repeat("é<", 1600)} {
		f.Add(s)
	}
	entity := regexp.MustCompile(`&(amp|lt|gt);`)
	f.Fuzz(func(t *testing.T, in string) {
		out := mrkdwn(in)
		rest := slackLink.ReplaceAllString(out, "")
		if strings.ContainsAny(rest, "<>") {
			t.Fatalf("mrkdwn(%q) = %q leaves a raw < or >", in, out)
		}
		if n := strings.Count(rest, "&"); n != len(entity.FindAllString(rest, -1)) {
			t.Fatalf("mrkdwn(%q) = %q leaves a raw &", in, out)
		}
		if e := Escape(in); strings.ContainsAny(e, "<>") || strings.Count(e, "&") != len(entity.FindAllString(e, -1)) {
			t.Fatalf("Escape(%q) = %q", in, e)
		}
	})
}
