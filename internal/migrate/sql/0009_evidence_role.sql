-- What a failing step means (its role: login_page, password, second_factor,
-- …) is kept with each run of evidence, so that readers speak of the flow's
-- meaning and not of the names a configuration gave its steps; and when the
-- target's certificate expires, for an expired certificate.
alter table incident_evidence add column role text not null default '';
alter table incident_evidence add column cert_not_after timestamptz;
