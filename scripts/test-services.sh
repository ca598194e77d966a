#!/usr/bin/env bash
# Runs before `npm test`: the suite tests against real parts, so it needs Debian's chromium,
# redis-server and redis-sentinel (`.ci/run` installs them), a Redis answering at TEST_REDIS_URL
# and a 3-primary Redis Cluster at TEST_REDIS_CLUSTER (`redis+cluster://host:port,...`). Starts
# both on loopback when they do not answer, once per machine: every test file shares them with a
# key prefix of its own. Tests that restart Redis (or fail it over) start their own on other ports.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "npm test needs Debian packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}    (or run: bash .ci/run)" >&2
  exit 1
fi

wait_for() { # url
  for _ in $(seq 1 50); do redis-cli -u "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

url="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
if ! redis-cli -u "$url" ping >/dev/null 2>&1; then
  port=$(node -e 'console.log(new URL(process.argv[1]).port || 6379)' "$url")
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no >/dev/null
  wait_for "$url" || { echo "could not start redis-server at $url" >&2; exit 1; }
fi

# The cluster: three primaries, no replicas, no persistence, in a temporary directory.
cluster="${TEST_REDIS_CLUSTER:-redis+cluster://127.0.0.1:30001,127.0.0.1:30002,127.0.0.1:30003}"
nodes=$(echo "${cluster#redis+cluster://}" | tr ',' ' ')
first=${nodes%% *}
if [ "$(redis-cli -h "${first%:*}" -p "${first#*:}" cluster info 2>/dev/null | tr -d '\r' | grep -c '^cluster_state:ok')" != "1" ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/notify-test-cluster.XXXXXX")
  for node in $nodes; do
    redis-cli -h "${node%:*}" -p "${node#*:}" shutdown nosave >/dev/null 2>&1 || true
    redis-server --port "${node#*:}" --bind "${node%:*}" --daemonize yes --save '' --appendonly no \
      --cluster-enabled yes --cluster-config-file "$dir/nodes-${node#*:}.conf" --dir "$dir" \
      --logfile "$dir/${node#*:}.log" >/dev/null
    wait_for "redis://$node" || { echo "could not start cluster node $node (log: $dir/${node#*:}.log)" >&2; exit 1; }
  done
  redis-cli --cluster create $nodes --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
    { echo "redis-cli --cluster create failed:" >&2; cat "$dir/create.log" >&2; exit 1; }
  for _ in $(seq 1 100); do
    ok=1
    for node in $nodes; do
      redis-cli -h "${node%:*}" -p "${node#*:}" cluster info 2>/dev/null | tr -d '\r' | grep -q '^cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.1
  done
  [ "$ok" = 1 ] || { echo "the test cluster did not become ready ($dir)" >&2; exit 1; }
fi
