#!/bin/sh
# Page build time against history: site.Site.Rebuild with 1, 30 and 90 days
# of probe rollups and incidents (five components, three probes in three
# locations, an incident every three days with three updates) on a private
# PostgreSQL cluster. Needs the PostgreSQL server binaries
# (apt-get install -y postgresql).
#
#   bench/pagebuild/run.sh                 # 20 rebuilds per case
#   bench/pagebuild/run.sh -n 50 -days 1,30,90,365
set -eu
cd "$(dirname "$0")/../.."
go build -o /tmp/candor-bench-pagebuild ./bench/pagebuild
exec /tmp/candor-bench-pagebuild "$@"
