-- Notify: the delivery state of every outbox row on every channel, and the
-- Slack messages already posted, so that a redelivery after a crash updates
-- what people see instead of posting it twice. Every time is timestamptz (UTC).

-- One row per channel ("slack:public", "slack:oncall", "webhook:3"): how far
-- the relay has turned outbox rows into deliveries. Every outbox row with an
-- id up to cursor_id has its delivery row (or is not for this channel).
-- Outbox ids are taken before their transactions commit, and commit out of
-- order, so the cursor moves only to a horizon: the outbox sequence's value
-- (horizon_id) read before the relay's transaction took its xid
-- (horizon_xid). A transaction holding an id up to horizon_id took its xid
-- before that (it writes its timeline event before its outbox row), so once
-- no xid up to horizon_xid is running, every such row is committed or never
-- will be. Rows above the cursor are looked at again on every pass.
create table notify_channels (
    channel     text primary key,
    cursor_id   bigint not null default 0,
    horizon_id  bigint,
    horizon_xid xid8,
    created_at  timestamptz not null,
    updated_at  timestamptz not null
);

-- One row per outbox row and channel. A delivery is attempted only when
-- every earlier delivery of its ordering key on its channel is delivered:
-- a dead one holds the later ones back until a person retries it.
create table notify_deliveries (
    id              bigint generated always as identity primary key,
    outbox_id       bigint not null references outbox (id),
    channel         text not null,
    ordering_key    text not null,
    state           text not null default 'pending' check (state in ('pending', 'delivered', 'dead')),
    attempts        integer not null default 0,   -- failed attempts (a rate limit does not count)
    next_attempt_at timestamptz not null,
    last_error      text not null default '',
    created_at      timestamptz not null,         -- the outbox row's commit time, near enough
    delivered_at    timestamptz,
    updated_at      timestamptz not null,
    unique (outbox_id, channel)
);
-- The claim walks pending deliveries in outbox order.
create index notify_deliveries_pending on notify_deliveries (outbox_id) where state = 'pending';
create index notify_deliveries_open_key on notify_deliveries (channel, ordering_key, outbox_id) where state <> 'delivered';
create index notify_deliveries_dead on notify_deliveries (updated_at desc) where state = 'dead';

-- Slack messages by idempotency key: an incident's root message in a Slack
-- channel ("root/C123/42") and every thread reply ("o1234/slack:oncall/0").
-- A row is written before the message is posted (intent) and gets its ts
-- after; a row without a ts means an attempt whose outcome is unknown, and the
-- next attempt looks for the key in the channel's messages (Slack message
-- metadata) before posting again.
create table notify_slack_messages (
    key         text primary key,
    slack_channel text not null,
    incident_id bigint references incidents (id),
    thread_ts   text not null default '',
    ts          text not null default '',
    content_sha text not null default '',          -- of the root's last rendering, to skip needless chat.update
    intent_at   timestamptz not null,
    posted_at   timestamptz,
    updated_at  timestamptz not null
);
create index notify_slack_messages_by_incident on notify_slack_messages (incident_id);

-- Webhook subscribers: each is the channel "webhook:<id>". The secret signs
-- every body (HMAC-SHA256) and is shown once, when the subscriber is added.
-- An endpoint that fails pause_after times in a row is paused (its
-- deliveries are held) until its owner resumes it.
create table notify_webhooks (
    id            bigint generated always as identity primary key,
    url           text not null,
    secret        text not null,
    description   text not null default '',
    failures      integer not null default 0,     -- consecutive failed attempts
    paused_at     timestamptz,
    paused_reason text not null default '',
    created_by    text not null,
    created_at    timestamptz not null,
    updated_at    timestamptz not null,
    deleted_at    timestamptz
);
