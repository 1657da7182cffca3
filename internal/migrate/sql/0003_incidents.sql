-- Incidents: components and their status, incidents with an append-only UTC
-- timeline, classification evidence, updates, maintenance windows,
-- post-incident note drafts, the detector's per-probe state, and the outbox
-- that notify delivers. Every time is timestamptz, written in UTC.

create table components (
    id          text primary key,              -- stable slug of the name ("two-step-authentication")
    name        text not null unique,
    group_name  text not null default '',
    description text not null default '',
    position    integer not null default 0,
    status      text not null default 'operational'
                check (status in ('operational', 'degraded_performance', 'partial_outage', 'major_outage', 'under_maintenance')),
    active      boolean not null default true, -- false once removed from the configuration
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create table incidents (
    id               bigint generated always as identity primary key,
    signature        text,                     -- what the detector opened it for; null for a person's incident
    title            text not null,
    status           text not null check (status in ('investigating', 'identified', 'monitoring', 'resolved', 'postmortem')),
    impact           text not null default 'none' check (impact in ('none', 'minor', 'major', 'critical')),
    classification   text not null check (classification in ('security', 'non_security', 'undetermined')),
    confirmed        boolean not null default false, -- a person confirmed the classification
    public           boolean not null default false, -- a public update was posted
    probes           text[] not null default '{}',
    failing_probes   text[] not null default '{}',
    steps            text[] not null default '{}',   -- probe/step
    locations        text[] not null default '{}',
    signals          text[] not null default '{}',
    started_at       timestamptz not null,           -- the first failed run, not the detection
    detected_at      timestamptz not null,
    monitoring_at    timestamptz,
    resolved_at      timestamptz,
    first_public_at  timestamptz,
    last_public_at   timestamptz,
    last_reminder_at timestamptz,
    last_failure_at  timestamptz,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    check (detected_at >= started_at)
);
-- At most one open incident per signature, whatever the number of replicas.
create unique index incidents_one_open_per_signature on incidents (signature)
    where status in ('investigating', 'identified', 'monitoring');
create index incidents_by_status on incidents (status, id);
create index incidents_by_resolved on incidents (signature, resolved_at) where status = 'resolved';

-- The status of each component within an incident.
create table incident_components (
    incident_id bigint not null references incidents (id),
    component   text not null,                 -- component name
    status      text not null
                check (status in ('operational', 'degraded_performance', 'partial_outage', 'major_outage', 'under_maintenance')),
    primary key (incident_id, component)
);

create table maintenances (
    id            bigint generated always as identity primary key,
    title         text not null,
    body          text not null default '',    -- markdown
    body_html     text not null default '',    -- rendered and sanitised
    status        text not null check (status in ('scheduled', 'in_progress', 'verifying', 'completed')),
    components    text[] not null default '{}', -- component names
    starts_at     timestamptz not null,
    ends_at       timestamptz not null,
    auto_start    boolean not null default true,
    auto_complete boolean not null default true,
    created_by    text not null,
    created_at    timestamptz not null,
    updated_at    timestamptz not null,
    check (ends_at > starts_at)
);
create index maintenances_active on maintenances (starts_at, ends_at) where status <> 'completed';

-- The timeline: every fact, append-only. Corrections are new events.
-- incident_id is null for facts about components alone (latency) and for
-- maintenance (maintenance_id).
create table incident_events (
    id             bigint generated always as identity primary key,
    incident_id    bigint references incidents (id),
    maintenance_id bigint references maintenances (id),
    at             timestamptz not null,
    kind           text not null,
    actor          text not null,
    payload        jsonb not null default '{}'
);
create index incident_events_by_incident on incident_events (incident_id, id);
create index incident_events_by_maintenance on incident_events (maintenance_id, id) where maintenance_id is not null;

create function incident_events_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'incident_events is append-only: record a correction as a new event';
end $$;
create trigger incident_events_append_only before update or delete on incident_events
    for each row execute function incident_events_append_only();

-- The evidence behind each classification.
create table incident_evidence (
    id          bigint generated always as identity primary key,
    incident_id bigint not null references incidents (id),
    event_id    bigint not null references incident_events (id),
    run_at      timestamptz not null,
    probe       text not null,
    location    text not null,
    step        text not null default '',
    error_class text not null default '',
    outcome     text not null,
    signals     text[] not null default '{}',
    message     text not null default '',
    verdict     text not null check (verdict in ('security', 'non_security', 'undetermined')),
    why         text not null
);
create index incident_evidence_by_incident on incident_evidence (incident_id, id);

-- Updates people (and the publication policy) post.
create table incident_updates (
    id          bigint generated always as identity primary key,
    incident_id bigint not null references incidents (id),
    event_id    bigint not null references incident_events (id),
    status      text not null check (status in ('investigating', 'identified', 'monitoring', 'resolved', 'postmortem')),
    body        text not null,                 -- markdown as written
    body_html   text not null,                 -- rendered with goldmark, sanitised with bluemonday
    visibility  text not null check (visibility in ('public', 'internal')),
    impact      text check (impact in ('none', 'minor', 'major', 'critical')),
    components  jsonb not null default '[]',   -- [{component, old_status, new_status}]
    author      text not null,
    automatic   boolean not null default false,
    created_at  timestamptz not null
);
create index incident_updates_by_incident on incident_updates (incident_id, id);
create index incident_updates_public on incident_updates (created_at desc) where visibility = 'public';

-- Post-incident note drafts, versioned; a published version is attached to the incident.
create table incident_notes (
    incident_id  bigint not null references incidents (id),
    version      integer not null,
    body         text not null,               -- markdown
    author       text not null,
    created_at   timestamptz not null,
    published_at timestamptz,
    primary key (incident_id, version)
);

-- What the detector remembers about each probe. Observe locks the row
-- (SELECT ... FOR UPDATE), so replicas observing one probe take turns.
create table incident_probe_state (
    probe      text primary key,
    state      jsonb not null,
    updated_at timestamptz not null
);

-- The outbox: one row per communicable fact, written in the transaction of
-- the change. notify delivers each to its channels, in id order per
-- ordering_key, with the row id as the idempotency key.
create table outbox (
    id           bigint generated always as identity primary key,
    created_at   timestamptz not null,
    ordering_key text not null,                -- "incident:42", "maintenance:7", "component:login"
    kind         text not null,                -- the event kind
    incident_id  bigint references incidents (id),
    event_id     bigint references incident_events (id),
    public       boolean not null,             -- may reach public channels
    payload      jsonb not null
);
create index outbox_by_key on outbox (ordering_key, id);
