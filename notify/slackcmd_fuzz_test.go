package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/internal/pgtest"
)

// FuzzSlackCommand sends Slack-signed requests with arbitrary slash-command
// text, interactive payloads and raw bodies to the command endpoint, as a
// responder who may change incidents: whatever comes in, the answer is 200
// with an ephemeral JSON reply or a 4xx, never a 5xx; the reply carries no
// raw <, > or & of the sender's (no <!channel>, no disguised link); nothing
// fails inside; and no command creates an incident.
func FuzzSlackCommand(f *testing.F) {
	for _, s := range []struct {
		mode uint8
		in   string
	}{
		{0, "update 1 identified We found it: a bad <deploy> & a <!channel>."},
		{0, "note #1 checking"}, {0, "ack 1"}, {0, "reclassify 1 security Someone <@U123> saw it"},
		{0, "update 2 resolved nope"}, {0, "update 1 monitoring"}, {0, "<!here> 1"}, {0, "update 99999999999999999999 x"},
		{0, "update 1 \x00\u2028" + strings.Repeat("é", 400)}, {0, ""}, {0, "help"},
		{1, `{"type":"block_actions","team":{"id":"T1"},"user":{"id":"UADA"},"actions":[{"action_id":"candor_ack","value":"1"}]}`},
		{1, `{"type":"block_actions","team":{"id":"T1"},"user":{"id":"UADA"},"actions":[{"action_id":"candor_ack","value":"<!channel>"}]}`},
		{1, `{"type":"block_actions","actions":[]}`}, {1, `[`},
		{2, "payload=%7B%7D&text=x"}, {2, "%zz"}, {2, "team_id=T1&user_id=UADA&text=ack+1&text=update+1+resolved"},
	} {
		f.Add(s.mode, s.in)
	}
	pool := pgtest.New(f)
	ctx := context.Background()
	comps := []incidents.Component{{Name: "Login", Group: "Sign-in", Probes: []string{"login"}, Steps: []string{"password"}}}
	st := incidents.NewStore(pool, incidents.Config{Components: comps}, incidents.Options{ProbeLocations: map[string][]string{"login": {"eu-west"}}})
	if err := st.SyncComponents(ctx); err != nil {
		f.Fatal(err)
	}
	h, err := NewSlackCommands(SlackCommandOptions{SigningSecret: config.NewSecret(cmdSecret), Pool: pool, Incidents: st,
		Operators: operators{"T1/UADA": {ID: "ada@example.com", Role: "responder"}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	named, err := st.CreateIncident(ctx, incidents.NewIncident{Title: "Sign-in errors", Message: "Looking.", Actor: "person:ada@example.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mode uint8, in string) {
		// Commands name incident 1 in the seeds; aim them at the fuzz's own.
		in = strings.ReplaceAll(in, " 1", " "+strconv.FormatInt(named.ID, 10))
		var body string
		switch mode % 3 {
		case 0:
			body = url.Values{"team_id": {"T1"}, "user_id": {"UADA"}, "command": {"/candor"}, "text": {in}}.Encode()
		case 1:
			body = url.Values{"payload": {in}}.Encode()
		default:
			body = in
		}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(cmdSecret))
		mac.Write([]byte("v0:" + ts + ":" + body))
		req := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var reply struct {
				ResponseType string `json:"response_type"`
				Text         string `json:"text"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil || reply.ResponseType != "ephemeral" || reply.Text == "" {
				t.Fatalf("%q: reply %q (%v)", body, rec.Body, err)
			}
			if strings.ContainsAny(reply.Text, "<>") || strings.Count(reply.Text, "&") != strings.Count(reply.Text, "&amp;")+strings.Count(reply.Text, "&lt;")+strings.Count(reply.Text, "&gt;") {
				t.Fatalf("%q: reply is not escaped: %q", body, reply.Text)
			}
			if strings.Contains(reply.Text, "could not") {
				t.Fatalf("%q: the command failed inside: %q", body, reply.Text)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%q: %d %q", body, rec.Code, rec.Body)
		}
		var n int
		if err := pool.QueryRow(ctx, `select count(*) from incidents`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%q: %d incidents, want 1", body, n)
		}
	})
}
