-- Core tables shared by every part: this replica's page identity and the
-- components declared in the configuration. Every time is timestamptz (UTC).

create table page (
    id         text primary key,
    name       text not null,
    url        text not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Audit log: who did what, when, from where. Append-only.
create table audit_log (
    id       bigint generated always as identity primary key,
    at       timestamptz not null default now(),
    actor    text not null,
    action   text not null,
    target   text not null default '',
    address  text not null default '',
    detail   jsonb not null default '{}'
);
create index audit_log_at on audit_log (at desc);
