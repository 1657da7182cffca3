package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
)

// fakeSlack is slacktest's server with the Web API methods the relay uses
// answered by handlers that record every message, as Slack keeps them:
// chat.postMessage (unique ts), chat.update, conversations.history and
// conversations.replies (with metadata), and auth.test.
type fakeSlack struct {
	srv *slacktest.Server

	mu      sync.Mutex
	log     []fakeCall
	seq     int
	msgs    []*fakeMsg
	calls   map[string]int
	authErr string                    // auth.test and chat.postMessage answer this Slack error
	users   map[string]map[string]any // users.info by user id
	// Socket Mode: envelopes to send to the connected app, and what it answered.
	socketOut  chan map[string]any
	socketAcks chan map[string]any
	appToken   string // the app-level token apps.connections.open accepts
	// fault, when set, may answer a call instead of the handler: an HTTP
	// status, and a Retry-After header for 429.
	fault func(method string, form map[string]string) (status int, retryAfter string)
	// afterPost, when set, runs after a message is recorded and before the
	// answer (a relay may be killed there).
	afterPost func(m *fakeMsg, r *http.Request)
}

// fakeCall is one Web API call as the server saw it.
type fakeCall struct {
	At      time.Time
	Method  string
	Channel string
	Status  int
}

type fakeMsg struct {
	Channel  string
	TS       string
	ThreadTS string
	Text     string
	Blocks   string
	Key      string
	Edits    int
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{calls: map[string]int{}, socketOut: make(chan map[string]any, 16), socketAcks: make(chan map[string]any, 16)}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", f.handle("auth.test", f.authTest))
		c.Handle("/chat.postMessage", f.handle("chat.postMessage", f.post))
		c.Handle("/chat.update", f.handle("chat.update", f.update))
		c.Handle("/conversations.history", f.handle("conversations.history", f.history))
		c.Handle("/conversations.replies", f.handle("conversations.replies", f.replies))
		c.Handle("/users.info", f.handle("users.info", f.userInfo))
		c.Handle("/apps.connections.open", f.handle("apps.connections.open", f.connectionsOpen))
		c.Handle("/link", f.socketLink)
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) url() string { return f.srv.GetAPIURL() }

type handlerFunc func(w http.ResponseWriter, r *http.Request, form map[string]string)

func (f *fakeSlack) handle(method string, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form := map[string]string{}
		for k, v := range r.Form {
			form[k] = v[0]
		}
		f.mu.Lock()
		f.calls[method]++
		fault := f.fault
		f.mu.Unlock()
		status, ra := 0, ""
		if fault != nil {
			status, ra = fault(method, form)
		}
		f.mu.Lock()
		f.log = append(f.log, fakeCall{At: time.Now(), Method: method, Channel: form["channel"], Status: max(status, 200)})
		f.mu.Unlock()
		if fault != nil {
			if status != 0 {
				if ra != "" {
					w.Header().Set("Retry-After", ra)
				}
				w.WriteHeader(status)
				_, _ = w.Write([]byte("<html>unavailable</html>"))
				return
			}
		}
		h(w, r, form)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeSlack) authTest(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	f.mu.Lock()
	e := f.authErr
	f.mu.Unlock()
	if e != "" {
		writeJSON(w, map[string]any{"ok": false, "error": e})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "url": "https://candor-test.slack.com/", "team": "Candor", "user": "candor", "team_id": "T1", "user_id": "U1", "bot_id": "B1"})
}

func metaKey(form map[string]string) string {
	var m struct {
		EventType    string         `json:"event_type"`
		EventPayload map[string]any `json:"event_payload"`
	}
	if json.Unmarshal([]byte(form["metadata"]), &m) != nil || m.EventType != metaType {
		return ""
	}
	k, _ := m.EventPayload["key"].(string)
	return k
}

// setAuthError makes Slack answer as it does to a bad token ("" for a good one).
func (f *fakeSlack) setAuthError(e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authErr = e
}

func (f *fakeSlack) post(w http.ResponseWriter, r *http.Request, form map[string]string) {
	f.mu.Lock()
	authErr := f.authErr
	f.mu.Unlock()
	if authErr != "" {
		writeJSON(w, map[string]any{"ok": false, "error": authErr})
		return
	}
	ch := form["channel"]
	if ch == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	f.mu.Lock()
	f.seq++
	m := &fakeMsg{Channel: ch, TS: fmt.Sprintf("1700000000.%06d", f.seq), ThreadTS: form["thread_ts"], Text: form["text"], Blocks: form["blocks"], Key: metaKey(form)}
	f.msgs = append(f.msgs, m)
	after := f.afterPost
	f.mu.Unlock()
	if after != nil {
		after(m, r)
	}
	writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": m.TS, "message": map[string]any{"text": m.Text, "ts": m.TS, "thread_ts": m.ThreadTS}})
}

func (f *fakeSlack) update(w http.ResponseWriter, _ *http.Request, form map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		if m.Channel == form["channel"] && m.TS == form["ts"] {
			m.Text, m.Blocks = form["text"], form["blocks"]
			m.Edits++
			writeJSON(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text})
			return
		}
	}
	writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
}

func tsAtLeast(ts, oldest string) bool {
	if oldest == "" {
		return true
	}
	a, _ := strconv.ParseFloat(ts, 64)
	b, _ := strconv.ParseFloat(oldest, 64)
	return a >= b
}

func (f *fakeSlack) listed(m *fakeMsg) map[string]any {
	out := map[string]any{"type": "message", "ts": m.TS, "text": m.Text}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Key != "" {
		out["metadata"] = map[string]any{"event_type": metaType, "event_payload": map[string]any{"key": m.Key}}
	}
	return out
}

func (f *fakeSlack) history(w http.ResponseWriter, _ *http.Request, form map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The fake's ts are not wall-clock times, so oldest is not applied.
	var out []map[string]any
	for _, m := range slices.Backward(f.msgs) {
		if m.Channel == form["channel"] && m.ThreadTS == "" {
			out = append(out, f.listed(m))
		}
	}
	writeJSON(w, map[string]any{"ok": true, "messages": out, "has_more": false})
}

func (f *fakeSlack) replies(w http.ResponseWriter, _ *http.Request, form map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, m := range f.msgs {
		if m.Channel == form["channel"] && (m.TS == form["ts"] || m.ThreadTS == form["ts"]) {
			out = append(out, f.listed(m))
		}
	}
	writeJSON(w, map[string]any{"ok": true, "messages": out, "has_more": false})
}

// roots returns the root messages posted in a channel.
func (f *fakeSlack) roots(ch string) []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeMsg
	for _, m := range f.msgs {
		if m.Channel == ch && m.ThreadTS == "" {
			out = append(out, *m)
		}
	}
	return out
}

// thread returns the replies to a root, in the order posted.
func (f *fakeSlack) thread(ch, ts string) []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeMsg
	for _, m := range f.msgs {
		if m.Channel == ch && m.ThreadTS == ts {
			out = append(out, *m)
		}
	}
	return out
}

func (f *fakeSlack) all() []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fakeMsg, len(f.msgs))
	for i, m := range f.msgs {
		out[i] = *m
	}
	return out
}

func (f *fakeSlack) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// duplicates returns the idempotency keys posted more than once.
func (f *fakeSlack) duplicates() []string {
	seen := map[string]int{}
	var dup []string
	for _, m := range f.all() {
		seen[m.Key]++
		if seen[m.Key] == 2 {
			dup = append(dup, m.Key)
		}
	}
	return dup
}

// texts returns the texts of messages, for messages in failures.
func texts(ms []fakeMsg) string {
	var b strings.Builder
	for i, m := range ms {
		fmt.Fprintf(&b, "\n  %d. %q", i+1, m.Text)
	}
	return b.String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(d, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// poll reports whether cond came to hold before the deadline.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func (f *fakeSlack) callLog() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.log...)
}

func (f *fakeSlack) userInfo(w http.ResponseWriter, _ *http.Request, form map[string]string) {
	f.mu.Lock()
	u, ok := f.users[form["user"]]
	f.mu.Unlock()
	if !ok {
		writeJSON(w, map[string]any{"ok": false, "error": "user_not_found"})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "user": u})
}

func (f *fakeSlack) connectionsOpen(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if r.Header.Get("Authorization") != "Bearer "+f.appToken {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "url": "ws://" + f.srv.ServerAddr + "/link"})
}

// socketLink is Slack's side of a Socket Mode connection: hello, then the
// queued envelopes; every message the app sends back is an acknowledgement.
func (f *fakeSlack) socketLink(w http.ResponseWriter, r *http.Request) {
	// Slack's client says it comes from https://api.slack.com.
	up := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://api.slack.com" }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	if err := conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1}); err != nil {
		return
	}
	go func() {
		for {
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			f.socketAcks <- m
		}
	}()
	for {
		select {
		case env := <-f.socketOut:
			if err := conn.WriteJSON(env); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// deleteMessage removes a message as a person deleting it in Slack would.
func (f *fakeSlack) deleteMessage(ch, ts string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.msgs {
		if m.Channel == ch && m.TS == ts {
			f.msgs = append(f.msgs[:i], f.msgs[i+1:]...)
			return
		}
	}
}
