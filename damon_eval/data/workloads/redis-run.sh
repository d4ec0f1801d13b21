#!/bin/sh
# debian/redis: redis-server under `de-agent hold` (the process DAMON targets),
# loaded by redis-benchmark over a unix socket, then shut down.
# usage: redis-run.sh AGENT REQUESTS KEYS VALUE_BYTES
set -eu
agent=$1 requests=$2 keys=$3 value_bytes=$4
dir=/var/tmp/damon-eval/scratch/redis
sock=$dir/redis.sock
mkdir -p "$dir"
rm -f "$sock"
"$agent" hold -- redis-server --port 0 --unixsocket "$sock" --save "" \
	--appendonly no --daemonize no --dir "$dir" &
server=$!
# the server is held at exec until the host says go; then it opens its socket
while [ ! -S "$sock" ]; do
	if ! kill -0 "$server" 2>/dev/null; then
		echo "redis-run.sh: redis-server exited early" >&2
		exit 1
	fi
	sleep 0.1
done
redis-benchmark -s "$sock" --csv -n "$requests" -r "$keys" -d "$value_bytes" -P 16 \
	-t set,get
redis-cli -s "$sock" dbsize
redis-cli -s "$sock" shutdown nosave || true
wait "$server"
