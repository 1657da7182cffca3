#!/bin/sh
# Outbox relay: commit → Slack reply latency (p50/p95/p99/max, woken by
# LISTEN/NOTIFY) and deliveries per second over a backlog, against a local
# Slack-compatible receiver on loopback and a private PostgreSQL cluster
# (durable, as serve runs it; -fast for fsync off). Needs the PostgreSQL
# server binaries (apt-get install -y postgresql).
#
#   bench/notify/run.sh                          # 300 timed updates, 200 × 10 backlog, 4 workers
#   bench/notify/run.sh -workers 2 -incidents 500 -per 5
set -eu
cd "$(dirname "$0")/../.."
go build -o /tmp/candor-bench-notify ./bench/notify
exec /tmp/candor-bench-notify "$@"
