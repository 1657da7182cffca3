#!/bin/sh
# Detection latency of the whole system: the real candor binary (serve with
# the demo's probes every 15 s, its own embedded PostgreSQL) and the demo
# login target (candor demo-target), faults injected one after another
# through the target's /_fault, and for each: fault injected → incident
# opened → on the public page and in unresolved.json → the Slack root post
# (a Slack-compatible receiver on loopback). Then the fault is cleared and
# the incident followed to resolved before the next. Needs the PostgreSQL
# server binaries (apt-get install -y postgresql). Loopback only.
#
#   bench/detection/run.sh                  # 20 faults over five modes, about 20 minutes
#   bench/detection/run.sh -faults 5        # flags of bench/detection/main.go
set -eu
cd "$(dirname "$0")/../.."
go build -o /tmp/candor-bench-detection-candor ./cmd/candor
go build -o /tmp/candor-bench-detection ./bench/detection
exec /tmp/candor-bench-detection -candor /tmp/candor-bench-detection-candor "$@"
