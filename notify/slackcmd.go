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
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/config"
)

// Errors of VerifySlackRequest.
var (
	ErrBadSignature = errors.New("the Slack signature does not match")
	ErrStaleRequest = errors.New("the Slack request timestamp is missing or more than 5 minutes from now")
)

// SlackRequestWindow is how far a request's timestamp may be from now.
const SlackRequestWindow = 5 * time.Minute

// VerifySlackRequest checks the signature Slack puts on every request it
// sends (slash commands, interactivity): X-Slack-Request-Timestamp within
// SlackRequestWindow of now, and X-Slack-Signature equal to "v0=" and the hex
// HMAC-SHA256, keyed with the app's signing secret, of "v0:" + timestamp +
// ":" + the raw body.
func VerifySlackRequest(secret string, h http.Header, body []byte, now time.Time) error {
	tsText := h.Get("X-Slack-Request-Timestamp")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrStaleRequest
	}
	if d := now.Sub(time.Unix(ts, 0)); d > SlackRequestWindow || d < -SlackRequestWindow {
		return ErrStaleRequest
	}
	sig, ok := strings.CutPrefix(h.Get("X-Slack-Signature"), "v0=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return ErrBadSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + tsText + ":"))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// Operator is a person allowed into Candor, as Slack commands need them.
type Operator struct {
	ID   string // what the timeline names them by, e.g. "ada@example.com"
	Role string // viewer, exec, responder or admin
}

// ErrUnknownUser is what an Operators returns for a Slack user who is no operator.
var ErrUnknownUser = errors.New("this Slack user is not a Candor operator")

// Operators maps Slack users to operators. The console's operator store
// provides it (by the Slack user id linked to an operator, or by email
// through users.info).
type Operators interface {
	SlackOperator(ctx context.Context, teamID, userID string) (Operator, error)
}

// IncidentWriter is what Slack commands change incidents through
// (*incidents.Store), so that they land in the timeline and the outbox like
// every other change.
type IncidentWriter interface {
	Get(ctx context.Context, id int64) (incidents.Incident, error)
	PostUpdate(ctx context.Context, id int64, u incidents.Update) (incidents.Incident, error)
	Reclassify(ctx context.Context, id int64, to incidents.Classification, reason, actor string) (incidents.Incident, error)
}

// SlackCommandOptions configure SlackCommands.
type SlackCommandOptions struct {
	// SigningSecret verifies requests over HTTP; without it only Socket
	// Mode (RunSocketMode) takes commands.
	SigningSecret config.Secret
	Operators     Operators
	Incidents     IncidentWriter
	// Pool, when set, receives refused requests in audit_log.
	Pool   *pgxpool.Pool
	Now    func() time.Time
	Logger *slog.Logger
}

// SlackCommands answers Slack's slash command (/candor) and interactive
// buttons (the Acknowledge button): mount it at POST /slack/commands and
// POST /slack/interactive. Every request is verified with the signing
// secret and a 5-minute window; the Slack user must be an operator with the
// responder or admin role. Refusals are audited.
type SlackCommands struct {
	o SlackCommandOptions
}

// NewSlackCommands returns the handler.
func NewSlackCommands(o SlackCommandOptions) (*SlackCommands, error) {
	if o.Operators == nil || o.Incidents == nil {
		return nil, errors.New("notify: Slack commands need Operators and Incidents")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &SlackCommands{o: o}, nil
}

const maxSlackBody = 64 << 10

// ServeHTTP handles both endpoints; the interactive one is recognised by its
// payload field.
func (s *SlackCommands) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !s.o.SigningSecret.IsSet() {
		http.Error(w, "Slack requests over HTTP need notify.slack.signing_secret", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSlackBody+1))
	if err != nil || len(body) > maxSlackBody {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	ctx := r.Context()
	if err := VerifySlackRequest(s.o.SigningSecret.Reveal(), r.Header, body, s.o.Now()); err != nil {
		s.audit(ctx, "slack:unverified", "slack_refused", "", remoteAddr(r), map[string]any{"reason": err.Error()})
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var team, user, text string
	if p := form.Get("payload"); p != "" {
		team, user, text, err = interactiveCommand(p)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
	} else {
		team, user, text = form.Get("team_id"), form.Get("user_id"), form.Get("text")
	}
	reply := s.run(ctx, remoteAddr(r), team, user, text)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"response_type": "ephemeral", "text": reply})
}

// interactiveCommand turns a button press into the command it stands for.
func interactiveCommand(payload string) (team, user, text string, err error) {
	var p struct {
		Type string `json:"type"`
		Team struct {
			ID string `json:"id"`
		} `json:"team"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Actions []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"actions"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return "", "", "", err
	}
	if p.Type != "block_actions" || len(p.Actions) == 0 {
		return "", "", "", errors.New("not a button")
	}
	a := p.Actions[0]
	switch a.ActionID {
	case ActionAcknowledge:
		return p.Team.ID, p.User.ID, "ack " + a.Value, nil
	}
	return "", "", "", fmt.Errorf("unknown action %q", a.ActionID)
}

// ActionAcknowledge is the action id of the on-call root's Acknowledge
// button; its value is the incident id.
const ActionAcknowledge = "candor_ack"

const slackHelp = "Usage: `/candor ack ID` · `/candor update ID [investigating|identified|monitoring|resolved] message` · " +
	"`/candor note ID message` (internal) · `/candor reclassify ID security|non_security|undetermined reason`"

// run performs one command for a Slack user and returns what to tell them,
// escaped for mrkdwn: the reply quotes what they typed.
func (s *SlackCommands) run(ctx context.Context, addr, team, user, text string) string {
	return Escape(s.do(ctx, addr, team, user, text))
}

func (s *SlackCommands) do(ctx context.Context, addr, team, user, text string) string {
	fields := strings.Fields(text)
	if len(fields) == 0 || fields[0] == "help" {
		return slackHelp
	}
	op, err := s.o.Operators.SlackOperator(ctx, team, user)
	if err != nil {
		s.audit(ctx, "slack:"+team+"/"+user, "slack_refused", "", addr, map[string]any{"reason": "unknown user", "command": fields[0]})
		if errors.Is(err, ErrUnknownUser) {
			return "You are not a Candor operator: ask an admin to link your Slack account."
		}
		s.o.Logger.Error("notify: Slack user lookup failed", "err", err)
		return "Candor could not check who you are; try again."
	}
	if op.Role != "responder" && op.Role != "admin" {
		s.audit(ctx, "person:"+op.ID, "slack_refused", "", addr, map[string]any{"reason": "role " + op.Role, "command": fields[0]})
		return fmt.Sprintf("Your role (%s) cannot change incidents: responders and admins can.", op.Role)
	}
	actor := "person:" + op.ID
	if len(fields) < 2 {
		return slackHelp
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(fields[1], "#"), 10, 64)
	if err != nil || id <= 0 {
		return fmt.Sprintf("%q is not an incident id. %s", fields[1], slackHelp)
	}
	rest := func(n int) string {
		// The text after the first n words, as typed.
		t := strings.TrimSpace(text)
		for range n {
			i := strings.IndexFunc(t, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
			if i < 0 {
				return ""
			}
			t = strings.TrimSpace(t[i:])
		}
		return t
	}
	var inc incidents.Incident
	switch fields[0] {
	case "ack", "acknowledge":
		inc, err = s.o.Incidents.PostUpdate(ctx, id, incidents.Update{Message: "Acknowledged by " + op.ID + " in Slack.",
			Visibility: incidents.Internal, Actor: actor})
	case "update", "note":
		u := incidents.Update{Actor: actor, Visibility: incidents.Public}
		if fields[0] == "note" {
			u.Visibility = incidents.Internal
			u.Message = rest(2)
		} else if len(fields) > 2 && incidents.Status(fields[2]).Valid() {
			u.Status = incidents.Status(fields[2])
			u.Message = rest(3)
		} else {
			u.Message = rest(2)
		}
		inc, err = s.o.Incidents.PostUpdate(ctx, id, u)
	case "reclassify":
		if len(fields) < 3 {
			return slackHelp
		}
		inc, err = s.o.Incidents.Reclassify(ctx, id, incidents.Classification(fields[2]), rest(3), actor)
	default:
		return fmt.Sprintf("Unknown command %q. %s", fields[0], slackHelp)
	}
	var fe incidents.FieldErrors
	switch {
	case errors.As(err, &fe):
		var msgs []string
		for _, f := range fe {
			msgs = append(msgs, f.Field+" "+f.Msg)
		}
		return "Not done: " + strings.Join(msgs, "; ")
	case errors.Is(err, incidents.ErrNotFound):
		return fmt.Sprintf("There is no incident %d.", id)
	case err != nil:
		s.o.Logger.Error("notify: Slack command failed", "command", fields[0], "incident", id, "err", err)
		return "Candor could not do that; try again."
	}
	return fmt.Sprintf("Done: incident %d is %s.", inc.ID, words(string(inc.Status)))
}

func remoteAddr(r *http.Request) string {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return addr
}

func (s *SlackCommands) audit(ctx context.Context, actor, action, target, addr string, detail map[string]any) {
	s.o.Logger.Warn("notify: Slack request refused", "actor", actor, "detail", detail)
	if s.o.Pool == nil {
		return
	}
	if _, err := s.o.Pool.Exec(ctx, `insert into audit_log (at, actor, action, target, address, detail) values ($1, $2, $3, $4, $5, $6)`,
		s.o.Now().UTC(), actor, action, target, addr, detail); err != nil {
		s.o.Logger.Error("notify: audit", "err", err)
	}
}

// SlackEmailOperators maps a Slack user to an operator by the email
// address of their Slack profile (users.info, which needs the
// users:read.email scope), with byEmail finding the operator (returning
// ErrUnknownUser for none). Users of another workspace than the token's,
// guests, bots, deleted users and unconfirmed addresses are unknown.
func SlackEmailOperators(cfg SlackConfig, byEmail func(ctx context.Context, email string) (Operator, error)) Operators {
	return &emailOperators{api: newSlackAPI(cfg), byEmail: byEmail}
}

type emailOperators struct {
	api     *slack.Client
	byEmail func(ctx context.Context, email string) (Operator, error)

	mu   sync.Mutex
	team string // the token's workspace, learnt once
}

func (o *emailOperators) SlackOperator(ctx context.Context, teamID, userID string) (Operator, error) {
	o.mu.Lock()
	team := o.team
	o.mu.Unlock()
	if team == "" {
		at, err := o.api.AuthTestContext(ctx)
		if err != nil {
			return Operator{}, fmt.Errorf("slack auth.test: %w", scrub(err))
		}
		team = at.TeamID
		o.mu.Lock()
		o.team = team
		o.mu.Unlock()
	}
	if teamID != team || userID == "" {
		return Operator{}, ErrUnknownUser
	}
	u, err := o.api.GetUserInfoContext(ctx, userID)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "user_not_found" {
			return Operator{}, ErrUnknownUser
		}
		return Operator{}, fmt.Errorf("slack users.info: %w", scrub(err))
	}
	if u.Deleted || u.IsBot || u.IsRestricted || u.IsUltraRestricted || u.IsStranger || !u.IsEmailConfirmed || u.Profile.Email == "" {
		return Operator{}, ErrUnknownUser
	}
	return o.byEmail(ctx, strings.ToLower(u.Profile.Email))
}

// RunSocketMode takes /candor commands and button presses over Slack's
// Socket Mode until ctx ends, so that no public URL is needed: cfg's
// app_token (xapp-…, connections:write) opens the connection, which Slack
// authenticates, so requests need no signature. The Slack user is mapped and
// their role checked as over HTTP.
func (s *SlackCommands) RunSocketMode(ctx context.Context, cfg SlackConfig) error {
	if !cfg.AppToken.IsSet() {
		return errors.New("notify: Socket Mode needs notify.slack.app_token")
	}
	api := slack.New(cfg.Token.Reveal(), slack.OptionAPIURL(cfg.apiURL()), slack.OptionAppLevelToken(cfg.AppToken.Reveal()))
	sm := socketmode.New(api, socketmode.OptionLog(slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelDebug)))
	errc := make(chan error, 1)
	go func() { errc <- sm.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			<-errc
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("notify: Socket Mode: %w", scrub(err))
		case ev := <-sm.Events:
			switch ev.Type {
			case socketmode.EventTypeSlashCommand:
				cmd, ok := ev.Data.(slack.SlashCommand)
				if !ok || ev.Request == nil {
					continue
				}
				reply := s.run(ctx, "socket-mode", cmd.TeamID, cmd.UserID, cmd.Text)
				if err := sm.AckCtx(ctx, ev.Request.EnvelopeID, map[string]string{"response_type": "ephemeral", "text": reply}); err != nil {
					s.o.Logger.Warn("notify: Socket Mode acknowledgement failed", "err", err)
				}
			case socketmode.EventTypeInteractive:
				cb, ok := ev.Data.(slack.InteractionCallback)
				if !ok || ev.Request == nil {
					continue
				}
				_ = sm.AckCtx(ctx, ev.Request.EnvelopeID, nil)
				for _, a := range cb.ActionCallback.BlockActions {
					if a.ActionID == ActionAcknowledge {
						reply := s.run(ctx, "socket-mode", cb.Team.ID, cb.User.ID, "ack "+a.Value)
						s.o.Logger.Info("notify: Slack button", "user", cb.User.ID, "result", reply)
					}
				}
			case socketmode.EventTypeInvalidAuth:
				return errors.New("notify: Slack rejected notify.slack.app_token: give an app-level token (xapp-…) with connections:write")
			case socketmode.EventTypeConnectionError:
				s.o.Logger.Warn("notify: Socket Mode connection failed; retrying", "err", ev.Data)
			}
		}
	}
}
