package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/slack-go/slack/slacktest"

	"github.com/candorhq/candor/internal/pgcluster"
	"github.com/candorhq/candor/probes/demo"
)

// recordingSlack is slack-go's test server with handlers that answer like
// Slack and keep every request body Candor sends.
type recordingSlack struct {
	srv      *slacktest.Server
	mu       sync.Mutex
	bodies   []string
	messages []slackMessage
	ts       atomic.Int64
	delay    time.Duration // how long each call takes, as a slow Slack would

	// holdText, when set, makes the first post containing it wait for
	// release before Slack takes it; held is closed when that post arrives.
	holdText      string
	held, release chan struct{}
	holdOnce      sync.Once
}

// slackMessage is a posted message as conversations.history returns it, so
// that a relay which lost a post's answer can find the message it posted.
type slackMessage struct {
	Channel  string          `json:"-"`
	TS       string          `json:"ts"`
	ThreadTS string          `json:"thread_ts,omitempty"`
	Text     string          `json:"text"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

func newRecordingSlack(t *testing.T) *recordingSlack {
	t.Helper()
	rs := &recordingSlack{}
	record := func(r *http.Request) {
		time.Sleep(rs.delay) // a slow Slack: a real delay in answering, not synchronisation
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		rs.mu.Lock()
		// What people see: the form slack-go posts, less the credential
		// that authenticates the call to Slack itself.
		text := string(b)
		if form, err := neturl.ParseQuery(text); err == nil {
			form.Del("token")
			text = ""
			for k, vs := range form {
				text += k + "=" + strings.Join(vs, ",") + " "
			}
		}
		rs.bodies = append(rs.bodies, r.URL.Path+" "+text)
		rs.mu.Unlock()
	}
	reply := func(w http.ResponseWriter, v map[string]any) {
		v["ok"] = true
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	rs.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", func(w http.ResponseWriter, r *http.Request) {
			record(r)
			reply(w, map[string]any{"user_id": "UBOT", "team_id": "T1", "team": "Example", "user": "candor"})
		})
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			if rs.holdText != "" {
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(strings.NewReader(string(b)))
				if strings.Contains(string(b), neturl.QueryEscape(rs.holdText)) {
					rs.holdOnce.Do(func() {
						close(rs.held)
						<-rs.release
					})
				}
			}
			record(r)
			_ = r.ParseForm()
			m := slackMessage{Channel: r.Form.Get("channel"), TS: fmt.Sprintf("1700000000.%06d", rs.ts.Add(1)),
				ThreadTS: r.Form.Get("thread_ts"), Text: r.Form.Get("text")}
			if md := r.Form.Get("metadata"); md != "" {
				m.Metadata = json.RawMessage(md)
			}
			rs.mu.Lock()
			rs.messages = append(rs.messages, m)
			rs.mu.Unlock()
			reply(w, map[string]any{"channel": m.Channel, "ts": m.TS})
		})
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			record(r)
			_ = r.ParseForm()
			reply(w, map[string]any{"channel": r.Form.Get("channel"), "ts": r.Form.Get("ts")})
		})
		history := func(w http.ResponseWriter, r *http.Request) {
			record(r)
			_ = r.ParseForm()
			thread := r.Form.Get("ts") // conversations.replies names the thread
			var out []slackMessage
			rs.mu.Lock()
			for _, m := range rs.messages {
				if m.Channel == r.Form.Get("channel") && (thread == "" && m.ThreadTS == "" || thread != "" && m.ThreadTS == thread) {
					out = append(out, m)
				}
			}
			rs.mu.Unlock()
			reply(w, map[string]any{"messages": out, "has_more": false})
		}
		c.Handle("/conversations.history", history)
		c.Handle("/conversations.replies", history)
	})
	rs.srv.Start()
	t.Cleanup(rs.srv.Stop)
	return rs
}

func (rs *recordingSlack) all() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return strings.Join(rs.bodies, "\n")
}

// cookieRecorder wraps the demo target and keeps the session cookies it
// hands to the probes, which must never show up in what Candor writes.
type cookieRecorder struct {
	h       http.Handler
	mu      sync.Mutex
	cookies []string
}

func (c *cookieRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.h.ServeHTTP(w, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sc := range w.Header().Values("Set-Cookie") {
		if ck, err := http.ParseSetCookie(sc); err == nil && len(ck.Value) >= 16 {
			c.cookies = append(c.cookies, ck.Value)
		}
	}
}

// TestNoSecretInAnythingCandorWrites runs candor serve through an outage of
// the demo login with Slack configured, then reads everything Candor wrote
// (its log, every database table, public pages, feeds and JSON, the Slack
// payloads) and looks for the probe's password and TOTP seed, the Slack
// token, an API token and the target's session cookies.
func TestNoSecretInAnythingCandorWrites(t *testing.T) {
	slack := newRecordingSlack(t)
	const slackToken = "xoxb-4242-secret-slack-token-do-not-leak"
	t.Setenv("SLACK_BOT_TOKEN", slackToken)

	target := &cookieRecorder{h: demo.New(demo.Options{})}
	demoSrv := httptest.NewServer(target)
	t.Cleanup(demoSrv.Close)
	cfgPath := configWithSlack(t, demoSrv.URL, slack)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	stop := serveInBackground(t, "--config", cfgPath, "--listen", addr, "--data-dir", dataDir)
	waitFor(t, base+"/readyz", 200, 60*time.Second)

	code, apiToken, stderr := runCmd(t, t.Context(), "token", "create", "--role", "responder", "--name", "ci", "--config", cfgPath, "--data-dir", dataDir)
	apiToken = strings.TrimSpace(apiToken)
	if code != 0 {
		t.Fatalf("token create: %d %s", code, stderr)
	}

	// The login breaks at the events store; the probes see it and an
	// incident opens and goes to Slack.
	resp, err := http.Post(demoSrv.URL+"/_fault", "application/json", strings.NewReader(`{"mode":"events_down"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, "the incident to reach Slack", func() bool { return strings.Contains(slack.all(), "chat.postMessage") })
	// A person posts an update through the API.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/incidents/1/updates", strings.NewReader(`{"status":"identified","message":"The events store is down; we are moving login off it."}`))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("post an update: %v %v", resp, err)
	}
	eventually(t, "the update to reach Slack", func() bool { return strings.Contains(slack.all(), "moving login off it") })
	eventually(t, "the update on the public page", func() bool {
		body, _ := waitFor(t, base+"/history.rss", 200, time.Second)
		return strings.Contains(body, "moving login off it")
	})

	// Everything Candor wrote, gathered while it still runs.
	var written strings.Builder
	for _, p := range []string{"/", "/incidents/1", "/history", "/history.rss", "/history.atom", "/components/login",
		"/api/v2/summary.json", "/api/v2/incidents.json", "/api/v2/components.json", "/badge.json", "/metrics"} {
		body, _ := waitFor(t, base+p, 200, 5*time.Second)
		written.WriteString(body)
	}
	written.WriteString(slack.all())
	written.WriteString(dumpDatabase(t, dataDir))
	_, log := stop()
	written.WriteString(log)

	secrets := map[string]string{"probe password": demo.Password, "TOTP seed": demo.TOTPSecret,
		"Slack token": slackToken, "API token": apiToken}
	target.mu.Lock()
	for i, c := range target.cookies {
		secrets[fmt.Sprintf("session cookie %d", i)] = c
	}
	target.mu.Unlock()
	if len(target.cookies) == 0 {
		t.Fatal("the demo target handed out no session cookies: the probes did not log in")
	}
	all := written.String()
	if !strings.Contains(all, "moving login off it") || !strings.Contains(all, "chat.postMessage") {
		t.Fatal("the gathered output lacks what the scenario wrote: the grep below would prove nothing")
	}
	for name, s := range secrets {
		if i := strings.Index(all, s); i >= 0 {
			t.Errorf("the %s appears in what Candor wrote: …%s…", name, all[max(0, i-80):min(len(all), i+len(s)+20)])
		}
	}
}

// dumpDatabase returns every row of every table in the candor database of
// a stopped-or-running embedded cluster in dataDir, as text.
func dumpDatabase(t *testing.T, dataDir string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgcluster.ConnStringFor(filepath.Join(dataDir, "postgres"), "candor"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `select tablename from pg_tables where schemaname = 'public' order by 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tbl := range tables {
		var dump *string
		if err := conn.QueryRow(ctx, fmt.Sprintf(`select string_agg(t::text, E'\n') from %s t`, pgx.Identifier{tbl}.Sanitize())).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		if dump != nil {
			b.WriteString(*dump)
		}
	}
	return b.String()
}

// configWithSlack writes the demo configuration for the target at demoURL,
// with Slack pointed at rs, and returns its path. The token is read from
// SLACK_BOT_TOKEN, as a real configuration would.
func configWithSlack(t *testing.T, demoURL string, rs *recordingSlack) string {
	t.Helper()
	cfg := demoConfig(strings.TrimPrefix(demoURL, "http://")) + fmt.Sprintf(`
notify:
  slack:
    token: ${SLACK_BOT_TOKEN}
    public_channel: CPUBLIC
    oncall_channel: CONCALL
    api_url: %s
`, rs.srv.GetAPIURL())
	path := filepath.Join(t.TempDir(), "candor.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// count returns how many recorded calls to path contain every one of parts.
func (rs *recordingSlack) count(path string, parts ...string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
next:
	for _, b := range rs.bodies {
		if !strings.HasPrefix(b, path+" ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(b, p) {
				continue next
			}
		}
		n++
	}
	return n
}
