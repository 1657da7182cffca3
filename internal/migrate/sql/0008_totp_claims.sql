-- One-time-code windows claimed by probe runs. A target accepts each TOTP
-- code once per account, so every replica, location and `candor probe run`
-- sharing this database claims (account, window) here before it submits a
-- code; the insert that lands first wins the window. account is a hash of
-- the seed, the code's parameters and the probe's plain variables: never the
-- seed itself. Rows older than a day are deleted by the claimers, a bounded
-- batch at a time, through the window_start index.
create table totp_claims (
    account      text        not null,
    window_start timestamptz not null,
    claimed_by   text        not null,  -- host/pid/location of the run's process, for diagnosis
    claimed_at   timestamptz not null default now(),
    primary key (account, window_start)
);
create index totp_claims_window_start on totp_claims (window_start);
