package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
)

// Slack's documented example ("Verifying requests from Slack").
const (
	exampleSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	exampleTS     = "1531420618"
	exampleBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	exampleSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestVerifySlackRequestDocumentedExample(t *testing.T) {
	at := time.Unix(1531420618, 0)
	h := func(ts, sig string) http.Header {
		hh := http.Header{}
		hh.Set("X-Slack-Request-Timestamp", ts)
		hh.Set("X-Slack-Signature", sig)
		return hh
	}
	for _, tc := range []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"documented example", exampleSecret, h(exampleTS, exampleSig), exampleBody, at.Add(30 * time.Second), nil},
		{"4 minutes early clock", exampleSecret, h(exampleTS, exampleSig), exampleBody, at.Add(-4 * time.Minute), nil},
		{"stale", exampleSecret, h(exampleTS, exampleSig), exampleBody, at.Add(6 * time.Minute), ErrStaleRequest},
		{"from the future", exampleSecret, h(exampleTS, exampleSig), exampleBody, at.Add(-6 * time.Minute), ErrStaleRequest},
		{"no timestamp", exampleSecret, h("", exampleSig), exampleBody, at, ErrStaleRequest},
		{"tampered body", exampleSecret, h(exampleTS, exampleSig), strings.Replace(exampleBody, "text=", "text=resolve", 1), at, ErrBadSignature},
		{"other timestamp", exampleSecret, h("1531420619", exampleSig), exampleBody, at, ErrBadSignature},
		{"wrong secret", "8f742231b10e8888abcd99yyyzzz85a6", h(exampleTS, exampleSig), exampleBody, at, ErrBadSignature},
		{"no v0 prefix", exampleSecret, h(exampleTS, strings.TrimPrefix(exampleSig, "v0=")), exampleBody, at, ErrBadSignature},
		{"not hex", exampleSecret, h(exampleTS, "v0=zz"), exampleBody, at, ErrBadSignature},
	} {
		if got := VerifySlackRequest(tc.secret, tc.h, []byte(tc.body), tc.now); !errors.Is(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

type operators map[string]Operator

func (o operators) SlackOperator(_ context.Context, team, user string) (Operator, error) {
	op, ok := o[team+"/"+user]
	if !ok {
		return Operator{}, ErrUnknownUser
	}
	return op, nil
}

const cmdSecret = "test-signing-secret"

// slackPost sends a signed (or not) form to the command endpoint like Slack.
func slackPost(t *testing.T, url_ string, form url.Values, at time.Time, secret string) (int, string) {
	t.Helper()
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, url_, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ Text string }
	_ = json.Unmarshal(b, &out)
	if out.Text == "" {
		out.Text = string(b)
	}
	return resp.StatusCode, out.Text
}

func TestSlackCommandsChangeIncidentsAsTheOperator(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	h, err := NewSlackCommands(SlackCommandOptions{SigningSecret: config.NewSecret(cmdSecret), Pool: e.pool, Incidents: e.store,
		Operators: operators{"T1/UADA": {ID: "ada@example.com", Role: "responder"}, "T1/UVIC": {ID: "vic@example.com", Role: "viewer"}},
		Now:       e.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Sign-in errors", Message: "Looking.", Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := func(user, text string) url.Values {
		return url.Values{"team_id": {"T1"}, "user_id": {user}, "command": {"/candor"}, "text": {text}}
	}
	now := e.clock.Now()
	id := strconv.FormatInt(inc.ID, 10)

	code, text := slackPost(t, srv.URL, cmd("UADA", "update "+id+" identified We found it: a bad <deploy>."), now, cmdSecret)
	if code != http.StatusOK || !strings.Contains(text, "identified") {
		t.Fatalf("update: %d %q", code, text)
	}
	ups, err := e.store.Updates(ctx, inc.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	last := ups[len(ups)-1]
	if last.Status != incidents.StatusIdentified || last.Author != "person:ada@example.com" || last.Body != "We found it: a bad <deploy>." || last.Visibility != incidents.Public {
		t.Errorf("update stored as %+v", last)
	}
	if _, text = slackPost(t, srv.URL, cmd("UADA", "note "+id+" checking the deploy log"), now, cmdSecret); !strings.Contains(text, "Done") {
		t.Errorf("note: %q", text)
	}
	if _, text = slackPost(t, srv.URL, cmd("UADA", "reclassify "+id+" non_security Only the load balancer failed."), now, cmdSecret); !strings.Contains(text, "Done") {
		t.Errorf("reclassify: %q", text)
	}
	got, _ := e.store.Get(ctx, inc.ID)
	if got.Classification != incidents.NonSecurity || !got.Confirmed {
		t.Errorf("after reclassify: %s confirmed %v", got.Classification, got.Confirmed)
	}
	if _, text = slackPost(t, srv.URL, cmd("UADA", "update "+id+" monitoring"), now, cmdSecret); !strings.Contains(text, "Not done: message") {
		t.Errorf("empty message: %q", text)
	}
	if _, text = slackPost(t, srv.URL, cmd("UADA", "update 99999 hello"), now, cmdSecret); !strings.Contains(text, "no incident 99999") {
		t.Errorf("unknown incident: %q", text)
	}
	// The Acknowledge button on the on-call root.
	payload, _ := json.Marshal(map[string]any{"type": "block_actions", "team": map[string]string{"id": "T1"}, "user": map[string]string{"id": "UADA"},
		"actions": []map[string]string{{"action_id": ActionAcknowledge, "value": id}}})
	if code, text = slackPost(t, srv.URL, url.Values{"payload": {string(payload)}}, now, cmdSecret); code != 200 || !strings.Contains(text, "Done") {
		t.Errorf("acknowledge button: %d %q", code, text)
	}
	ups, _ = e.store.Updates(ctx, inc.ID, false)
	if last := ups[len(ups)-1]; last.Visibility != incidents.Internal || !strings.Contains(last.Body, "Acknowledged by ada@example.com") {
		t.Errorf("acknowledgement stored as %+v", last)
	}
	before := len(ups)

	// Refused: a viewer, an unknown user, a bad signature, a stale request.
	if _, text = slackPost(t, srv.URL, cmd("UVIC", "update "+id+" resolved All good."), now, cmdSecret); !strings.Contains(text, "viewer") {
		t.Errorf("viewer: %q", text)
	}
	if _, text = slackPost(t, srv.URL, cmd("UNOBODY", "update "+id+" resolved All good."), now, cmdSecret); !strings.Contains(text, "not a Candor operator") {
		t.Errorf("unknown user: %q", text)
	}
	if code, _ = slackPost(t, srv.URL, cmd("UADA", "update "+id+" resolved All good."), now, "guessed-secret"); code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d", code)
	}
	if code, _ = slackPost(t, srv.URL, cmd("UADA", "update "+id+" resolved All good."), now.Add(-10*time.Minute), cmdSecret); code != http.StatusUnauthorized {
		t.Errorf("stale request: %d", code)
	}
	ups, _ = e.store.Updates(ctx, inc.ID, false)
	if len(ups) != before {
		t.Errorf("refused requests changed the incident: %d updates, want %d", len(ups), before)
	}
	var audited int
	if err := e.pool.QueryRow(ctx, `select count(*) from audit_log where action = 'slack_refused'`).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != 4 {
		t.Errorf("%d refusals audited, want 4", audited)
	}
	if code, text = slackPost(t, srv.URL, cmd("UADA", "help"), now, cmdSecret); !strings.Contains(text, "/candor update") {
		t.Errorf("help: %d %q", code, fmt.Sprint(text))
	}
}

func TestSlackEmailOperators(t *testing.T) {
	t.Parallel()
	f := newFakeSlack(t)
	user := func(id, email string, extra map[string]any) map[string]any {
		u := map[string]any{"id": id, "team_id": "T1", "is_email_confirmed": true, "profile": map[string]any{"email": email}}
		for k, v := range extra {
			u[k] = v
		}
		return u
	}
	f.users = map[string]map[string]any{
		"UADA":   user("UADA", "Ada@Example.com", nil),
		"UGUEST": user("UGUEST", "guest@example.com", map[string]any{"is_restricted": true}),
		"UBOT":   user("UBOT", "bot@example.com", map[string]any{"is_bot": true}),
		"UGONE":  user("UGONE", "gone@example.com", map[string]any{"deleted": true}),
		"UUNCON": user("UUNCON", "ada@example.com", map[string]any{"is_email_confirmed": false}),
		"UBO":    user("UBO", "bo@example.com", nil),
	}
	ops := SlackEmailOperators(SlackConfig{Token: config.NewSecret(token), APIURL: f.url()}, func(_ context.Context, email string) (Operator, error) {
		if email == "ada@example.com" {
			return Operator{ID: email, Role: "responder"}, nil
		}
		return Operator{}, ErrUnknownUser
	})
	ctx := context.Background()
	op, err := ops.SlackOperator(ctx, "T1", "UADA")
	if err != nil || op.ID != "ada@example.com" || op.Role != "responder" {
		t.Fatalf("UADA = %+v, %v", op, err)
	}
	for _, c := range []struct{ team, user string }{{"T2", "UADA"}, {"T1", "UGUEST"}, {"T1", "UBOT"}, {"T1", "UGONE"}, {"T1", "UUNCON"}, {"T1", "UBO"}, {"T1", "UNONE"}} {
		if _, err := ops.SlackOperator(ctx, c.team, c.user); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("%s/%s: %v, want ErrUnknownUser", c.team, c.user, err)
		}
	}
}

func TestSlackCommandsOverSocketMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.slack.appToken = "xapp-1-test"
	h, err := NewSlackCommands(SlackCommandOptions{Pool: e.pool, Incidents: e.store, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler),
		Operators: operators{"T1/UADA": {ID: "ada@example.com", Role: "responder"}}})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Over the socket", Message: "Looking.", Actor: "person:ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- h.RunSocketMode(rctx, SlackConfig{Token: config.NewSecret(token), AppToken: config.NewSecret("xapp-1-test"), APIURL: e.slack.url()})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunSocketMode: %v", err)
		}
	}()
	send := func(id string, payload map[string]any, typ string) map[string]any {
		e.slack.socketOut <- map[string]any{"envelope_id": id, "type": typ, "payload": payload, "accepts_response_payload": true}
		select {
		case ack := <-e.slack.socketAcks:
			if ack["envelope_id"] != id {
				t.Fatalf("acknowledged %v, want %s", ack["envelope_id"], id)
			}
			return ack
		case <-time.After(wait):
			t.Fatalf("no acknowledgement of %s", id)
		}
		return nil
	}
	id := strconv.FormatInt(inc.ID, 10)
	ack := send("e1", map[string]any{"team_id": "T1", "user_id": "UADA", "command": "/candor", "text": "update " + id + " monitoring A fix is out."}, "slash_commands")
	if p, _ := ack["payload"].(map[string]any); p == nil || !strings.Contains(fmt.Sprint(p["text"]), "monitoring") {
		t.Errorf("acknowledgement %v", ack)
	}
	got, err := e.store.Get(ctx, inc.ID)
	if err != nil || got.Status != incidents.StatusMonitoring {
		t.Fatalf("after the command: %s, %v", got.Status, err)
	}
	ack = send("e2", map[string]any{"team_id": "T1", "user_id": "UEVE", "command": "/candor", "text": "update " + id + " resolved Done."}, "slash_commands")
	if p, _ := ack["payload"].(map[string]any); p == nil || !strings.Contains(fmt.Sprint(p["text"]), "not a Candor operator") {
		t.Errorf("unknown user's acknowledgement %v", ack)
	}
	send("e3", map[string]any{"type": "block_actions", "team": map[string]any{"id": "T1"}, "user": map[string]any{"id": "UADA"},
		"actions": []map[string]any{{"action_id": ActionAcknowledge, "block_id": "candor_actions", "value": id, "type": "button"}}}, "interactive")
	eventually(t, wait, "the acknowledgement on the incident", func() bool {
		ups, err := e.store.Updates(ctx, inc.ID, false)
		return err == nil && strings.Contains(ups[len(ups)-1].Body, "Acknowledged by ada@example.com")
	})
	if got, _ := e.store.Get(ctx, inc.ID); got.Status != incidents.StatusMonitoring {
		t.Errorf("the unknown user changed the incident to %s", got.Status)
	}
}
