#!/bin/sh
# Probe throughput: full demo login flows (six HTTP requests with TOTP each)
# against the in-process demo target over loopback, 200 flows in flight.
# Reports flows/s, CPU µs per flow, allocations and bytes per flow, and the
# peak heap per flow in flight. The target runs in the same process, so CPU,
# allocations and heap include its share: the prober alone costs less.
#
#   bench/probes/run.sh            # 2 CPUs, 5 s, 3 runs
#   CPUS=4 TIME=10s COUNT=5 bench/probes/run.sh
set -eu
cd "$(dirname "$0")/../.."
CPUS=${CPUS:-2}
TIME=${TIME:-5s}
COUNT=${COUNT:-3}
echo "# $(go version) on $(nproc) cores, -cpu $CPUS -benchtime $TIME -count $COUNT"
go test -run '^$' -bench 'BenchmarkLoginFlow' -benchmem \
	-cpu "$CPUS" -benchtime "$TIME" -count "$COUNT" ./probes/demo/
