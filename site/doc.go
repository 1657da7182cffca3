// Package site serves Candor's public status page: pages, feeds, a
// Statuspage-compatible JSON API and badges, pre-rendered into an in-memory
// [Snapshot] so that a request is a map look-up and never touches
// PostgreSQL.
//
// Routes (GET and HEAD; anything else is 405, an unknown path the small
// 404 page):
//
//	/                                   status, active incidents and maintenance, components with 90-day uptime bars
//	/incidents/{id}                     an incident's public timeline
//	/components/{id}                    a component, its uptime and incidents
//	/history                            public incidents by UTC month
//	/history.rss, /history.atom         an entry per public update
//	/components/{id}.rss, .atom         the same for one component
//	/api/v2/summary.json                Statuspage v2: page, status, components, unresolved incidents, upcoming and active maintenance
//	/api/v2/status.json, components.json, incidents.json (last 50), incidents/unresolved.json,
//	/api/v2/scheduled-maintenances.json, scheduled-maintenances/upcoming.json, scheduled-maintenances/active.json
//	/badge.svg                          a status badge
//	/badge.json                         a shields.io endpoint badge
//	/assets/site.<hash>.css, /assets/local.<hash>.js
//
// Every response is held in identity and gzip form with a strong ETag
// (If-None-Match gives 304), Cache-Control with a short max-age,
// stale-while-revalidate and stale-if-error, and security headers (a CSP
// without unsafe-inline, nosniff, Referrer-Policy, frame-ancestors 'none';
// the badge is embedded with <img>, which frame-ancestors does not stop).
// [Site.Rebuild] replaces the snapshot from the incidents Store, rendering
// again only what changed; [Site.Run] rebuilds on every change notice
// (LISTEN on incidents.NotifyChannel, debounced), on the hour, and when
// the database comes back; while PostgreSQL is down the last snapshot is
// served. [Export] writes a snapshot as static files.
package site
