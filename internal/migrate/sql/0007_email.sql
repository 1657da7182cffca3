-- Email subscribers: people who asked for incident updates by email and
-- confirmed it (double opt-in). Each address is stored once, normalised
-- (trimmed, lower-case), and is never shown: not on pages, feeds, logs or the
-- API. Unsubscribing deletes the row and with it the address.
create table notify_email_subscribers (
    id                bigint generated always as identity primary key,
    address           text not null unique,
    components        text[] not null default '{}',   -- component names; empty: every component
    state             text not null default 'pending' check (state in ('pending', 'confirmed')),
    confirm_token     text not null unique,            -- in the confirmation link
    unsubscribe_token text not null unique,            -- in every mail's link and List-Unsubscribe
    -- The confirmation mail is sent by the relay with the deliveries'
    -- retry rules: due at confirm_due_at (null: nothing to send).
    confirm_due_at    timestamptz,
    confirm_attempts  integer not null default 0,
    confirm_error     text not null default '',
    confirm_sent_at   timestamptz,
    requested_at      timestamptz not null,            -- the latest sign-up; pending rows expire after 7 days
    confirmed_at      timestamptz,                     -- mail covers outbox rows from here on
    created_at        timestamptz not null,
    updated_at        timestamptz not null
);
create index notify_email_subscribers_confirm_due on notify_email_subscribers (confirm_due_at) where confirm_due_at is not null;
create index notify_email_subscribers_confirmed on notify_email_subscribers (id) where state = 'confirmed';

-- What one delivery of the "email" channel has already sent, per
-- subscriber: a retry after a failure (or a budget that ran out) sends only
-- to those not listed. outcome 'rejected': the server refused the recipient
-- for good (5xx to RCPT TO); it is not tried again for this delivery.
-- delivery_id has no foreign key on purpose: rows are written while the
-- claim holds the delivery FOR UPDATE, which a key-share lock would wait for.
create table notify_email_sends (
    delivery_id   bigint not null,
    subscriber_id bigint not null references notify_email_subscribers (id) on delete cascade,
    outcome       text not null check (outcome in ('sent', 'rejected')),
    sent_at       timestamptz not null,
    primary key (delivery_id, subscriber_id)
);
create index notify_email_sends_subscriber on notify_email_sends (subscriber_id);
