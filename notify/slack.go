package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/slack-go/slack"
)

// metaType is the Slack message metadata event type that carries a
// message's idempotency key, so that a message whose ts was lost in a crash
// can be found again instead of posted twice.
const metaType = "candor_message"

// slackClient is the Slack Web API as the relay uses it, and the memory of
// what it posted.
type slackClient struct {
	api     *slack.Client
	pool    *pgxpool.Pool
	pageURL string
	buttons bool // interactivity is configured (a signing secret)
	now     func() time.Time
	log     *slog.Logger

	warnOnce sync.Once
}

func newSlackClient(pool *pgxpool.Pool, cfg SlackConfig, pageURL string, now func() time.Time, log *slog.Logger) *slackClient {
	return &slackClient{api: newSlackAPI(cfg), pool: pool, pageURL: strings.TrimRight(pageURL, "/"), buttons: cfg.SigningSecret.IsSet() || cfg.AppToken.IsSet(), now: now, log: log}
}

func newSlackAPI(cfg SlackConfig) *slack.Client {
	httpc := &http.Client{Timeout: 30 * time.Second}
	return slack.New(cfg.Token.Reveal(), slack.OptionAPIURL(cfg.apiURL()), slack.OptionHTTPClient(httpc))
}

// authTest checks the token, with an error that says what to do.
func (c *slackClient) authTest(ctx context.Context) error {
	_, err := c.api.AuthTestContext(ctx)
	if err == nil {
		return nil
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type":
			return fmt.Errorf("slack rejected notify.slack.token (%s): give a valid bot token (xoxb-…) with the chat:write scope", se.Err)
		}
		return fmt.Errorf("slack auth.test: %s", se.Err)
	}
	return fmt.Errorf("slack auth.test: %w", scrub(err))
}

// slackDest is one Slack channel: the public announcements or on-call.
type slackDest struct {
	c            *slackClient
	slackChannel string
	oncall       bool
}

func (d *slackDest) name() string {
	if d.oncall {
		return "slack:oncall"
	}
	return "slack:public"
}

func (d *slackDest) filter() string {
	if d.oncall {
		return "o.incident_id is not null"
	}
	// Security incidents reach the public channel only once published: the
	// outbox marks public only what may be shown to customers. A change of
	// classification comes too, to edit an existing root (never to make one).
	return "o.incident_id is not null and (o.public or o.kind = 'classification_changed')"
}

// deliver makes Slack show one event: the incident's root message exists
// and shows the incident as of this event, and the event has its reply in
// the root's thread.
func (d *slackDest) deliver(ctx context.Context, dl *delivery) error {
	if dl.Incident == nil || dl.Incident.ID == 0 {
		return nil
	}
	inc := *dl.Incident
	if !d.oncall && !dl.Public && dl.Root == nil {
		return nil // not published: no root in the public channel, and none made now
	}
	rootText, rootBlocks := renderRoot(inc, d.c.pageURL, d.oncall, d.c.buttons)
	rootKey := fmt.Sprintf("root/%s/%d", d.slackChannel, inc.ID)
	var root slackMessage
	if dl.Root != nil {
		root = *dl.Root
	} else {
		var err error
		if root, err = d.c.post(ctx, d.slackChannel, rootKey, inc.ID, "", rootText, rootBlocks); err != nil {
			return err
		}
	}
	if !root.fresh && root.sha != contentSHA(rootText, rootBlocks) {
		err := d.c.update(ctx, rootKey, root, rootText, rootBlocks)
		if slackError(err, "message_not_found") {
			// Someone deleted the root: the incident gets a new one.
			if _, err := d.c.pool.Exec(ctx, `delete from notify_slack_messages where key = $1`, rootKey); err != nil {
				return fmt.Errorf("slack message %s: %w", rootKey, err)
			}
			root, err = d.c.post(ctx, d.slackChannel, rootKey, inc.ID, "", rootText, rootBlocks)
		}
		if err != nil {
			return err
		}
	}
	if !d.oncall && !dl.Public {
		return nil // the root is current; the event itself is not for the public
	}
	text := renderReply(dl, d.c.pageURL, d.oncall)
	if text == "" {
		return nil
	}
	key := fmt.Sprintf("o%d/%s", dl.OutboxID, d.name())
	_, err := d.c.post(ctx, root.channel, key, inc.ID, root.ts, text, nil)
	return err
}

// slackMessage is what we know of a message we posted.
type slackMessage struct {
	channel string // the channel id Slack answered with
	ts      string
	sha     string
	fresh   bool // posted by this call, with this content
}

// post makes sure the message with this key is in Slack, posting it only
// when it is not known to be there: its ts is stored, or a previous attempt
// whose outcome is unknown left it in the channel (found by its metadata).
func (c *slackClient) post(ctx context.Context, channel, key string, incident int64, threadTS, text string, blocks []slack.Block) (slackMessage, error) {
	// One round trip: write the intent, or read what an earlier attempt left.
	var m slackMessage
	var intentAt time.Time
	var fresh bool
	err := c.async(ctx, `
		with ins as (
			insert into notify_slack_messages (key, slack_channel, incident_id, thread_ts, intent_at, updated_at)
			values ($1, $2, $3, $4, $5, $5) on conflict (key) do nothing
			returning slack_channel, ts, content_sha, intent_at, true as fresh)
		select * from ins
		union all
		select slack_channel, ts, content_sha, intent_at, false from notify_slack_messages where key = $1`,
		[]any{key, channel, incident, threadTS, c.now()}, func(row pgx.Row) error {
			return row.Scan(&m.channel, &m.ts, &m.sha, &intentAt, &fresh)
		})
	if err != nil {
		return m, fmt.Errorf("slack message %s: %w", key, err)
	}
	if m.ts != "" {
		return m, nil
	}
	if !fresh {
		// An earlier attempt may have reached Slack before we learnt its ts.
		ts, ferr := c.find(ctx, m.channel, threadTS, key, intentAt)
		if ferr != nil {
			return m, transient(ferr)
		}
		if ts != "" {
			m.ts = ts
			if err := c.async(ctx, `update notify_slack_messages set ts = $2, posted_at = $3, updated_at = $3 where key = $1`,
				[]any{key, ts, c.now()}, nil); err != nil {
				return m, fmt.Errorf("slack message %s: %w", key, err)
			}
			return m, nil
		}
	}
	opts := []slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metaType, EventPayload: map[string]any{"key": key}}),
	}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	ch, ts, err := c.api.PostMessageContext(ctx, m.channel, opts...)
	if err != nil {
		e := classifySlack(err)
		if definite(e) {
			// Slack did not post it: the next attempt need not look for it.
			_, _ = c.pool.Exec(ctx, `delete from notify_slack_messages where key = $1 and ts = ''`, key)
		}
		return m, e
	}
	if ch == "" {
		ch = m.channel
	}
	m = slackMessage{channel: ch, ts: ts, sha: contentSHA(text, blocks), fresh: true}
	now := c.now()
	if err := c.async(ctx, `update notify_slack_messages set slack_channel = $2, ts = $3, content_sha = $4, posted_at = $5, updated_at = $5 where key = $1`,
		[]any{key, m.channel, ts, m.sha, now}, nil); err != nil {
		return m, fmt.Errorf("slack message %s posted as %s, not stored: %w", key, ts, err)
	}
	return m, nil
}

// async runs one statement in a transaction of its own that does not wait
// for the disk (synchronous_commit off), in one round trip, and hands its
// one row to scan (when not nil). What it writes survives a crash of
// Candor at once, and a crash of PostgreSQL once the WAL writer has flushed
// it (at most a few hundred milliseconds, and at the latest when the
// delivery's own transaction commits, durably): losing an intent to a
// database crash can show a message twice, never lose one.
func (c *slackClient) async(ctx context.Context, sql string, args []any, scan func(pgx.Row) error) error {
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue("set local synchronous_commit = off")
	q := b.Queue(sql, args...)
	if scan != nil {
		q.QueryRow(scan)
	}
	b.Queue("commit")
	return c.pool.SendBatch(ctx, b).Close()
}

// update edits a posted message (the root) to new content.
func (c *slackClient) update(ctx context.Context, key string, m slackMessage, text string, blocks []slack.Block) error {
	opts := []slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: metaType, EventPayload: map[string]any{"key": key}}),
	}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if _, _, _, err := c.api.UpdateMessageContext(ctx, m.channel, m.ts, opts...); err != nil {
		return classifySlack(err)
	}
	now := c.now()
	if err := c.async(ctx, `update notify_slack_messages set content_sha = $2, updated_at = $3 where key = $1`,
		[]any{key, contentSHA(text, blocks), now}, nil); err != nil {
		return fmt.Errorf("slack message %s: %w", key, err)
	}
	return nil
}

// find looks for a message with key among the channel's messages since
// the intent (a thread's replies when threadTS is set). It returns "" when
// there is none. Without the history scope it cannot look, and says so once:
// the message is then posted again (at least once beats never).
func (c *slackClient) find(ctx context.Context, channel, threadTS, key string, since time.Time) (string, error) {
	oldest := slackTS(since.Add(-time.Minute))
	cursor := ""
	for page := 0; page < 20; page++ {
		var msgs []slack.Message
		var next string
		var err error
		if threadTS == "" {
			var h *slack.GetConversationHistoryResponse
			h, err = c.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: channel, Oldest: oldest, Limit: 200, Cursor: cursor, IncludeAllMetadata: true, Inclusive: true})
			if h != nil {
				msgs, next = h.Messages, h.ResponseMetaData.NextCursor
			}
		} else {
			msgs, _, next, err = c.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: channel, Timestamp: threadTS, Oldest: oldest, Limit: 200, Cursor: cursor, IncludeAllMetadata: true, Inclusive: true})
		}
		if err != nil {
			var se slack.SlackErrorResponse
			if errors.As(err, &se) && (se.Err == "missing_scope" || se.Err == "channel_not_found" || se.Err == "not_in_channel") {
				c.warnOnce.Do(func() {
					c.log.Warn("notify: cannot read Slack history to avoid a duplicate after an interrupted post; add the channels:history (or groups:history) scope and use channel ids", "err", se.Err)
				})
				return "", nil
			}
			return "", err
		}
		for _, m := range msgs {
			if m.Metadata.EventType == metaType && m.Metadata.EventPayload["key"] == key {
				return m.Timestamp, nil
			}
		}
		if next == "" {
			return "", nil
		}
		cursor = next
	}
	return "", nil
}

func slackTS(t time.Time) string {
	if t.Before(time.Unix(0, 0)) {
		return "0"
	}
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

func contentSHA(text string, blocks []slack.Block) string {
	h := sha256.New()
	h.Write([]byte(text))
	b, _ := json.Marshal(blocks)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// classifySlack sorts a Slack error: a rate limit to wait out, a channel
// that cannot work (held), a message that will never be accepted
// (permanent), or anything else (retried with backoff).
func classifySlack(err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &retryAfterError{after: max(rl.RetryAfter, time.Second), err: err}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests {
		return &retryAfterError{after: 30 * time.Second, err: err}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "rate_limited":
			return &retryAfterError{after: 30 * time.Second, err: err}
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
			"missing_scope", "channel_not_found", "not_in_channel", "is_archived", "restricted_action", "team_access_not_granted":
			return &heldError{err: fmt.Errorf("slack: %s: check notify.slack's token and channels (and invite the app to the channel)", se.Err)}
		case "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments", "invalid_metadata_format",
			"invalid_metadata_schema", "metadata_too_large", "cant_update_message", "message_not_found", "edit_window_closed":
			return &permanentError{err: err}
		}
		return err
	}
	return transient(err)
}

// transient keeps the error as it is but without what could reveal the
// token (slack-go's errors carry the request URL, never the form body; this
// is a belt for future versions).
func transient(err error) error { return scrub(err) }

func scrub(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if i := strings.Index(s, "xox"); i >= 0 {
		return errors.New(s[:i] + "[redacted]")
	}
	return err
}

// slackError reports whether err is Slack's error code.
func slackError(err error, code string) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && se.Err == code
}

// definite says Slack certainly did not take the message.
func definite(err error) bool {
	var rl *retryAfterError
	var held *heldError
	var perm *permanentError
	return errors.As(err, &rl) || errors.As(err, &held) || errors.As(err, &perm)
}
