-- Probe results. Raw results are kept for a configurable period (probes.Store.Prune);
-- hourly and daily rollups per probe and location are kept indefinitely and are
-- updated in the same transaction as each batch of raw results, so that uptime
-- over 90 days reads at most 90 rows per probe and location, never the raw history.

create table probe_results (
    id              bigint generated always as identity primary key,
    probe           text not null,
    location        text not null,
    started_at      timestamptz not null,
    duration_ms     integer not null,
    outcome         text not null check (outcome in ('ok', 'degraded', 'failed')),
    failed_step     text not null default '',
    failed_index    integer not null default -1,
    error_class     text not null default '',
    message         text not null default '',
    signals         text[] not null default '{}',
    steps           jsonb not null default '[]',
    clock_offset_ms integer not null default 0,
    cert_not_after  timestamptz
);
create index probe_results_by_probe on probe_results (probe, location, started_at desc);
create index probe_results_by_time on probe_results (started_at);

-- One row per probe, location and UTC hour (bucket is the hour's start).
create table probe_rollups_hourly (
    probe           text not null,
    location        text not null,
    bucket          timestamptz not null,
    runs            integer not null,
    ok              integer not null,
    degraded        integer not null,
    failed          integer not null,
    with_signals    integer not null, -- runs that raised a security signal
    duration_ms_sum bigint not null,
    duration_ms_max integer not null,
    primary key (probe, location, bucket)
);

-- One row per probe, location and UTC day (bucket is midnight UTC).
create table probe_rollups_daily (like probe_rollups_hourly including all);

-- Leases: who runs a probe at a location in the current interval. A lease
-- expires by itself at the end of the interval it was taken in; a replica
-- takes it only when it has expired, so each interval runs once, and a
-- replica that dies is replaced at the next interval.
create table probe_leases (
    probe    text not null,
    location text not null,
    holder   text not null,
    until    timestamptz not null,
    primary key (probe, location)
);
