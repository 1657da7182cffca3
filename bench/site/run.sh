#!/bin/sh
# Public site under a thundering herd: wrk (Debian's wrk, 64 connections,
# gzip requested) against Candor's home page and /api/v2/summary.json, side
# by side in one run with (a) nginx gzip_static serving the same bytes from
# files written by site.Export and (b) a bare Go net/http handler writing
# the same precompressed bytes from memory; then Candor while the snapshot
# is rebuilt from PostgreSQL every 100 ms; then the time from a committed
# update to it showing on every public endpoint. Needs wrk, nginx and the
# PostgreSQL server binaries (apt-get install -y wrk nginx-light postgresql).
#
#   bench/site/run.sh                 # 10 s per wrk run
#   bench/site/run.sh -d 30s -c 64    # flags of bench/site/main.go
set -eu
cd "$(dirname "$0")/../.."
go build -o /tmp/candor-bench-site ./bench/site
exec /tmp/candor-bench-site "$@"
