-- Operator console: operators with password and mandatory TOTP, enrolment
-- links, recovery codes, sessions, remembered devices, API tokens and the
-- sign-in failures that rate limiting counts. Secrets are never stored: only
-- their hashes (argon2id for passwords, SHA-256 for random tokens of at least
-- 80 bits). Every time is timestamptz (UTC).

create table operators (
    id                bigint generated always as identity primary key,
    email             text not null unique check (email = lower(email) and length(email) between 3 and 254),
    role              text not null check (role in ('viewer', 'exec', 'responder', 'admin')),
    password_hash     text not null default '',     -- argon2id PHC string; '' until enrolled
    totp_secret       text not null default '',     -- base32; '' until enrolled
    totp_pending      text not null default '',     -- secret shown at enrolment, active only after a correct code
    totp_last_counter bigint not null default 0,    -- the last accepted time step: a code is accepted once
    enrolled_at       timestamptz,
    disabled          boolean not null default false,
    created_at        timestamptz not null,
    updated_at        timestamptz not null
);

-- One-time enrolment links (candor user add, an admin's reset of 2SA).
create table operator_enrolments (
    token_hash  bytea primary key,
    operator_id bigint not null references operators (id) on delete cascade,
    created_at  timestamptz not null,
    expires_at  timestamptz not null,
    used_at     timestamptz
);
create index operator_enrolments_by_operator on operator_enrolments (operator_id);

-- Recovery codes: shown once, each usable once.
create table operator_recovery_codes (
    id          bigint generated always as identity primary key,
    operator_id bigint not null references operators (id) on delete cascade,
    code_hash   bytea not null,
    created_at  timestamptz not null,
    used_at     timestamptz,
    unique (operator_id, code_hash)
);

-- Sessions: stage 'second' is between a correct password and the second
-- step; 'full' is signed in.
create table operator_sessions (
    token_hash   bytea primary key,
    operator_id  bigint not null references operators (id) on delete cascade,
    stage        text not null check (stage in ('second', 'full')),
    csrf         text not null,
    address      text not null default '',
    user_agent   text not null default '',
    created_at   timestamptz not null,
    last_seen_at timestamptz not null,
    expires_at   timestamptz not null             -- absolute limit
);
create index operator_sessions_by_operator on operator_sessions (operator_id);

-- Remembered devices: a device cookie skips the second step for 30 days.
create table operator_devices (
    id           bigint generated always as identity primary key,
    operator_id  bigint not null references operators (id) on delete cascade,
    token_hash   bytea not null unique,
    user_agent   text not null default '',
    address      text not null default '',
    created_at   timestamptz not null,
    last_used_at timestamptz not null,
    expires_at   timestamptz not null,
    revoked_at   timestamptz
);
create index operator_devices_by_operator on operator_devices (operator_id);

-- API tokens for automation, scoped to a role.
create table api_tokens (
    id           bigint generated always as identity primary key,
    name         text not null check (length(name) between 1 and 100),
    role         text not null check (role in ('viewer', 'exec', 'responder', 'admin')),
    token_hash   bytea not null unique,
    created_by   text not null,
    created_at   timestamptz not null,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Failed sign-in attempts, keyed 'account:<email>' or 'address:<ip>', whether
-- or not the account exists, so that lock-out reveals nothing.
create table signin_failures (
    id  bigint generated always as identity primary key,
    key text not null,
    at  timestamptz not null
);
create index signin_failures_by_key on signin_failures (key, at);
