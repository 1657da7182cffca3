package demo

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// The json profile: a JSON login API plus a TOTP call, shaped like many real
// ones so that Candor is tried on a target that says little. Every refusal
// is the same 401, so a probe cannot tell a wrong password from a storage
// failure by the status alone; only the body, the timing and the step say more.
//
//	POST   /api/session      {email, password}    → 200 {mfa_required: true, mfa_token}
//	POST   /api/session/mfa  {mfa_token, code}    → 200 {token}
//	GET    /api/me           Authorization: Bearer → 200 {email}
//	DELETE /api/session      Authorization: Bearer → 204

// authFailedBody is the json profile's answer to every refusal.
var authFailedBody = map[string]string{"error": "Authentication failed"}

// mfaTokenLife is how long a password check waits for its code.
const mfaTokenLife = 5 * time.Minute

func (t *Target) routeJSON() {
	m := t.mux
	m.HandleFunc("GET /{$}", t.jsonHome)
	m.HandleFunc("POST /api/session", t.stepped("password", t.jsonSession))
	m.HandleFunc("POST /api/session/mfa", t.stepped("totp", t.jsonMFA))
	m.HandleFunc("GET /api/me", t.stepped("dashboard", t.jsonMe))
	m.HandleFunc("DELETE /api/session", t.stepped("logout", t.jsonLogout))
}

func authFailed(w http.ResponseWriter) { writeJSON(w, http.StatusUnauthorized, authFailedBody) }

// jsonStoreFailed answers a request whose login event could not be stored:
// late, and as the same 401 as a wrong password.
func (t *Target) jsonStoreFailed(w http.ResponseWriter, r *http.Request) {
	if t.wait(r, t.eventsDownDelay()) {
		authFailed(w)
	}
}

// readBody decodes a JSON request body into v; a body that is not one is
// refused as every other error is.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(v); err != nil {
		authFailed(w)
		return false
	}
	return true
}

func (t *Target) jsonHome(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"service": "demo login API", "session": "/api/session"})
}

func (t *Target) jsonSession(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if !readBody(w, r, &in) {
		return
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if !validEmail(email) || in.Password != Password {
		if err := t.record(email, "password_failed"); err != nil {
			t.jsonStoreFailed(w, r)
			return
		}
		authFailed(w)
		return
	}
	if err := t.record(email, "password_ok"); err != nil {
		t.jsonStoreFailed(w, r)
		return
	}
	if t.currentFault().Mode == FaultSkip2SA {
		writeJSON(w, http.StatusOK, map[string]any{"mfa_required": false, "token": t.issueToken(email)})
		return
	}
	tk := randomToken(16)
	t.mu.Lock()
	if len(t.tickets) >= maxSessions {
		clear(t.tickets)
	}
	t.tickets[tk] = ticket{email: email, expires: t.now().Add(mfaTokenLife)}
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"mfa_required": true, "mfa_token": tk})
}

func (t *Target) jsonMFA(w http.ResponseWriter, r *http.Request) {
	var in struct {
		MFAToken string `json:"mfa_token"`
		Code     string `json:"code"`
	}
	if !readBody(w, r, &in) {
		return
	}
	t.mu.Lock()
	tk, ok := t.tickets[in.MFAToken]
	t.mu.Unlock()
	if !ok || t.now().After(tk.expires) {
		authFailed(w)
		return
	}
	if wait := t.codeRetryAfter(tk.email); wait > 0 {
		t.tooManyAttempts(w, wait)
		return
	}
	switch t.checkCode(tk.email, strings.TrimSpace(in.Code)) {
	case codeReplayed:
		t.refuseCode(w, r, tk.email, map[string]string{"error": "code already used"})
		return
	case codeWrong:
		t.refuseCode(w, r, tk.email, authFailedBody)
		return
	}
	if err := t.record(tk.email, "login"); err != nil {
		t.jsonStoreFailed(w, r)
		return
	}
	t.mu.Lock()
	delete(t.tickets, in.MFAToken)
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"token": t.issueToken(tk.email)})
}

// refuseCode answers a refused code with body, counting it towards the
// account's code rate limit.
func (t *Target) refuseCode(w http.ResponseWriter, r *http.Request, email string, body map[string]string) {
	t.mu.Lock()
	a := t.accountLocked(email)
	a.refused = append(a.refused, t.now())
	t.mu.Unlock()
	if err := t.record(email, "totp_failed"); err != nil {
		t.jsonStoreFailed(w, r)
		return
	}
	writeJSON(w, http.StatusUnauthorized, body)
}

// codeRetryAfter returns, in whole seconds, how long code attempts for email
// stay refused by the rate limit (0: not limited).
func (t *Target) codeRetryAfter(email string) int {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.accountLocked(email)
	for len(a.refused) > 0 && now.Sub(a.refused[0]) >= time.Minute {
		a.refused = a.refused[1:]
	}
	if len(a.refused) < CodeFailuresPerMinute {
		return 0
	}
	// Limited until enough failures have aged out to leave room for one more.
	until := a.refused[len(a.refused)-CodeFailuresPerMinute].Add(time.Minute)
	return int(max(1, (until.Sub(now)+time.Second-1)/time.Second))
}

// issueToken starts a signed-in API session for email and returns its token.
func (t *Target) issueToken(email string) string {
	token := randomToken(20)
	t.mu.Lock()
	if len(t.sessions) >= maxSessions {
		clear(t.sessions)
	}
	t.sessions["api:"+token] = &session{email: email, stage: 2, created: t.now()}
	t.mu.Unlock()
	return token
}

// bearer returns the API session named by the request's bearer token.
func (t *Target) bearer(r *http.Request) (string, *session) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessions["api:"+token]
	if s == nil || s.stage != 2 || t.now().Sub(s.created) > sessionLife {
		return "", nil
	}
	return "api:" + token, s
}

func (t *Target) jsonMe(w http.ResponseWriter, r *http.Request) {
	_, s := t.bearer(r)
	if s == nil {
		authFailed(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"email": s.email})
}

func (t *Target) jsonLogout(w http.ResponseWriter, r *http.Request) {
	id, s := t.bearer(r)
	if s == nil {
		authFailed(w)
		return
	}
	t.mu.Lock()
	delete(t.sessions, id)
	t.mu.Unlock()
	_ = t.record(s.email, "logout")
	w.WriteHeader(http.StatusNoContent)
}
